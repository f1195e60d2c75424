"""Consumers of many partitions with fetch sessions (KIP-227) on: the Java consumer opens
an incremental fetch session and reads everything, through an idle stretch and new
records; confluent-kafka (librdkafka fetches sessionless) reads everything from a broker
that holds sessions. The broker's FetchSessionCache gauges (/metrics) show what sessions
it holds."""
from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.testing import BrokerCluster, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

PARTITIONS = 120
TIMEOUT = 30.0
SESSIONS = "kafka_server_fetchsessioncache_numincrementalfetchsessions"
CACHED = "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    # One broker: every session it holds is a consumer's.
    with BrokerCluster(data_dir=tmp_path_factory.mktemp("fsessions-interop"), start_timeout=40.0,
                       extra_args=["--group-initial-rebalance-delay-ms", "0"]) as cluster:
        yield cluster


def gauges(cluster) -> dict:
    with urllib.request.urlopen(cluster.console_url + "metrics", timeout=10) as res:
        text = res.read().decode()
    out = {}
    for name in (SESSIONS, CACHED):
        found = re.search(rf'^{name}{{broker="0"}} ([0-9.e+]+)$', text, re.M)
        if found:
            out[name] = float(found.group(1))
    return out


def make_topic(cluster, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(TIMEOUT)


def produce(cluster, name: str, start: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(name, b"v%d" % i, b"k%d" % i)
    assert producer.flush(TIMEOUT) == 0


def test_java_consumer_reads_many_partitions_in_a_session(java_program, broker, topic):
    make_topic(broker, topic)
    proc = subprocess.Popen([*java_program, "FetchSessionInterop", broker.bootstrap, topic, "3000", "8000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("caught up 3000 partitions 120"), line + proc.stderr.read()[-3000:]
        # While the consumer sits idle in incremental fetches, its session holds every
        # partition it was assigned.
        cached = wait_until(lambda: (g := gauges(broker)).get(CACHED, 0) >= PARTITIONS and g, 7,
                            "the consumer's session in /metrics")
        assert cached[SESSIONS] >= 1
        assert proc.stdout.readline().strip() == "idle new 0"
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err[-3000:]
    assert "consumed 6000 of 6000" in out


def test_confluent_consumer_reads_many_partitions(broker, topic):
    make_topic(broker, topic)
    produce(broker, topic, 0, 3000)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 200})
    try:
        consumer.assign([TopicPartition(topic, i, 0) for i in range(PARTITIONS)])
        seen = set()

        def read(until: int, seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while len(seen) < until and time.monotonic() < deadline:
                for msg in consumer.consume(500, 0.2):
                    assert msg.error() is None, msg.error()
                    seen.add(msg.value())

        read(3000, TIMEOUT)
        assert len(seen) == 3000
        read(3001, 2.0)  # idle: nothing new arrives
        assert len(seen) == 3000
        produce(broker, topic, 3000, 1500)
        read(4500, TIMEOUT)
        assert seen == {b"v%d" % i for i in range(4500)}
    finally:
        consumer.close()
