"""Well-framed requests with bad contents get Kafka error codes, and nothing bad is stored.

Requests are encoded with kafka-python's codec (the ``wire`` fixture), an encoder
independent of pybroker's.
"""
from __future__ import annotations

import pytest

OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21

INVALID_TOPIC_NAMES = ["bad name", "a/b", "x" * 250, ".", "..", "", "tab\tname", "ünïcode"]
CRC_OFFSET = 17  # baseOffset(8) + batchLength(4) + partitionLeaderEpoch(4) + magic(1)


def corrupt(batch: bytes, position: int) -> bytes:
    data = bytearray(batch)
    data[position] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("where", ["last_record_byte", "attributes", "crc_field"])
def test_batch_with_bad_crc_is_rejected_and_not_stored(pybroker_cluster, topic, wire, broker_serves,
                                                       where):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        good = wire.build_batch([(b"k", b"value-%d" % i) for i in range(5)])
        position = {"last_record_byte": len(good) - 1, "attributes": CRC_OFFSET + 4,
                    "crc_field": CRC_OFFSET}[where]
        reply = client.produce(topic, 0, corrupt(good, position), acks=1)
        assert reply.error_code == CORRUPT_MESSAGE
        part = client.fetch(topic, 0, 0)
        assert part.error_code == 0 and part.high_watermark == 0
        assert wire.batches_of(part.records) == []
        # The partition still takes good batches, at offset 0.
        assert client.produce(topic, 0, good, acks=1).base_offset == 0
    broker_serves(pybroker_cluster.bootstrap)


def test_batch_whose_length_disagrees_with_its_bytes_is_rejected(pybroker_cluster, topic, wire):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        good = wire.build_batch([(None, b"v")])
        # batchLength claims 1000 more bytes than the records field carries.
        lying = good[:8] + (int.from_bytes(good[8:12], "big") + 1000).to_bytes(4, "big") + good[12:]
        reply = client.produce(topic, 0, lying, acks=1)
        assert reply.error_code == CORRUPT_MESSAGE
        assert client.fetch(topic, 0, 0).high_watermark == 0


@pytest.mark.parametrize("name", INVALID_TOPIC_NAMES, ids=repr)
def test_invalid_topic_name_rejected_on_create(pybroker_cluster, wire, name):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        result = client.create_topic(name)
        assert result.error_code == INVALID_TOPIC_EXCEPTION
        listed = [t.name for t in client.metadata(None).topics]
        assert name not in listed


@pytest.mark.parametrize("name", INVALID_TOPIC_NAMES, ids=repr)
def test_invalid_topic_name_rejected_on_metadata_auto_create_and_produce(pybroker_cluster, wire,
                                                                         broker_serves, name):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        md = client.metadata([name], auto_create=True)
        assert md.topics[0].error_code == INVALID_TOPIC_EXCEPTION
        reply = client.produce(name, 0, wire.build_batch([(None, b"v")]), acks=1)
        assert reply.error_code == INVALID_TOPIC_EXCEPTION
        assert name not in [t.name for t in client.metadata(None).topics]
    # Nor was a partition directory made for it ("a/b" would nest one).
    suffix = "/" + name + "-0"
    assert [p for p in pybroker_cluster.data_dir.rglob("*") if str(p).endswith(suffix)] == []
    broker_serves(pybroker_cluster.bootstrap)


@pytest.mark.parametrize("offset", [4, 100, 2**40, -5])
def test_fetch_outside_the_log_gets_offset_out_of_range(pybroker_cluster, topic, wire, offset):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        client.produce(topic, 0, wire.build_batch([(None, b"a"), (None, b"b"), (None, b"c")]))
        assert client.fetch(topic, 0, offset).error_code == OFFSET_OUT_OF_RANGE
        # The log end itself is in range (an empty answer), and the data is intact.
        at_end = client.fetch(topic, 0, 3)
        assert at_end.error_code == 0 and wire.batches_of(at_end.records) == []
        assert [r.value for b in client.fetch_batches(topic, 0, 0) for r in b] == [b"a", b"b", b"c"]


def test_fetch_of_unknown_partition_gets_unknown_topic_or_partition(pybroker_cluster, topic, wire):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        assert client.fetch(topic, 7, 0).error_code == UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.parametrize("acks", [5, -2, 2])
def test_invalid_acks_gets_invalid_required_acks_and_stores_nothing(pybroker_cluster, topic, wire,
                                                                    acks):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        reply = client.produce(topic, 0, wire.build_batch([(None, b"v")]), acks=acks)
        assert reply.error_code == INVALID_REQUIRED_ACKS
        assert client.fetch(topic, 0, 0).high_watermark == 0
