"""`pybroker up --daemon`, `pybroker status`, `pybroker down`: the cluster's own commands,
run as a user would, as subprocesses."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import psutil
import pytest

CLI = [sys.executable, "-m", "pybroker.cli.main"]


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def daemon(tmp_path):
    data = tmp_path / "cluster"
    started = run("up", "--daemon", "--brokers", "2", "--port", "0", "--http-port", "0", "--data", str(data))
    pid_file = data / "run" / "supervisor.pid"
    try:
        assert started.returncode == 0, started.stderr
        yield data, started.stdout
    finally:
        # A clean stop first (it also removes the shared-memory region), then whatever is
        # left, by pid.
        if pid_file.exists():
            run("down", "--data", str(data))
        for path in (data / "run").glob("*.pid") if (data / "run").exists() else []:
            try:
                psutil.Process(int(path.read_text())).kill()
            except (psutil.Error, ValueError):
                pass


def test_daemon_prints_bootstrap_and_detaches_with_a_pid_file(daemon):
    data, out = daemon
    line = next(line for line in out.splitlines() if line.startswith("bootstrap: "))
    addresses = line.split(": ", 1)[1].split(",")
    assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
    pid = int((data / "run" / "supervisor.pid").read_text())
    assert psutil.pid_exists(pid)
    # Detached: not a child of this test, in a session of its own.
    assert psutil.Process(pid).ppid() != os.getpid()
    assert os.getsid(pid) != os.getsid(0)


def test_control_directory_and_socket_are_private(daemon):
    data, _ = daemon
    run_dir = data / "run"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "supervisor.sock").stat().st_mode) == 0o600


def test_status_json_has_the_stable_keys(daemon):
    data, _ = daemon
    created = run("topics", "--bootstrap-server", _bootstrap(daemon), "--create", "--topic", "st",
                  "--partitions", "2", "--replication-factor", "2")
    assert created.returncode == 0, created.stderr
    status = json.loads(run("status", "--data", str(data), "--json").stdout)
    assert set(status) >= {"supervisor", "brokers", "partitions", "groups"}
    assert [b["id"] for b in status["brokers"]] == [0, 1]
    for b in status["brokers"]:
        assert set(b) >= {"id", "pid", "host", "port", "alive", "restarts"} and b["alive"]
    rows = [p for p in status["partitions"] if p["topic"] == "st"]
    assert len(rows) == 2
    for p in rows:
        assert set(p) >= {"topic", "partition", "leader", "replicas", "isr", "high_watermark",
                          "log_end_offset", "under_replicated"}
        assert sorted(p["replicas"]) == [0, 1] and p["leader"] in (0, 1)
    human = run("status", "--data", str(data))
    assert human.returncode == 0 and "st" in human.stdout


def test_down_stops_supervisor_and_brokers_cleanly(daemon):
    data, _ = daemon
    run_dir = data / "run"
    pids = [int((run_dir / name).read_text()) for name in ("supervisor.pid", "broker-0.pid", "broker-1.pid")]
    stopped = run("down", "--data", str(data))
    assert stopped.returncode == 0, stopped.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        time.sleep(0.05)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    # Each broker marked its shutdown clean; the socket is gone.
    for node in (0, 1):
        assert (data / f"broker-{node}" / ".kafka_cleanshutdown").exists()
    assert not (run_dir / "supervisor.sock").exists()


def test_status_and_down_without_a_cluster_fail_clearly(tmp_path):
    status = run("status", "--data", str(tmp_path))
    assert status.returncode == 1 and "no supervisor" in status.stderr
    down = run("down", "--data", str(tmp_path))
    assert down.returncode == 1 and "no supervisor pid file" in down.stderr


def _bootstrap(daemon) -> str:
    _, out = daemon
    return next(line for line in out.splitlines() if line.startswith("bootstrap: ")).split(": ", 1)[1]
