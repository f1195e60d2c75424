"""pybroker's own transactional Producer and read_committed Consumer against a real broker,
and both against librdkafka: commit and abort, zombie fencing, offsets sent to the
transaction, and the checks a transactional producer makes before it sends."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer as PeerConsumer, Producer as PeerProducer, TopicPartition

from pybroker import errors
from pybroker.client import Admin, Consumer, NewTopic, Producer
from pybroker.testing import wait_until

TIMEOUT = 20.0


def new_topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"ctx-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    return name


def read(bootstrap: str, topic: str, isolation: str, want: int, partitions=(0,), quiet: float = 0.5) -> list[bytes]:
    consumer = Consumer(bootstrap, isolation_level=isolation)
    consumer.assign([(topic, p) for p in partitions])
    for p in partitions:
        consumer.seek((topic, p), 0)
    out: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    while len(out) < want and time.monotonic() < deadline:
        out.extend(r.value for r in consumer.poll(200))
    end = time.monotonic() + quiet
    while time.monotonic() < end:
        out.extend(r.value for r in consumer.poll(100))
    consumer.close()
    return out


def peer_read(bootstrap: str, topic: str, want: int) -> list[bytes]:
    consumer = PeerConsumer({"bootstrap.servers": bootstrap, "group.id": "peer-reader",
                             "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + TIMEOUT
    while len(out) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            out.append(msg.value())
    consumer.close()
    return out


def test_commit_and_abort_with_pybroker_clients_on_both_sides(bootstrap):
    topic = new_topic(bootstrap)
    producer = Producer(bootstrap, transactional_id=f"own-{uuid.uuid4().hex[:6]}")
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, b"c%d" % i, partition=0)
    producer.commit_transaction(TIMEOUT)
    producer.begin_transaction()
    producer.send(topic, b"aborted", partition=0)
    producer.flush(TIMEOUT)
    producer.abort_transaction(TIMEOUT)
    producer.begin_transaction()
    producer.send(topic, b"c3", partition=0)
    producer.commit_transaction(TIMEOUT)
    producer.begin_transaction()  # an empty transaction ends without the coordinator
    producer.commit_transaction(TIMEOUT)
    producer.close()

    committed = [b"c0", b"c1", b"c2", b"c3"]
    assert read(bootstrap, topic, "read_committed", 4) == committed
    assert read(bootstrap, topic, "read_uncommitted", 5) == [b"c0", b"c1", b"c2", b"aborted", b"c3"]
    assert peer_read(bootstrap, topic, 4) == committed


def test_pybroker_read_committed_consumer_skips_librdkafka_aborts(bootstrap):
    topic = new_topic(bootstrap)
    peer = PeerProducer({"bootstrap.servers": bootstrap, "transactional.id": f"peer-{uuid.uuid4().hex[:6]}"})
    peer.init_transactions(TIMEOUT)
    for n in range(4):
        peer.begin_transaction()
        peer.produce(topic, b"t%d" % n, partition=0)
        peer.flush(TIMEOUT)
        if n % 2:
            peer.abort_transaction(TIMEOUT)
        else:
            peer.commit_transaction(TIMEOUT)
    assert read(bootstrap, topic, "read_committed", 2) == [b"t0", b"t2"]


def test_second_producer_fences_the_first(bootstrap):
    topic = new_topic(bootstrap)
    txn_id = f"fence-{uuid.uuid4().hex[:6]}"
    zombie = Producer(bootstrap, transactional_id=txn_id)
    zombie.init_transactions(TIMEOUT)
    zombie.begin_transaction()
    zombie.send(topic, b"zombie", partition=0)
    zombie.flush(TIMEOUT)
    successor = Producer(bootstrap, transactional_id=txn_id)
    successor.init_transactions(TIMEOUT)
    with pytest.raises(errors.KafkaError):
        zombie.commit_transaction(TIMEOUT)
    successor.begin_transaction()
    successor.send(topic, b"successor", partition=0)
    successor.commit_transaction(TIMEOUT)
    zombie.close(1)
    successor.close()
    assert read(bootstrap, topic, "read_committed", 1) == [b"successor"]


def test_offsets_committed_with_the_transaction(bootstrap):
    source, sink = new_topic(bootstrap), new_topic(bootstrap)
    group = f"own-g-{uuid.uuid4().hex[:6]}"
    plain = Producer(bootstrap)
    for i in range(3):
        plain.send(source, b"%d" % i, partition=0)
    plain.close()
    consumer = Consumer(bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                        isolation_level="read_committed")
    consumer.subscribe([source])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 3 and time.monotonic() < deadline:
        got.extend(consumer.poll(200))
    producer = Producer(bootstrap, transactional_id=f"own-off-{uuid.uuid4().hex[:6]}")
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for rec in got:
        producer.send(sink, rec.value, partition=0)
    producer.send_offsets_to_transaction({(source, 0): got[-1].offset + 1}, consumer.group_metadata(), TIMEOUT)
    assert consumer.committed((source, 0)) in (None, -1)
    producer.commit_transaction(TIMEOUT)
    # Applied once the commit's markers are written, just after commit returns.
    wait_until(lambda: consumer.committed((source, 0)) == 3, TIMEOUT, "the transaction's offset")
    producer.close()
    consumer.close()


def test_transactional_producer_refuses_to_send_outside_a_transaction(bootstrap):
    producer = Producer(bootstrap, transactional_id=f"strict-{uuid.uuid4().hex[:6]}")
    with pytest.raises(RuntimeError):
        producer.send("anything", b"x")
    producer.init_transactions(TIMEOUT)
    with pytest.raises(RuntimeError):
        producer.send("anything", b"x")
    with pytest.raises(RuntimeError):
        producer.commit_transaction(TIMEOUT)
    producer.close()
    with pytest.raises(ValueError):
        Producer(bootstrap, transactional_id="x", enable_idempotence=False)


def test_fencing_error_is_mapped_for_old_request_versions(bootstrap):
    from pybroker.client.cluster import Client
    from pybroker.protocol import api

    txn_id = f"versions-{uuid.uuid4().hex[:6]}"
    with Client(bootstrap) as client:
        conn = client.any_connection()
        found = conn.request(api.FIND_COORDINATOR, {"key": txn_id, "key_type": 1, "coordinator_keys": [txn_id]}, 4)
        assert found["coordinators"][0]["error_code"] == 0 and found["coordinators"][0]["node_id"] >= 0
        body = {"transactional_id": txn_id, "transaction_timeout_ms": 10000, "producer_id": -1, "producer_epoch": -1}
        first = conn.request(api.INIT_PRODUCER_ID, body, 4)
        assert first["error_code"] == 0
        stale = {**body, "producer_id": first["producer_id"], "producer_epoch": first["producer_epoch"] + 5}
        assert conn.request(api.INIT_PRODUCER_ID, stale, 4)["error_code"] == errors.ProducerFenced.code
        assert conn.request(api.INIT_PRODUCER_ID, stale, 3)["error_code"] == errors.InvalidProducerEpoch.code
        too_long = {**body, "transaction_timeout_ms": 15 * 60 * 1000 + 1}
        assert conn.request(api.INIT_PRODUCER_ID, too_long, 4)["error_code"] == errors.InvalidTransactionTimeout.code
