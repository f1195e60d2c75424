"""Consumers reading the leaders' shared-memory tail rings (``pybroker.shm.data.dir``):
same records as the socket path, never past the high watermark, Fetch where the ring
cannot serve, and counters that show which path delivered."""
from __future__ import annotations

import os
import signal
import time

import pytest

from pybroker import shm
from pybroker.client.admin import Admin, NewTopic
from pybroker.client.consumer import Consumer
from pybroker.client.producer import Producer
from pybroker.client.shm_tail import ShmTail
from pybroker.testing import wait_until

pytestmark = pytest.mark.timeout(120)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def make_consumer(cluster, shm_tail: bool, bootstrap: str | None = None, **config) -> Consumer:
    if shm_tail:
        config["pybroker.shm.data.dir"] = str(cluster.data_dir)
    return Consumer(dict(config, **{"bootstrap.servers": bootstrap or cluster.bootstrap,
                                    "auto.offset.reset": "earliest"}))


def read_until(consumer: Consumer, count: int, timeout: float = 20.0, idle: float | None = None):
    """Poll until ``count`` records arrived (or ``idle`` seconds passed without any)."""
    got = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while len(got) < count and time.monotonic() < deadline:
        batch = consumer.poll(100)
        if batch:
            got += batch
            quiet_since = time.monotonic()
        elif idle is not None and time.monotonic() - quiet_since >= idle:
            break
    return got


def as_tuples(records):
    return [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in records]


def produce(cluster, topic: str, count: int, compression: str = "none", acks="all",
            size: int = 0, start: int = 0, partition: int = 0, bootstrap: str | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap or cluster.bootstrap, "compression.type": compression,
                         "acks": acks, "linger.ms": 5})
    try:
        for i in range(start, start + count):
            headers = [("n", str(i).encode()), ("empty", None)] if i % 3 == 0 else None
            key = None if i % 5 == 0 else b"key-%d" % i
            value = (b"value-%d-" % i).ljust(size, b"x") if size else b"value-%d" % i
            producer.send(topic, value, key=key, partition=partition, headers=headers)
        assert producer.flush(30) == 0
    finally:
        producer.close(10)


def test_shm_and_socket_consumers_read_the_same_records_for_every_codec(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=1)
    for codec in CODECS:
        topic = f"same-{codec}"
        produce(cluster, topic, 300, compression=codec)
        with make_consumer(cluster, True) as tail, make_consumer(cluster, False) as sock:
            tail.assign([(topic, 0)])
            sock.assign([(topic, 0)])
            # Starting inside a batch: records below the position are skipped on both paths.
            tail.seek((topic, 0), 7)
            sock.seek((topic, 0), 7)
            from_ring = read_until(tail, 293)
            from_socket = read_until(sock, 293)
            assert len(from_ring) == 293, codec
            assert as_tuples(from_ring) == as_tuples(from_socket), codec
            assert [r.offset for r in from_ring] == list(range(7, 300))
            metrics = tail.metrics()
            assert metrics["shm_enabled"] and metrics["shm_records"] == 293, (codec, metrics)
            assert metrics["socket_records"] == 0, (codec, metrics)
            assert sock.metrics() == {"shm_enabled": False, "shm_records": 0, "socket_records": 293}
            assert tail.high_watermarks[(topic, 0)] == 300


def test_shm_consumer_follows_new_records_as_they_are_produced(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=1)
    produce(cluster, "live", 1)
    with make_consumer(cluster, True) as tail:
        tail.assign([("live", 0)])
        assert [r.value for r in read_until(tail, 1)] == [b"value-0"]
        assert tail.poll(50) == []  # caught up: the ring has nothing committed past it
        produce(cluster, "live", 50, start=1)
        got = read_until(tail, 50)
        assert [r.offset for r in got] == list(range(1, 51))
        assert tail.metrics()["shm_records"] == 51
        assert tail.metrics()["shm_idle_reads"] >= 1


