#!/usr/bin/env python3
"""A reference Apache Kafka (KRaft) on loopback, for differential tests and benchmarks.

Not part of the installed package: a developer tool. It fetches Kafka's jars from Maven
Central with ``mvn`` into a cache outside the repository (``~/.cache/pybroker-kafka-ref``,
or ``$PYBROKER_KAFKA_REF_CACHE``), formats KRaft storage with ``kafka.tools.StorageTool``
and runs ``kafka.Kafka`` — 1 or 3 combined broker+controller nodes on 127.0.0.1 — waits
until every node answers Metadata, and stops the JVMs by pid.

Command line::

    python tools/kafka_ref.py fetch                 # download the jars once
    python tools/kafka_ref.py up --nodes 1          # prints "bootstrap: 127.0.0.1:PORT"; Ctrl-C stops
    python tools/kafka_ref.py up --nodes 3 --port 29092 --data /tmp/kref --detach
    python tools/kafka_ref.py down --data /tmp/kref
    python tools/kafka_ref.py up --sasl-user alice:alice-secret --acl   # SASL/PLAIN + SCRAM, ACLs on

From Python (perf/ scripts, differential tests)::

    from tools.kafka_ref import KafkaCluster       # or put tools/ on sys.path
    with KafkaCluster(nodes=1) as kafka:
        print(kafka.bootstrap)

Each node gets three listeners: ``CLIENT`` (the bootstrap line; PLAINTEXT, or
SASL_PLAINTEXT with ``sasl_users``), ``INTERNAL`` (PLAINTEXT, replication between
nodes; with ACLs its principal ANONYMOUS is a super user) and ``CONTROLLER``. The internal
replication factors and min ISRs (offsets, transactions, share-group state) follow the node
count, so transactions and share groups work on one node.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka's distribution ships the log4j2 binding of slf4j; without it Kafka logs nothing.
LOG4J_VERSION = "2.25.5"
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "pybroker-kafka-ref")
# Kafka's own JVM defaults (kafka-run-class.sh / kafka-server-start.sh).
JVM_OPTIONS = ["-Xms1G", "-Xmx1G", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-Djava.awt.headless=true"]
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
PID_FILE = "node-{}.pid"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaRefError(RuntimeError):
    """Kafka could not be fetched, formatted or started."""


def cache_dir() -> str:
    return os.environ.get("PYBROKER_KAFKA_REF_CACHE", DEFAULT_CACHE)


def available() -> str | None:
    """None when java and mvn are on PATH, else what is missing (for a test's skip)."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not on PATH" if missing else None


# -- jars ---------------------------------------------------------------------------------


def fetch_jars(version: str = KAFKA_VERSION, quiet: bool = True) -> str:
    """The directory holding Kafka ``version``'s runtime jars, copied there by Maven on
    first use. The ``.complete`` marker holds the pom it came from, so an interrupted
    download, or a changed list of artifacts, is fetched again."""
    root = os.path.join(cache_dir(), version)
    libs = os.path.join(root, "libs")
    marker = os.path.join(libs, ".complete")
    artifacts = [("org.apache.kafka", f"kafka_{SCALA_VERSION}", version),
                 ("org.apache.kafka", "kafka-tools", version),
                 ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION)]
    dependencies = "".join(
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{v}</version></dependency>" for group, artifact, v in artifacts)
    pom = ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
           "<groupId>local.pybroker</groupId><artifactId>kafka-ref</artifactId><version>1</version>"
           f"<dependencies>{dependencies}</dependencies></project>\n")
    with contextlib.suppress(FileNotFoundError), open(marker) as f:
        if f.read() == pom:
            return libs
    if shutil.which("mvn") is None:
        raise KafkaRefError("mvn is not on PATH: it is needed to fetch Kafka's jars")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "pom.xml"), "w") as f:
        f.write(pom)
    shutil.rmtree(libs, ignore_errors=True)
    cmd = ["mvn", "-B", "-f", os.path.join(root, "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
    if quiet:
        cmd.insert(1, "-q")
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise KafkaRefError(f"mvn could not fetch Kafka {version}:\n{done.stdout[-4000:]}")
    if not glob.glob(os.path.join(libs, f"kafka_{SCALA_VERSION}-{version}.jar")):
        raise KafkaRefError(f"mvn finished but {libs} has no kafka_{SCALA_VERSION}-{version}.jar")
    with open(marker, "w") as f:
        f.write(pom)
    return libs


# -- configuration ------------------------------------------------------------------------


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the kernel reports free right now."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def random_cluster_id() -> str:
    """A Kafka Uuid as StorageTool's random-uuid prints it: 16 bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _jaas_plain(users: dict[str, str]) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {entries};"


def node_properties(node_id: int, nodes: int, host: str, client_ports: list[int], internal_ports: list[int],
                    controller_ports: list[int], log_dir: str, sasl_users: dict[str, str] | None,
                    acl: bool, overrides: dict[str, str]) -> dict[str, str]:
    """server.properties of one combined broker+controller node."""
    client_protocol = "SASL_PLAINTEXT" if sasl_users else "PLAINTEXT"
    voters = ",".join(f"{i}@{host}:{controller_ports[i]}" for i in range(nodes))
    replication = str(min(nodes, 3))
    min_isr = "1" if nodes < 3 else "2"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"CLIENT://{host}:{client_ports[node_id]},INTERNAL://{host}:{internal_ports[node_id]},"
                     f"CONTROLLER://{host}:{controller_ports[node_id]}",
        "advertised.listeners": f"CLIENT://{host}:{client_ports[node_id]},INTERNAL://{host}:{internal_ports[node_id]}",
        "listener.security.protocol.map": f"CLIENT:{client_protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": log_dir,
        "num.partitions": "1",
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
    }
    if sasl_users:
        mechanisms = ["PLAIN", *SCRAM_MECHANISMS]
        props["sasl.enabled.mechanisms"] = ",".join(mechanisms)
        props["listener.name.client.plain.sasl.jaas.config"] = _jaas_plain(sasl_users)
        for mechanism in SCRAM_MECHANISMS:
            props[f"listener.name.client.{mechanism.lower()}.sasl.jaas.config"] = \
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    if acl:
        props["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        supers = ["User:ANONYMOUS"]
        if sasl_users:
            supers.append(f"User:{next(iter(sasl_users))}")
        props["super.users"] = ";".join(supers)
    props.update(overrides)
    return props


LOG4J2_PROPERTIES = """\
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
"""


def _write_properties(path: str, props: dict[str, str]) -> None:
    with open(path, "w") as f:
        for key, value in props.items():
            f.write(f"{key}={value}\n")


# -- the cluster ------------------------------------------------------------------------


class KafkaCluster:
    """Kafka nodes running as child JVMs; a context manager.

    ``start()`` blocks until every node answers Metadata listing all nodes, then
    ``bootstrap`` is ``"127.0.0.1:PORT,..."`` (the CLIENT listeners). ``stop()`` sends
    SIGTERM to each JVM by pid (Kafka's controlled shutdown), SIGKILL after
    ``stop_timeout``. With ``data_dir=None`` the data lives in a temporary directory removed
    on stop; a given ``data_dir`` is kept (and reused, unformatted, when already formatted).

    ``sasl_users`` {name: password} turns the CLIENT listener to SASL_PLAINTEXT with PLAIN
    and SCRAM-SHA-256/512 for those users (the first is a super user with ``acl``);
    ``config`` overrides any server property; ``racks`` {node id: rack} sets each node's
    ``broker.rack``. Not thread-safe.
    """

    def __init__(self, nodes: int = 1, port: int = 0, data_dir: str | None = None, host: str = "127.0.0.1",
                 sasl_users: dict[str, str] | None = None, acl: bool = False, config: dict[str, str] | None = None,
                 version: str = KAFKA_VERSION, jvm_options: list[str] | None = None,
                 start_timeout: float = START_TIMEOUT, stop_timeout: float = STOP_TIMEOUT,
                 racks: dict[int, str] | None = None):
        if nodes < 1:
            raise ValueError("nodes must be at least 1")
        self.nodes = nodes
        self.port = port
        self.host = host
        self.sasl_users = dict(sasl_users or {})
        self.acl = acl
        self.config = dict(config or {})
        self.racks = dict(racks or {})  # broker.rack by node id
        self.version = version
        self.jvm_options = list(JVM_OPTIONS if jvm_options is None else jvm_options)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._own_dir = data_dir is None
        self.data_dir = os.path.abspath(data_dir) if data_dir else tempfile.mkdtemp(prefix="kafka-ref-")
        self.bootstrap: str | None = None
        self.internal_bootstrap: str | None = None
        self.pids: list[int] = []
        self._procs: list[subprocess.Popen] = []
        self.ready_s: float | None = None
        self._port_plan: tuple[list[int], list[int], list[int]] | None = None

    def __enter__(self) -> "KafkaCluster":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def node_dir(self, node_id: int) -> str:
        return os.path.join(self.data_dir, f"node-{node_id}")

    def log_path(self, node_id: int) -> str:
        return os.path.join(self.data_dir, f"node-{node_id}.log")

    def _ports(self) -> tuple[list[int], list[int], list[int]]:
        n = self.nodes
        if self.port:
            return ([self.port + i for i in range(n)], [self.port + n + i for i in range(n)],
                    [self.port + 2 * n + i for i in range(n)])
        ports = free_ports(3 * n, self.host)
        return ports[:n], ports[n:2 * n], ports[2 * n:]

    def _java(self, libs: str, main: str, *args: str, jvm_options: list[str] | None = None) -> list[str]:
        logging_config = os.path.join(self.data_dir, "log4j2.properties")
        options = self.jvm_options if jvm_options is None else jvm_options
        return ["java", *options, f"-Dlog4j2.configurationFile={logging_config}",
                "-cp", os.path.join(libs, "*"), main, *args]

    def _format(self, libs: str, props_path: str, cluster_id: str) -> None:
        # StorageTool needs no big heap.
        cmd = self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", props_path,
                         "--ignore-formatted", jvm_options=["-Xmx256m", "-Djava.awt.headless=true"])
        for name, password in self.sasl_users.items():
            for mechanism in SCRAM_MECHANISMS:
                cmd += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if done.returncode != 0:
            raise KafkaRefError(f"kafka.tools.StorageTool format failed:\n{done.stdout[-4000:]}")

    def start(self) -> str:
        if shutil.which("java") is None:
            raise KafkaRefError("java is not on PATH")
        libs = fetch_jars(self.version)
        started = time.monotonic()
        # A restart of the same cluster keeps its ports (clients reconnect where they were).
        self._port_plan = self._port_plan or self._ports()
        client, internal, controller = self._port_plan
        os.makedirs(self.data_dir, exist_ok=True)
        id_path = os.path.join(self.data_dir, "cluster-id")
        if not os.path.exists(id_path):
            with open(id_path, "w") as f:
                f.write(random_cluster_id())
        with open(id_path) as f:
            cluster_id = f.read().strip()
        with open(os.path.join(self.data_dir, "log4j2.properties"), "w") as f:
            f.write(LOG4J2_PROPERTIES)
        try:
            for node_id in range(self.nodes):
                props = node_properties(node_id, self.nodes, self.host, client, internal, controller,
                                        self.node_dir(node_id), self.sasl_users, self.acl,
                                        {**self.config, **({"broker.rack": self.racks[node_id]}
                                                           if node_id in self.racks else {})})
                path = os.path.join(self.data_dir, f"node-{node_id}.properties")
                _write_properties(path, props)
                if not os.path.exists(os.path.join(self.node_dir(node_id), "meta.properties")):
                    self._format(libs, path, cluster_id)
            for node_id in range(self.nodes):
                out = open(self.log_path(node_id), "ab")
                try:
                    proc = subprocess.Popen(
                        self._java(libs, "kafka.Kafka", os.path.join(self.data_dir, f"node-{node_id}.properties")),
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
                finally:
                    out.close()
                self._procs.append(proc)
                self.pids.append(proc.pid)
                with open(os.path.join(self.data_dir, PID_FILE.format(node_id)), "w") as f:
                    f.write(f"{proc.pid}\n")
            self.internal_bootstrap = ",".join(f"{self.host}:{p}" for p in internal)
            self._wait_ready(internal)
        except BaseException:
            self.stop()
            raise
        self.bootstrap = ",".join(f"{self.host}:{p}" for p in client)
        self.ready_s = time.monotonic() - started
        return self.bootstrap

    def _wait_ready(self, internal_ports: list[int]) -> None:
        """Every node answers Metadata (on its INTERNAL listener, which needs no SASL)
        with all nodes registered."""
        from pybroker.client.cluster import Client
        from pybroker.errors import KafkaError

        deadline = time.monotonic() + self.start_timeout
        pending = list(internal_ports)
        while pending:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise KafkaRefError(f"a Kafka node (pid {proc.pid}) exited with {proc.returncode}; "
                                        f"see {self.data_dir}/node-*.log:\n{self._log_tail()}")
            port = pending[0]
            try:
                with Client(f"{self.host}:{port}", client_id="kafka-ref", timeout=5.0) as probe:
                    if len(probe.refresh().brokers) == self.nodes:
                        pending.pop(0)
                        continue
            except (KafkaError, OSError):
                pass
            if time.monotonic() > deadline:
                raise KafkaRefError(f"Kafka did not answer within {self.start_timeout:.0f} s:\n{self._log_tail()}")
            time.sleep(0.2)

    def _log_tail(self, nbytes: int = 3000) -> str:
        tails = []
        for node_id in range(self.nodes):
            with contextlib.suppress(OSError), open(self.log_path(node_id), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                tails.append(f"--- node {node_id}\n" + f.read().decode(errors="replace"))
        return "\n".join(tails)

    def stop(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs, self.pids = [], []
        for node_id in range(self.nodes):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.data_dir, PID_FILE.format(node_id)))
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def stop_by_pid_files(data_dir: str, timeout: float = STOP_TIMEOUT) -> int:
    """Stop the nodes a detached ``up`` left running in ``data_dir``; returns how many."""
    pids = {}
    for path in glob.glob(os.path.join(data_dir, PID_FILE.format("*"))):
        with open(path) as f:
            pids[path] = int(f.read().strip())
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for path, pid in pids.items():
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.unlink(path)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A detached node is not our child; a zombie means it has exited.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    return True


# -- command line ---------------------------------------------------------------------------


def _pairs(items: list[str], flag: str, sep: str = "=") -> dict[str, str]:
    out = {}
    for item in items:
        if sep not in item:
            raise SystemExit(f"kafka_ref: {flag} takes KEY{sep}VALUE, got {item!r}")
        key, value = item.split(sep, 1)
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka_ref.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download Kafka's jars into the cache")
    up = sub.add_parser("up", help="start Kafka; prints 'bootstrap: ...'")
    up.add_argument("--nodes", type=int, default=1, choices=(1, 3), help="combined broker+controller nodes")
    up.add_argument("--port", type=int, default=0,
                    help="first client port (clients PORT.., internal PORT+N.., controllers PORT+2N..); 0: free ports")
    up.add_argument("--data", help="data directory (kept); default a temporary one removed on stop")
    up.add_argument("--sasl-user", action="append", default=[], metavar="NAME:PASSWORD",
                    help="SASL_PLAINTEXT client listener with PLAIN and SCRAM for this user (repeatable)")
    up.add_argument("--acl", action="store_true", help="StandardAuthorizer on (the first SASL user is a super user)")
    up.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="server property (repeatable)")
    up.add_argument("--broker-rack", action="append", default=[], metavar="ID=RACK",
                    help="broker.rack of node ID, as pybroker up's (repeatable)")
    up.add_argument("--detach", action="store_true", help="leave Kafka running (stop with `down --data DIR`)")
    down = sub.add_parser("down", help="stop a detached Kafka by its pid files")
    down.add_argument("--data", required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(fetch_jars(quiet=False))
            return 0
        if args.command == "down":
            print(f"stopped {stop_by_pid_files(args.data)} Kafka nodes")
            return 0
        if args.detach and not args.data:
            parser.error("--detach needs --data (where the pid files go)")
        cluster = KafkaCluster(nodes=args.nodes, port=args.port, data_dir=args.data,
                               sasl_users=_pairs(args.sasl_user, "--sasl-user", ":"), acl=args.acl,
                               config=_pairs(args.config, "--config"),
                               racks={int(k): v for k, v in _pairs(args.broker_rack, "--broker-rack").items()})
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        cluster.start()
        print(f"bootstrap: {cluster.bootstrap}", flush=True)
        print(f"ready in {cluster.ready_s:.1f} s; pids {' '.join(map(str, cluster.pids))}; data {cluster.data_dir}",
              file=sys.stderr, flush=True)
        if args.detach:
            return 0
        try:
            while not stop:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        cluster.stop()
        return 0
    except KafkaRefError as exc:
        print(f"kafka_ref: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
