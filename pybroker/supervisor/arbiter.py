"""The supervisor process: the arbiter of the broker processes and the host of the
controller, the group coordinator and the transaction coordinator (whose markers it sends
to partition leaders over their control channels).

Life of a broker, seen from here: ``spawn_broker`` starts it; it connects to the control
socket and registers (``register``), which makes it live for the controller; it sends a
heartbeat every second. ``reap_brokers`` collects exited children (SIGCHLD only queues a
wake-up; the main loop acts, as gunicorn's arbiter does); an exit, a closed control
channel of a dead process, or heartbeats missing for ``session_timeout_s`` (a SIGSTOPped
broker) make the controller fail it over: new leaders from the ISR, bumped epochs, pushed
to every broker. A dead broker is restarted with exponential back-off, on the port it had,
and rejoins as a follower.

Scaling (``pybroker scale``, ``scale``): the broker count is in the metadata log, so
``pybroker up`` brings back as many brokers as the data dir has whatever ``--brokers``
says, unless it says more. New ids start like the others; removed ones (the highest ids)
must hold no replica, and are unregistered before they are stopped.

Restart safety: the metadata log under ``<data>/meta`` holds every controller decision
before it is published. A supervisor killed with SIGKILL leaves its brokers serving; a
new one replays the log, finds the running brokers through their pid files in
``<data>/run``, and adopts them when they reconnect, instead of starting new ones.

Owned by one asyncio event loop; nothing here is thread-safe.
"""
from __future__ import annotations

import asyncio
import errno
import glob
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil

from pybroker import errors, shm
from pybroker.group.host import GroupHost
from pybroker.cluster.controller import (
    DEFAULT_MAX_PARTITIONS,
    Controller,
    ControllerService,
    delta_to_json,
    image_to_json,
)
from pybroker.cluster.metadata import BrokerInfo
from pybroker.cluster.metadata_log import MetadataLog
from pybroker.config import TopicConfig
from pybroker.control.channel import Channel
from pybroker.txn.host import TransactionHost
from pybroker.private_files import make_private

log = logging.getLogger("pybroker.supervisor")

BROKER_BOOT_ERROR = 3
SOCKET_NAME = "supervisor.sock"
# How long an adopted broker (found alive at start) may take to reconnect.
ADOPT_TIMEOUT_S = 10.0
PREFERRED_LEADER_CHECK_S = 5.0
# Brokers of a new data dir started without a count.
DEFAULT_BROKERS = 3
# How long ``pybroker scale`` waits for new brokers to register.
SCALE_TIMEOUT_S = 30.0
# The main loop's longest wait, and how far past it a turn may come before the heartbeats
# the loop could not read meanwhile are excused.
LOOP_TICK_S = 0.2
STALL_EXCUSED_S = 1.0
# A broker report's per-topic row is [messages_in, bytes_in, bytes_out, replication_bytes_in,
# replication_bytes_out] (the ``report`` control message).
REPORT_BYTES_OUT = 2


def run_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "run")


def socket_path(data_dir: str) -> str:
    return os.path.join(run_dir(data_dir), SOCKET_NAME)


def read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed process its parent has not reaped
    yet still answers ``kill(pid, 0)``)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running_broker_pid(data_dir: str, node_id: int) -> int | None:
    """The pid of broker ``node_id`` of this data dir if its pid file names a live broker
    process of it (a pid file outlives its process, and a pid can be reused)."""
    pid = read_pid(os.path.join(run_dir(data_dir), f"broker-{node_id}.pid"))
    cmdline = live_cmdline(pid)
    if cmdline and "pybroker.broker.main" in cmdline and str(node_id) in cmdline and \
            os.path.join(data_dir, f"broker-{node_id}") in cmdline:
        return pid
    return None


def running_brokers(data_dir: str) -> dict[int, int]:
    """{node id: pid} of the live broker processes named by the pid files of ``data_dir``."""
    found = {}
    for path in glob.glob(os.path.join(run_dir(data_dir), "broker-*.pid")):
        match = re.fullmatch(r"broker-(\d+)\.pid", os.path.basename(path))
        if match:
            pid = running_broker_pid(data_dir, int(match.group(1)))
            if pid is not None:
                found[int(match.group(1))] = pid
    return found


def live_cmdline(pid: int | None) -> list[str] | None:
    """The command line of a live process, None for no pid, a gone or zombie process, or
    one we may not inspect."""
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.cmdline()
    except psutil.Error:
        return None


