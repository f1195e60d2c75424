"""kafka-python against a real pybroker process.

Consumers use assign() without a group id (kafka-python allows it), so no group
coordination is exercised. kafka-python 3 turns idempotence on by default, which needs
acks=all; tests of other acks turn it off explicitly.
"""
from __future__ import annotations

import re
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kerrors
from kafka.admin import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.interop

TIMEOUT = 15.0


def producer(cluster, **conf) -> KafkaProducer:
    conf.setdefault("linger_ms", 5)
    conf.setdefault("request_timeout_ms", int(TIMEOUT * 1000))
    return KafkaProducer(bootstrap_servers=cluster.bootstrap, **conf)


def consumer(cluster, **conf) -> KafkaConsumer:
    conf.setdefault("request_timeout_ms", int(TIMEOUT * 1000) + 1000)
    return KafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None,
                         enable_auto_commit=False, **conf)


def admin(cluster) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=cluster.bootstrap,
                            request_timeout_ms=int(TIMEOUT * 1000))


def send_all(prod: KafkaProducer, topic: str, items, partition: int = 0, **kwargs) -> list:
    """Send (key, value) items, flush, and return each record's metadata."""
    futures = [prod.send(topic, value=v, key=k, partition=partition, **kwargs) for k, v in items]
    prod.flush(TIMEOUT)
    return [f.get(TIMEOUT) for f in futures]


def consume(cons: KafkaConsumer, count: int, timeout: float = TIMEOUT) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for records in cons.poll(timeout_ms=200).values():
            out.extend(records)
    return out


def assigned_from_beginning(cluster, partitions, **conf) -> KafkaConsumer:
    cons = consumer(cluster, **conf)
    cons.assign(partitions)
    cons.seek_to_beginning(*partitions)
    return cons


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_with_acks_then_consume_everything(pybroker_cluster, topic, acks):
    # acks=0 carries no delivery guarantee; on loopback with a healthy broker nothing is
    # lost, so all records are required: a loss here is a broker bug worth seeing.
    values = [f"acks-{acks}-{i}".encode() for i in range(200)]
    prod = producer(pybroker_cluster, acks=acks, enable_idempotence=(acks == "all"))
    metas = send_all(prod, topic, [(None, v) for v in values])
    prod.close()
    if acks != 0:
        assert [m.offset for m in metas] == list(range(200))
    tp = TopicPartition(topic, 0)
    cons = assigned_from_beginning(pybroker_cluster, [tp])
    got = consume(cons, len(values))
    cons.close()
    assert [r.value for r in got] == values
    assert [r.offset for r in got] == list(range(200))


def test_idempotent_producer_delivers_each_record_once(pybroker_cluster, topic):
    values = [f"idem-{i}".encode() for i in range(300)]
    prod = producer(pybroker_cluster, acks="all", enable_idempotence=True)
    metas = send_all(prod, topic, [(None, v) for v in values])
    prod.close()
    assert [m.offset for m in metas] == list(range(300))
    cons = assigned_from_beginning(pybroker_cluster, [TopicPartition(topic, 0)])
    got = consume(cons, len(values) + 1, timeout=3.0)
    cons.close()
    assert [r.value for r in got] == values


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip_and_stay_compressed(pybroker_cluster, topic, codec, wire):
    values = [(f"record {i} " * 40).encode() for i in range(100)]
    prod = producer(pybroker_cluster, compression_type=codec, linger_ms=50)
    send_all(prod, topic, [(None, v) for v in values])
    prod.close()
    cons = assigned_from_beginning(pybroker_cluster, [TopicPartition(topic, 0)])
    got = consume(cons, len(values))
    cons.close()
    assert [r.value for r in got] == values
    stored = wire.stored_codecs(pybroker_cluster, topic)
    assert stored["fetched"] == {wire.CODEC_NAMES[codec]}
    assert stored["on_disk"] == {wire.CODEC_NAMES[codec]}


def test_consume_from_earliest_reads_existing_records(pybroker_cluster, topic):
    prod = producer(pybroker_cluster)
    send_all(prod, topic, [(None, b"old-%d" % i) for i in range(10)])
    prod.close()
    cons = consumer(pybroker_cluster, auto_offset_reset="earliest")
    cons.assign([TopicPartition(topic, 0)])  # no committed offset: the reset applies
    got = consume(cons, 10)
    cons.close()
    assert [r.value for r in got] == [b"old-%d" % i for i in range(10)]


def test_consume_from_latest_sees_only_records_produced_after(pybroker_cluster, topic):
    prod = producer(pybroker_cluster)
    send_all(prod, topic, [(None, b"before-%d" % i) for i in range(10)])
    tp = TopicPartition(topic, 0)
    cons = consumer(pybroker_cluster)
    cons.assign([tp])
    cons.seek_to_end(tp)
    assert cons.position(tp, timeout_ms=int(TIMEOUT * 1000)) == 10  # positioned
    send_all(prod, topic, [(None, b"after-%d" % i) for i in range(5)])
    prod.close()
    got = consume(cons, 5)
    extra = consume(cons, 1, timeout=1.0)
    cons.close()
    assert [r.value for r in got + extra] == [b"after-%d" % i for i in range(5)]


