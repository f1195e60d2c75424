"""The listener container: what each AckMode has committed when the consuming process
dies, read back from the broker; retries and the dead-letter topic."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pybroker.client import Admin, Consumer, NewTopic, Producer
from pybroker.client.container import (
    DeadLetterPublishingRecoverer, DefaultErrorHandler, FixedBackOff, ListenerContainer,
)

RUNNER = Path(__file__).with_name("container_runner.py")
REPO = Path(__file__).resolve().parents[2]


def topic_with_records(bootstrap, count, partitions=1):
    name = f"ack-{uuid.uuid4().hex[:10]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    with Producer(bootstrap, linger_ms=50) as producer:
        for i in range(count):
            producer.send(name, b"r%d" % i, partition=0)
    return name


def committed(bootstrap, group, tp):
    with Consumer(bootstrap, group_id=group, enable_auto_commit=False) as c:
        return c.committed(tp)


# 10 records, polls hand out 4 at a time: [0..3] [4..7] [8, 9]; the process dies when
# handed offset 6, so records 0..5 were processed (and acknowledged under MANUAL*).
@pytest.mark.parametrize("mode, ack_count, ack_time_ms, expected", [
    ("RECORD", 1, 5000, 6),
    ("BATCH", 1, 5000, 4),
    ("COUNT", 4, 60000, 4),
    ("COUNT", 5, 60000, None),
    ("TIME", 1, 60000, None),
    ("TIME", 1, 0, 4),
    ("COUNT_TIME", 5, 60000, None),
    ("COUNT_TIME", 4, 60000, 4),
    ("MANUAL", 1, 5000, 4),
    ("MANUAL_IMMEDIATE", 1, 5000, 6),
])
def test_committed_offsets_when_process_dies_mid_poll(bootstrap, mode, ack_count, ack_time_ms, expected):
    topic = topic_with_records(bootstrap, 10)
    group = f"g-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(RUNNER), bootstrap, topic, group, mode, "6",
                           str(ack_count), str(ack_time_ms)], env=env, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert committed(bootstrap, group, (topic, 0)) == expected


def test_failing_record_is_retried_then_dead_lettered_and_passed(bootstrap):
    topic = topic_with_records(bootstrap, 5)
    group = f"g-{uuid.uuid4().hex[:8]}"
    attempts = []
    processed = []

    def listener(record):
        if record.offset == 2:
            attempts.append(record.offset)
            raise ValueError("bad record")
        processed.append(record.offset)

    producer = Producer(bootstrap)
    handler = DefaultErrorHandler(DeadLetterPublishingRecoverer(producer), FixedBackOff(10, 2))
    container = ListenerContainer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "heartbeat.interval.ms": 100, "fetch.max.wait.ms": 100},
        [topic], listener, error_handler=handler, poll_timeout_ms=100)
    with container:
        deadline = time.monotonic() + 20
        while committed(bootstrap, group, (topic, 0)) != 5:
            assert time.monotonic() < deadline, "container did not commit past the failed record"
            time.sleep(0.1)
    producer.close()
    assert attempts == [2, 2, 2]  # the first try and two retries
    assert processed == [0, 1, 3, 4]
    with Consumer(bootstrap, auto_offset_reset="earliest") as c:
        c.assign([(topic + ".DLT", 0)])
        got = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            got = c.poll(200)
    assert [r.value for r in got] == [b"r2"]
    headers = dict(got[0].headers)
    assert headers["kafka_dlt-original-topic"] == topic.encode()
    assert int.from_bytes(headers["kafka_dlt-original-offset"], "big") == 2
    assert headers["kafka_dlt-exception-message"] == b"bad record"


def test_concurrency_runs_one_consumer_per_worker(bootstrap):
    name = f"ack-{uuid.uuid4().hex[:10]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(name, 2, 1)])
    with Producer(bootstrap) as producer:
        for i in range(20):
            producer.send(name, b"%d" % i, partition=i % 2)
    seen = []
    container = ListenerContainer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest", "heartbeat.interval.ms": 100, "fetch.max.wait.ms": 100,
         "partition.assignment.strategy": "roundrobin"},
        [name], lambda r: seen.append(r.value), concurrency=2, poll_timeout_ms=100)
    with container:
        deadline = time.monotonic() + 20
        while len(seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        owners = [w.consumer.assignment() for w in container.workers]
    assert sorted(seen, key=int) == [b"%d" % i for i in range(20)]
    assert sorted(len(a) for a in owners) == [1, 1]
    assert not container.errors


def test_transactional_container_writes_each_record_once_despite_a_failed_attempt(bootstrap):
    source = topic_with_records(bootstrap, 6)
    sink = f"txn-sink-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(sink, 1, 1)])
    group = f"g-{uuid.uuid4().hex[:8]}"
    failures = []

    def listener(record, producer):
        producer.send(sink, record.value.upper(), partition=0)
        if record.offset == 3 and not failures:
            failures.append(record.offset)
            raise ValueError("fails once, after sending")  # the transaction's sends are aborted

    container = ListenerContainer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "heartbeat.interval.ms": 100, "fetch.max.wait.ms": 100, "isolation.level": "read_committed"},
        [source], listener, error_handler=DefaultErrorHandler(backoff=FixedBackOff(10, 2)), poll_timeout_ms=100,
        transactional_producer={"bootstrap.servers": bootstrap, "transactional.id": f"tx-{group}"})
    with container:
        deadline = time.monotonic() + 20
        while committed(bootstrap, group, (source, 0)) != 6:
            assert time.monotonic() < deadline, f"container did not commit: {container.errors}"
            time.sleep(0.1)
    assert failures == [3] and container.errors == []

    def read(isolation, want):
        """Records until ``want`` arrived, then half a second more for any extra."""
        with Consumer(bootstrap, auto_offset_reset="earliest", isolation_level=isolation) as c:
            c.assign([(sink, 0)])
            got = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(got) < want:
                got.extend(r.value for r in c.poll(200))
            got.extend(r.value for r in c.poll(500))
            return got

    assert sorted(read("read_committed", 6)) == [b"R%d" % i for i in range(6)]
    assert len(read("read_uncommitted", 7)) > 6  # the aborted attempt's sends are in the log
