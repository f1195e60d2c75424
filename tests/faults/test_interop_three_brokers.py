"""The foundation's interop checks against a 3-broker cluster with RF 3 topics: each of
confluent-kafka, kafka-python and aiokafka produces with acks=all over every codec and
reads everything back; admin clients create, describe and delete RF 3 topics; a
consumer group commits through the cluster. After each produce every replica holds the
same bytes: followers store the leader's batches as they are.

One cluster serves the whole module (per xdist worker); every test uses its own topics.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import NewTopic as KpNewTopic

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

TIMEOUT = 20.0
PARTITIONS = 3
COUNT = 300
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, faults):
    made = faults.FaultCluster(data_dir=tmp_path_factory.mktemp("cluster3"), brokers=3,
                        extra_args=["--group-initial-rebalance-delay-ms", "0"])
    try:
        yield made.start()
    finally:
        made.teardown()


@pytest.fixture
def rf3_topic(cluster, faults, topic):
    """A fresh topic with 3 partitions, RF 3 and min.insync.replicas 2, every ISR full."""
    faults.create_topic(cluster.bootstrap, topic, partitions=PARTITIONS, replication=3,
                        config={"min.insync.replicas": "2"})
    cluster.wait_full_isr(topic, range(PARTITIONS))
    return topic


def items(prefix: str) -> list[tuple[bytes, bytes]]:
    return [(b"k%d" % i, b"%s-%d-" % (prefix.encode(), i) + b"x" * 200) for i in range(COUNT)]


def assert_replicas_identical(cluster, faults, topic: str) -> None:
    """Once every high watermark reached its log end, each partition's segment files are
    byte-for-byte the same on its three replicas."""
    def settled():
        status = cluster.status()
        parts = [cluster.partition(topic, i, status) for i in range(PARTITIONS)] if status else []
        return all(p and p["high_watermark"] == p["log_end_offset"] and len(p["isr"]) == 3 for p in parts)
    faults.wait_for(settled, TIMEOUT, f"replicas of {topic} to converge")
    for index in range(PARTITIONS):
        copies = {}
        for broker_dir in sorted(cluster.data_dir.glob("broker-*")):
            segments = sorted((broker_dir / f"{topic}-{index}").glob("*.log"))
            copies[broker_dir.name] = b"".join(s.read_bytes() for s in segments)
        assert len(copies) == 3, f"{topic}-{index} is on {sorted(copies)}"
        first = next(iter(copies.values()))
        assert first and all(c == first for c in copies.values()), \
            f"{topic}-{index} replicas differ: { {k: len(v) for k, v in copies.items()} }"


# -- confluent-kafka ------------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_confluent_acks_all_round_trip_on_rf3(cluster, faults, rf3_topic, codec):
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                     "compression.type": codec, "linger.ms": 20, "message.timeout.ms": int(TIMEOUT * 1000)})
    reports = []
    for key, value in items(codec):
        prod.produce(rf3_topic, value, key, on_delivery=lambda err, msg: reports.append(err))
    assert prod.flush(TIMEOUT) == 0
    assert reports == [None] * COUNT
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "unused-assign-only",
                     "enable.auto.commit": False})
    try:
        cons.assign([TopicPartition(rf3_topic, i, 0) for i in range(PARTITIONS)])
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < COUNT and time.monotonic() < deadline:
            for msg in cons.consume(500, 0.2):
                assert not msg.error(), msg.error()
                got.append((msg.key(), msg.value()))
    finally:
        cons.close()
    assert sorted(got) == sorted(items(codec))
    assert_replicas_identical(cluster, faults, rf3_topic)


def test_confluent_group_commits_through_the_cluster(cluster, faults, rf3_topic):
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for key, value in items("group"):
        prod.produce(rf3_topic, value, key)
    assert prod.flush(TIMEOUT) == 0
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"g-{rf3_topic}",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000})
    try:
        cons.subscribe([rf3_topic])
        got = 0
        deadline = time.monotonic() + TIMEOUT
        while got < COUNT and time.monotonic() < deadline:
            for msg in cons.consume(500, 0.2):
                assert not msg.error(), msg.error()
                got += 1
        assert got == COUNT
        cons.commit(asynchronous=False)
        committed = cons.committed([TopicPartition(rf3_topic, i) for i in range(PARTITIONS)], timeout=TIMEOUT)
    finally:
        cons.close()
    committed = {tp.partition: tp.offset for tp in committed}
    assert sum(committed.values()) == COUNT, committed
    # The supervisor learns high watermarks from the brokers' periodic reports.
    faults.wait_for(lambda: {p["partition"]: p["high_watermark"] for p in cluster.status()["partitions"]
                             if p["topic"] == rf3_topic} == committed, 10,
                    f"status high watermarks to equal the committed offsets {committed}")


def test_confluent_admin_rf3_lifecycle(fault_cluster, faults, topic):
    """On a cluster of its own: deleting a topic must not disturb the others, which the
    module's shared cluster would otherwise carry into every later test."""
    cluster = fault_cluster(extra_args=["--broker-config", "replica_lag_time_max_ms=3000"])
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    assert len(admin.list_topics(timeout=TIMEOUT).brokers) == 3
    futures = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=3,
                                            config={"min.insync.replicas": "2"})], operation_timeout=TIMEOUT)
    futures[topic].result(TIMEOUT)
    cluster.wait_full_isr(topic, range(4))
    md = admin.list_topics(topic, timeout=TIMEOUT).topics[topic]
    assert sorted(md.partitions) == [0, 1, 2, 3]
    assert all(sorted(p.replicas) == [0, 1, 2] and sorted(p.isrs) == [0, 1, 2] for p in md.partitions.values())
    # Leaders are spread over the brokers, as Kafka's assignment does.
    assert len({p.leader for p in md.partitions.values()}) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    assert configs["min.insync.replicas"].value == "2"

    too_many = f"{topic}-rf4"
    futures = admin.create_topics([NewTopic(too_many, num_partitions=1, replication_factor=4)],
                                  operation_timeout=TIMEOUT)
    with pytest.raises(KafkaException) as failure:
        futures[too_many].result(TIMEOUT)
    assert failure.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR

    survivor = f"{topic}-survivor"
    faults.create_topic(cluster.bootstrap, survivor, partitions=3, replication=3,
                        config={"min.insync.replicas": "2"})
    cluster.wait_full_isr(survivor, range(3))
    admin.delete_topics([topic], operation_timeout=TIMEOUT)[topic].result(TIMEOUT)
    faults.wait_for(lambda: cluster.partition(topic, 0) is None
                    and topic not in admin.list_topics(timeout=TIMEOUT).topics, TIMEOUT,
                    f"{topic} to disappear")
    # The followers go on replicating the topics that remain: acks=all still succeeds
    # after the lag limit has passed, with every replica in the ISR.
    time.sleep(4)
    producer = faults.SequenceProducer(cluster.bootstrap, survivor, **{"message.timeout.ms": 10000})
    producer.send(300)
    assert producer.flush(15) == 0
    producer.close()
    assert len(producer.ledger.acked) == 300, f"acks=all after a delete: {list(producer.ledger.failed.items())[:3]}"
    cluster.wait_full_isr(survivor, range(3), timeout=5, what="every ISR of the remaining topic to stay whole")


