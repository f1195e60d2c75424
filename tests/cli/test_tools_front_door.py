"""The client tools as a new user meets them: fast one-line errors for an unreachable
cluster or a missing topic, perf produce's window lines and progress bar, consume's
group membership, client properties, JSON output and SIGTERM, and `status` piped."""
from __future__ import annotations

import glob
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

from pybroker.client import Admin, NewTopic, Producer
from pybroker.testing import wait_until

CLI = [sys.executable, "-m", "pybroker.cli.main"]
UNREACHABLE = "127.0.0.1:1"


def tool(*argv: str, stdin: str | None = None, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], input=stdin, capture_output=True, text=True, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL, env=env)


def new_topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"fd-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    return name


def fill(bootstrap: str, topic: str, count: int, **send) -> None:
    with Producer(bootstrap, acks="all") as producer:
        for i in range(count):
            producer.send(topic, b"v%d" % i, **send)
        producer.flush()


# -- unreachable brokers and unknown topics ------------------------------------------

@pytest.mark.parametrize("argv", [
    ["produce", "--topic", "t"],
    ["perf", "produce", "--topic", "t", "--num-records", "10"],
    ["perf", "consume", "--topic", "t", "--messages", "10"],
], ids=["produce", "perf-produce", "perf-consume"])
def test_unreachable_cluster_is_one_line_at_once(argv):
    started = time.monotonic()
    result = tool(*argv, "--bootstrap-server", UNREACHABLE, stdin="a\n")
    assert time.monotonic() - started < 30  # not a 60 s max.block.ms wait
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ERROR NETWORK_EXCEPTION: no broker reachable among {UNREACHABLE}: "
        f"cannot connect to {UNREACHABLE}: Connection refused"]


def test_perf_tools_name_an_unknown_topic_in_one_line(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(extra_args=["--no-auto-create"])
    for argv in (["perf", "produce", "--topic", "nope", "--num-records", "10"],
                 ["perf", "consume", "--topic", "nope", "--messages", "10"],
                 ["produce", "--topic", "nope"]):
        result = tool(*argv, "--bootstrap-server", cluster.bootstrap, stdin="a\n")
        assert result.returncode == 1, result
        assert result.stderr.splitlines() == ["ERROR UNKNOWN_TOPIC_OR_PARTITION: Topic 'nope' does not exist"]


# -- perf produce while it runs ------------------------------------------------------

WINDOW = re.compile(r"\d+ records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, "
                    r"[\d.]+ ms max latency\.")
SUMMARY = re.compile(r"3000 records sent, .* ms 99\.9th\.")


def test_perf_produce_prints_window_lines_while_it_runs(cluster):
    topic = new_topic(cluster.bootstrap)
    # Paced to take about 1.5 s, with a window line every 200 ms.
    result = tool("perf", "produce", "--bootstrap-server", cluster.bootstrap, "--topic", topic,
                  "--num-records", "3000", "--throughput", "2000", "--reporting-interval", "200")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert SUMMARY.fullmatch(lines[-1]), lines
    windows = lines[:-1]
    assert len(windows) >= 3 and all(WINDOW.fullmatch(line) for line in windows), lines
    assert sum(int(line.split()[0]) for line in windows) <= 3000
    assert "━" not in result.stdout  # no progress bar into a pipe


def test_perf_produce_shows_a_progress_bar_on_a_terminal(cluster):
    topic = new_topic(cluster.bootstrap)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*CLI, "perf", "produce", "--bootstrap-server", cluster.bootstrap, "--topic", topic,
                             "--num-records", "3000", "--throughput", "2000"],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(30) == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    text = output.decode(errors="replace")
    assert "producing" in text and "━" in text, text
    assert "3000 records sent" in text


# -- consume -------------------------------------------------------------------------

