"""`pybroker transactions` against a real broker: list, describe and describe-producers of
an open transaction, find-hanging, and abort by start offset (which releases read_committed
consumers held at the open transaction)."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT = 20.0


def cli(cluster, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "transactions",
                           "--bootstrap-server", cluster.bootstrap, *args],
                          capture_output=True, text=True, timeout=60)


def table(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("\t")[:-1]] for line in stdout.splitlines()]


def test_inspect_and_abort_an_open_transaction(cluster):
    topic = f"cli-txn-{uuid.uuid4().hex[:6]}"
    txn_id = f"cli-{uuid.uuid4().hex[:6]}"
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, b"open", partition=0)
    producer.flush(TIMEOUT)

    listed = cli(cluster, "list")
    assert listed.returncode == 0, listed.stderr
    rows = table(listed.stdout)
    assert rows[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    mine = [r for r in rows[1:] if r[0] == txn_id]
    assert len(mine) == 1 and mine[0][3] == "Ongoing"
    producer_id = mine[0][2]

    described = cli(cluster, "describe", "--transactional-id", txn_id)
    assert described.returncode == 0, described.stderr
    header, row = table(described.stdout)
    assert header[0] == "CoordinatorId" and header[-1] == "TopicPartitions"
    assert row[1:5] == [txn_id, producer_id, "0", "Ongoing"] and row[-1] == f"{topic}-0"

    producers = cli(cluster, "describe-producers", "--topic", topic, "--partition", "0")
    assert producers.returncode == 0, producers.stderr
    header, row = table(producers.stdout)
    assert header[-1] == "CurrentTransactionStartOffset"
    assert row[0] == producer_id and row[-1] == "0"

    # The coordinator knows the transaction: it is not hanging.
    hanging = cli(cluster, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0")
    assert hanging.returncode == 0, hanging.stderr
    assert table(hanging.stdout) == [["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch",
                                      "StartOffset", "LastTimestamp", "Duration(min)"]]

    plain = Producer({"bootstrap.servers": cluster.bootstrap})
    plain.produce(topic, b"after", partition=0)
    plain.flush(TIMEOUT)
    aborted = cli(cluster, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert aborted.returncode == 0, aborted.stderr
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "cli-check",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while not got and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    assert got == [b"after"]
    consumer.close()
    again = table(cli(cluster, "describe-producers", "--topic", topic, "--partition", "0").stdout)
    assert all(r[-1] == "None" for r in again[1:])


def test_errors_are_reported(cluster):
    missing = cli(cluster, "describe", "--transactional-id", "no-such-id")
    assert missing.returncode == 1 and "TransactionalIdNotFound" in missing.stderr
    unscoped = cli(cluster, "find-hanging")
    assert unscoped.returncode == 1 and "--topic or --broker-id" in unscoped.stderr
    nothing = cli(cluster, "abort", "--topic", "t", "--partition", "0")
    assert nothing.returncode == 1 and "--start-offset" in nothing.stderr
