"""pytest plugin: fixtures that run a real pybroker cluster for a test.

The plugin is registered through the ``pytest11`` entry point, so installing pybroker
is enough: any test can ask for ``pybroker_cluster`` (a fresh single-broker cluster in a
temporary data dir) or ``pybroker_cluster_factory`` (the same with options)::

    from confluent_kafka import Consumer, Producer, TopicPartition

    def test_order_events_round_trip(pybroker_cluster):
        producer = Producer({"bootstrap.servers": pybroker_cluster.bootstrap})
        producer.produce("orders", b"order-1")
        producer.flush(10)
        consumer = Consumer({"bootstrap.servers": pybroker_cluster.bootstrap,
                             "group.id": "unused", "enable.auto.commit": False})
        consumer.assign([TopicPartition("orders", 0, 0)])
        assert consumer.poll(10).value() == b"order-1"

    def test_survives_restart(pybroker_cluster_factory):
        cluster = pybroker_cluster_factory(extra_args=["--num-partitions", "3"])
        ...
        cluster.restart()

Outside pytest, ``BrokerCluster`` is a context manager::

    with BrokerCluster(data_dir="/tmp/pb") as cluster:
        print(cluster.bootstrap)

The cluster runs as a child process (``python -m pybroker.cli.main up``) in a session
of its own, so the whole process tree (supervisor and brokers) can be torn down by its
process-group id, never by name. Its stdout and stderr go to ``pybroker.log`` in the
data dir; when a test using the fixtures fails, the log's tail is attached to the test
report.
"""
from __future__ import annotations

import atexit
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Iterator, Sequence

try:
    import pytest
except ModuleNotFoundError:  # BrokerCluster alone serves scripts (perf/) without pytest
    pytest = None

__all__ = ["BrokerCluster", "BrokerStartError", "wait_until"]

