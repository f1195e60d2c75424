"""`pybroker log-dirs` and `pybroker leader-election`, as kafka-log-dirs and
kafka-leader-election: Java's print order, argument checks, and runs as subprocesses
against a real broker."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.cli.java_order import hash_order, string_hash, topic_partition_hash
from pybroker.cli.main import main


def test_java_hash_codes_and_hash_map_order():
    assert string_hash("") == 0 and string_hash("hello") == 99162322
    assert string_hash("é") == 233  # UTF-16 code units
    assert topic_partition_hash("t", 0) == (31 * 31 + 116) & 0xFFFFFFFF
    # JSON keys of Kafka's HashMaps: {"brokers":..,"version":..}, {"partitions","error","logDir"}.
    assert hash_order(["version", "brokers"], string_hash) == ["brokers", "version"]
    assert hash_order(["logDir", "error", "partitions"], string_hash) == ["partitions", "error", "logDir"]
    assert hash_order(["partition", "size", "offsetLag", "isFuture"], string_hash) == \
        ["partition", "size", "offsetLag", "isFuture"]


@pytest.mark.parametrize("argv, message", [
    (["leader-election", "--election-type", "preferred"], "One and only one"),
    (["leader-election", "--election-type", "preferred", "--topic", "t"], "partition"),
    (["leader-election", "--election-type", "preferred", "--topic", "t", "--partition", "0",
      "--all-topic-partitions"], "One and only one"),
    (["log-dirs", "--describe", "--broker-list", "a,b"], "--broker-list"),
])
def test_bad_arguments_exit_1_before_connecting(capsys, argv, message):
    assert main([*argv, "--bootstrap-server", "127.0.0.1:1"]) == 1
    assert message in capsys.readouterr().err


def tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", *argv, "--bootstrap-server", bootstrap],
                          capture_output=True, text=True, timeout=60)


def test_log_dirs_describe_prints_kafkas_json(pybroker_cluster, topic):
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(15)
    producer = Producer({"bootstrap.servers": pybroker_cluster.bootstrap})
    producer.produce(topic, b"v" * 100, partition=1)
    assert producer.flush(15) == 0
    out = tool(pybroker_cluster.bootstrap, "log-dirs", "--describe", "--topic-list", topic)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         "Received log directory information from brokers 0"]
    assert lines[2].startswith('{"brokers":[{"broker":0,"logDirs":[{"partitions":[{"partition":')
    doc = json.loads(lines[2])
    assert doc["version"] == 1
    (log_dir,) = doc["brokers"][0]["logDirs"]
    assert log_dir["error"] is None and log_dir["logDir"].startswith(str(pybroker_cluster.data_dir))
    sizes = {p["partition"]: p["size"] for p in log_dir["partitions"]}
    assert set(sizes) == {f"{topic}-0", f"{topic}-1"} and sizes[f"{topic}-0"] == 0 and sizes[f"{topic}-1"] > 100
    missing = tool(pybroker_cluster.bootstrap, "log-dirs", "--describe", "--broker-list", "0,5")
    assert missing.returncode == 1
    assert "The given brokers do not exist from --broker-list: 5. Current existent brokers: 0" in missing.stderr


def test_leader_election_reports_like_kafka(pybroker_cluster, topic, tmp_path):
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(15)
    out = tool(pybroker_cluster.bootstrap, "leader-election", "--election-type", "PREFERRED",
               "--topic", topic, "--partition", "1")
    assert (out.returncode, out.stdout) == (0, f"Valid replica already elected for partitions {topic}-1\n")
    spec = tmp_path / "partitions.json"
    spec.write_text(json.dumps({"partitions": [{"topic": topic, "partition": 0}, {"topic": topic, "partition": 9}]}))
    out = tool(pybroker_cluster.bootstrap, "leader-election", "--election-type", "unclean",
               "--path-to-json-file", str(spec))
    assert out.returncode == 1
    assert f"Valid replica already elected for partitions {topic}-0\n" in out.stdout
    assert (f"Error completing leader election (UNCLEAN) for partition: {topic}-9: "
            f"org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such partition as {topic}-9\n"
            in out.stdout)
    assert "1 replica(s) could not be elected" in out.stderr
    everything = tool(pybroker_cluster.bootstrap, "leader-election", "--election-type", "preferred",
                      "--all-topic-partitions")
    assert (everything.returncode, everything.stdout) == (0, "")
