"""Transactions under faults on a 3-broker cluster, RF 3: an open transaction survives a
SIGKILL of the supervisor (its coordinator), and a consume-transform-produce pipeline
SIGKILLed mid-transaction again and again (and, under -m slow, a partition leader with it)
leaves every input exactly once in its read_committed output."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from pybroker import errors
from pybroker.client import Admin

pytestmark = pytest.mark.timeout(300)

TOPIC_CONFIG = {"min.insync.replicas": "2"}
WORKER = Path(__file__).with_name("txn_pipeline_worker.py")


def read_committed(bootstrap: str, topic: str, partitions: int, want: int, timeout: float = 60.0,
                   quiet: float = 2.0) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            out.append(msg.value())
        if len(out) >= want:
            quiet_until = quiet_until or time.monotonic() + quiet
            if time.monotonic() > quiet_until:
                break
    consumer.close()
    return out


def test_open_transaction_survives_a_supervisor_sigkill(fault_cluster, faults):
    cluster = fault_cluster()
    topic = f"txn-sup-{uuid.uuid4().hex[:6]}"
    faults.create_topic(cluster.bootstrap, topic, partitions=3, replication=3, config=TOPIC_CONFIG)
    cluster.wait_full_isr(topic, range(3))
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "sup-kill",
                         "transaction.timeout.ms": 60000})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(30):
        producer.produce(topic, b"v%d" % i, partition=i % 3)
    producer.flush(30)
    cluster.kill_supervisor()  # the coordinator dies with the transaction open
    cluster.start()
    producer.commit_transaction(60)
    out = read_committed(cluster.bootstrap, topic, 3, 30)
    assert sorted(out) == sorted(b"v%d" % i for i in range(30))


def _start_worker(bootstrap: str, source: str, sink: str, group: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), bootstrap, source, sink, group, "pipeline-1", "50"],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _progress(bootstrap: str, group: str) -> int:
    """Inputs the pipeline has committed so far, over every incarnation: the group's offsets."""
    try:
        with Admin(bootstrap, timeout=10) as admin:
            return sum(max(offset, 0) for offset in admin.list_group_offsets(group).values())
    except errors.KafkaError as exc:  # a broker is down or the group not there yet
        print(f"group offsets not read: {exc}")
        return 0


def _run_pipeline(fault_cluster, faults, tmp_path, inputs: int, kills: int, kill_leader: bool) -> None:
    cluster = fault_cluster()
    run = uuid.uuid4().hex[:6]
    source, sink, group = f"eos-in-{run}", f"eos-out-{run}", f"eos-{run}"
    for name in (source, sink):
        faults.create_topic(cluster.bootstrap, name, partitions=3, replication=3, config=TOPIC_CONFIG)
        cluster.wait_full_isr(name, range(3))
    feeder = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(inputs):
        feeder.produce(source, b"m%06d" % i, partition=i % 3)
        if i % 1000 == 0:
            feeder.poll(0)
    assert feeder.flush(60) == 0

    log = tmp_path / "worker.log"
    rng = random.Random(1234)
    worker = _start_worker(cluster.bootstrap, source, sink, group, log)
    try:
        for n in range(kills):
            # Let it make progress, then kill it wherever it is (usually mid-transaction).
            target = min(inputs, (n + 1) * inputs // (kills + 2))
            faults.wait_for(lambda: _progress(cluster.bootstrap, group) >= target or worker.poll() is not None, 120,
                            f"the pipeline to commit {target} inputs")
            assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(rng.uniform(0.0, 0.3))
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            if kill_leader and n % 2 == 0:
                leader = cluster.live_leader(sink, n % 3)
                if leader is not None:
                    cluster.kill_broker(leader)
            worker = _start_worker(cluster.bootstrap, source, sink, group, log)
        out = read_committed(cluster.bootstrap, sink, 3, inputs, timeout=180)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    expected = sorted(b"M%06d" % i for i in range(inputs))
    duplicated = len(out) - len(set(out))
    missing = sorted(set(expected) - set(out))
    assert duplicated == 0 and not missing, f"{duplicated} duplicated, {len(missing)} missing: {missing[:10]}"


def test_pipeline_sigkilled_mid_transaction_is_exactly_once(fault_cluster, faults, tmp_path):
    _run_pipeline(fault_cluster, faults, tmp_path, inputs=1500, kills=2, kill_leader=False)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pipeline_and_leaders_sigkilled_repeatedly_is_exactly_once(fault_cluster, faults, tmp_path):
    _run_pipeline(fault_cluster, faults, tmp_path, inputs=20000, kills=8, kill_leader=True)
