from __future__ import annotations

import time

import pytest

from pybroker import errors, shm
from shm_processes import OTHER_TOPIC_ID, TOPIC_ID, child

pytestmark = pytest.mark.timeout(60)


def test_allocate_is_idempotent_and_find_sees_it(region):
    slot = region.offsets.allocate("payments", 3, TOPIC_ID, now_ms=10)
    assert region.offsets.allocate("payments", 3, TOPIC_ID) == slot
    assert region.offsets.find("payments", 3) == slot
    assert region.offsets.find("payments", 4) is None
    row = region.offsets.read(slot)
    assert (row.topic, row.partition, row.leader_id, row.leader_epoch, row.updated_ms) == \
        ("payments", 3, -1, -1, 10)


def test_colliding_keys_probe_past_each_other_and_tombstones_keep_chains(region):
    keys = [("t", p) for p in range(40)]  # 40 of 64 slots: collisions are certain
    slots = {key: region.offsets.allocate(*key, TOPIC_ID) for key in keys}
    assert len(set(slots.values())) == len(keys)
    for key in keys[::2]:
        assert region.offsets.release(*key)
    for key in keys[1::2]:
        assert region.offsets.find(*key) == slots[key]
    for key in keys[::2]:
        assert region.offsets.find(*key) is None
    assert not region.offsets.release("t", 0)
    reused = region.offsets.allocate("other", 0, TOPIC_ID)
    assert region.offsets.read(reused).topic == "other"
    assert {row.partition for row in region.offsets.rows() if row.topic == "t"} == \
        set(range(1, 40, 2))


def test_table_at_its_load_limit_answers_none_and_deletions_make_room(region):
    offsets = region.offsets
    assert offsets.limit == 48  # 3/4 of 64
    slots = [offsets.allocate("big", p, TOPIC_ID) for p in range(offsets.limit)]
    assert None not in slots
    assert offsets.allocate("big", offsets.limit, TOPIC_ID) is None  # no row: sockets only
    assert offsets.find("big", offsets.limit) is None
    assert offsets.allocate("big", 0, TOPIC_ID) == slots[0]  # existing rows still found
    assert offsets.release("big", 5)
    assert offsets.allocate("big", offsets.limit, TOPIC_ID) is not None


def test_deleting_every_topic_leaves_no_tombstones(region):
    offsets = region.offsets
    for round_ in range(5):  # far more partitions over time than the table has rows
        keys = [(f"churn-{round_}", p) for p in range(40)]
        for key in keys:
            assert offsets.allocate(*key, TOPIC_ID) is not None
        for key in keys:
            assert offsets.release(*key)
    assert offsets.occupied() == 0
    assert all(offsets._state(slot) == 0 for slot in range(offsets.capacity))


def test_a_recreated_topic_takes_its_old_row_over_with_fresh_offsets(region):
    offsets = region.offsets
    slot = offsets.allocate("orders", 0, TOPIC_ID)
    assert offsets.write(slot, TOPIC_ID, 1, 4, 0, 900, 900, 5)
    new_id = bytes(range(200, 216))
    assert offsets.allocate("orders", 0, new_id) == slot
    row = offsets.read(slot)
    assert (row.topic_id, row.leader_id, row.leader_epoch, row.log_end_offset) == (new_id, -1, -1, 0)


def test_a_writer_never_publishes_into_a_row_of_another_topic_id(region):
    offsets = region.offsets
    slot = offsets.allocate("a", 0, TOPIC_ID)
    offsets.release("a", 0)
    assert offsets.allocate("b", 0, OTHER_TOPIC_ID) is not None
    reused = offsets.find("b", 0)
    # The deleted topic's leader still has the old slot cached.
    assert not offsets.write(slot, TOPIC_ID, 1, 0, 0, 2000, 2000, 1)
    if reused == slot:
        assert offsets.read(reused).log_end_offset == 0
    assert offsets.write(reused, OTHER_TOPIC_ID, 2, 0, 0, 7, 7, 1)
    assert offsets.read(reused).log_end_offset == 7


def test_allocate_needs_a_real_topic_id(region):
    for bad in (b"", bytes(16), b"x" * 15, "not-bytes"):
        with pytest.raises(ValueError):
            region.offsets.allocate("t", 0, bad)


def test_topic_ids_convert_from_metadata_forms():
    import uuid

    value = uuid.uuid4()
    assert shm.topic_id_bytes(value) == value.bytes
    assert shm.topic_id_bytes(str(value)) == value.bytes
    assert shm.topic_id_bytes(value.bytes) == value.bytes
    assert shm.topic_id_bytes(None) is None
    assert shm.topic_id_bytes(uuid.UUID(int=0)) is None
    assert shm.topic_id_bytes("garbage") is None


def test_region_is_sized_from_the_partition_count():
    assert shm.slots_for(0) == 32768
    assert shm.slots_for(5000) == 32768
    big = shm.slots_for(20_000)
    assert big * 3 // 4 >= 2 * 20_000
    assert shm.slots_for(10**9) == 1 << 20


@pytest.mark.parametrize("topic", ["", "x" * 250, "é" * 125])
def test_topic_names_kafka_rejects_are_invalid_topic(region, topic):
    with pytest.raises(errors.InvalidTopicException):
        region.offsets.allocate(topic, 0, TOPIC_ID)


def test_longest_topic_name_round_trips(region):
    topic = "t" * 249
    slot = region.offsets.allocate(topic, 0, TOPIC_ID)
    assert region.offsets.read(slot).topic == topic


def test_read_of_unused_slot_is_none(region):
    assert region.offsets.read(0) is None
    with pytest.raises(IndexError):
        region.offsets.read(region.slot_capacity)


def test_reader_never_sees_a_torn_offsets_row_under_a_concurrent_writer(region, region_name, tmp_path):
    slot = region.offsets.allocate("hot", 0, TOPIC_ID)
    region.offsets.write(slot, TOPIC_ID, 0, 0, 0, 0, 0, 0)  # every field equal from the start
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
            region.offsets.write(slot, TOPIC_ID, i, i, i, i, i, i)
        print(i)
    """, region_name, str(slot), str(stop))
    assert writer.stdout.readline().strip() == "go"
    reads = changes = 0
    last = None
    while writer.poll() is None:
        if reads > 1000 and changes > 50:
            stop.touch()
        row = region.offsets.read(slot)
        values = row[3:9]
        assert len(set(values)) == 1, f"torn row: {row}"
        reads += 1
        changes += values != last
        last = values
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert reads > 1000 and changes > 50  # the two really ran concurrently


def test_row_of_a_writer_that_died_mid_update_reads_as_stale_then_heals(region):
    slot = region.offsets.allocate("crash", 0, TOPIC_ID)
    region.offsets._rows.begin_write(slot)  # the writer dies here, the word stays odd
    started = time.monotonic()
    with pytest.raises(shm.StaleRow):
        region.offsets.read(slot)
    assert time.monotonic() - started < 1.0
    region.offsets.write(slot, TOPIC_ID, 2, 5, 0, 9, 9, 1)  # the next leader's write
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