class StartError(Exception):
    """The cluster cannot start (a port taken, a broker that fails at start-up): the
    message says why; ``pybroker up`` prints it and exits with 1."""


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` the way a broker's listener will (SO_REUSEADDR, every address
    the host resolves to); OSError when it cannot."""
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)


def last_error_line(path: str, offset: int = 0) -> str | None:
    """The last ERROR/CRITICAL line a broker wrote to its log after ``offset`` (else its
    last line: a traceback ends with the exception)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    errors_only = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
    return (errors_only or lines or [None])[-1]


class BrokerProcess:
    """What the supervisor knows of one broker id."""

    def __init__(self, node_id: int, port: int, listener_ports: dict[str, int] | None = None):
        self.node_id = node_id
        self.port = port
        # Each listener's port, in listener order (the first is ``port``); empty: a single
        # PLAINTEXT listener on ``port``.
        self.listener_ports: dict[str, int] = dict(listener_ports or {})
        self.info: BrokerInfo | None = None
        self.popen: subprocess.Popen | None = None
        self.pid: int | None = None
        self.channel: Channel | None = None
        self.registered = False
        self.fenced = False
        self.last_heartbeat = 0.0
        self.restarts = 0
        self.backoff = 0.5
        self.next_start = 0.0
        self.started_at = 0.0
        self.boot_errors = 0
        self.log_offset = 0  # size of its log file when it was last spawned
        self.rack: str | None = None  # broker.rack, passed at spawn

    @property
    def current_rack(self) -> str | None:
        """The rack the broker registered with (an adopted one keeps the rack it was
        started with), else the one it is to start with."""
        return self.info.rack if self.info is not None else self.rack

    @property
    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)


class Supervisor:
    def __init__(self, data_dir: str, brokers: int | None = None, host: str = "127.0.0.1", base_port: int = 9092,
                 topic_settings: dict | None = None, num_partitions: int = 1, replication_factor: int = 1,
                 auto_create: bool = True, broker_settings: dict | None = None,
                 session_timeout_s: float = 6.0, log_level: str = "INFO",
                 group_settings=None, shared_memory: bool = True, max_partitions: int = DEFAULT_MAX_PARTITIONS,
                 extensions=(), txn_settings=None, shm_slots: int | None = None,
                 listeners: list[tuple[str, int | None]] | None = None, super_user: tuple[str, str] | None = None,
                 racks: dict[int, str] | None = None):
        self.data_dir = os.path.abspath(data_dir)
        # (protocol, port or None) of each client listener (pybroker.security.listener);
        # None: one PLAINTEXT listener on base_port.. as ever.
        self.listeners = list(listeners) if listeners else None
        self.super_user = super_user
        # broker.rack by broker id (``pybroker up --broker-rack``); a broker not named keeps
        # the rack the metadata log has for it.
        self.racks = dict(racks or {})
        make_private(self.data_dir)  # before anything is created under it
        # Brokers asked for (None: as many as the data dir had); ``run`` settles it
        # against the metadata log's count, and ``count_note`` says why when they differ.
        self.count = brokers
        self.count_note: str | None = None
        self._scaling = asyncio.Lock()
        self.host = host
        self.base_port = base_port
        self.topic_settings = dict(topic_settings or {})
        self.broker_settings = dict(broker_settings or {})
        # Brokers replicate over their private sockets (as INTER_BROKER_PRINCIPAL, a super
        # user of the authorizer) when a listener is secured or ACLs are enforced: on a
        # PLAINTEXT port a follower would be User:ANONYMOUS, which ACLs may refuse.
        self.secured = (bool(self.listeners) and any(p != "PLAINTEXT" for p, _ in self.listeners)) \
            or self.broker_settings.get("authorizer") == "acl"
        self.num_partitions = num_partitions
        self.auto_create = auto_create
        self.session_timeout_s = session_timeout_s
        self.log_level = log_level
        self.controller = Controller(cluster_id=self._cluster_id(), topic_defaults=TopicConfig.parse(self.topic_settings),
                                     max_partitions=max_partitions)
        self.metadata = MetadataLog(os.path.join(self.data_dir, "meta"))
        self.service = ControllerService(self.controller, persist=self.metadata.append, publish=self._publish,
                                         default_partitions=num_partitions,
                                         default_replication_factor=replication_factor)
        self.groups = GroupHost(os.path.join(self.data_dir, "meta"), group_settings)
        self.groups.positions = self.positions
        self.txns = TransactionHost(os.path.join(self.data_dir, "meta"), self.groups, self._leader_of,
                                    self._send_to_broker, txn_settings)
        self.groups.watch_topics(self.controller.topics, self.controller.resource_configs)
        self.brokers: dict[int, BrokerProcess] = {}
        self.shared_memory = shared_memory
        self.region: shm.SharedRegion | None = None
        # Offsets-table slots this supervisor allocated, and partitions the table had no
        # room for (they replicate over sockets; retried when topics are deleted).
        self._slots: dict[tuple[str, int], int] = {}
        self._unslotted: set[tuple[str, int]] = set()
        self.shm_slots = shm_slots
        self.stopping = False
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready = False
        self._server: asyncio.base_events.Server | None = None
        # Services hosted on this loop (the HTTP console): ``await start(supervisor)`` once
        # the control socket listens, ``await stop()`` at shutdown. The supervisor knows
        # them only by these two methods.
        self.extensions = list(extensions)
        # The latest ``report`` of each broker id, and who else wants each one as it comes.
        self.reports: dict[int, dict] = {}
        self.report_listeners: list = []

    def _cluster_id(self) -> str:
        import uuid

        path = os.path.join(self.data_dir, "meta", "cluster-id")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            from pybroker.log.record_file import write_atomically

            write_atomically(path, str(uuid.uuid4()).encode())
        with open(path) as f:
            return f.read().strip()

    # -- process management ----------------------------------------------------------------

    def _broker_command(self, proc: BrokerProcess) -> list[str]:
        cmd = [
            sys.executable, "-m", "pybroker.broker.main",
            "--node-id", str(proc.node_id),
            "--data", os.path.join(self.data_dir, f"broker-{proc.node_id}"),
            "--host", self.host, "--port", str(next(iter(proc.listener_ports.values()), proc.port)),
            "--control", socket_path(self.data_dir),
            "--pid-file", os.path.join(run_dir(self.data_dir), f"broker-{proc.node_id}.pid"),
            "--num-partitions", str(self.num_partitions),
            "--log-level", self.log_level,
        ]
        if not self.auto_create:
            cmd.append("--no-auto-create")
        if self.region is not None:
            cmd += ["--shm", self.region.name]
        for key, value in self.topic_settings.items():
            cmd += ["--config", f"{key}={value}"]
        for key, value in self.broker_settings.items():
            cmd += ["--broker-config", f"{key}={value}"]
        if proc.listener_ports:
            cmd += ["--broker-config", "listeners=" + ",".join(f"{n}:{p}" for n, p in proc.listener_ports.items())]
        if self.secured:
            cmd += ["--broker-config", f"internal_socket={self.internal_socket(proc.node_id)}"]
        if proc.rack is not None:
            cmd += ["--broker-config", f"broker_rack={proc.rack}"]
        return cmd

    def internal_socket(self, node_id: int) -> str:
        """The broker's private inter-broker listener (a Unix socket in the 0700 run dir)."""
        return os.path.join(run_dir(self.data_dir), f"broker-{node_id}.sock")

    def broker_log(self, node_id: int) -> str:
        return os.path.join(self.data_dir, "logs", f"broker-{node_id}.log")

    def spawn_broker(self, proc: BrokerProcess) -> None:
        os.makedirs(os.path.join(self.data_dir, "logs"), exist_ok=True)
        out = open(self.broker_log(proc.node_id), "ab")
        proc.log_offset = out.tell()
        try:
            proc.popen = subprocess.Popen(self._broker_command(proc), stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, close_fds=True)
        finally:
            out.close()
        proc.pid = proc.popen.pid
        proc.started_at = time.monotonic()
        proc.registered = False
        log.info("started broker %d (pid %d, port %s)", proc.node_id, proc.pid, proc.port or "any")

    def reap_brokers(self) -> None:
        now = time.monotonic()
        for proc in self.brokers.values():
            if proc.pid is None or proc.alive:
                continue
            code = proc.popen.returncode if proc.popen is not None else None
            exit_text = code if code is None or code >= 0 else f"signal {-code}"
            reason = last_error_line(self.broker_log(proc.node_id), proc.log_offset) \
                if proc.popen is not None else None
            if proc.popen is not None and not self._ready and not self.stopping:
                # Failing at start-up, it would fail the same way again: stop the start.
                raise StartError(f"broker {proc.node_id} exited with {exit_text} during start-up"
                                 + (f": {reason}" if reason else "")
                                 + f" (log: {self.broker_log(proc.node_id)})")
            log.warning("broker %d (pid %d) exited with %s%s", proc.node_id, proc.pid, exit_text,
                        f": {reason}" if reason and code else "")
            self._fail(proc)
            proc.pid = None
            proc.popen = None
            if self.stopping:
                continue
            if code == BROKER_BOOT_ERROR:
                proc.boot_errors += 1
            if now - proc.started_at > 30:
                proc.backoff = 0.5
            proc.next_start = now + proc.backoff
            proc.backoff = min(proc.backoff * 2, 10.0)
            proc.restarts += 1

    def _fail(self, proc: BrokerProcess) -> None:
        if proc.channel is not None:
            proc.channel.close()
            proc.channel = None
        if proc.registered and not proc.fenced:
            self.service.apply(self.controller.broker_failed, proc.node_id)
        proc.registered = False

    def manage_brokers(self) -> None:
        """Start brokers that should run; fence those whose heartbeats stopped."""
        now = time.monotonic()
        for proc in self.brokers.values():
            if proc.pid is None and now >= proc.next_start and not self.stopping:
                self.spawn_broker(proc)
            elif proc.registered and not proc.fenced and now - proc.last_heartbeat > self.session_timeout_s \
                    and not self._fresh_in_shm(proc.node_id):
                log.warning("broker %d missed heartbeats for %.1f s: fenced", proc.node_id, now - proc.last_heartbeat)
                proc.fenced = True
                self.service.apply(self.controller.broker_failed, proc.node_id)

    def _fresh_in_shm(self, node_id: int) -> bool:
        """The broker's heartbeat in shared memory: readable without asking it anything."""
        if self.region is None:
            return False
        row = self.region.brokers.read(node_id)
        return row.pid != 0 and row.is_fresh(int(time.time() * 1000), int(self.session_timeout_s * 1000))

    def _open_region(self, adopting: bool) -> None:
        if not self.shared_memory:
            return
        name = shm.region_name(self.data_dir)
        try:
            if adopting:
                # Running brokers are attached to the region of the previous supervisor.
                try:
                    self.region = shm.SharedRegion.attach(name)
                except shm.ShmError:
                    self.region = None
            if self.region is None:
                slots = self.shm_slots or shm.slots_for(len(self.controller.partitions))
                self.region = shm.SharedRegion.create(name, slots=slots, ring_count=max(self.count, 1))
        except (shm.ShmError, OSError, ValueError) as exc:
            log.warning("shared memory unavailable (%s): brokers use sockets only", exc)
            self.region = None
            return
        if adopting:
            self._release_stale_rows()
        self._allocate_slots(list(self.controller.partitions))

    def _release_stale_rows(self) -> None:
        """An adopted region may hold rows of topics deleted since it was made (by a
        supervisor that died before releasing them): free them."""
        for row in self.region.offsets.rows():
            topic = self.controller.topics.get(row.topic)
            if (row.topic, row.partition) not in self.controller.partitions or \
                    row.topic_id != shm.topic_id_bytes(topic.topic_id):
                self.region.offsets.release(row.topic, row.partition)

    def _allocate_slots(self, keys: list[tuple[str, int]]) -> None:
        """Offsets-table rows for partitions of current topics. A table without room is a
        degradation, logged once per call: those partitions use sockets only."""
        offsets = self.region.offsets
        missed = []
        for key in keys:
            topic = self.controller.topics.get(key[0])
            topic_id = shm.topic_id_bytes(topic.topic_id) if topic is not None else None
            if topic_id is None or key not in self.controller.partitions:
                continue  # deleted meanwhile
            slot = offsets.allocate(key[0], key[1], topic_id, int(time.time() * 1000))
            if slot is None:
                self._unslotted.add(key)
                missed.append(key)
            else:
                self._slots[key] = slot
                self._unslotted.discard(key)
        if missed:
            log.warning("shared memory: the offsets table (%d slots, at most %d used) has no room for "
                        "%d partitions (first: %s-%d); they replicate and serve over sockets only. "
                        "A bigger table: restart with --shm-slots", offsets.capacity, offsets.limit,
                        len(missed), *missed[0])

    def _release_slots(self, topic_name: str) -> None:
        for key in [k for k in self._slots if k[0] == topic_name]:
            self.region.offsets.release(*key)
            del self._slots[key]
        self._unslotted.difference_update([k for k in self._unslotted if k[0] == topic_name])

    def _adopt_running_brokers(self) -> None:
        for node_id, pid in running_brokers(self.data_dir).items():
            proc = self.brokers.get(node_id)
            if proc is not None:
                proc.pid = pid
                proc.started_at = time.monotonic()
                log.info("adopting running broker %d (pid %d)", node_id, pid)
            else:
                # Unregistered by a supervisor that died before it had stopped it.
                log.warning("broker %d (pid %d) runs but the cluster has %d brokers: stopping it",
                            node_id, pid, self.count)
                self._kill(pid, signal.SIGTERM)

    def _settle_broker_count(self) -> None:
        """How many brokers to run: what the metadata log records (a data dir from before
        it recorded one: one past the highest broker id it knows), unless more are asked
        for. Fewer are never started: partitions may live on the others, and a broker is
        removed only by ``pybroker scale`` once it holds no replica."""
        recorded = self.controller.broker_count
        if recorded is None and self.controller.ports:
            recorded = max(self.controller.ports) + 1
        requested = self.count
        if requested is None:
            self.count = recorded or DEFAULT_BROKERS
        elif recorded is not None and requested < recorded:
            self.count = recorded
            self.count_note = (f"brokers: {recorded}, as the data dir has (--brokers {requested} removes none; "
                               f"`pybroker scale --brokers {requested}` does, if they hold no replicas)")
            log.warning("%s", self.count_note)
        if self.count != self.controller.broker_count:
            self.service.apply(self.controller.set_broker_count, self.count)

    def _make_brokers(self, node_ids) -> list[BrokerProcess]:
        """A BrokerProcess per id, on the ports clients last saw it on (the metadata log
        keeps them), else on its planned ones: ``base_port + id``, or with listeners each
        listener's run of ports (a listener given a port always has its run); a planned
        port another broker has is left to the system (the runs of a cluster that grew
        overlap)."""
        planned = None
        if self.listeners:
            from pybroker.security.listener import broker_ports

            try:
                planned = broker_ports(self.listeners, self.base_port, self.count)
            except ValueError as exc:
                raise StartError(str(exc)) from None
            explicit = {name for name, port in self.listeners if port is not None}
        ids = list(node_ids)
        taken = {p for n, ports in self.controller.listener_ports.items() if n not in ids for p in ports.values()}
        taken |= {p for proc in self.brokers.values() for p in (proc.listener_ports or {}).values()}
        procs = []
        for node_id in ids:
            port = self.controller.ports.get(node_id)
            if port is None:
                port = self.base_port + node_id if self.base_port else 0
            listener_ports = None
            if planned is not None:
                known = self.controller.listener_ports.get(node_id, {})
                listener_ports = {name: p if name in explicit else known.get(name) or (0 if p in taken else p)
                                  for name, p in planned[node_id].items()}
                taken |= {p for p in listener_ports.values() if p}
                port = next(iter(listener_ports.values()))
            proc = BrokerProcess(node_id, port, listener_ports)
            proc.rack = self.racks.get(node_id, self.controller.racks.get(node_id))
            procs.append(proc)
        return procs

    def check_ports(self, procs=None) -> None:
        """Every broker to be spawned can listen on its port, else StartError: a taken
        port found now is one clear message instead of brokers failing one by one."""
        for proc in self.brokers.values() if procs is None else procs:
            if proc.pid is not None:
                continue
            for name, port in (proc.listener_ports or {"PLAINTEXT": proc.port}).items():
                if not port:
                    continue
                try:
                    check_port_free(self.host, port)
                except OSError as exc:
                    raise StartError(f"cannot listen on {self.host}:{port} for broker {proc.node_id}"
                                     f"{'' if not proc.listener_ports else ' (' + name + ')'}: "
                                     f"{exc.strerror or exc} (choose other ports with --port or --listener)") from None

    # -- control plane ------------------------------------------------------------------

    def _publish(self, delta) -> None:
        if delta.topics or delta.deleted_topics:
            self.groups.topics_changed()
        if self.region is not None:
            # Slots exist before any broker hears of the partition (leaders write rows).
            # Deleted topics first: a delta may delete a name and create it again.
            for name in delta.deleted_topics:
                self._release_slots(name)
            keys = [s.key for s in delta.partitions if s.key not in self._slots and s.key not in self._unslotted]
            if delta.deleted_topics:
                keys += sorted(self._unslotted)  # released rows may make room for them
            if keys:
                self._allocate_slots(keys)
        doc = delta_to_json(delta, self.controller)
        for proc in self.brokers.values():
            if proc.channel is not None and proc.registered:
                try:
                    proc.channel.send(dict(doc))
                except ConnectionError:
                    pass

    async def _on_connection(self, reader, writer) -> None:
        channel = Channel(reader, writer, name="peer")
        state = {"proc": None}
        await channel.serve(lambda doc: self._handle(channel, state, doc))
        proc = state["proc"]
        if proc is not None and proc.channel is channel:
            proc.channel = None
            self._wake.set()

    async def _handle(self, channel: Channel, state: dict, doc: dict):
        kind = doc["type"]
        if kind == "register":
            return self._register(channel, state, doc)
        if kind == "heartbeat":
            proc = state["proc"]
            if proc is not None:
                proc.last_heartbeat = time.monotonic()
                if proc.fenced:
                    log.info("broker %d is back: unfenced", proc.node_id)
                    proc.fenced = False
                    self.service.apply(self.controller.register_broker, self.controller.live.get(proc.node_id) or
                                       proc.info or BrokerInfo(proc.node_id, self.host, proc.port, proc.pid or 0))
                    channel.send(image_to_json(self.controller))
            return None
        if kind == "report":
            proc = state["proc"]
            if proc is not None:
                self.reports[proc.node_id] = doc
                for listener in self.report_listeners:
                    listener(proc.node_id, doc)
            return None
        if kind == "create_topics":
            return {"results": self.service.create_topics(doc["topics"], doc.get("validate_only", False))}
        if kind == "delete_topics":
            return {"results": self.service.delete_topics(doc["names"])}
        if kind == "create_partitions":
            return {"results": self.service.create_partitions(doc["topics"], doc.get("validate_only", False))}
        if kind == "alter_configs":
            return {"results": self.service.alter_configs(doc["resources"], doc["incremental"],
                                                          doc.get("validate_only", False))}
        if kind == "elect_leaders":
            return {"results": self.service.elect_leaders(doc["unclean"], doc["partitions"])}
        if kind == "alter_reassignments":
            return {"results": self.service.alter_partition_reassignments(doc["partitions"],
                                                                          doc["allow_replication_factor_change"])}
        if kind == "create_acls":
            return {"results": self.service.create_acls(doc["creations"])}
        if kind == "delete_acls":
            return {"results": self.service.delete_acls(doc["filters"])}
        if kind == "alter_partition":
            new = self.service.alter_partition(doc["topic"], doc["partition"], doc["leader"], doc["leader_epoch"],
                                               doc["partition_epoch"], doc["isr"])
            return {"state": new.to_json()}
        if kind == "group":
            return {"result": await self.groups.handle(doc["method"], doc["group_id"], doc["args"])}
        if kind == "txn":
            return {"result": await self.txns.handle(doc["method"], doc["args"])}
        if kind == "status":
            return await self.status()
        if kind == "alter_scram_credentials":
            return {"results": self.service.alter_scram_credentials(doc["deletions"], doc["upsertions"])}
        if kind == "users":
            return self.users(doc)
        if kind == "scale":
            return await self.scale(int(doc["brokers"]))
        if kind == "alter_client_quotas":
            return {"results": self.service.alter_client_quotas(doc["entries"], doc.get("validate_only", False))}
        raise errors.InvalidRequest(f"the supervisor does not handle {kind}")

    async def scale(self, count: int) -> dict:
        """``pybroker scale``: run ``count`` brokers. New ids start, register and from
        then on take new topics and reassigned replicas (existing partitions stay where
        they are, as in Kafka). Brokers taken away must hold no replica; they are
        unregistered, then stopped. Answers with the brokers it runs."""
        if not 1 <= count <= shm.MAX_BROKERS:
            raise errors.InvalidRequest(f"a cluster runs 1 to {shm.MAX_BROKERS} brokers, not {count}")
        async with self._scaling:
            if self.stopping or not self._ready:
                raise errors.BrokerNotAvailable(f"the cluster is {'stopping' if self.stopping else 'still starting'}")
            if count > self.count:
                await self._add_brokers(count)
            elif count < self.count:
                await self._remove_brokers(count)
        return {"brokers": [{"id": p.node_id, "pid": p.pid, "host": self.host, "port": p.port}
                            for p in sorted(self.brokers.values(), key=lambda p: p.node_id)]}

    async def _add_brokers(self, count: int) -> None:
        """The count is durable before any new broker starts, so a restart brings them
        all back; their shared-memory rows exist (the broker table has a row for every
        possible id), and they lead without a tail ring until the region is made again
        at the next start (their followers fetch over sockets)."""
        before = self.count
        self.count = count
        try:
            new = self._make_brokers(range(before, count))
            self.check_ports(new)
        except StartError as exc:
            self.count = before
            raise errors.InvalidRequest(str(exc)) from None
        try:
            self.service.apply(self.controller.set_broker_count, count)
        except Exception:
            self.count = before
            raise
        for proc in new:
            self.brokers[proc.node_id] = proc
        log.info("scaling up from %d to %d brokers", before, count)
        self._wake.set()
        deadline = time.monotonic() + SCALE_TIMEOUT_S
        while not all(p.registered for p in new):
            failed = next((p for p in new if p.restarts and not p.registered), None)
            if failed is not None or time.monotonic() > deadline:
                proc = failed or next(p for p in new if not p.registered)
                reason = last_error_line(self.broker_log(proc.node_id), proc.log_offset)
                raise errors.BrokerNotAvailable(
                    f"broker {proc.node_id} has not registered"
                    + (f" (it exited: {reason})" if failed is not None and reason else "")
                    + f"; the cluster keeps starting it (log: {self.broker_log(proc.node_id)}); "
                      f"`pybroker scale --brokers {before}` takes it away again")
            await asyncio.sleep(0.05)

    async def _remove_brokers(self, count: int, timeout: float = 15.0) -> None:
        """Kafka's UnregisterBroker, refused for a broker holding any replica (current,
        or being added or removed by a reassignment): data is never left behind. The
        registry forgets them first, in the same turn of the loop as the check, so no
        topic created meanwhile can be given to them; their data dirs stay on disk."""
        leaving = sorted(n for n in self.brokers if n >= count)
        held = self.controller.holdings(leaving)
        if held:
            shown = ", ".join(f"{t}-{p} (on {','.join(map(str, on))})" for (t, p), on in sorted(held.items())[:5])
            more = f" and {len(held) - 5} more" if len(held) > 5 else ""
            raise errors.InvalidRequest(
                f"cannot remove broker{'s' if len(leaving) > 1 else ''} {','.join(map(str, leaving))}: "
                f"{len(held)} partition{'s have' if len(held) > 1 else ' has'} replicas there: {shown}{more}. "
                "Move them first with `pybroker reassign-partitions`")
        self.service.apply(self.controller.unregister_brokers, leaving, count)
        procs = [self.brokers.pop(n) for n in leaving]
        self.count = count
        log.info("scaling down to %d brokers: stopping broker%s %s", count, "s" if len(procs) > 1 else "",
                 ",".join(map(str, leaving)))
        await self.stop_brokers(procs, timeout)
        for proc in procs:
            if proc.channel is not None:
                proc.channel.close()
            self.reports.pop(proc.node_id, None)
            if self.region is not None:
                self.region.brokers.clear(proc.node_id)
            log.info("broker %d stopped and unregistered", proc.node_id)

    def _leader_of(self, topic: str, partition: int) -> int | None:
        state = self.controller.partitions.get((topic, partition))
        return None if state is None else state.leader

    async def _send_to_broker(self, node_id: int, doc: dict) -> dict:
        proc = self.brokers.get(node_id)
        if proc is None or proc.channel is None or not proc.registered:
            raise ConnectionError(f"broker {node_id} is not connected")
        return await proc.channel.request(doc)

    def _register(self, channel: Channel, state: dict, doc: dict) -> dict:
        node_id = int(doc["node_id"])
        proc = self.brokers.get(node_id)
        if proc is None:
            raise errors.InvalidRequest(f"broker id {node_id} is not part of this cluster (0..{self.count - 1})")
        if proc.pid is not None and proc.pid != doc["pid"] and proc.alive:
            raise errors.InvalidRequest(f"broker {node_id} already runs as pid {proc.pid}")
        state["proc"] = proc
        channel.name = f"broker-{node_id}"
        proc.channel = channel
        proc.pid = int(doc["pid"])
        proc.port = int(doc["port"])
        listeners = tuple((str(n), int(p)) for n, p in doc.get("listeners", ()))
        if proc.listener_ports:
            proc.listener_ports = dict(listeners)
        proc.registered = True
        proc.fenced = False
        proc.last_heartbeat = time.monotonic()
        info = proc.info = BrokerInfo(node_id, doc["host"], proc.port, proc.pid,
                                      listeners if self.listeners else (), doc.get("internal_socket", ""),
                                      doc.get("rack") or None)
        self.service.apply(self.controller.register_broker, info)
        log.info("broker %d registered (pid %d, %s:%d)", node_id, proc.pid, info.host, info.port)
        self._wake.set()
        return {"image": image_to_json(self.controller)}

    async def status(self) -> dict:
        offsets: dict[tuple[str, int], dict] = {}
        describes = []
        askers = []
        for proc in self.brokers.values():
            if proc.channel is not None and proc.registered:
                describes.append(proc.channel.request({"type": "describe"}, timeout=3.0))
                askers.append(proc.node_id)
        damaged: dict[tuple[str, int], list[dict]] = {}
        for node_id, result in zip(askers, await asyncio.gather(*describes, return_exceptions=True)):
            if isinstance(result, dict):
                for row in result["partitions"]:
                    key = (row["topic"], row["partition"])
                    for q in row.get("quarantined", ()):
                        damaged.setdefault(key, []).append({"broker": node_id, **q})
                    state = self.controller.partitions.get(key)
                    if state is not None and row.get("leader") == state.leader and state.leader >= 0:
                        offsets[key] = row
                    else:
                        offsets.setdefault(key, row)
        offsets.update(self.positions(reports=False))
        sizes = self.partition_sizes()
        partitions = []
        for key, s in sorted(self.controller.partitions.items()):
            row = offsets.get(key, {})
            partitions.append({
                "topic": s.topic, "partition": s.partition, "leader": s.leader, "leader_epoch": s.leader_epoch,
                "replicas": list(s.replicas), "isr": list(s.isr),
                "high_watermark": row.get("high_watermark"), "log_end_offset": row.get("log_end_offset"),
                "log_start_offset": row.get("log_start_offset"),
                "under_replicated": s.under_replicated,
                "damaged": damaged.get(key, []),
                "size_bytes": sizes.get(key),
            })
        return {
            "supervisor": {"pid": os.getpid(), "data_dir": self.data_dir, "cluster_id": self.controller.cluster_id},
            "brokers": [
                {"id": p.node_id, "pid": p.pid, "host": self.host, "port": p.port,
                 "rack": p.current_rack,
                 "bytes_out": self._consumer_bytes_out(p.node_id),
                 **({"listeners": dict(p.listener_ports)} if p.listener_ports else {}),
                 "alive": bool(p.registered and not p.fenced), "restarts": p.restarts,
                 "heartbeat_fresh": self._fresh_in_shm(p.node_id) if self.region is not None else None}
                for p in sorted(self.brokers.values(), key=lambda p: p.node_id)
            ],
            "partitions": partitions,
            "groups": self._group_lag(offsets),
        }

    def _consumer_bytes_out(self, node_id: int) -> int | None:
        """Record bytes the broker process served to consumers (its BytesOut, since it
        started), from its latest report; None before the first."""
        report = self.reports.get(node_id)
        return None if report is None else sum(row[REPORT_BYTES_OUT] for row in report["topics"].values())

    def positions(self, reports: bool = True) -> dict[tuple[str, int], dict]:
        """Log start, log end and high watermark of partitions at their current leader,
        without asking any broker: from the leaders' latest reports (``reports``), then
        from shared memory, where leaders publish them as they move (the freshest)."""
        offsets: dict[tuple[str, int], dict] = {}
        if reports:
            for node_id, report in self.reports.items():
                for topic, index, start, end, hw, _size in report["partitions"]:
                    state = self.controller.partitions.get((topic, index))
                    if state is not None and state.leader == node_id:
                        offsets[(topic, index)] = {"log_start_offset": start, "log_end_offset": end,
                                                   "high_watermark": hw, "leader": node_id}
        if self.region is not None:
            for key, slot in self._slots.items():
                row = self.region.offsets.read(slot)
                state = self.controller.partitions.get(key)
                topic = self.controller.topics.get(key[0])
                if row is None or state is None or topic is None or \
                        row.topic_id != shm.topic_id_bytes(topic.topic_id):
                    continue  # a row of another (deleted) topic that had this name
                if row.leader_id == state.leader and row.leader_epoch == state.leader_epoch:
                    offsets[(row.topic, row.partition)] = {
                        "log_start_offset": row.log_start_offset, "log_end_offset": row.log_end_offset,
                        "high_watermark": row.high_watermark, "leader": row.leader_id,
                    }
        return offsets

    def partition_sizes(self) -> dict[tuple[str, int], int]:
        """Bytes of each partition's log at its current leader, from the latest reports."""
        sizes = {}
        for node_id, report in self.reports.items():
            for topic, index, _start, _end, _hw, size in report["partitions"]:
                state = self.controller.partitions.get((topic, index))
                if state is not None and state.leader == node_id:
                    sizes[(topic, index)] = size
        return sizes

    def _group_lag(self, offsets: dict) -> list[dict]:
        from pybroker.group.coordinator import lag

        rows = []
        coordinator = self.groups.coordinator
        for group_id in coordinator.store.groups():
            for (topic, partition), committed in sorted(coordinator.store.fetch(group_id).items()):
                end = offsets.get((topic, partition), {}).get("high_watermark")
                rows.append({"group": group_id, "topic": topic, "partition": partition,
                             "committed_offset": committed.offset, "log_end_offset": end,
                             "lag": None if end is None else lag(committed.offset, end)})
        return rows

    # -- main loop ----------------------------------------------------------------------

    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{self.brokers[i].port}" for i in sorted(self.brokers))

    def listener_bootstraps(self) -> dict[str, str]:
        """Each client listener's bootstrap addresses (the first is ``bootstrap()``)."""
        if not self.listeners:
            return {"PLAINTEXT": self.bootstrap()}
        names = list(self.brokers[0].listener_ports) if self.brokers else []
        return {name: ",".join(f"{self.host}:{self.brokers[i].listener_ports.get(name, 0)}" for i in sorted(self.brokers))
                for name in names}

    def local_bootstrap(self) -> str:
        """Where the supervisor's own tools (the console) reach the brokers: the private
        inter-broker sockets on a secured cluster, else the PLAINTEXT listener."""
        if self.secured:
            return ",".join(self.internal_socket(i) for i in sorted(self.brokers))
        return self.bootstrap()

    def users(self, doc: dict) -> dict:
        """``pybroker users``: create (SCRAM credentials from a password, made here so
        the password never reaches a broker), delete, list."""
        from pybroker.security import credentials, scram

        records = []
        for spec in doc.get("create", ()):
            mechanisms = spec.get("mechanisms") or [scram.SCRAM_SHA_256, scram.SCRAM_SHA_512]
            unknown = [m for m in mechanisms if m not in scram.MECHANISM_CODES]
            if unknown or not spec.get("name"):
                raise errors.InvalidRequest(f"cannot create user {spec.get('name')!r}: "
                                            + (f"unknown SCRAM mechanism {unknown[0]}" if unknown else "no name"))
            records += credentials.user_records(spec["name"], spec["password"], mechanisms,
                                                int(spec.get("iterations") or scram.DEFAULT_ITERATIONS))
        store = self.controller.credentials
        for name in doc.get("delete", ()):
            if name not in store.users():
                raise errors.ResourceNotFound(f"no user {name!r}")
            records += [credentials.credential_record(name, m, None) for m in store.mechanisms(name)]
        if records:
            self.service.put_credentials(records)
        return {"users": [{"name": user, "mechanisms": {m: c.iterations for m, c in sorted(store.mechanisms(user).items())}}
                          for user in store.users()]}

    def _create_super_user(self) -> None:
        """``--super-user NAME:PASSWORD``: the user's SCRAM credentials (which PLAIN is
        checked against too), on the first start only: a later password change with
        ``pybroker users`` or AlterUserScramCredentials is not undone by a restart."""
        if self.super_user is None:
            return
        name, password = self.super_user
        if name not in self.controller.credentials.users():
            from pybroker.security import credentials

            self.service.put_credentials(credentials.user_records(name, password))
            log.info("created user %s (SCRAM-SHA-256, SCRAM-SHA-512; PLAIN)", name)

    async def run(self, on_ready=None) -> int:
        os.makedirs(run_dir(self.data_dir), mode=0o700, exist_ok=True)
        os.chmod(run_dir(self.data_dir), 0o700)
        self.metadata.load_into(self.controller)
        self._create_super_user()
        self._settle_broker_count()
        for proc in self._make_brokers(range(self.count)):
            self.brokers[proc.node_id] = proc
        self._adopt_running_brokers()
        self.check_ports()
        path = socket_path(self.data_dir)
        if os.path.exists(path):
            os.unlink(path)
        loop = asyncio.get_running_loop()
        try:
            self._server = await asyncio.start_unix_server(self._on_connection, path, limit=64 * 1024 * 1024)
        except OSError as exc:  # e.g. a data dir so deep the socket path is too long
            raise StartError(f"cannot create the control socket {path}: {exc}") from None
        os.chmod(path, 0o600)
        with open(os.path.join(run_dir(self.data_dir), "supervisor.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        self.groups.start()
        self.txns.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGCHLD, self._wake.set)
        for extension in self.extensions:
            await extension.start(self)
        self._open_region(adopting=any(p.pid is not None for p in self.brokers.values()))
        adopt_deadline = time.monotonic() + ADOPT_TIMEOUT_S
        next_preferred = time.monotonic() + PREFERRED_LEADER_CHECK_S
        last_turn = time.monotonic()
        try:
            while not self._stop.is_set():
                last_turn = self._excuse_stall(last_turn)
                self.reap_brokers()
                if time.monotonic() > adopt_deadline:
                    for proc in self.brokers.values():
                        if proc.popen is None and proc.pid is not None and not proc.registered:
                            log.warning("adopted broker %d did not reconnect; restarting it", proc.node_id)
                            self._kill(proc.pid)
                    adopt_deadline = float("inf")
                self.manage_brokers()
                if not self._ready and all(p.registered for p in self.brokers.values()):
                    self._ready = True
                    if on_ready is not None:
                        on_ready(self.bootstrap())
                if time.monotonic() >= next_preferred:
                    next_preferred = time.monotonic() + PREFERRED_LEADER_CHECK_S
                    self.service.apply(self.controller.elect_preferred_leaders)
                    self.metadata.maybe_snapshot(self.controller)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), LOOP_TICK_S)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.shutdown()
        return 0

    def _excuse_stall(self, last_turn: float) -> float:
        """A turn of the main loop comes at least every ``LOOP_TICK_S``; when this
        process itself was held up longer (a change to thousands of partitions to log and
        push, a loaded machine), the brokers' heartbeats sat unread meanwhile: their clocks
        move on by the stall, so the supervisor does not fence live brokers for its own
        pause (and set off a failover of every partition they lead)."""
        now = time.monotonic()
        stalled = now - last_turn - LOOP_TICK_S
        if stalled > STALL_EXCUSED_S:
            for proc in self.brokers.values():
                if proc.registered:
                    proc.last_heartbeat += stalled
            log.info("supervisor loop was held up %.1f s; heartbeat deadlines moved by as much", stalled)
        return now

    @staticmethod
    def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    async def stop_brokers(self, procs: list[BrokerProcess], timeout: float) -> None:
        """SIGTERM each (it flushes and marks a clean shutdown), wait, SIGKILL stragglers."""
        for proc in procs:
            if proc.pid is not None and proc.alive:
                self._kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.pid is not None and p.alive for p in procs):
            await asyncio.sleep(0.05)
        for proc in procs:
            if proc.pid is not None and proc.alive:
                log.warning("broker %d did not stop in %.0f s: killed", proc.node_id, timeout)
                self._kill(proc.pid)
            if proc.popen is not None:
                proc.popen.wait()

    async def shutdown(self, timeout: float = 15.0) -> None:
        """Stop every broker (SIGTERM: each flushes and marks a clean shutdown), wait,
        SIGKILL stragglers, then close the control socket and the logs."""
        self.stopping = True
        log.info("stopping %d brokers", sum(1 for p in self.brokers.values() if p.pid))
        await self.stop_brokers(list(self.brokers.values()), timeout)
        if self._server is not None:
            self._server.close()
        for extension in self.extensions:
            await extension.stop()
        self.txns.close()
        self.groups.close()
        self.metadata.close()
        if self.region is not None:
            self.region.close()
            self.region.unlink()
        for name in (SOCKET_NAME, "supervisor.pid"):
            try:
                os.unlink(os.path.join(run_dir(self.data_dir), name))
            except FileNotFoundError:
                pass
        log.info("supervisor stopped")