def test_shm_consumer_never_returns_records_at_or_above_the_high_watermark(pybroker_cluster_factory):
    # Followers never leave the ISR during the test: the high watermark stalls, and the
    # session timeout keeps the supervisor from fencing the stopped brokers.
    cluster = pybroker_cluster_factory(brokers=3, extra_args=[
        "--broker-config", "replica_lag_time_max_ms=120000", "--session-timeout-ms", "120000"])
    topic = "stalled"
    with Admin(cluster.bootstrap) as admin:
        admin.create_topics([NewTopic(topic, 1, 3)])
    produce(cluster, topic, 20, acks="all")  # acks=all: replicated everywhere, HW = 20
    region = shm.SharedRegion.attach(shm.region_name(str(cluster.data_dir)))
    stopped: list[int] = []
    try:
        slot = region.offsets.find(topic, 0)
        row = region.offsets.read(slot)
        assert row.high_watermark == 20
        followers = [b for b in range(3) if b != row.leader_id]
        # Stopped brokers still accept connections: bootstrap from the leader alone.
        leader = f"127.0.0.1:{region.brokers.read(row.leader_id).port}"
        for broker_id in followers:
            pid = region.brokers.read(broker_id).pid
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        produce(cluster, topic, 30, acks=1, start=20, bootstrap=leader)
        deadline = time.monotonic() + 10
        while region.offsets.read(slot).log_end_offset < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        row = region.offsets.read(slot)
        assert (row.log_end_offset, row.high_watermark) == (50, 20), row

        with make_consumer(cluster, True, leader) as tail, make_consumer(cluster, False, leader) as sock:
            tail.assign([(topic, 0)])
            sock.assign([(topic, 0)])
            from_ring = read_until(tail, 50, timeout=5, idle=1.0)
            from_socket = read_until(sock, 50, timeout=5, idle=1.0)
            assert [r.offset for r in from_ring] == list(range(20))
            assert as_tuples(from_ring) == as_tuples(from_socket)
            assert tail.metrics()["shm_records"] == 20 and tail.metrics()["socket_records"] == 0
            assert tail.position((topic, 0)) == 20

            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            stopped.clear()
            rest = read_until(tail, 30, timeout=20)
            assert [r.offset for r in rest] == list(range(20, 50))
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        region.close()


def test_lapped_ring_falls_back_to_the_socket_and_still_reads_everything(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=1)
    region = shm.SharedRegion.attach(shm.region_name(str(cluster.data_dir)))
    ring_bytes = region.ring_bytes
    region.close()
    # 1 KiB values, enough for more than one lap of the ring: offset 0 is overwritten.
    count = ring_bytes // 1024 + 2000
    produce(cluster, "lapped", count, size=1024)
    with make_consumer(cluster, True) as tail:
        tail.assign([("lapped", 0)])
        got = read_until(tail, count, timeout=60)
        assert [r.offset for r in got] == list(range(count))
        assert all(r.value.startswith(b"value-%d-" % r.offset) for r in got[::97])
        metrics = tail.metrics()
        assert metrics["shm_fallbacks"] >= 1 and metrics["socket_records"] > 0, metrics
        # Once the consumer reaches what the ring still holds, the ring serves it.
        assert metrics["shm_records"] > 0, metrics
        assert metrics["shm_records"] + metrics["socket_records"] == count


