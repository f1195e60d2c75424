"""KIP-932 share groups with a real client: confluent-kafka's ShareConsumer (librdkafka)
against real broker processes. Four consumers read one partition together; RELEASE
redelivers with a higher delivery count, REJECT never again; a consumer killed while
holding records has them redelivered after the lock duration; the delivery-count limit
archives a poison record; the share state survives a full restart."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from groups_helpers import GROUP_ARGS, create_topic, group_cluster, unique, wait_until
from pybroker.testing import BrokerCluster

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with group_cluster(tmp_path_factory, "--group-share-heartbeat-interval-ms", "500") as c:
        yield c


def group_configs(bootstrap, group, **configs):
    """Kafka's way to set a share group's settings: IncrementalAlterConfigs on GROUP."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(k.replace("_", "."), str(v), incremental_operation=AlterConfigOpType.SET)
               for k, v in configs.items()]
    for future in admin.incremental_alter_configs([ConfigResource("GROUP", group, incremental_configs=entries)]).values():
        future.result(timeout=30)


def produce(bootstrap, topic, values, partition=0, pace=0.0):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value, partition=partition)
        if pace:
            producer.poll(0)
            time.sleep(pace)
    assert producer.flush(15) == 0


def share_consumer(bootstrap, group, name, **extra):
    from confluent_kafka import ShareConsumer

    return ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": name, **extra})


def poll_messages(consumer, timeout=0.2):
    return [m for m in (consumer.poll(timeout) or []) if m.error() is None]


