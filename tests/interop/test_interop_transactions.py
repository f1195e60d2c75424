"""Transactions with confluent-kafka (librdkafka) against real pybroker processes: commit and
abort seen by read_committed and read_uncommitted consumers, a read_committed consumer
held at the last stable offset of an open transaction, zombie fencing, an abandoned
transaction aborted at its timeout, offsets committed through the transaction, and a
transaction that survives a restart of the whole cluster."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.testing import wait_until

pytestmark = pytest.mark.interop

TIMEOUT = 20.0


def topic_name(prefix: str = "txn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(cluster, topic: str, partitions: int = 1, replication: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replication)],
                        operation_timeout=TIMEOUT)[topic].result(TIMEOUT)


def txn_producer(cluster, txn_id: str, **conf) -> Producer:
    base = {"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    base.update(conf)
    producer = Producer(base)
    producer.init_transactions(TIMEOUT)
    return producer


def reader(cluster, isolation: str, **conf) -> Consumer:
    base = {"bootstrap.servers": cluster.bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False, "isolation.level": isolation}
    base.update(conf)
    return Consumer(base)


def read_values(consumer: Consumer, topic: str, want: int, partitions=(0,), timeout: float = TIMEOUT,
                quiet: float = 0.0) -> list[bytes]:
    """Values from the start of ``partitions`` until ``want`` arrived (or ``timeout``); then
    ``quiet`` more seconds in which nothing else may arrive."""
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None:
            assert msg.error() is None, msg.error()
            out.append(msg.value())
    end = time.monotonic() + quiet
    while time.monotonic() < end:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            out.append(msg.value())
    return out


def test_aborted_records_are_invisible_to_read_committed_only(pybroker_cluster):
    cluster = pybroker_cluster
    topic = topic_name()
    create_topic(cluster, topic)
    producer = txn_producer(cluster, "tx-commit-abort")
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, b"c%d" % i, partition=0)
    producer.commit_transaction(TIMEOUT)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, b"a%d" % i, partition=0)
    producer.flush(TIMEOUT)  # written to the log before the abort
    producer.abort_transaction(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, b"last", partition=0)
    producer.commit_transaction(TIMEOUT)

    committed = [b"c0", b"c1", b"c2", b"c3", b"c4", b"last"]
    assert read_values(reader(cluster, "read_committed"), topic, 6, quiet=1.0) == committed
    assert read_values(reader(cluster, "read_uncommitted"), topic, 9) == \
        [b"c0", b"c1", b"c2", b"c3", b"c4", b"a0", b"a1", b"a2", b"last"]


def test_read_committed_consumer_stops_at_the_open_transaction(pybroker_cluster):
    cluster = pybroker_cluster
    topic = topic_name()
    create_topic(cluster, topic)
    plain = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True})
    plain.produce(topic, b"before", partition=0)
    plain.flush(TIMEOUT)
    producer = txn_producer(cluster, "tx-open")
    producer.begin_transaction()
    producer.produce(topic, b"inside", partition=0)
    producer.flush(TIMEOUT)
    plain.produce(topic, b"after", partition=0)
    plain.flush(TIMEOUT)

    committed = reader(cluster, "read_committed")
    assert read_values(committed, topic, 1, quiet=1.5) == [b"before"]
    low, high = committed.get_watermark_offsets(TopicPartition(topic, 0), TIMEOUT)
    assert high == 1  # librdkafka asks for the latest offset as read_committed: the LSO
    assert read_values(reader(cluster, "read_uncommitted"), topic, 3) == [b"before", b"inside", b"after"]

    producer.commit_transaction(TIMEOUT)
    out = read_values(committed, topic, 3)
    assert out == [b"before", b"inside", b"after"]


def test_second_producer_with_the_same_transactional_id_fences_the_first(pybroker_cluster):
    cluster = pybroker_cluster
    topic = topic_name()
    create_topic(cluster, topic)
    zombie = txn_producer(cluster, "tx-zombie")
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie", partition=0)
    zombie.flush(TIMEOUT)

    successor = txn_producer(cluster, "tx-zombie")  # aborts the zombie's transaction
    with pytest.raises(KafkaException) as caught:
        zombie.commit_transaction(TIMEOUT)
    assert caught.value.args[0].fatal() or "fenced" in str(caught.value).lower()
    successor.begin_transaction()
    successor.produce(topic, b"successor", partition=0)
    successor.commit_transaction(TIMEOUT)
    assert read_values(reader(cluster, "read_committed"), topic, 1, quiet=1.0) == [b"successor"]


def test_abandoned_transaction_is_aborted_at_its_timeout(pybroker_cluster):
    cluster = pybroker_cluster
    topic = topic_name()
    create_topic(cluster, topic)
    abandoned = txn_producer(cluster, "tx-abandoned", **{"transaction.timeout.ms": 2000})
    abandoned.begin_transaction()
    abandoned.produce(topic, b"abandoned", partition=0)
    abandoned.flush(TIMEOUT)
    plain = Producer({"bootstrap.servers": cluster.bootstrap})
    plain.produce(topic, b"later", partition=0)
    plain.flush(TIMEOUT)
    # Without the timeout the open transaction would hold read_committed readers forever.
    assert read_values(reader(cluster, "read_committed"), topic, 1, timeout=TIMEOUT, quiet=0.5) == [b"later"]
    with pytest.raises(KafkaException):
        abandoned.commit_transaction(TIMEOUT)


def test_offsets_sent_to_the_transaction_reach_the_group_at_commit(pybroker_cluster):
    cluster = pybroker_cluster
    source, sink, group = topic_name("in"), topic_name("out"), f"g-{uuid.uuid4().hex[:6]}"
    create_topic(cluster, source)
    create_topic(cluster, sink)
    plain = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(4):
        plain.produce(source, b"%d" % i, partition=0)
    plain.flush(TIMEOUT)

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([source])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 4 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            got.append(msg)
    assert len(got) == 4
    producer = txn_producer(cluster, "tx-offsets")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})

    def committed_offset():
        from confluent_kafka import ConsumerGroupTopicPartitions

        result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(source, 0)])])
        return result[group].result(TIMEOUT).topic_partitions[0].offset

    producer.begin_transaction()
    for msg in got:
        producer.produce(sink, msg.value().upper(), partition=0)
    producer.send_offsets_to_transaction([TopicPartition(source, 0, got[-1].offset() + 1)],
                                         consumer.consumer_group_metadata(), TIMEOUT)
    producer.flush(TIMEOUT)
    assert committed_offset() < 0  # pending in the transaction: not yet the group's
    producer.commit_transaction(TIMEOUT)
    assert wait_until(lambda: committed_offset() == 4, TIMEOUT, "offset committed by the transaction")
    consumer.close()

    # An aborted transaction's offsets never reach the group.
    producer.begin_transaction()
    producer.produce(sink, b"x", partition=0)
    producer.send_offsets_to_transaction([TopicPartition(source, 0, 1)],
                                         Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
                                         .consumer_group_metadata(), TIMEOUT)
    producer.abort_transaction(TIMEOUT)
    time.sleep(0.5)
    assert committed_offset() == 4


def test_open_transaction_survives_a_restart_of_the_whole_cluster(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory()
    topic = topic_name()
    create_topic(cluster, topic, partitions=2)
    producer = txn_producer(cluster, "tx-restart", **{"transaction.timeout.ms": 60000})
    producer.begin_transaction()
    for i in range(6):
        producer.produce(topic, b"r%d" % i, partition=i % 2)
    producer.flush(TIMEOUT)
    cluster.restart(hard=True)
    producer.commit_transaction(TIMEOUT * 2)
    out = read_values(reader(cluster, "read_committed"), topic, 6, partitions=(0, 1))
    assert sorted(out) == [b"r%d" % i for i in range(6)]


# -- kafka-python and aiokafka --------------------------------------------------------------

def test_kafka_python_transactional_producer_and_read_committed_consumer(pybroker_cluster):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

    cluster = pybroker_cluster
    topic = topic_name("kp")
    create_topic(cluster, topic)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, transactional_id="kp-txn")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, b"c%d" % i, partition=0)
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send(topic, b"aborted", partition=0)
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(topic, b"c3", partition=0)
    producer.commit_transaction()
    producer.close()

    def read(isolation: str, want: int) -> list[bytes]:
        consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, isolation_level=isolation,
                                 enable_auto_commit=False, consumer_timeout_ms=3000)
        consumer.assign([KTP(topic, 0)])
        consumer.seek_to_beginning()
        out = [m.value for m in consumer][:want + 1]
        consumer.close()
        return out

    assert read("read_committed", 4) == [b"c0", b"c1", b"c2", b"c3"]
    assert read("read_uncommitted", 5) == [b"c0", b"c1", b"c2", b"aborted", b"c3"]
    # Their committed records read back by librdkafka too.
    assert read_values(reader(cluster, "read_committed"), topic, 4, quiet=0.5) == [b"c0", b"c1", b"c2", b"c3"]


def test_aiokafka_transactional_producer_and_read_committed_consumer(pybroker_cluster):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition as ATP

    cluster = pybroker_cluster
    topic = topic_name("aio")
    create_topic(cluster, topic)

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, transactional_id="aio-txn")
        await producer.start()
        try:
            async with producer.transaction():
                for i in range(3):
                    await producer.send_and_wait(topic, b"c%d" % i, partition=0)
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted", partition=0)
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send_and_wait(topic, b"c3", partition=0)
        finally:
            await producer.stop()
        results = {}
        for isolation in ("read_committed", "read_uncommitted"):
            consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, isolation_level=isolation,
                                        enable_auto_commit=False, auto_offset_reset="earliest")
            await consumer.start()
            try:
                consumer.assign([ATP(topic, 0)])
                await consumer.seek_to_beginning(ATP(topic, 0))
                got = []
                deadline = time.monotonic() + TIMEOUT
                want = 4 if isolation == "read_committed" else 5
                while len(got) < want and time.monotonic() < deadline:
                    batch = await consumer.getmany(timeout_ms=500)
                    got.extend(m.value for msgs in batch.values() for m in msgs)
                results[isolation] = got
            finally:
                await consumer.stop()
        return results

    results = asyncio.run(scenario())
    assert results["read_committed"] == [b"c0", b"c1", b"c2", b"c3"]
    assert results["read_uncommitted"] == [b"c0", b"c1", b"c2", b"aborted", b"c3"]