def test_ring_serves_nothing_for_a_stale_leader_epoch(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=1)
    produce(cluster, "epochs", 10)
    tail = ShmTail.open(str(cluster.data_dir), None)
    try:
        def caught_up():
            # The leader publishes its high watermark to the region just after the append.
            read = tail.read("epochs", 0, leader=0, leader_epoch=0, position=0, max_bytes=1 << 20)
            return read if read is not None and read.high_watermark == 10 else None

        read = wait_until(caught_up, 10, "the ring to show the high watermark")
        assert read.records
        tail.fallbacks = 0
        assert tail.read("epochs", 0, leader=0, leader_epoch=1, position=0, max_bytes=1 << 20) is None
        assert tail.read("epochs", 0, leader=1, leader_epoch=0, position=0, max_bytes=1 << 20) is None
        # Past the log end: the socket answers OffsetOutOfRange, not the ring.
        assert tail.read("epochs", 0, leader=0, leader_epoch=0, position=11, max_bytes=1 << 20) is None
        assert tail.read("absent", 0, leader=0, leader_epoch=0, position=0, max_bytes=1 << 20) is None
        assert tail.fallbacks == 4
    finally:
        tail.close()


def test_unattachable_region_leaves_the_consumer_on_sockets(pybroker_cluster_factory, caplog):
    cluster = pybroker_cluster_factory(brokers=1)
    produce(cluster, "nowhere", 5)
    with make_consumer(cluster, False, **{"pybroker.shm.region": "/pybroker-no-such-region"}) as consumer:
        assert "shared-memory tail reads disabled" in caplog.text
        consumer.assign([("nowhere", 0)])
        assert [r.offset for r in read_until(consumer, 5)] == list(range(5))
        assert consumer.metrics() == {"shm_enabled": False, "shm_records": 0, "socket_records": 5}


def test_both_shm_settings_at_once_are_rejected():
    with pytest.raises(ValueError, match="not both"):
        Consumer({"bootstrap.servers": "127.0.0.1:9", "pybroker.shm.data.dir": "/tmp/x",
                  "pybroker.shm.region": "/pybroker-x"})


def test_tail_read_never_serves_a_deleted_topics_batches_from_a_reused_slot(tmp_path):
    """Unit level: topic A's batches sit in the leader's ring under slot S; A is deleted
    and B gets S. A tail read of B (its row says leader 0, epoch 0, high watermark 3 —
    as a stale leader's write could leave it) must fall back to the socket, not decode A."""
    import uuid

    from pybroker.record.batch import build_batch

    name = f"/pybroker-test-{uuid.uuid4().hex[:16]}"
    region = shm.SharedRegion.create(name, brokers=2, slots=8, ring_bytes=64 * 1024, ring_count=1)
    try:
        a_id, b_id = uuid.uuid4(), uuid.uuid4()
        slot = region.offsets.allocate("a", 0, a_id.bytes)
        batch = build_batch([(None, b"a-secret", [], None)] * 3, partition_leader_epoch=0)
        assert region.ring(0).append(shm.RingKey(slot, a_id.bytes, 0), 0, 2, batch)
        region.offsets.release("a", 0)
        # Whichever row B hashes to, put an entry of A's under it, as a reused slot has.
        b_slot = region.offsets.allocate("b", 0, b_id.bytes)
        assert region.ring(0).append(shm.RingKey(b_slot, a_id.bytes, 0), 0, 2, batch)
        assert region.offsets.write(b_slot, b_id.bytes, 0, 0, 0, 3, 3, 0)
        tail = ShmTail(shm.SharedRegion.attach(name))
        try:
            assert tail.read("b", 0, leader=0, leader_epoch=0, position=0, max_bytes=1 << 20) is None
            assert tail.read("b", 0, 0, 0, 0, 1 << 20, topic_id=b_id) is None
            assert tail.read("b", 0, 0, 0, 0, 1 << 20, topic_id=a_id) is None  # metadata of another incarnation
            assert tail.fallbacks == 3 and tail.reads == 0
            # B's own batch is served.
            own = build_batch([(None, b"b-value", [], None)] * 3, partition_leader_epoch=0)
            assert region.ring(0).append(shm.RingKey(b_slot, b_id.bytes, 0), 0, 2, own)
            got = tail.read("b", 0, 0, 0, 0, 1 << 20, topic_id=b_id)
            assert got is not None and got.records == own
        finally:
            tail.close()
    finally:
        region.close()
        region.unlink()
