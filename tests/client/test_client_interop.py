"""pybroker's client with the other Kafka clients, both ways, every codec; a mixed group."""
import asyncio
import threading
import time
import uuid

import pytest

from pybroker.client import Admin, Consumer, NewTopic, Producer

pytestmark = pytest.mark.interop
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 30


def new_topic(bootstrap, partitions=1):
    name = f"interop-{uuid.uuid4().hex[:10]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    return name


def expected():
    return [(b"k%d" % i, b"value-%d" % i) for i in range(N)]


def pybroker_produce(bootstrap, topic, codec):
    with Producer(bootstrap, compression_type=codec, linger_ms=20) as p:
        futures = [p.send(topic, v, key=k, partition=0, headers=[("h", b"x")]) for k, v in expected()]
    assert [f.get(10).offset for f in futures] == list(range(N))


def pybroker_consume(bootstrap, topic):
    got = []
    with Consumer(bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100) as c:
        c.assign([(topic, 0)])
        deadline = time.monotonic() + 15
        while len(got) < N and time.monotonic() < deadline:
            got += c.poll(200)
    return [(r.key, r.value) for r in got]


def confluent_consume(bootstrap, topic):
    from confluent_kafka import Consumer as CK, TopicPartition
    c = CK({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 15
    while len(got) < N and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append((m.key(), m.value()))
    c.close()
    return got


def confluent_produce(bootstrap, topic, codec):
    from confluent_kafka import Producer as CK
    p = CK({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20})
    for k, v in expected():
        p.produce(topic, v, key=k, partition=0)
    assert p.flush(15) == 0


def kafka_python_consume(bootstrap, topic):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=10000)
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    got = []
    for m in c:
        got.append((m.key, m.value))
        if len(got) >= N:
            break
    c.close()
    return got


def kafka_python_produce(bootstrap, topic, codec):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec,
                      linger_ms=20)
    for k, v in expected():
        p.send(topic, v, key=k, partition=0)
    p.flush(15)
    p.close()


def aiokafka_consume(bootstrap, topic):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            c.assign([TopicPartition(topic, 0)])
            await c.seek_to_beginning()
            got = []
            deadline = time.monotonic() + 15
            while len(got) < N and time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    got += [(m.key, m.value) for m in msgs]
            return got
        finally:
            await c.stop()
    return asyncio.run(run())


def aiokafka_produce(bootstrap, topic, codec):
    from aiokafka import AIOKafkaProducer

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec,
                             linger_ms=20)
        await p.start()
        try:
            for k, v in expected():
                await p.send(topic, v, key=k, partition=0)
            await p.flush()
        finally:
            await p.stop()
    asyncio.run(run())


CONSUMERS = {"confluent": confluent_consume, "kafka-python": kafka_python_consume, "aiokafka": aiokafka_consume}
PRODUCERS = {"confluent": confluent_produce, "kafka-python": kafka_python_produce, "aiokafka": aiokafka_produce}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("peer", sorted(CONSUMERS))
def test_pybroker_producer_to_peer_consumer(bootstrap, peer, codec):
    topic = new_topic(bootstrap)
    pybroker_produce(bootstrap, topic, codec)
    assert CONSUMERS[peer](bootstrap, topic) == expected()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("peer", sorted(PRODUCERS))
def test_peer_producer_to_pybroker_consumer(bootstrap, peer, codec):
    topic = new_topic(bootstrap)
    PRODUCERS[peer](bootstrap, topic, codec)
    assert pybroker_consume(bootstrap, topic) == expected()


def test_mixed_group_with_confluent_consumer_shares_partitions(bootstrap):
    from confluent_kafka import Consumer as CK
    topic = new_topic(bootstrap, 4)
    with Producer(bootstrap) as p:
        for i in range(40):
            p.send(topic, b"%d" % i, partition=i % 4)
    group = f"mixed-{uuid.uuid4().hex[:8]}"
    ours = Consumer(bootstrap, group_id=group, auto_offset_reset="earliest", heartbeat_interval_ms=100,
                    partition_assignment_strategy="roundrobin", fetch_max_wait_ms=100)
    ours.subscribe([topic])
    theirs = CK({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                 "partition.assignment.strategy": "roundrobin", "heartbeat.interval.ms": 100})
    theirs.subscribe([topic])
    seen_ours, seen_theirs = [], []
    stop = threading.Event()

    def run_ours():
        while not stop.is_set():
            seen_ours.extend(r.value for r in ours.poll(100))

    t = threading.Thread(target=run_ours, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (len(ours.assignment()) == 2 and len(theirs.assignment()) == 2
                                               and len(seen_ours) + len(seen_theirs) >= 40):
        m = theirs.poll(0.1)
        if m is not None and not m.error():
            seen_theirs.append(m.value())
    stop.set()
    t.join(10)
    theirs_assignment = sorted((tp.topic, tp.partition) for tp in theirs.assignment())
    assert len(ours.assignment()) == 2 and len(theirs_assignment) == 2
    assert sorted(ours.assignment() + theirs_assignment) == [(topic, p) for p in range(4)]
    # Early records may be seen twice across the rebalance, never missed.
    assert set(seen_ours) | set(seen_theirs) == {b"%d" % i for i in range(40)}
    theirs.close()
    ours.close()
