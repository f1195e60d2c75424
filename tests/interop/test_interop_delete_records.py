"""DeleteRecords from unmodified clients against real broker processes: confluent-kafka's
and kafka-python's delete_records, pybroker's Admin; the new log start as ListOffsets and
consumers from earliest see it, across a restart, and with RF 3 (the answer waits for
the followers; a follower that becomes leader keeps the deleted start)."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient
from kafka import TopicPartition as KpTopicPartition
from kafka import errors as kp_errors

from pybroker import errors
from pybroker.cli.status import fetch_status
from pybroker.client.admin import Admin
from pybroker.testing import wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TIMEOUT = 20.0
# The broker's UNKNOWN_TOPIC_OR_PARTITION, or librdkafka's own codes (_NOENT,
# _UNKNOWN_PARTITION) when its metadata already says the partition does not exist.
UNKNOWN_PARTITION_CODES = {errors.UnknownTopicOrPartition.code, -156, -190}


def _create(bootstrap: str, topic: str, partitions: int = 1, replication: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replication)],
                                  operation_timeout=TIMEOUT)
    futures[topic].result(TIMEOUT)


def _produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": int(TIMEOUT * 1000)})
    failures = []
    for i in range(count):
        producer.produce(topic, b"v%d" % i, partition=partition,
                         on_delivery=lambda err, _msg: err is not None and failures.append(err))
    assert producer.flush(TIMEOUT) == 0 and not failures, failures


def _consumer(bootstrap: str, **conf) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"dr-{time.monotonic_ns()}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest", **conf})


def _watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    consumer = _consumer(bootstrap)
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)
    finally:
        consumer.close()


def _first_offset_from_earliest(bootstrap: str, topic: str) -> int:
    """The offset of the first record a subscribing consumer with no committed offset
    (auto.offset.reset=earliest) reads."""
    consumer = _consumer(bootstrap)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                return msg.offset()
        raise AssertionError("no record read from earliest")
    finally:
        consumer.close()


def _confluent_delete(bootstrap: str, offsets: dict) -> dict:
    """{(topic, partition): low watermark, or the KafkaError code} via confluent-kafka."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                   operation_timeout=TIMEOUT, request_timeout=TIMEOUT + 5)
    out = {}
    for tp, fut in futures.items():
        try:
            out[(tp.topic, tp.partition)] = fut.result(TIMEOUT).low_watermark
        except KafkaException as exc:
            out[(tp.topic, tp.partition)] = ("error", exc.args[0].code())
    return out


def test_confluent_delete_records_moves_the_start_and_survives_a_restart(pybroker_cluster, topic):
    bootstrap = pybroker_cluster.bootstrap
    _create(bootstrap, topic)
    _produce(bootstrap, topic, 10)
    assert _confluent_delete(bootstrap, {(topic, 0): 4}) == {(topic, 0): 4}
    assert _watermarks(bootstrap, topic) == (4, 10)
    assert _first_offset_from_earliest(bootstrap, topic) == 4

    out_of_range = _confluent_delete(bootstrap, {(topic, 0): 11})
    assert out_of_range == {(topic, 0): ("error", errors.OffsetOutOfRange.code)}
    unknown = _confluent_delete(bootstrap, {("no-such-topic-dr", 0): 1})[("no-such-topic-dr", 0)]
    assert unknown[0] == "error" and unknown[1] in UNKNOWN_PARTITION_CODES

    pybroker_cluster.restart()
    assert _watermarks(bootstrap, topic) == (4, 10)
    assert _first_offset_from_earliest(bootstrap, topic) == 4
    # -1: everything below the high watermark.
    assert _confluent_delete(bootstrap, {(topic, 0): -1}) == {(topic, 0): 10}
    assert _watermarks(bootstrap, topic) == (10, 10)


def test_kafka_python_delete_records(pybroker_cluster, topic):
    bootstrap = pybroker_cluster.bootstrap
    _create(bootstrap, topic, partitions=2)
    _produce(bootstrap, topic, 6, partition=0)
    _produce(bootstrap, topic, 6, partition=1)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        result = admin.delete_records({KpTopicPartition(topic, 0): 2, KpTopicPartition(topic, 1): 5},
                                      timeout_ms=int(TIMEOUT * 1000))
        assert {tp.partition: r["low_watermark"] for tp, r in result.items()} == {0: 2, 1: 5}
        with pytest.raises(kp_errors.OffsetOutOfRangeError):
            admin.delete_records({KpTopicPartition(topic, 0): 7}, timeout_ms=int(TIMEOUT * 1000))
    finally:
        admin.close()
    assert _watermarks(bootstrap, topic, 0) == (2, 6)
    assert _watermarks(bootstrap, topic, 1) == (5, 6)


def _status(cluster) -> dict:
    return asyncio.run(fetch_status(str(cluster.data_dir.resolve())))


def _partition(status: dict, topic: str) -> dict:
    return next(p for p in status["partitions"] if p["topic"] == topic and p["partition"] == 0)


def test_rf3_waits_for_followers_and_a_new_leader_keeps_the_start(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(brokers=3, start_timeout=40.0, extra_args=["--session-timeout-ms", "2000"])
    bootstrap = cluster.bootstrap
    _create(bootstrap, topic, replication=3)
    wait_until(lambda: len(_partition(_status(cluster), topic)["isr"]) == 3, TIMEOUT, "a full ISR")
    _produce(bootstrap, topic, 20)

    with Admin(bootstrap) as admin:
        assert admin.delete_records({(topic, 0): 8}, timeout=TIMEOUT) == {(topic, 0): 8}
        # The low watermark is the lowest start over the replicas: every follower moved.
        assert admin.list_offsets({(topic, 0): -2}) == {(topic, 0): (8, -1)}
        bad = admin.delete_records({(topic, 0): 21, ("no-such-topic-dr", 0): 1}, timeout=TIMEOUT)
        assert isinstance(bad[(topic, 0)], errors.OffsetOutOfRange)
        assert isinstance(bad[("no-such-topic-dr", 0)], errors.UnknownTopicOrPartition)
    status = _status(cluster)
    part = _partition(status, topic)
    assert part["log_start_offset"] == 8
    old_leader = part["leader"]
    pid = next(b["pid"] for b in status["brokers"] if b["id"] == old_leader)

    # Freeze the leader (a broker process of this test's cluster): once its session
    # expires a follower leads, and the frozen one cannot come back meanwhile.
    os.kill(pid, signal.SIGSTOP)
    try:
        def moved():
            current = _partition(_status(cluster), topic)
            return current["leader"] not in (old_leader, -1, None) and current
        moved_to = wait_until(moved, TIMEOUT, "a new leader")
        assert moved_to["log_start_offset"] == 8
        assert _watermarks(bootstrap, topic)[0] == 8
        assert _first_offset_from_earliest(bootstrap, topic) == 8
        # The new leader goes on deleting; the frozen replica's broker is not live, so
        # it does not hold the low watermark back.
        assert _confluent_delete(bootstrap, {(topic, 0): 12}) == {(topic, 0): 12}
        assert _watermarks(bootstrap, topic) == (12, 20)
    finally:
        os.kill(pid, signal.SIGCONT)
