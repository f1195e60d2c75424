"""Compacted topics against real broker processes and unmodified clients: the log cleaner
of every replica keeps the latest value per key, consumers (confluent-kafka and
kafka-python) read the compacted log from the beginning, offsets keep their gaps, a
keyless record is refused with INVALID_RECORD, and a new leader serves the same result."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from pybroker.cli.status import fetch_status
from pybroker.record import batch as rb
from pybroker.testing import wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TIMEOUT = 20.0
KEYS = [b"key-%d" % k for k in range(5)]
ROUNDS = 60
FILLER = 40
CLEANER_ARGS = ["--broker-config", "log_cleaner_backoff_ms=200"]
TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}


def _create(bootstrap: str, topic: str, replication: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=1, replication_factor=replication, config=TOPIC_CONFIG)
    admin.create_topics([new], operation_timeout=TIMEOUT)[topic].result(TIMEOUT)


def _produce_updates(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """Many updates of few keys, then keys written once each, enough to fill more than a
    segment: the active segment (never cleaned) then holds no key twice, so a fully
    cleaned log has exactly one record per key. Returns the latest value per key."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2, "batch.size": 1000,
                         "message.timeout.ms": int(TIMEOUT * 1000)})
    failures: list = []
    latest = {}
    on_delivery = lambda err, _msg: err is not None and failures.append(err)  # noqa: E731
    for r in range(ROUNDS):
        for key in KEYS:
            value = b"%s=%d" % (key, r) + b"." * 40
            producer.produce(topic, value, key=key, partition=0, on_delivery=on_delivery)
            latest[key] = value
        producer.poll(0)
    for n in range(FILLER):
        key, value = b"once-%d" % n, b"v" * 150
        producer.produce(topic, value, key=key, partition=0, on_delivery=on_delivery)
        latest[key] = value
    assert producer.flush(TIMEOUT) == 0 and not failures, failures
    return latest


def _replica_records(partition_dir) -> list[rb.Record] | None:
    """The records on disk in one replica's partition directory, or None if a file moved
    underneath (a swap in progress): read again."""
    out = []
    try:
        for path in sorted(partition_dir.glob("*.log")):
            out.extend(rb.iter_records(path.read_bytes()))
    except (FileNotFoundError, Exception):
        return None
    return out


def _fully_compacted(cluster, topic: str, replicas: int) -> bool:
    dirs = sorted(cluster.data_dir.rglob(f"{topic}-0"))
    if len(dirs) != replicas:
        return False
    for d in dirs:
        found = _replica_records(d)
        if found is None:
            return False
        keys = [r.key for r in found]
        if len(keys) != len(set(keys)) or len(keys) != len(KEYS) + FILLER:
            return False
    return True


def _consume_confluent(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"cmp-{time.monotonic_ns()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(got) < count and time.monotonic() < deadline:
            m = consumer.poll(0.2)
            if m is not None and not m.error():
                got.append((m.offset(), m.key(), m.value()))
    finally:
        consumer.close()
    return got


def _consume_kafka_python(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes, bytes]]:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    consumer.assign([KTP(topic, 0)])
    consumer.seek_to_beginning()
    got = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend((r.offset, r.key, r.value) for r in records)
    finally:
        consumer.close()
    return got


def _check_exactly_latest(got: list[tuple[int, bytes, bytes]], latest: dict[bytes, bytes]) -> None:
    assert {key: value for _, key, value in got} == latest
    assert len(got) == len(latest)  # one record per key: nothing older survived
    offsets = [offset for offset, _, _ in got]
    assert offsets == sorted(set(offsets))
    assert offsets[-1] + 1 > len(offsets)  # compaction left gaps from offset 0 on


def _status(cluster) -> dict:
    return asyncio.run(fetch_status(str(cluster.data_dir.resolve())))


def test_compacted_topic_keeps_latest_value_per_key(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(extra_args=CLEANER_ARGS)
    bootstrap = cluster.bootstrap
    _create(bootstrap, topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    configs = next(iter(described.values())).result(TIMEOUT)
    assert configs["min.cleanable.dirty.ratio"].value == "0.01"
    assert configs["delete.retention.ms"].value == "86400000"
    latest = _produce_updates(bootstrap, topic)
    wait_until(lambda: _fully_compacted(cluster, topic, 1), TIMEOUT, "the log cleaner")
    broker_log = cluster.data_dir / "logs" / "broker-0.log"
    wait_until(lambda: "cleaned " in broker_log.read_text(), TIMEOUT, "the cleaner's INFO line")
    _check_exactly_latest(_consume_confluent(bootstrap, topic, len(latest)), latest)
    _check_exactly_latest(_consume_kafka_python(bootstrap, topic, len(latest)), latest)


def test_keyless_record_is_refused_on_a_compacted_topic(pybroker_cluster_factory, topic, wire):
    cluster = pybroker_cluster_factory(extra_args=CLEANER_ARGS)
    _create(cluster.bootstrap, topic)
    with wire.RawClient(cluster.bootstrap) as client:
        batch = rb.build_batch([(b"k", b"1", [], None), (None, b"2", [], None), (None, b"3", [], None)])
        answer = client.produce(topic, 0, batch, version=8)
        message = f"Compacted topic cannot accept message without key in topic partition {topic}-0."
        assert answer.error_code == 87  # INVALID_RECORD
        assert answer.error_message == message
        assert [(e.batch_index, e.batch_index_error_message) for e in answer.record_errors] == [
            (1, message), (2, message)]
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "message.timeout.ms": int(TIMEOUT * 1000)})
    outcomes = []
    producer.produce(topic, b"no key", partition=0, on_delivery=lambda err, _m: outcomes.append(err))
    assert producer.flush(TIMEOUT) == 0  # its own batch: Kafka refuses a batch as a whole
    producer.produce(topic, b"keyed", key=b"k", partition=0, on_delivery=lambda err, _m: outcomes.append(err))
    assert producer.flush(TIMEOUT) == 0
    refused, accepted = outcomes
    assert refused is not None and refused.code() == KafkaError.INVALID_RECORD
    assert accepted is None


def test_rf3_every_replica_compacts_and_a_new_leader_serves_latest(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(brokers=3, start_timeout=40.0,
                                       extra_args=CLEANER_ARGS + ["--session-timeout-ms", "2000"])
    bootstrap = cluster.bootstrap
    _create(bootstrap, topic, replication=3)

    def partition() -> dict:
        return next(p for p in _status(cluster)["partitions"] if p["topic"] == topic and p["partition"] == 0)
    wait_until(lambda: len(partition()["isr"]) == 3, TIMEOUT, "a full ISR")
    latest = _produce_updates(bootstrap, topic)
    wait_until(lambda: _fully_compacted(cluster, topic, 3), TIMEOUT, "every replica's log cleaner")

    old_leader = partition()["leader"]
    pid = next(b["pid"] for b in _status(cluster)["brokers"] if b["id"] == old_leader)
    os.kill(pid, signal.SIGSTOP)  # a broker process of this test's cluster
    try:
        wait_until(lambda: partition()["leader"] not in (old_leader, -1, None), TIMEOUT, "a new leader")
        _check_exactly_latest(_consume_confluent(bootstrap, topic, len(latest)), latest)
    finally:
        os.kill(pid, signal.SIGCONT)