def test_four_consumers_share_one_partition_and_every_record_arrives_once(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("queue")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    consumers = [share_consumer(bootstrap, group, f"worker-{i}") for i in range(4)]
    got = {i: [] for i in range(4)}
    try:
        for c in consumers:
            c.subscribe([topic])
        # Everyone joins (and polls) before the records come, a few at a time.
        wait_until(lambda: [poll_messages(c, 0.05) for c in consumers] and False or True, 5, "polls")
        values = [b"job-%04d" % i for i in range(200)]
        import threading
        writer = threading.Thread(target=produce, args=(bootstrap, topic, values), kwargs={"pace": 0.01})
        writer.start()

        def drained():
            for i, c in enumerate(consumers):
                got[i].extend(m.value() for m in poll_messages(c, 0.05))
            return sum(len(v) for v in got.values()) >= len(values)
        wait_until(drained, 60, "the share group to receive every record")
        writer.join()
        everything = [v for vs in got.values() for v in vs]
        assert sorted(everything) == sorted(values)          # each record once
        busy = [i for i, vs in got.items() if vs]
        assert len(busy) == 4, {i: len(v) for i, v in got.items()}   # nobody idle on one partition
    finally:
        for c in consumers:
            c.close()


def test_release_redelivers_with_a_higher_count_and_reject_never_again(cluster):
    from confluent_kafka import AcknowledgeType

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("acks")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    produce(bootstrap, topic, [b"release-me", b"reject-me", b"accept-me"])
    c = share_consumer(bootstrap, group, "explicit", **{"share.acknowledgement.mode": "explicit"})
    try:
        c.subscribe([topic])
        seen: dict[bytes, list[int]] = {}

        def step():
            msgs = poll_messages(c, 0.2)
            for m in msgs:
                seen.setdefault(m.value(), []).append(m.delivery_count())
                kind = {b"release-me": AcknowledgeType.RELEASE, b"reject-me": AcknowledgeType.REJECT}.get(
                    m.value(), AcknowledgeType.ACCEPT)
                if m.value() == b"release-me" and len(seen[m.value()]) >= 2:
                    kind = AcknowledgeType.ACCEPT
                c.acknowledge(m, kind)
            if msgs:
                c.commit_sync()
            return len(seen.get(b"release-me", [])) >= 2
        wait_until(step, 30, "the released record to come back")
        assert seen[b"release-me"][:2] == [1, 2]
        for _ in range(10):
            step()
        assert seen[b"reject-me"] == [1] and seen[b"accept-me"] == [1]
    finally:
        c.close()


CHILD = """
import sys, time
from confluent_kafka import ShareConsumer
c = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([sys.argv[3]])
while True:
    msgs = [m for m in (c.poll(0.5) or []) if m.error() is None]
    for m in msgs:
        print(m.value().decode(), flush=True)   # holds them: never acknowledged
    if msgs:
        time.sleep(3600)
"""


def test_records_of_a_killed_consumer_come_back_after_the_lock(cluster, tmp_path):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("locks")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest", share_record_lock_duration_ms=2000)
    values = [b"held-%d" % i for i in range(5)]
    produce(bootstrap, topic, values)
    child = subprocess.Popen([sys.executable, "-c", CHILD, bootstrap, group, topic], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        first = child.stdout.readline().strip()
        assert first.startswith("held-"), first
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        killed_at = time.monotonic()
        c = share_consumer(bootstrap, group, "survivor")
        try:
            c.subscribe([topic])
            got: dict[bytes, int] = {}

            def step():
                for m in poll_messages(c, 0.2):
                    got[m.value()] = m.delivery_count()
                return len(got) == len(values)
            wait_until(step, 30, "the killed consumer's records to be redelivered")
            waited = time.monotonic() - killed_at
            assert got[first.encode()] == 2, got
            assert waited >= 1.0, waited        # not before the lock (2 s, less the time to kill)
        finally:
            c.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_delivery_count_limit_archives_a_poison_record(cluster):
    from confluent_kafka import AcknowledgeType

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("poison")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest", share_delivery_count_limit=2)
    produce(bootstrap, topic, [b"poison"])
    c = share_consumer(bootstrap, group, "retrier", **{"share.acknowledgement.mode": "explicit"})
    counts = []
    try:
        c.subscribe([topic])

        def step():
            msgs = poll_messages(c, 0.2)
            for m in msgs:
                counts.append(m.delivery_count())
                c.acknowledge(m, AcknowledgeType.RELEASE)
            if msgs:
                c.commit_sync()
            return len(counts) >= 2
        wait_until(step, 30, "two deliveries")
        produce(bootstrap, topic, [b"after"])
        later = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for m in poll_messages(c, 0.2):
                later.append(m.value())
                c.acknowledge(m, AcknowledgeType.ACCEPT)
            if later:
                c.commit_sync()
        assert counts == [1, 2] and later == [b"after"]   # archived after the limit
    finally:
        c.close()


def test_share_state_survives_a_cluster_restart(tmp_path):
    cluster = BrokerCluster(data_dir=tmp_path / "data", brokers=1, extra_args=GROUP_ARGS)
    cluster.start()
    try:
        bootstrap = cluster.bootstrap
        topic, group = create_topic(bootstrap, 1), unique("durable")
        group_configs(bootstrap, group, share_auto_offset_reset="earliest")
        produce(bootstrap, topic, [b"a-%d" % i for i in range(10)])
        c = share_consumer(bootstrap, group, "before")
        first: list[bytes] = []
        c.subscribe([topic])
        wait_until(lambda: first.extend(m.value() for m in poll_messages(c, 0.2)) or len(first) >= 10, 30,
                   "the first consumer to read everything")
        c.commit_sync()            # implicit mode: what the last poll gave is accepted
        c.close()
        cluster.restart()
        bootstrap = cluster.bootstrap
        produce(bootstrap, topic, [b"b-%d" % i for i in range(5)])
        c = share_consumer(bootstrap, group, "after")
        second: list[bytes] = []
        c.subscribe([topic])
        wait_until(lambda: second.extend(m.value() for m in poll_messages(c, 0.2)) or len(second) >= 5, 30,
                   "the second consumer to read the new records")
        time.sleep(1.0)
        second.extend(m.value() for m in poll_messages(c, 0.5))
        c.close()
        assert sorted(second) == sorted(b"b-%d" % i for i in range(5))   # nothing accepted came back
    finally:
        cluster.stop()
