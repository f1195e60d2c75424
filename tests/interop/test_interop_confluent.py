"""confluent-kafka (librdkafka) against a real pybroker process.

Consumers use assign() with explicit offsets: no group coordination is exercised here.
librdkafka insists on a group.id for a Consumer, so one is given with auto commit off.
"""
from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

pytestmark = pytest.mark.interop

TIMEOUT = 15.0


def producer(cluster, **conf) -> Producer:
    base = {"bootstrap.servers": cluster.bootstrap, "linger.ms": 5,
            "message.timeout.ms": int(TIMEOUT * 1000)}
    base.update(conf)
    return Producer(base)


def consumer(cluster, **conf) -> Consumer:
    base = {"bootstrap.servers": cluster.bootstrap, "group.id": "interop-assign-only",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "session.timeout.ms": 6000}
    base.update(conf)
    return Consumer(base)


def produce_all(prod: Producer, topic: str, items, partition: int = 0, **kwargs) -> list:
    """Produce (key, value) items, flush, and return the delivery reports (err, msg)."""
    reports = []
    for key, value in items:
        prod.produce(topic, value, key, partition=partition,
                     on_delivery=lambda err, msg: reports.append((err, msg)), **kwargs)
        prod.poll(0)
    remaining = prod.flush(TIMEOUT)
    assert remaining == 0, f"{remaining} messages still queued after flush"
    return reports


