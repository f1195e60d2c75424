"""`pybroker perf produce|consume` against a real cluster: Kafka's perf-test result lines."""
from __future__ import annotations

import re
import subprocess
import sys

CLI = [sys.executable, "-m", "pybroker.cli.main", "perf"]


def test_produce_then_consume_report_kafka_style_lines(pybroker_cluster, topic):
    bs = pybroker_cluster.bootstrap
    produced = subprocess.run([*CLI, "produce", "--bootstrap-server", bs, "--topic", topic, "--num-records", "5000",
                               "--record-size", "64", "--producer-props", "acks=all", "linger.ms=2"],
                              capture_output=True, text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    line = produced.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"5000 records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                         r"([\d.]+) ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99.9th\.", line)
    assert match, line
    assert float(match.group(1)) > 0 and float(match.group(4)) >= float(match.group(3))

    consumed = subprocess.run([*CLI, "consume", "--bootstrap-server", bs, "--topic", topic, "--messages", "5000"],
                              capture_output=True, text=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    header, row = consumed.stdout.strip().splitlines()[-2:]
    assert header.startswith("start.time, end.time, data.consumed.in.MB")
    fields = [f.strip() for f in row.split(",")]
    assert int(fields[4]) == 5000
    assert abs(float(fields[2]) - 5000 * 64 / 1024 / 1024) < 1e-3


def test_consume_gives_up_after_the_timeout_with_a_warning(pybroker_cluster, topic):
    bs = pybroker_cluster.bootstrap
    subprocess.run([*CLI, "produce", "--bootstrap-server", bs, "--topic", topic, "--num-records", "10"],
                   capture_output=True, text=True, timeout=60, check=True)
    consumed = subprocess.run([*CLI, "consume", "--bootstrap-server", bs, "--topic", topic, "--messages", "20",
                               "--timeout", "500"], capture_output=True, text=True, timeout=60)
    assert consumed.returncode == 1
    assert "Exiting before consuming the expected number of messages" in consumed.stderr
    assert int(consumed.stdout.strip().splitlines()[-1].split(",")[4]) == 10
