"""`pybroker up` and `pybroker down` when something is wrong: a taken port, a broker that
cannot start, a data dir already in use, a supervisor that was SIGKILLed (its brokers
orphaned) or killed and not reaped (a zombie). Each fails at once with the reason, or
cleans up, instead of looping or hanging."""
from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from pybroker.testing import BrokerCluster, wait_until

CLI = [sys.executable, "-m", "pybroker.cli.main"]


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    if argv[0] == "up":  # the console's default port 9644 may be another cluster's
        argv = ("up", "--http-port", "0", *argv[1:])
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def taken_port():
    """A listening socket on a free port: brokers asked to use it cannot."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("daemon", [False, True], ids=["foreground", "daemon"])
def test_taken_port_fails_at_once_with_the_reason(tmp_path, taken_port, daemon):
    argv = ["up", "--brokers", "2", "--port", str(taken_port), "--data", str(tmp_path / "d")]
    result = run(*argv, *(["--daemon"] if daemon else []))
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port} for broker 0: Address already in use" in result.stderr
    assert "bootstrap:" not in result.stdout
    # Nothing was spawned: no broker pid files, no supervisor left behind.
    assert not list((tmp_path / "d").glob("run/*.pid"))


def test_broker_failing_at_start_up_fails_up_with_its_error_line(tmp_path):
    data = tmp_path / "d"
    lock_dir = data / "broker-0"
    lock_dir.mkdir(parents=True)
    # Another process holds broker 0's data directory: the broker exits with its boot error.
    fd = os.open(lock_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        started = time.monotonic()
        result = run("up", "--brokers", "1", "--port", "0", "--data", str(data))
        assert result.returncode == 1, result.stderr
        line = next(line for line in result.stderr.splitlines() if line.startswith("pybroker up: "))
        assert "broker 0 exited with 3 during start-up" in line
        assert f"data directory {lock_dir} is in use by another broker" in line
        # One attempt, not a restart loop with back-off.
        assert time.monotonic() - started < 45
        assert result.stderr.count("started broker 0") == 1
    finally:
        os.close(fd)


def test_daemon_on_a_running_data_dir_says_so(tmp_path):
    data = tmp_path / "d"
    first = run("up", "--daemon", "--brokers", "1", "--port", "0", "--data", str(data))
    assert first.returncode == 0, first.stderr
    try:
        pid = int((data / "run" / "supervisor.pid").read_text())
        again = run("up", "--daemon", "--brokers", "1", "--port", "0", "--data", str(data))
        assert again.returncode == 1
        assert again.stderr.strip() == f"pybroker up: a supervisor (pid {pid}) already runs on {data}"
    finally:
        assert run("down", "--data", str(data)).returncode == 0


def test_down_after_supervisor_sigkill_stops_the_orphaned_brokers(tmp_path):
    data = tmp_path / "d"
    started = run("up", "--daemon", "--brokers", "2", "--port", "0", "--data", str(data))
    assert started.returncode == 0, started.stderr
    run_dir = data / "run"
    supervisor = int((run_dir / "supervisor.pid").read_text())
    brokers = [int((run_dir / f"broker-{n}.pid").read_text()) for n in (0, 1)]
    try:
        os.kill(supervisor, signal.SIGKILL)
        wait_until(lambda: not alive(supervisor), 10, "the supervisor to die")
        assert all(alive(pid) for pid in brokers)  # orphans keep serving

        down = run("down", "--data", str(data))
        assert down.returncode == 0, down.stderr
        assert f"supervisor pid {supervisor} is not running; stopping the 2 broker(s) it left" in down.stdout
        for node, pid in enumerate(brokers):
            assert f"stopped broker {node} (pid {pid})" in down.stdout
        assert not any(alive(pid) for pid in brokers)
        # Stopped with SIGTERM: each broker flushed and marked its shutdown clean.
        for node in (0, 1):
            assert (data / f"broker-{node}" / ".kafka_cleanshutdown").exists()
        assert not (run_dir / "supervisor.pid").exists()
        assert not (run_dir / "supervisor.sock").exists()
        # Nothing left to stop.
        assert run("down", "--data", str(data)).returncode == 1
    finally:
        for pid in brokers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_up_ignores_a_zombie_supervisor_in_the_pid_file(tmp_path):
    data = tmp_path / "d"
    (data / "run").mkdir(parents=True)
    # A process that exited and was never reaped: its pid still "exists".
    zombie = subprocess.Popen([sys.executable, "-m", "pybroker.cli.main", "up", "--help"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, 20, "a zombie")
        (data / "run" / "supervisor.pid").write_text(f"{zombie.pid}\n")
        cluster = BrokerCluster(data_dir=data)
        cluster.start()
        try:
            assert cluster.bootstrap
        finally:
            cluster.stop()
        assert "ZombieProcess" not in cluster.log_text()
    finally:
        zombie.wait()


def test_data_dir_too_deep_for_the_control_socket_says_so(tmp_path):
    data = tmp_path / ("d" * 100)
    result = run("up", "--daemon", "--brokers", "1", "--port", "0", "--data", str(data))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"pybroker up: cannot create the control socket {data}/run/supervisor.sock: "
                                     "AF_UNIX path too long")


@pytest.mark.parametrize("args, message", [
    (["--broker-rack", "a"], "--broker-rack takes ID=RACK"),
    (["--broker-rack", "0="], "--broker-rack takes ID=RACK"),
    (["--broker-rack", "5=a"], "there are brokers 0..1"),
    (["--broker-config", "replica.selector.class=com.example.Nearest"], "replica.selector.class 'com.example.Nearest'"),
], ids=["no-id", "no-rack", "unknown-broker", "unknown-selector"])
def test_bad_rack_or_replica_selector_is_refused_before_start(tmp_path, args, message):
    result = run("up", "--brokers", "2", "--port", "0", "--data", str(tmp_path / "d"), *args, timeout=30)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not list((tmp_path / "d").glob("run/*.pid"))
