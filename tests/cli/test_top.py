"""`pybroker top`: the frame it draws (rich's capture) and the live view in a real
terminal (tmux): it shows the cluster, refreshes in place, and quits on q."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
from rich.console import Console

from pybroker.cli.top import Rates, render
from pybroker.testing import wait_until

SNAPSHOT = {
    "source": "/data",
    "brokers": [{"id": 0, "host": "127.0.0.1", "port": 9092, "alive": True, "restarts": 0},
                {"id": 1, "host": "127.0.0.1", "port": 9093, "alive": False, "restarts": 2}],
    "partitions": [
        {"topic": "orders", "partition": 0, "leader": 0, "replicas": [0, 1], "isr": [0], "high_watermark": 100,
         "log_start_offset": 0, "under_replicated": True, "size_bytes": 4096},
        {"topic": "orders", "partition": 1, "leader": 0, "replicas": [0, 1], "isr": [0, 1], "high_watermark": 50,
         "log_start_offset": 10, "under_replicated": False, "size_bytes": 2048},
    ],
    "groups": [{"group": "billing", "topic": "orders", "partition": 0, "committed_offset": 60,
                "log_end_offset": 100, "lag": 40}],
}


def _later(snapshot: dict, grow: int, grow_bytes: int) -> dict:
    parts = [dict(p) for p in snapshot["partitions"]]
    parts[0]["high_watermark"] += grow
    parts[0]["size_bytes"] += grow_bytes
    return {**snapshot, "partitions": parts}


def _text(renderable) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_rates_are_the_growth_between_snapshots():
    rates = Rates()
    rates.update(SNAPSHOT, 10.0)
    assert rates.topics == {}
    rates.update(_later(SNAPSHOT, 200, 8192), 12.0)
    assert rates.topics == {"orders": (100.0, 4096.0)}
    # Without sizes (a Kafka cluster over the protocol) there is no bytes/s.
    no_sizes = {**SNAPSHOT, "partitions": [{**p, "size_bytes": None} for p in SNAPSHOT["partitions"]]}
    rates = Rates()
    rates.update(no_sizes, 0.0)
    grown = {**no_sizes, "partitions": [{**p, "high_watermark": p["high_watermark"] + 10}
                                        for p in no_sizes["partitions"]]}
    rates.update(grown, 1.0)
    assert rates.topics == {"orders": (20.0, None)}


def test_frame_shows_brokers_topics_isr_and_lag():
    rates = Rates()
    rates.update(SNAPSHOT, 0.0)
    rates.update(_later(SNAPSHOT, 50, 1024), 2.0)
    text = _text(render(_later(SNAPSHOT, 50, 1024), rates, error="supervisor restarting"))
    assert "q quits" in text and "refresh failed: supervisor restarting" in text
    assert "DOWN" in text and "127.0.0.1:9093" in text
    orders = next(line for line in text.splitlines() if line.strip().startswith("orders") and "KiB" in line)
    # 2 partitions, 1 under-replicated, 190 messages, 25 msg/s, 7 KiB, 512 B/s
    assert orders.split()[:5] == ["orders", "2", "1", "190", "25.0"] and "7.0 KiB" in orders and "512.0" in orders
    assert "under-replicated" in text
    lag = next(line for line in text.splitlines() if line.strip().startswith("billing"))
    assert lag.split() == ["billing", "orders", "0", "60", "100", "40"]


@pytest.mark.timeout(90)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_live_view_in_tmux_refreshes_and_quits_on_q(pybroker_cluster_factory, tmp_path, topic):
    from confluent_kafka import Producer

    cluster = pybroker_cluster_factory()
    producer = Producer({"bootstrap.servers": cluster.bootstrap})
    producer.produce(topic, b"one")
    assert producer.flush(10) == 0
    socket_name = f"pybroker-top-{uuid.uuid4().hex[:8]}"  # a tmux server of this test's own
    done = tmp_path / "exit-code"
    command = (f"{sys.executable} -m pybroker.cli.main top --data {cluster.data_dir} --interval 0.3; "
               f"echo $? > {done}")

    # The pane's own size, not a COLUMNS/LINES the test runner may have set.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket_name, *args], check=True, capture_output=True, text=True,
                              timeout=10, env=env).stdout

    tmux("new-session", "-d", "-s", "top", "-x", "140", "-y", "45", command)
    try:
        last = {}

        def drawn():
            last["screen"] = tmux("capture-pane", "-p", "-t", "top")
            return topic in last["screen"] and last["screen"]

        try:
            screen = wait_until(drawn, 30, "top to draw the topic")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{last.get('screen')}") from None
        assert "q quits" in screen and "brokers" in screen
        assert screen.count("pybroker top") == 1, "the frame must be redrawn in place, not appended"
        producer.produce(topic, b"two")
        assert producer.flush(10) == 0
        # The next refreshes show the new high watermark in the same place.
        wait_until(lambda: any(line.split()[:2] == [topic, "0"] and line.split()[-1] == "2"
                               for line in tmux("capture-pane", "-p", "-t", "top").splitlines()),
                   20, "the refreshed high watermark")
        assert tmux("capture-pane", "-p", "-t", "top").count("pybroker top") == 1
        tmux("send-keys", "-t", "top", "q")
        wait_until(done.exists, 10, "top to exit on q")
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=10)

    # The same view over the Kafka protocol alone, one frame.
    once = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "top", "--bootstrap-server", cluster.bootstrap,
                           "--once"], capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "200"})
    assert once.returncode == 0, once.stderr
    row = next(line.split() for line in once.stdout.splitlines() if line.split()[:2] == [topic, "0"])
    assert row[-1] == "2" and cluster.bootstrap in once.stdout


def test_no_supervisor_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "top", "--data", str(tmp_path), "--once"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"pybroker top: no supervisor answers on {tmp_path}")
    assert "Traceback" not in result.stderr
