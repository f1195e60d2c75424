"""`pybroker reassign-partitions`, as kafka-reassign-partitions: argument and JSON checks
with Kafka's messages, and each action's output against a real single-broker cluster
(moves across brokers run in tests/faults/test_reassignment.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.cli.main import main
from pybroker.cli.reassign_partitions import check_execute, parse_reassignment, reassignment_json, ToolError


def tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "reassign-partitions", *argv,
                           "--bootstrap-server", bootstrap], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv, message", [
    ([], "exactly one action: --generate, --execute, --verify, --cancel, --list"),
    (["--list", "--execute"], "exactly one action"),
    (["--execute"], '"reassignment-json-file"'),
    (["--generate", "--broker-list", "0"], '"topics-to-move-json-file"'),
])
def test_bad_arguments_exit_1_before_connecting(capsys, argv, message):
    assert main(["reassign-partitions", *argv, "--bootstrap-server", "127.0.0.1:1"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("partitions, message", [
    ([], "Partition reassignment list cannot be empty"),
    ([{"topic": "t", "partition": 0, "replicas": []}], "Partition replica list cannot be empty"),
    ([{"topic": "t", "partition": 0, "replicas": [0]}, {"topic": "t", "partition": 0, "replicas": [1]}],
     "Partition reassignment contains duplicate topic partitions: t-0"),
    ([{"topic": "t", "partition": 1, "replicas": [0, 2, 0, 2]}],
     "Partition replica lists may not contain duplicate entries: t-1 contains multiple entries for 0,2"),
    ([{"topic": "t", "partition": 0, "replicas": [0, 1], "log_dirs": ["any"]}],
     "Size of replicas list [0, 1] is different from size of log dirs list [any] for partition t-0"),
])
def test_reassignment_json_is_checked_as_kafkas_tool_does(partitions, message):
    with pytest.raises(ToolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_execute(parse_reassignment({"version": 1, "partitions": partitions}))


def test_reassignment_json_is_kafkas_format():
    assert reassignment_json({("b", 0): [2], ("a", 10): [0, 1], ("a", 2): [1]}, {("a", 10, 1): "/d1"}) == (
        '{"version":1,"partitions":[{"topic":"a","partition":2,"replicas":[1],"log_dirs":["any"]},'
        '{"topic":"a","partition":10,"replicas":[0,1],"log_dirs":["any","/d1"]},'
        '{"topic":"b","partition":0,"replicas":[2],"log_dirs":["any"]}]}')


def test_each_action_prints_what_kafkas_tool_prints(cluster, topic, tmp_path):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(15)
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    log_dir = str(cluster.data_dir / "broker-0")
    assignment = {(topic, 0): [0], (topic, 1): [0]}
    current = reassignment_json(assignment, {(topic, 0, 0): log_dir, (topic, 1, 0): log_dir})
    generated = tool(cluster.bootstrap, "--generate", "--topics-to-move-json-file", str(topics), "--broker-list", "0")
    assert (generated.returncode, generated.stdout) == (
        0, f"Current partition replica assignment\n{current}\n\nProposed partition reassignment configuration\n"
           f"{reassignment_json(assignment)}\n"), generated.stderr
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 1, "replicas": [0]}]}))
    started = tool(cluster.bootstrap, "--execute", "--reassignment-json-file", str(plan))
    assert (started.returncode, started.stdout) == (
        0, "Current partition replica assignment\n\n" + reassignment_json({(topic, 1): [0]}, {(topic, 1, 0): log_dir})
           + "\n\n"
           "Save this to use as the --reassignment-json-file option during rollback\n"
           f"Successfully started partition reassignment for {topic}-1\n"), started.stderr
    verified = tool(cluster.bootstrap, "--verify", "--reassignment-json-file", str(plan))
    assert (verified.returncode, verified.stdout) == (
        0, f"Status of partition reassignment:\nReassignment of partition {topic}-1 is completed.\n\n"
           f"Clearing broker-level throttles on broker 0\nClearing topic-level throttles on topic {topic}\n")
    listed = tool(cluster.bootstrap, "--list")
    assert (listed.returncode, listed.stdout) == (0, "No partition reassignments found.\n")
    cancelled = tool(cluster.bootstrap, "--cancel", "--reassignment-json-file", str(plan))
    assert (cancelled.returncode, cancelled.stdout) == (
        0, "None of the specified partition reassignments are active.\n"
           "None of the specified partition moves are active.Clearing broker-level throttles on broker 0\n"
           f"Clearing topic-level throttles on topic {topic}\n")


def test_failures_are_kafkas_messages_with_exit_1(cluster, topic, tmp_path):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    plan = tmp_path / "plan.json"

    def execute(partitions):
        plan.write_text(json.dumps({"version": 1, "partitions": partitions}))
        return tool(cluster.bootstrap, "--execute", "--reassignment-json-file", str(plan))

    unknown_broker = execute([{"topic": topic, "partition": 0, "replicas": [0, 3]}])
    assert (unknown_broker.returncode, unknown_broker.stdout) == (1, "Error: Unknown broker id 3\n")
    missing = execute([{"topic": "no-such-topic", "partition": 0, "replicas": [0]}])
    assert (missing.returncode, missing.stdout) == (
        1, "Error: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: Topic no-such-topic not found.\n")
    no_partition = execute([{"topic": topic, "partition": 4, "replicas": [0]}])
    assert (no_partition.returncode, no_partition.stdout) == (
        1, "Error: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: "
           f"Unable to find partition: {topic}-4\n")
    plan.write_text("{not json")
    bad = tool(cluster.bootstrap, "--verify", "--reassignment-json-file", str(plan))
    assert (bad.returncode, bad.stdout) == (1, "Error: The input string is not a valid JSON\n")
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    too_few = tool(cluster.bootstrap, "--generate", "--topics-to-move-json-file", str(topics), "--broker-list", "5")
    assert (too_few.returncode, too_few.stdout) == (
        1, "Error: org.apache.kafka.common.errors.InvalidReplicationFactorException: "
           "Replication factor: 1 larger than available brokers: 0.\n")
    twice = tool(cluster.bootstrap, "--generate", "--topics-to-move-json-file", str(topics), "--broker-list", "0,0")
    assert (twice.returncode, twice.stdout) == (1, "Error: Broker list contains duplicate entries: [0]\n")
