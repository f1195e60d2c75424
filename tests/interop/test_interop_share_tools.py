"""Apache Kafka 4.4's kafka-share-groups (org.apache.kafka:kafka-tools:4.4.0, fetched with
mvn at test time) resets and deletes share-group offsets on pybroker
(AlterShareGroupOffsets, DeleteShareGroupOffsets, DescribeShareGroupOffsets) and prints
what it prints against Apache Kafka 4.4 itself (tests/interop/kafka_4_4/
share_groups_offsets.txt); pybroker's own `share-groups` prints the same."""
from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.testing import BrokerCluster
from test_interop_kafka_tools import _golden, kafka_tool  # noqa: F401

pytestmark = pytest.mark.interop

# The steps of the recording, in order: no consumer takes part, so every answer is
# deterministic. share-q has 2 partitions of 5 records each.
STEPS = [
    ["--reset-offsets", "--group", "golden-share", "--topic", "share-q", "--to-offset", "3", "--execute"],
    ["--describe", "--group", "golden-share"],
    ["--reset-offsets", "--group", "golden-share", "--topic", "share-q:1", "--to-earliest", "--execute"],
    ["--describe", "--group", "golden-share"],
    ["--reset-offsets", "--group", "golden-share", "--all-topics", "--to-latest", "--export", "--dry-run"],
    ["--reset-offsets", "--group", "golden-share", "--topic", "share-q", "--to-offset", "100", "--dry-run"],
    ["--describe", "--group", "golden-share"],
    ["--delete-offsets", "--group", "golden-share", "--topic", "share-q", "--topic", "nope"],
    ["--delete-offsets", "--group", "golden-share", "--topic", "share-q"],
    ["--delete-offsets", "--group", "golden-missing", "--topic", "share-q"],
    ["--list", "--state"],
]


def normalized(stdout: str) -> str:
    """The tool's stdout with the rows of each table (and CSV lines) sorted: Kafka's
    tool prints partitions in its HashMap's order. ``--list`` keeps only this test's
    groups."""
    lines = [line for line in stdout.splitlines() if not line.startswith("SLF4J")]
    out, block = [], []
    for line in lines + [""]:
        if line and not line.startswith(("GROUP ", "TOPIC ", "Error:")):
            block.append(line)
            continue
        out.extend(sorted(block))
        block = []
        out.append(line)
    return "\n".join(out[:-1]) + "\n"


def transcript(run) -> str:
    """``run(*argv)`` is one kafka-share-groups invocation (a CompletedProcess)."""
    text = []
    for step in STEPS:
        stdout = run(*step).stdout
        if step[0] == "--list":
            stdout = "".join(line + "\n" for line in stdout.splitlines() if line.startswith(("GROUP ", "golden")))
        text.append("$ kafka-share-groups " + " ".join(step) + "\n" + normalized(stdout))
    return "".join(text)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), start_timeout=40.0) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        admin.create_topics([NewTopic("share-q", 2, 1)])["share-q"].result(30)
        producer = Producer({"bootstrap.servers": running.bootstrap})
        for i in range(10):
            producer.produce("share-q", b"r%d" % i, partition=i % 2)
        assert producer.flush(30) == 0
        yield running


@pytest.mark.timeout(1200)
def test_kafka_share_groups_resets_and_deletes_offsets_as_against_kafka(kafka_tool, cluster):
    expected = _golden("share_groups_offsets.txt")
    kafka = transcript(lambda *argv: kafka_tool("consumer.group.ShareGroupCommand", "--bootstrap-server",
                                                cluster.bootstrap, *argv))
    assert kafka == expected
    # pybroker's tool, the same steps again from the start (the last ones deleted the state).
    ours = transcript(lambda *argv: subprocess.run(
        [sys.executable, "-m", "pybroker.cli.main", "share-groups", "--bootstrap-server", cluster.bootstrap, *argv],
        capture_output=True, text=True, timeout=60))
    assert ours == expected
