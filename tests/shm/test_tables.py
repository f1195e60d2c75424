from __future__ import annotations

import time

import pytest

from pybroker import errors, shm
from shm_processes import child

pytestmark = pytest.mark.timeout(60)


def test_allocate_is_idempotent_and_find_sees_it(region):
    slot = region.offsets.allocate("payments", 3, now_ms=10)
    assert region.offsets.allocate("payments", 3) == slot
    assert region.offsets.find("payments", 3) == slot
    assert region.offsets.find("payments", 4) is None
    row = region.offsets.read(slot)
    assert (row.topic, row.partition, row.leader_id, row.leader_epoch, row.updated_ms) == \
        ("payments", 3, -1, -1, 10)


def test_colliding_keys_probe_past_each_other_and_tombstones_keep_chains(region):
    keys = [("t", p) for p in range(40)]  # 40 of 64 slots: collisions are certain
    slots = {key: region.offsets.allocate(*key) for key in keys}
    assert len(set(slots.values())) == len(keys)
    for key in keys[::2]:
        assert region.offsets.release(*key)
    for key in keys[1::2]:
        assert region.offsets.find(*key) == slots[key]
    for key in keys[::2]:
        assert region.offsets.find(*key) is None
    assert not region.offsets.release("t", 0)
    reused = region.offsets.allocate("other", 0)
    assert region.offsets.read(reused).topic == "other"
    assert {row.partition for row in region.offsets.rows() if row.topic == "t"} == \
        set(range(1, 40, 2))


def test_full_offsets_table_is_a_clear_error(region):
    for partition in range(region.slot_capacity):
        region.offsets.allocate("big", partition)
    with pytest.raises(shm.ShmError, match="offsets table full"):
        region.offsets.allocate("big", region.slot_capacity)


@pytest.mark.parametrize("topic", ["", "x" * 250, "é" * 125])
def test_topic_names_kafka_rejects_are_invalid_topic(region, topic):
    with pytest.raises(errors.InvalidTopicException):
        region.offsets.allocate(topic, 0)


def test_longest_topic_name_round_trips(region):
    topic = "t" * 249
    slot = region.offsets.allocate(topic, 0)
    assert region.offsets.read(slot).topic == topic


def test_read_of_unused_slot_is_none(region):
    assert region.offsets.read(0) is None
    with pytest.raises(IndexError):
        region.offsets.read(region.slot_capacity)


def test_reader_never_sees_a_torn_offsets_row_under_a_concurrent_writer(region, region_name, tmp_path):
    slot = region.offsets.allocate("hot", 0)
    region.offsets.write(slot, 0, 0, 0, 0, 0, 0)  # every field equal from the start
    stop = tmp_path / "stop"
    # The writer runs until the reader has seen enough changes (at most 20 s), so a
    # CPU-starved reader still checks a concurrent writer.
    writer = child("""
        import os, sys, time
        from pybroker import shm
        region = shm.SharedRegion.attach(sys.argv[1])
        slot = int(sys.argv[2])
        print("go", flush=True)
        deadline = time.monotonic() + 20.0
        i = 0
        while time.monotonic() < deadline and not (i % 1000 == 0 and os.path.exists(sys.argv[3])):
            i += 1
            region.offsets.write(slot, i, i, i, i, i, i)
        print(i)
    """, region_name, str(slot), str(stop))
    assert writer.stdout.readline().strip() == "go"
    reads = changes = 0
    last = None
    while writer.poll() is None:
        if reads > 1000 and changes > 50:
            stop.touch()
        row = region.offsets.read(slot)
        values = row[3:]
        assert len(set(values)) == 1, f"torn row: {row}"
        reads += 1
        changes += values != last
        last = values
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert reads > 1000 and changes > 50  # the two really ran concurrently


def test_row_of_a_writer_that_died_mid_update_reads_as_stale_then_heals(region):
    slot = region.offsets.allocate("crash", 0)
    region.offsets._rows.begin_write(slot)  # the writer dies here, the word stays odd
    started = time.monotonic()
    with pytest.raises(shm.StaleRow):
        region.offsets.read(slot)
    assert time.monotonic() - started < 1.0
    region.offsets.write(slot, 2, 5, 0, 9, 9, 1)  # the next leader's write
    assert region.offsets.read(slot).leader_epoch == 5


def test_broker_row_lifecycle(region):
    assert region.brokers.registered() == []
    region.brokers.register(3, 4242, 9095, now_ms=100)
    row = region.brokers.read(3)
    assert (row.pid, row.port, row.heartbeat_ms, row.started_ms, row.state_name) == \
        (4242, 9095, 100, 100, "starting")
    region.brokers.set_state(3, shm.ALIVE)
    region.brokers.heartbeat(3, 250)
    assert region.brokers.read(3).is_fresh(now_ms=300, timeout_ms=100)
    assert not region.brokers.read(3).is_fresh(now_ms=400, timeout_ms=100)
    region.brokers.set_state(3, shm.STOPPING)
    assert not region.brokers.read(3).is_fresh(now_ms=250, timeout_ms=100)
    assert [r.broker_id for r in region.brokers.registered()] == [3]
    region.brokers.clear(3)
    assert region.brokers.registered() == []
    with pytest.raises(ValueError):
        region.brokers.set_state(3, 99)
    with pytest.raises(IndexError):
        region.brokers.heartbeat(region.broker_capacity, 1)


def test_supervisor_sees_heartbeats_of_a_broker_process_stop(region, region_name):
    broker = child("""
        import os, sys, time
        from pybroker import shm
        region = shm.SharedRegion.attach(sys.argv[1])
        now = lambda: int(time.time() * 1000)
        region.brokers.register(2, os.getpid(), 9094, now(), state=shm.ALIVE)
        print("up", flush=True)
        for _ in range(5):
            region.brokers.heartbeat(2, now())
            time.sleep(0.02)
    """, region_name)
    assert broker.stdout.readline().strip() == "up"
    broker.communicate(timeout=20)
    row = region.brokers.read(2)
    now = int(time.time() * 1000)
    assert row.pid == broker.pid and row.is_fresh(now, timeout_ms=2000)
    time.sleep(0.15)
    assert not region.brokers.read(2).is_fresh(int(time.time() * 1000), timeout_ms=100)
