"""Thousands of partitions end to end on a 3-broker cluster: created, led, produced to by
key, consumed back exactly, and all still there, with the same data, after a clean restart
(correctness at scale; the timings are perf/partitions_bench.py's)."""
from __future__ import annotations

import collections
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.testing import wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

QUIET = {"log_level": 0}
WIDE = 1800       # partitions of the replication-factor-1 topic
REPLICATED = 200  # partitions of the replication-factor-3 topic
RECORDS = 12_000


def all_led(admin: AdminClient, topics: dict[str, int]) -> bool:
    found = admin.list_topics(timeout=30).topics
    return all(
        name in found and not found[name].error and len(found[name].partitions) == count
        and all(p.leader >= 0 for p in found[name].partitions.values())
        for name, count in topics.items())


def produce_keyed(bootstrap: str, topic: str, count: int, acks: str) -> dict[int, list[bytes]]:
    """Values acknowledged per partition, in offset order (from the delivery reports)."""
    delivered: dict[int, list[tuple[int, bytes]]] = collections.defaultdict(list)
    failed = []

    def report(err, msg):
        if err is not None:
            failed.append(err)
        else:
            delivered[msg.partition()].append((msg.offset(), msg.value()))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                         "enable.idempotence": acks == "all", **QUIET})
    for i in range(count):
        producer.produce(topic, f"value-{i}".encode(), key=f"key-{i % 5000}".encode(), on_delivery=report)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failed, failed[:3]
    return {p: [v for _, v in sorted(rows)] for p, rows in delivered.items()}


def consume_all(bootstrap: str, topic: str, partitions: int, count: int) -> dict[int, list[bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": False, **QUIET})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got: dict[int, list[bytes]] = collections.defaultdict(list)
    seen = 0

    def drained():
        nonlocal seen
        for msg in consumer.consume(5000, 0.5):
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                continue
            got[msg.partition()].append(msg.value())
            seen += 1
        return seen >= count

    try:
        wait_until(drained, timeout=120, what=f"{count} records of {topic}", interval=0)
        # Nothing beyond what was acknowledged arrives.
        assert not [m for m in consumer.consume(1000, 1.0) if not m.error()]
    finally:
        consumer.close()
    return dict(got)


def test_thousands_of_partitions_produce_consume_and_survive_a_restart(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=3, start_timeout=120)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, **QUIET})
    wide, replicated = f"wide-{uuid.uuid4().hex[:6]}", f"rf3-{uuid.uuid4().hex[:6]}"
    futures = admin.create_topics([NewTopic(wide, WIDE, 1), NewTopic(replicated, REPLICATED, 3)],
                                  request_timeout=120)
    for future in futures.values():
        future.result(120)
    topics = {wide: WIDE, replicated: REPLICATED}
    wait_until(lambda: all_led(admin, topics), timeout=120, what="a leader for every partition")

    sent = produce_keyed(cluster.bootstrap, wide, RECORDS, acks="1")
    sent_rf3 = produce_keyed(cluster.bootstrap, replicated, RECORDS // 4, acks="all")
    assert len(sent) > WIDE * 0.9  # the keys spread over (nearly) every partition
    assert consume_all(cluster.bootstrap, wide, WIDE, RECORDS) == sent
    assert consume_all(cluster.bootstrap, replicated, REPLICATED, RECORDS // 4) == sent_rf3

    cluster.restart(timeout=60)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, **QUIET})
    wait_until(lambda: all_led(admin, topics), timeout=120, what="every partition led after the restart")
    assert consume_all(cluster.bootstrap, wide, WIDE, RECORDS) == sent
    assert consume_all(cluster.bootstrap, replicated, REPLICATED, RECORDS // 4) == sent_rf3
    # Still writable everywhere after the restart.
    more = produce_keyed(cluster.bootstrap, wide, 2000, acks="1")
    assert sum(len(v) for v in more.values()) == 2000
