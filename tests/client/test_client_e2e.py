"""Admin, Producer and Consumer against a real pybroker broker."""
import time
import uuid

import pytest

from pybroker import errors
from pybroker.client import Admin, Consumer, NewTopic, Producer
from pybroker.client.partitioner import partition_for_key


@pytest.fixture
def admin(bootstrap):
    with Admin(bootstrap, timeout=10) as a:
        yield a


def make_topic(admin, partitions=1, configs=None):
    name = f"client-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, partitions, 1, configs or {})])
    return name


def consume_all(bootstrap, topic, partitions, expected, timeout=10.0):
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, p) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            out += consumer.poll(500)
        return out


def test_admin_creates_describes_and_deletes(admin):
    name = make_topic(admin, 3, {"retention.ms": "120000"})
    assert name in admin.list_topics()
    (info,) = admin.describe_topics([name])
    assert sorted(info.partitions) == [0, 1, 2]
    assert all(p.leader == 0 and p.replicas == (0,) and p.isr == (0,) for p in info.partitions.values())
    configs = admin.describe_configs(name)
    assert configs["retention.ms"].value == "120000" and not configs["retention.ms"].is_default
    admin.delete_topics([name])
    assert name not in admin.list_topics()


def test_admin_errors_carry_the_brokers_message(admin):
    name = make_topic(admin, 2)
    with pytest.raises(errors.TopicAlreadyExists):
        admin.create_topics([NewTopic(name, 1, 1)])
    with pytest.raises(errors.InvalidPartitions) as info:
        admin.create_partitions({name: 1})
    assert "2" in str(info.value)
    with pytest.raises(errors.UnknownTopicOrPartition):
        admin.describe_topics(["never-created-" + uuid.uuid4().hex])


def test_keyed_records_land_on_the_murmur2_partition(bootstrap, admin):
    name = make_topic(admin, 4)
    keys = [f"user-{i}".encode() for i in range(40)]
    with Producer(bootstrap, acks="all") as producer:
        futures = [producer.send(name, b"v", key=k) for k in keys]
        producer.flush()
        placed = [f.get() for f in futures]
    for key, meta in zip(keys, placed):
        assert meta.partition == partition_for_key(key, 4)
        assert meta.offset >= 0
    got = consume_all(bootstrap, name, range(4), 40)
    assert sorted(r.key for r in got) == sorted(keys)
    for rec in got:
        assert rec.partition == partition_for_key(rec.key, 4)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_compression_round_trips_headers_and_nulls(bootstrap, admin, codec):
    name = make_topic(admin)
    with Producer(bootstrap, compression=codec, batch_size=512) as producer:
        for i in range(200):
            producer.send(name, None if i == 7 else b"value-%d" % i, key=None if i % 2 else b"k%d" % i,
                          headers=[("i", b"%d" % i), ("empty", None)], partition=0, timestamp_ms=1700000000000 + i)
    got = consume_all(bootstrap, name, [0], 200)
    assert [r.offset for r in got] == list(range(200))
    assert got[7].value is None and got[8].value == b"value-8"
    assert got[3].key is None and got[4].key == b"k4"
    assert got[5].headers == [("i", b"5"), ("empty", None)]
    assert got[9].timestamp == 1700000000009 and got[9].timestamp_type == "CreateTime"


def test_consumer_seek_position_and_end(bootstrap, admin):
    name = make_topic(admin)
    with Producer(bootstrap) as producer:
        for i in range(30):
            producer.send(name, b"%d" % i, partition=0)
    tp = (name, 0)
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([tp])
        assert consumer.position(tp) == 0
        consumer.seek(tp, 25)
        got = []
        while len(got) < 5:
            got += consumer.poll(2000)
        assert [r.value for r in got] == [b"25", b"26", b"27", b"28", b"29"]
        assert consumer.position(tp) == 30
        consumer.seek_to_beginning()
        first = consumer.poll(2000, max_records=3)
        assert [r.offset for r in first] == [0, 1, 2]
        assert consumer.position(tp) == 3
        consumer.seek_to_end()
        assert consumer.position(tp) == 30
        assert consumer.poll(200) == []


def test_out_of_range_position_resets_by_policy(bootstrap, admin):
    name = make_topic(admin)
    with Producer(bootstrap) as producer:
        for i in range(5):
            producer.send(name, b"%d" % i, partition=0)
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(name, 0)])
        consumer.seek((name, 0), 1000)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            got += consumer.poll(500)
        assert [r.offset for r in got] == [0, 1, 2, 3, 4]
    with Consumer(bootstrap, auto_offset_reset="none") as strict:
        strict.assign([(name, 0)])
        strict.seek((name, 0), 1000)
        with pytest.raises(errors.OffsetOutOfRange):
            strict.poll(2000)


def test_list_offsets_earliest_latest_and_by_time(bootstrap, admin):
    name = make_topic(admin)
    with Producer(bootstrap) as producer:
        for i in range(10):
            producer.send(name, b"x", partition=0, timestamp_ms=1700000000000 + 1000 * i)
    offsets = admin.list_offsets({(name, 0): -2})
    assert offsets[(name, 0)][0] == 0
    assert admin.list_offsets({(name, 0): -1})[(name, 0)][0] == 10
    assert admin.list_offsets({(name, 0): 1700000004500})[(name, 0)][0] == 5


def test_acks_zero_sends_without_waiting(bootstrap, admin):
    name = make_topic(admin)
    with Producer(bootstrap, acks=0) as producer:
        future = producer.send(name, b"fire-and-forget", partition=0)
        producer.flush()
        assert future.get().offset == -1
    got = consume_all(bootstrap, name, [0], 1)
    assert [r.value for r in got] == [b"fire-and-forget"]


def test_producer_reports_a_missing_partition(bootstrap, admin):
    name = make_topic(admin, 2)
    with Producer(bootstrap) as producer:
        with pytest.raises(errors.UnknownTopicOrPartition):
            producer.send(name, b"x", partition=2)
