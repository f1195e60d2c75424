"""ListOffsets' special timestamps from unmodified admin clients: MAX_TIMESTAMP (-3,
KIP-734), EARLIEST_LOCAL (-4, KIP-405) and LATEST_TIERED (-5, KIP-1005), in the versions
pybroker advertises."""
from __future__ import annotations

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.protocol.consumer.offsets import OffsetSpec as KafkaOffsetSpec

pytestmark = pytest.mark.interop

TIMEOUT = 15.0
# Record timestamps out of order: the largest is the third record (offset 2).
TIMESTAMPS = [1_700_000_000_000, 1_700_000_050_000, 1_700_000_090_000, 1_700_000_020_000]


@pytest.fixture
def filled_topic(pybroker_cluster, topic):
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": pybroker_cluster.bootstrap, "linger.ms": 0})
    for ts in TIMESTAMPS:
        producer.produce(topic, b"v", partition=0, timestamp=ts)
        producer.flush(TIMEOUT)  # one batch per record: the max is found inside the log
    return topic


def test_confluent_max_timestamp_and_earliest_local(pybroker_cluster, filled_topic):
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    tp = TopicPartition(filled_topic, 0)
    got = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(TIMEOUT)
    assert (got.offset, got.timestamp) == (2, TIMESTAMPS[2])
    earliest = admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(TIMEOUT)
    assert earliest.offset == 0


def test_confluent_max_timestamp_of_an_empty_partition_is_none(pybroker_cluster, topic):
    admin = AdminClient({"bootstrap.servers": pybroker_cluster.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    tp = TopicPartition(topic, 0)
    got = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(TIMEOUT)
    assert (got.offset, got.timestamp) == (-1, -1)


def test_kafka_python_every_offset_spec(pybroker_cluster, filled_topic):
    admin = KafkaAdminClient(bootstrap_servers=pybroker_cluster.bootstrap)
    tp = KafkaTopicPartition(filled_topic, 0)
    try:
        got = {spec: admin.list_partition_offsets({tp: spec})[tp] for spec in KafkaOffsetSpec}
    finally:
        admin.close()
    assert got[KafkaOffsetSpec.LATEST].offset == 4
    assert got[KafkaOffsetSpec.EARLIEST].offset == 0
    assert (got[KafkaOffsetSpec.MAX_TIMESTAMP].offset, got[KafkaOffsetSpec.MAX_TIMESTAMP].timestamp) == \
        (2, TIMESTAMPS[2])
    assert got[KafkaOffsetSpec.EARLIEST_LOCAL].offset == 0
    # Nothing is tiered: Kafka answers -1 for a topic without remote storage.
    assert got[KafkaOffsetSpec.LATEST_TIERED].offset == -1