def test_sigterm_prints_the_total_like_ctrl_c(cluster):
    topic = new_topic(cluster.bootstrap)
    fill(cluster.bootstrap, topic, 5)
    proc = subprocess.Popen([*CLI, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", topic,
                             "--from-beginning"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        assert lines == [f"v{i}\n" for i in range(5)]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == "Processed a total of 5 messages"


def test_consume_group_commits_and_resumes_where_it_left_off(cluster):
    bs = cluster.bootstrap
    topic, group = new_topic(bs, partitions=2), f"g-{uuid.uuid4().hex[:6]}"
    fill(bs, topic, 10)
    first = tool("consume", "--bootstrap-server", bs, "--topic", topic, "--group", group,
                 "--from-beginning", "--max-messages", "4")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 4
    with Admin(bs, timeout=10) as admin:
        assert sum(admin.list_group_offsets(group).values()) == 4
    # The same group through --consumer-property: it starts at the committed offsets.
    rest = tool("consume", "--bootstrap-server", bs, "--topic", topic, "--consumer-property", f"group.id={group}",
                "--from-beginning", "--timeout-ms", "3000")
    assert rest.returncode == 0, rest.stderr
    assert sorted(first.stdout.splitlines() + rest.stdout.splitlines()) == sorted(f"v{i}" for i in range(10))
    with Admin(bs, timeout=10) as admin:
        assert sum(admin.list_group_offsets(group).values()) == 10


@pytest.mark.parametrize("argv, message", [
    (["--group", "a", "--partition", "0"], "Options group and partition cannot be specified together."),
    (["--group", "a", "--consumer-property", "group.id=b"],
     "the group ids given by --group and --consumer-property do not match: 'a', 'b'"),
    (["--consumer-property", "no.such.setting=1"], "unknown configuration 'no.such.setting'"),
])
def test_consume_refuses_conflicting_settings(cluster, argv, message):
    result = tool("consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t", *argv)
    assert result.returncode == 1
    assert message in result.stderr


def test_consume_json_is_one_record_per_line(cluster):
    bs = cluster.bootstrap
    topic = new_topic(bs)
    with Producer(bs, acks="all") as producer:
        producer.send(topic, b"hello", key=b"k1", headers=[("source", b"web"), ("trace", None)], timestamp=1234)
        producer.send(topic, b"\xff\x00", key=None)
        producer.flush()
    result = tool("consume", "--bootstrap-server", bs, "--topic", topic, "--from-beginning", "--max-messages", "2",
                  "--format", "json")
    assert result.returncode == 0, result.stderr
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first == {"topic": topic, "partition": 0, "offset": 0, "timestamp": 1234, "timestamp_type": "CreateTime",
                     "key": "k1", "value": "hello",
                     "headers": [{"key": "source", "value": "web"}, {"key": "trace", "value": None}]}
    assert second["offset"] == 1 and second["key"] is None and second["headers"] == []
    assert second["value"] == {"base64": "/wA="}  # not UTF-8 text


# -- produce -------------------------------------------------------------------------

def test_producer_property_reaches_the_producer(cluster):
    bs = cluster.bootstrap
    topic = new_topic(bs)
    produced = tool("produce", "--bootstrap-server", bs, "--topic", topic,
                    "--producer-property", "compression.type=gzip", stdin="a\nb\n")
    assert produced.returncode == 0, produced.stderr
    (segment,) = glob.glob(str(cluster.data_dir / "broker-0" / f"{topic}-0" / "*.log"))
    dumped = tool("dump-log", "--files", segment)
    assert "compresscodec: gzip" in dumped.stdout, dumped.stdout
    # An option given on the command line wins over the property.
    produced = tool("produce", "--bootstrap-server", bs, "--topic", topic, "--compression-codec", "lz4",
                    "--producer-property", "compression.type=gzip", stdin="c\n")
    assert produced.returncode == 0, produced.stderr
    assert "compresscodec: lz4" in tool("dump-log", "--files", segment).stdout
    bad = tool("produce", "--bootstrap-server", bs, "--topic", topic, "--producer-property", "lingr.ms=5",
               stdin="x\n")
    assert bad.returncode == 1 and "unknown configuration 'lingr.ms'" in bad.stderr


# -- status --------------------------------------------------------------------------

def test_status_piped_at_80_columns_keeps_whole_headers(tmp_path):
    data = tmp_path / "d"
    up = tool("up", "--daemon", "--brokers", "1", "--port", "0", "--http-port", "0", "--data", str(data))
    assert up.returncode == 0, up.stderr
    try:
        bootstrap = next(line for line in up.stdout.splitlines() if line.startswith("bootstrap: ")).split(": ")[1]
        topic = new_topic(bootstrap)
        env = {**os.environ, "COLUMNS": "80"}
        wait_until(lambda: topic in tool("status", "--data", str(data), env=env).stdout, 20, "the topic in status")
        out = tool("status", "--data", str(data), env=env).stdout
        assert "…" not in out
        header = next(line for line in out.splitlines() if line.startswith("TOPIC"))
        assert header.split() == ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "HW", "LOG-END",
                                  "UNDER-REPLICATED"]
        row = next(line for line in out.splitlines() if line.startswith(topic))
        assert row.split()[:5] == [topic, "0", "0", "0", "0"]
    finally:
        tool("down", "--data", str(data))


def test_verify_log_finds_no_damage_in_an_empty_partition_of_a_running_broker(cluster):
    """A running broker's empty segment has preallocated, zero-filled indexes: zeros are
    not an index entry pointing at a batch that is not there."""
    topic = new_topic(cluster.bootstrap)
    result = tool("verify-log", str(cluster.data_dir / "broker-0" / f"{topic}-0"))
    assert result.returncode == 0, result.stdout
    assert "DAMAGED" not in result.stdout
