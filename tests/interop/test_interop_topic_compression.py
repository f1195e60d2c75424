"""A topic's ``compression.type``: batches are stored in the topic's codec whatever the
producer sent (Kafka's rule), and every client reads them back; ``producer`` (the
default) stores them as sent."""
from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.record import compression as codecs

pytestmark = pytest.mark.interop

VALUES = [(f"record {i} " * 30).encode() for i in range(60)]


def create(cluster, topic: str, compression_type: str):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"compression.type": compression_type})])[topic].result(15)


def produce_confluent(cluster, topic: str, codec: str, idempotent: bool = False):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "compression.type": codec, "linger.ms": 20,
                  "enable.idempotence": idempotent})
    errors = []
    for v in VALUES:
        p.produce(topic, v, partition=0, on_delivery=lambda e, m: errors.append(e) if e else None)
    assert p.flush(15) == 0 and errors == []


def produce_kafka_python(cluster, topic: str, codec: str):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap, compression_type=codec, linger_ms=20)
    for v in VALUES:
        p.send(topic, v, partition=0)
    p.flush(15)
    p.close()


def consume_confluent(cluster, topic: str, count: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    try:
        for _ in range(200):
            m = c.poll(0.1)
            if m is not None and not m.error():
                got.append(m.value())
            if len(got) >= count:
                break
    finally:
        c.close()
    return got


def consume_kafka_python(cluster, topic: str, count: int) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False, group_id=None)
    c.assign([KTP(topic, 0)])
    c.seek_to_beginning()
    got = []
    try:
        for _ in range(100):
            for records in c.poll(timeout_ms=100).values():
                got.extend(r.value for r in records)
            if len(got) >= count:
                break
    finally:
        c.close()
    return got


@pytest.mark.parametrize("topic_codec, producers", [
    ("zstd", [("confluent", "none"), ("kafka-python", "gzip")]),
    ("lz4", [("confluent", "snappy"), ("confluent", "lz4")]),
    ("uncompressed", [("kafka-python", "gzip"), ("confluent", "zstd")]),
    ("gzip", [("confluent", "none")]),
    ("snappy", [("kafka-python", "lz4")]),
])
def test_batches_are_stored_in_the_topics_codec(pybroker_cluster, topic, wire, topic_codec, producers):
    create(pybroker_cluster, topic, topic_codec)
    for client, codec in producers:
        (produce_confluent if client == "confluent" else produce_kafka_python)(pybroker_cluster, topic, codec)
    expected = VALUES * len(producers)
    assert consume_confluent(pybroker_cluster, topic, len(expected)) == expected
    assert consume_kafka_python(pybroker_cluster, topic, len(expected)) == expected
    want = codecs.NONE if topic_codec == "uncompressed" else codecs.codec_by_name(topic_codec)
    assert wire.stored_codecs(pybroker_cluster, topic) == {"fetched": {want}, "on_disk": {want}}


def test_idempotent_producer_keeps_its_sequences_through_recompression(pybroker_cluster, topic, wire):
    create(pybroker_cluster, topic, "zstd")
    produce_confluent(pybroker_cluster, topic, "none", idempotent=True)
    produce_confluent(pybroker_cluster, topic, "gzip", idempotent=True)
    assert consume_confluent(pybroker_cluster, topic, 2 * len(VALUES)) == VALUES * 2
    batches = [b for seg in sorted(pybroker_cluster.data_dir.rglob(f"{topic}-0/*.log"))
               for b in wire.batches_of(seg.read_bytes())]
    assert {b.compression_type for b in batches} == {codecs.ZSTD}
    assert all(b.producer_id >= 0 and b.base_sequence >= 0 for b in batches)


def test_producer_setting_stores_batches_as_sent(pybroker_cluster, topic, wire):
    create(pybroker_cluster, topic, "producer")
    produce_confluent(pybroker_cluster, topic, "lz4")
    produce_confluent(pybroker_cluster, topic, "none")
    assert consume_confluent(pybroker_cluster, topic, 2 * len(VALUES)) == VALUES * 2
    assert wire.stored_codecs(pybroker_cluster, topic)["on_disk"] == {codecs.LZ4, codecs.NONE}


def test_unknown_compression_type_is_an_invalid_config(pybroker_cluster, topic):
    from confluent_kafka import KafkaException
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    with pytest.raises(KafkaException, match="compression.type"):
        admin.create_topics([NewTopic(topic, 1, 1, config={"compression.type": "brotli"})])[topic].result(15)