def test_offsets_for_times_returns_first_offset_at_or_after_timestamp(pybroker_cluster, topic):
    base = int(time.time() * 1000) - 100_000
    prod = producer(pybroker_cluster, linger_ms=0)
    for i in range(10):
        # One batch per record so the broker's time index sees each timestamp.
        send_all(prod, topic, [(None, b"ts-%d" % i)], timestamp_ms=base + i * 1000)
    prod.close()
    tp = TopicPartition(topic, 0)
    cons = consumer(pybroker_cluster)
    found = cons.offsets_for_times({tp: base + 3500})[tp]
    exact = cons.offsets_for_times({tp: base + 7000})[tp]
    beyond = cons.offsets_for_times({tp: base + 60_000})[tp]
    cons.close()
    assert found.offset == 4 and found.timestamp == base + 4000
    assert exact.offset == 7 and exact.timestamp == base + 7000
    assert beyond is None  # nothing at or after: Kafka answers offset -1


def test_admin_topic_lifecycle(pybroker_cluster, topic):
    client = admin(pybroker_cluster)
    client.create_topics({topic: {"num_partitions": 3, "replication_factor": 1,
                                  "configs": {"retention.ms": "3600000"}}})
    assert sorted(p["partition_index"] for p in client.describe_topics([topic])[0]["partitions"]) == [0, 1, 2]

    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    modified = client.describe_configs([resource])["topic"][topic]
    assert modified["retention.ms"]["value"] == "3600000"  # the override shows as modified

    client.create_partitions({topic: 5})
    assert len(client.describe_topics([topic])[0]["partitions"]) == 5

    with pytest.raises(kerrors.InvalidPartitionsError) as shrink:
        client.create_partitions({topic: 2})
    assert re.search(r"reduc|decreas|shrink", str(shrink.value), re.I), str(shrink.value)

    client.delete_topics([topic])
    deadline = time.monotonic() + TIMEOUT
    while topic in client.list_topics() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic not in client.list_topics()
    client.close()


def test_keys_and_headers_survive(pybroker_cluster, topic):
    # kafka-python's send() only takes bytes header values (no null ones).
    headers = [("trace", b"abc"), ("empty", b""), ("dup", b"1"), ("dup", b"2")]
    prod = producer(pybroker_cluster)
    send_all(prod, topic, [(b"key-1", b"v1"), (None, b"v2"), (b"", None)], headers=headers)
    prod.close()
    cons = assigned_from_beginning(pybroker_cluster, [TopicPartition(topic, 0)])
    got = consume(cons, 3)
    cons.close()
    assert [(r.key, r.value) for r in got] == [(b"key-1", b"v1"), (None, b"v2"), (b"", None)]
    for r in got:
        assert list(r.headers) == headers


def test_many_partitions_each_keep_their_records(pybroker_cluster, topic):
    partitions = 24
    client = admin(pybroker_cluster)
    client.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
    client.close()
    prod = producer(pybroker_cluster)
    for p in range(partitions):
        send_all(prod, topic, [(None, b"p%d-%d" % (p, i)) for i in range(5)], partition=p)
    prod.close()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    cons = assigned_from_beginning(pybroker_cluster, tps)
    got = consume(cons, partitions * 5)
    cons.close()
    by_partition: dict[int, list] = {}
    for r in got:
        by_partition.setdefault(r.partition, []).append(r.value)
    assert by_partition == {p: [b"p%d-%d" % (p, i) for i in range(5)] for p in range(partitions)}


def test_message_near_max_size_accepted_and_above_rejected(pybroker_cluster, topic):
    limit = 200_000
    client = admin(pybroker_cluster)
    client.create_topics({topic: {"num_partitions": 1, "replication_factor": 1,
                                  "configs": {"max.message.bytes": str(limit)}}})
    client.close()
    prod = producer(pybroker_cluster, linger_ms=0, retries=0, enable_idempotence=False)
    near = b"n" * (limit - 200)  # a one-record batch adds ~80 bytes of framing
    assert send_all(prod, topic, [(None, near)])[0].offset == 0
    with pytest.raises(kerrors.MessageSizeTooLargeError):
        send_all(prod, topic, [(None, b"x" * (limit + 1000))])
    prod.close()
    cons = assigned_from_beginning(pybroker_cluster, [TopicPartition(topic, 0)],
                                   max_partition_fetch_bytes=4 * limit, fetch_max_bytes=4 * limit)
    got = consume(cons, 2, timeout=3.0)
    cons.close()
    assert [r.value for r in got] == [near]