def wait_until(predicate, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy and return that; raise
    AssertionError naming ``what`` after ``timeout`` seconds (a test fails, not hangs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_NAME = "pybroker.log"


def free_port_run(count: int) -> int:
    """A first port of ``count`` consecutive free ones."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            socks = []
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def _private_opener(path, flags):
    return os.open(path, flags, 0o600)  # in the data dir, private like the rest of it
# The CLI prints this once every listener accepts connections.
_BOOTSTRAP_LINE = re.compile(rb"^bootstrap:\s*(\S+)\s*$", re.MULTILINE)
# ... followed by the address of the web console and /metrics.
_CONSOLE_LINE = re.compile(rb"^console:\s*(\S+)\s*$", re.MULTILINE)
# ... and between them, with --listener, each listener's addresses and the --tls-self-signed CA.
_LISTENER_LINE = re.compile(rb"^listener (\S+):\s*(\S+)\s*$", re.MULTILINE)
_CA_LINE = re.compile(rb"^ssl ca:\s*(\S+)\s*$", re.MULTILINE)
_REPORT_TAIL_BYTES = 20_000

# Clusters still running, so an interrupted test run (Ctrl-C, a crashed worker) does not
# leave broker processes behind.
_LIVE: "weakref.WeakSet[BrokerCluster]" = weakref.WeakSet()


class BrokerStartError(RuntimeError):
    """The cluster exited or did not print its ``bootstrap:`` line in time."""


class BrokerCluster:
    """A pybroker cluster running as a child process, for tests and scripts.

    Owned by the thread that created it; not thread-safe. ``start()`` blocks until the
    cluster prints ``bootstrap: HOST:PORT,...`` (every listener accepts connections) or
    raises ``BrokerStartError`` with the log's tail after ``start_timeout`` seconds.

    Attributes: ``bootstrap`` ("127.0.0.1:PORT,..." for a client's bootstrap.servers),
    ``console_url`` ("http://127.0.0.1:PORT/": the web console and ``/metrics``),
    ``data_dir``, ``log_path``, ``pid`` (of the ``up`` process, the leader of its own
    process group), ``returncode`` once stopped.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        brokers: int = 1,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = START_TIMEOUT,
        env: dict[str, str] | None = None,
    ):
        if data_dir is None:
            data_dir = tempfile.mkdtemp(prefix="pybroker-")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.brokers = brokers
        self.extra_args = list(extra_args)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.env = env
        self.log_path = self.data_dir / LOG_NAME
        self.bootstrap: str | None = None
        self.console_url: str | None = None
        # Listener name -> bootstrap addresses (``--listener``), and the self-signed CA file.
        self.listeners: dict[str, str] = {}
        self.ssl_cafile: str | None = None
        self.returncode: int | None = None
        self._proc: subprocess.Popen | None = None

    # -- life cycle -------------------------------------------------------------------

    def command(self) -> list[str]:
        """The argv that starts this cluster."""
        return [
            sys.executable, "-m", "pybroker.cli.main", "up",
            "--brokers", str(self.brokers),
            "--data", str(self.data_dir),
            "--port", str(self.port),
            "--host", self.host,
            # The console's default port would collide between clusters run side by side.
            *([] if "--http-port" in self.extra_args else ["--http-port", "0"]),
            *self.extra_args,
        ]

    def start(self) -> "BrokerCluster":
        """Spawn the cluster and wait for its ``bootstrap:`` line."""
        if self.running:
            raise RuntimeError(f"cluster already running (pid {self.pid})")
        env = dict(os.environ if self.env is None else self.env)
        # Output goes to a file, where Python would block-buffer the bootstrap line.
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "ab", opener=_private_opener) as log:
            log.write(f"--- start: {' '.join(self.command())}\n".encode())
            log.flush()
            log_offset = log.tell()
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.returncode = None
        _LIVE.add(self)
        try:
            self.bootstrap = self._wait_for_bootstrap(log_offset)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_for_bootstrap(self, log_offset: int) -> str:
        deadline = time.monotonic() + self.start_timeout
        while True:
            with open(self.log_path, "rb") as log:
                log.seek(log_offset)
                text = log.read()
            match = _BOOTSTRAP_LINE.search(text)
            console = _CONSOLE_LINE.search(text, match.end()) if match else None
            if console:
                self.console_url = console.group(1).decode()
                between = text[match.end():console.start()]
                self.listeners = {m.group(1).decode(): m.group(2).decode() for m in _LISTENER_LINE.finditer(between)}
                ca = _CA_LINE.search(between)
                self.ssl_cafile = ca.group(1).decode() if ca else None
                return match.group(1).decode()
            code = self._proc.poll()
            if code is not None:
                raise BrokerStartError(
                    f"pybroker exited with code {code} before listening; log:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"no 'bootstrap:' line within {self.start_timeout:.0f}s; log:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the cluster, wait up to ``timeout`` s, then SIGKILL its process group.

        Returns the exit code (negative: killed by that signal), None if never started.
        """
        if self._proc is None:
            return self.returncode
        if self._proc.poll() is None:
            _signal_pid(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        return self._reap()

    def kill(self, whole_group: bool = True) -> int | None:
        """SIGKILL the cluster: a crash, no clean shutdown.

        ``whole_group`` kills every process of the cluster (supervisor and brokers);
        False kills only the ``up`` process, leaving its children to notice.
        """
        if self._proc is None:
            return self.returncode
        if whole_group:
            _signal_group(self._proc.pid, signal.SIGKILL)
        else:
            _signal_pid(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        return self._reap(kill_leftovers=whole_group)

    def restart(self, timeout: float = STOP_TIMEOUT, hard: bool = False) -> "BrokerCluster":
        """Stop (or with ``hard`` SIGKILL) and start again on the same data dir.

        The listeners come back on the same ports when the first start's ports were
        contiguous (the CLI takes a base port), so connected clients can reconnect;
        otherwise on fresh ephemeral ports and ``bootstrap`` changes.
        """
        if hard:
            self.kill()
        else:
            self.stop(timeout)
        ports = self.ports
        if self.port == 0 and ports and ports == list(range(ports[0], ports[0] + len(ports))):
            self.port = ports[0]
        return self.start()

    def _reap(self, kill_leftovers: bool = True) -> int:
        self.returncode = self._proc.returncode
        # A clean supervisor reaps its brokers; anything left in the group is a leak.
        if kill_leftovers:
            _signal_group(self._proc.pid, signal.SIGKILL)
            _unlink_region(self.data_dir)
        _LIVE.discard(self)
        return self.returncode

    # -- inspection -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listener, from the bootstrap line."""
        if not self.bootstrap:
            return []
        out = []
        for item in self.bootstrap.split(","):
            host, _, port = item.rpartition(":")
            out.append((host, int(port)))
        return out

    @property
    def ports(self) -> list[int]:
        return [port for _, port in self.addresses]

    def log_text(self) -> str:
        """Everything the cluster has printed so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, max_bytes: int = _REPORT_TAIL_BYTES) -> str:
        text = self.log_text()
        return text if len(text) <= max_bytes else "...\n" + text[-max_bytes:]

    def __enter__(self) -> "BrokerCluster":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        return f"<BrokerCluster {self.bootstrap} pid={self.pid} {state} data={self.data_dir}>"


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError as exc:
        # ESRCH: the group is already empty; EPERM: macOS answers so for a group of zombies.
        if exc.errno not in (errno.ESRCH, errno.EPERM):
            raise


@atexit.register
def _kill_live_clusters() -> None:
    for cluster in list(_LIVE):
        cluster.kill()


# -- pytest fixtures ----------------------------------------------------------------------

if pytest is not None:

    _CLUSTERS_KEY = pytest.StashKey[list]()
    # A test's first group poll should not wait Kafka's 3 s for more members; placed
    # first, so an --group-initial-rebalance-delay-ms of the test's own still wins.
    FIXTURE_ARGS = ("--group-initial-rebalance-delay-ms", "0")


    def _track(request: pytest.FixtureRequest, cluster: BrokerCluster) -> None:
        request.node.stash.setdefault(_CLUSTERS_KEY, []).append(cluster)


    @pytest.fixture
    def pybroker_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerCluster]:
        """A running single-broker pybroker cluster in a temporary data dir, stopped after
        the test (SIGTERM, then SIGKILL of its process group). Groups rebalance without
        the initial delay (``group.initial.rebalance.delay.ms`` 0)."""
        cluster = BrokerCluster(data_dir=tmp_path / "pybroker", extra_args=FIXTURE_ARGS)
        _track(request, cluster)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


    @pytest.fixture
    def pybroker_cluster_factory(request: pytest.FixtureRequest, tmp_path_factory):
        """A function ``make(**kwargs) -> BrokerCluster`` that starts clusters with options
        (``brokers``, ``extra_args``, ``data_dir``, ``start_timeout``, ``env``, ``start=False``
        to get it unstarted); every cluster it made is stopped after the test."""
        made: list[BrokerCluster] = []

        def make(start: bool = True, **kwargs) -> BrokerCluster:
            kwargs.setdefault("data_dir", tmp_path_factory.mktemp("pybroker"))
            kwargs["extra_args"] = [*FIXTURE_ARGS, *kwargs.get("extra_args", ())]
            cluster = BrokerCluster(**kwargs)
            made.append(cluster)
            _track(request, cluster)
            return cluster.start() if start else cluster

        try:
            yield make
        finally:
            for cluster in made:
                cluster.stop()


    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item: pytest.Item, call):
        outcome = yield
        report = outcome.get_result()
        if not report.failed:
            return
        for cluster in item.stash.get(_CLUSTERS_KEY, []):
            report.sections.append((f"pybroker log ({cluster.log_path})", cluster.log_tail()))


def _unlink_region(data_dir) -> None:
    if data_dir is not None:
        from pybroker.cli.down import unlink_region

        unlink_region(data_dir)
