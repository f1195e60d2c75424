"""Slot reuse after failover: a deleted topic's records must never appear in a new topic.

Topic A (RF 3) is written at leader epoch 1 by broker 2, then deleted; its batches stay in
broker 2's shared-memory tail ring under A's offsets-table slot. Topic B (RF 3) gets the
same slot and is never written. B's leader is SIGSTOPped until B fails over to broker 2
at epoch 1 — the epoch A's batches carry — and resumed. Followers of B read broker 2's
ring for B's slot: they must take nothing of A (ring entries name their topic id), B must
stay empty on every replica, no follower may loop through append, OFFSET_OUT_OF_RANGE,
truncate, and B must then work normally.

The default variant runs with a short session timeout and stop; ``-m slow`` runs the
15 s stop of a real report.
"""
from __future__ import annotations

import json
import time
import zlib

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from pybroker import shm

A_RECORDS = 2000


def _create_assigned(bootstrap: str, topic: str, replicas: list[int]) -> None:
    """A one-partition topic with this replica order (the first is its leader)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, -1, -1, replica_assignments={0: replicas})])
    finally:
        admin.close()


def _name_in_slot(prefix: str, slot: int, capacity: int) -> str:
    """A topic name whose partition 0 hashes to ``slot`` (offsets_table's probe start)."""
    for i in range(100 * capacity):
        name = f"{prefix}{i}"
        if zlib.crc32(name.encode() + (0).to_bytes(4, "big")) % capacity == slot:
            return name
    raise AssertionError(f"no name for slot {slot}")


def _read_all(bootstrap: str, topic: str, idle_s: float = 3.0) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values, last = [], time.monotonic()
        while time.monotonic() - last < idle_s:
            for msg in consumer.consume(1000, 0.2):
                if not msg.error():
                    values.append(msg.value())
                    last = time.monotonic()
        return values
    finally:
        consumer.close()


def _log_bytes(cluster, topic: str) -> dict[int, int]:
    sizes = {}
    for broker in range(3):
        directory = cluster.data_dir / f"broker-{broker}" / f"{topic}-0"
        sizes[broker] = sum(p.stat().st_size for p in directory.glob("*.log")) if directory.exists() else None
    return sizes


def _truncation_loops(cluster, topic: str) -> int:
    text = "".join(p.read_text(errors="replace") for p in (cluster.data_dir / "logs").glob("broker-*.log"))
    return text.count(f"{topic}-0: truncated from")


def _slot_reuse_after_failover(fault_cluster, faults, session_timeout_ms: int, stop_s: float, tmp_path):
    cluster = fault_cluster(extra_args=["--session-timeout-ms", str(session_timeout_ms),
                                        "--broker-config", "replica_lag_time_max_ms=3000"])
    bootstrap = cluster.bootstrap
    # A: broker 2 leads it at epoch 1 (its first leader, 0, is stopped), then it is written.
    _create_assigned(bootstrap, "topic-a", [0, 2, 1])
    cluster.wait_full_isr("topic-a", [0])
    pid = cluster.stop_broker(0)
    faults.wait_for(lambda: (cluster.partition("topic-a", 0) or {}).get("leader") == 2,
                    session_timeout_ms / 1000 + 20, "topic-a to fail over to broker 2")
    producer = faults.SequenceProducer(bootstrap, "topic-a")
    producer.send(A_RECORDS)
    assert producer.flush(30) == 0 and len(producer.ledger.acked) == A_RECORDS
    producer.close()
    cluster.continue_broker(pid)
    assert cluster.partition("topic-a", 0)["leader_epoch"] == 1
    cluster.wait_full_isr("topic-a", [0])

    region = shm.SharedRegion.attach(shm.region_name(str(cluster.data_dir.resolve())))
    try:
        slot_a = region.offsets.find("topic-a", 0)
        topic_b = _name_in_slot("topic-b", slot_a, region.offsets.capacity)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.delete_topics(["topic-a"])["topic-a"].result(20)
        faults.wait_for(lambda: region.offsets.find("topic-a", 0) is None, 20, "topic-a's slot released")
        # B: led by broker 1 at epoch 0; its failover goes to broker 2 at epoch 1.
        _create_assigned(bootstrap, topic_b, [1, 2, 0])
        cluster.wait_full_isr(topic_b, [0])
        assert region.offsets.find(topic_b, 0) == slot_a, "the test needs B in A's old slot"
    finally:
        region.close()

    pid = cluster.stop_broker(1)
    stopped_at = time.monotonic()
    faults.wait_for(lambda: (cluster.partition(topic_b, 0) or {}).get("leader") == 2,
                    session_timeout_ms / 1000 + 20, f"{topic_b} to fail over to broker 2")
    assert cluster.partition(topic_b, 0)["leader_epoch"] == 1
    time.sleep(max(0.0, stop_s - (time.monotonic() - stopped_at)))
    cluster.continue_broker(pid)
    cluster.wait_full_isr(topic_b, [0], what=f"broker 1 back in {topic_b}'s ISR")
    time.sleep(2.0)  # room for a follower loop to show in the logs

    leaked = _read_all(bootstrap, topic_b)
    sizes = _log_bytes(cluster, topic_b)
    loops = _truncation_loops(cluster, topic_b)
    # B works normally afterwards: exactly its own records come back.
    producer = faults.SequenceProducer(bootstrap, topic_b)
    producer.send(100)
    assert producer.flush(30) == 0
    producer.close()
    after = _read_all(bootstrap, topic_b, idle_s=2.0)
    report = {"stop_s": stop_s, "session_timeout_ms": session_timeout_ms, "a_records": A_RECORDS,
              "b_records_read_before_writes": len(leaked), "b_log_bytes": sizes,
              "truncation_lines": loops, "b_records_read_after_100_writes": len(after)}
    faults.write_report(tmp_path / "slot_reuse.json", report)
    assert leaked == [], f"{topic_b} served {len(leaked)} records of the deleted topic: {leaked[:3]}"
    assert set(sizes.values()) == {0}, f"replicas of {topic_b} hold bytes: {sizes}"
    assert loops == 0, f"followers truncated {topic_b} {loops} times"
    assert sorted(int(v) for v in after) == list(range(100)), json.dumps(report)


@pytest.mark.timeout(120)
def test_slot_reuse_after_failover_serves_nothing_of_the_deleted_topic(fault_cluster, faults, tmp_path):
    _slot_reuse_after_failover(fault_cluster, faults, session_timeout_ms=3000, stop_s=5.0, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_slot_reuse_after_a_15_s_stop(fault_cluster, faults, tmp_path):
    _slot_reuse_after_failover(fault_cluster, faults, session_timeout_ms=6000, stop_s=15.0, tmp_path=tmp_path)