# -- kafka-python ----------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_acks_all_round_trip_on_rf3(cluster, faults, rf3_topic, codec):
    prod = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", compression_type=codec,
                         linger_ms=20, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        futures = [prod.send(rf3_topic, key=k, value=v) for k, v in items(codec)]
        prod.flush(TIMEOUT)
        assert all(f.get(TIMEOUT).offset >= 0 for f in futures)
    finally:
        prod.close(TIMEOUT)
    partitions = [KpTopicPartition(rf3_topic, i) for i in range(PARTITIONS)]
    cons = KafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None, enable_auto_commit=False,
                         request_timeout_ms=int(TIMEOUT * 1000) + 1000)
    try:
        cons.assign(partitions)
        cons.seek_to_beginning(*partitions)
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < COUNT and time.monotonic() < deadline:
            for records in cons.poll(timeout_ms=200).values():
                got.extend((r.key, r.value) for r in records)
    finally:
        cons.close()
    assert sorted(got) == sorted(items(codec))
    assert_replicas_identical(cluster, faults, rf3_topic)


def test_kafka_python_admin_creates_and_deletes_rf3_topic(fault_cluster, faults, topic):
    cluster = fault_cluster()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        admin.create_topics([KpNewTopic(topic, num_partitions=2, replication_factor=3)])
        status = cluster.wait_full_isr(topic, range(2))
        assert all(sorted(cluster.partition(topic, i, status)["replicas"]) == [0, 1, 2] for i in range(2))
        admin.delete_topics([topic])
        faults.wait_for(lambda: cluster.partition(topic, 0) is None, TIMEOUT, f"{topic} to be deleted")
    finally:
        admin.close()


# -- aiokafka --------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_aiokafka_acks_all_round_trip_on_rf3(cluster, faults, rf3_topic, codec):
    async def body():
        prod = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True,
                                compression_type=codec, linger_ms=20, request_timeout_ms=int(TIMEOUT * 1000))
        await prod.start()
        try:
            futures = [await prod.send(rf3_topic, key=k, value=v) for k, v in items(codec)]
            await asyncio.gather(*futures)
        finally:
            await prod.stop()
        partitions = [AioTopicPartition(rf3_topic, i) for i in range(PARTITIONS)]
        cons = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=int(TIMEOUT * 1000) + 1000)
        await cons.start()
        got = []
        try:
            cons.assign(partitions)
            await cons.seek_to_beginning(*partitions)
            deadline = time.monotonic() + TIMEOUT
            while len(got) < COUNT and time.monotonic() < deadline:
                for records in (await cons.getmany(timeout_ms=200)).values():
                    got.extend((r.key, r.value) for r in records)
        finally:
            await cons.stop()
        return got

    got = asyncio.run(asyncio.wait_for(body(), TIMEOUT * 3))
    assert sorted(got) == sorted(items(codec))
    assert_replicas_identical(cluster, faults, rf3_topic)