def consume(cons: Consumer, count: int, timeout: float = TIMEOUT) -> list:
    """Poll until ``count`` messages arrived (errors fail the test) or ``timeout``."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        msg = cons.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            pytest.fail(f"consumer error: {msg.error()}")
        out.append(msg)
    return out


def create_topic(cluster, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                            replication_factor=1, config=config or {})],
                                  operation_timeout=TIMEOUT)
    futures[topic].result(TIMEOUT)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_with_acks_then_consume_everything(pybroker_cluster, topic, acks):
    # acks=0 carries no delivery guarantee; on loopback with a healthy broker nothing is
    # lost, so all records are required: a loss here is a broker bug worth seeing.
    values = [f"acks-{acks}-{i}".encode() for i in range(200)]
    reports = produce_all(producer(pybroker_cluster, acks=acks), topic,
                          [(None, v) for v in values])
    assert [err for err, _ in reports if err is not None] == []
    if acks != "0":
        assert [msg.offset() for _, msg in reports] == list(range(200))
    cons = consumer(pybroker_cluster)
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume(cons, len(values))
    cons.close()
    assert [m.value() for m in got] == values
    assert [m.offset() for m in got] == list(range(200))


def test_idempotent_producer_delivers_each_record_once(pybroker_cluster, topic):
    values = [f"idem-{i}".encode() for i in range(300)]
    reports = produce_all(producer(pybroker_cluster, **{"enable.idempotence": True}), topic,
                          [(None, v) for v in values])
    assert [err for err, _ in reports if err is not None] == []
    cons = consumer(pybroker_cluster)
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume(cons, len(values) + 1, timeout=3.0)
    cons.close()
    assert [m.value() for m in got] == values


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip_and_stay_compressed(pybroker_cluster, topic, codec, wire):
    values = [(f"record {i} " * 40).encode() for i in range(100)]
    reports = produce_all(producer(pybroker_cluster, **{"compression.type": codec,
                                                       "linger.ms": 50}),
                          topic, [(None, v) for v in values])
    assert [err for err, _ in reports if err is not None] == []
    cons = consumer(pybroker_cluster)
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume(cons, len(values))
    cons.close()
    assert [m.value() for m in got] == values
    stored = wire.stored_codecs(pybroker_cluster, topic)
    assert stored["fetched"] == {wire.CODEC_NAMES[codec]}
    assert stored["on_disk"] == {wire.CODEC_NAMES[codec]}


def test_consume_from_earliest_reads_existing_records(pybroker_cluster, topic):
    produce_all(producer(pybroker_cluster), topic, [(None, b"old-%d" % i) for i in range(10)])
    cons = consumer(pybroker_cluster, **{"auto.offset.reset": "earliest"})
    cons.assign([TopicPartition(topic, 0)])  # no committed offset: reset applies
    got = consume(cons, 10)
    cons.close()
    assert [m.value() for m in got] == [b"old-%d" % i for i in range(10)]


def test_consume_from_latest_sees_only_records_produced_after(pybroker_cluster, topic):
    prod = producer(pybroker_cluster)
    produce_all(prod, topic, [(None, b"before-%d" % i) for i in range(10)])
    cons = consumer(pybroker_cluster, **{"enable.partition.eof": True})
    cons.assign([TopicPartition(topic, 0, OFFSET_END)])
    # Partition EOF means librdkafka resolved "latest" and fetched up to it: positioned.
    deadline = time.monotonic() + TIMEOUT
    positioned = False
    while not positioned and time.monotonic() < deadline:
        msg = cons.poll(0.2)
        if msg is not None:
            assert msg.error() and msg.error().code() == KafkaError._PARTITION_EOF, msg.value()
            positioned = True
    assert positioned, "consumer never reached the end of the partition"
    produce_all(prod, topic, [(None, b"after-%d" % i) for i in range(5)])
    got = consume(cons, 5)
    extra = consume(cons, 1, timeout=1.0)
    cons.close()
    assert [m.value() for m in got + extra] == [b"after-%d" % i for i in range(5)]


def test_offsets_for_times_returns_first_offset_at_or_after_timestamp(pybroker_cluster, topic):
    base = int(time.time() * 1000) - 100_000
    prod = producer(pybroker_cluster, **{"linger.ms": 0})
    for i in range(10):
        # One batch per record so the broker's time index sees each timestamp.
        produce_all(prod, topic, [(None, b"ts-%d" % i)], timestamp=base + i * 1000)
    cons = consumer(pybroker_cluster)
    found = cons.offsets_for_times([TopicPartition(topic, 0, base + 3500)], timeout=TIMEOUT)
    exact = cons.offsets_for_times([TopicPartition(topic, 0, base + 7000)], timeout=TIMEOUT)
    beyond = cons.offsets_for_times([TopicPartition(topic, 0, base + 60_000)], timeout=TIMEOUT)
    cons.close()
    assert found[0].error is None and found[0].offset == 4
    assert exact[0].offset == 7
    assert beyond[0].offset == -1  # no record at or after: Kafka answers offset -1


def test_admin_topic_lifecycle(pybroker_cluster, topic):
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    create_topic(pybroker_cluster, topic, partitions=3, config={"retention.ms": "3600000"})

    md = admin.list_topics(topic, timeout=TIMEOUT)
    assert len(md.topics[topic].partitions) == 3

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    assert configs["retention.ms"].value == "3600000"
    assert not configs["retention.ms"].is_default

    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(TIMEOUT)
    assert len(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions) == 5

    with pytest.raises(KafkaException) as shrink:
        admin.create_partitions([NewPartitions(topic, 2)])[topic].result(TIMEOUT)
    error = shrink.value.args[0]
    assert error.code() == KafkaError.INVALID_PARTITIONS
    assert re.search(r"reduc|decreas|shrink", error.str(), re.I), error.str()

    admin.delete_topics([topic], operation_timeout=TIMEOUT)[topic].result(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while topic in admin.list_topics(timeout=TIMEOUT).topics and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic not in admin.list_topics(timeout=TIMEOUT).topics


def test_keys_and_headers_survive(pybroker_cluster, topic):
    prod = producer(pybroker_cluster)
    headers = [("trace", b"abc"), ("empty", b""), ("dup", b"1"), ("dup", b"2"), ("none", None)]
    produce_all(prod, topic, [(b"key-1", b"v1"), (None, b"v2"), (b"", None)], headers=headers)
    cons = consumer(pybroker_cluster)
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume(cons, 3)
    cons.close()
    assert [(m.key(), m.value()) for m in got] == [(b"key-1", b"v1"), (None, b"v2"), (b"", None)]
    for m in got:
        assert m.headers() == headers


def test_many_partitions_each_keep_their_records(pybroker_cluster, topic):
    partitions = 24
    create_topic(pybroker_cluster, topic, partitions=partitions)
    prod = producer(pybroker_cluster)
    for p in range(partitions):
        produce_all(prod, topic, [(None, b"p%d-%d" % (p, i)) for i in range(5)], partition=p)
    cons = consumer(pybroker_cluster)
    cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = consume(cons, partitions * 5)
    cons.close()
    by_partition: dict[int, list] = {}
    for m in got:
        by_partition.setdefault(m.partition(), []).append(m.value())
    assert by_partition == {p: [b"p%d-%d" % (p, i) for i in range(5)] for p in range(partitions)}


def test_message_near_max_size_accepted_and_above_rejected(pybroker_cluster, topic):
    limit = 200_000
    create_topic(pybroker_cluster, topic, config={"max.message.bytes": str(limit)})
    prod = producer(pybroker_cluster, **{"linger.ms": 0, "enable.idempotence": False,
                                         "message.send.max.retries": 0})
    # A one-record batch costs 61 bytes of batch header plus ~20 of record framing.
    near = b"n" * (limit - 200)
    ok = produce_all(prod, topic, [(None, near)])
    assert ok[0][0] is None and ok[0][1].offset() == 0
    too_big = produce_all(prod, topic, [(None, b"x" * (limit + 1000))])
    assert too_big[0][0] is not None
    assert too_big[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    # librdkafka requires fetch.max.bytes >= its message.max.bytes (1,000,000).
    cons = consumer(pybroker_cluster, **{"fetch.max.bytes": 2_000_000,
                                         "max.partition.fetch.bytes": 4 * limit})
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume(cons, 2, timeout=3.0)
    cons.close()
    assert [m.value() for m in got] == [near]
