from __future__ import annotations

import os
import signal

import posix_ipc
import pytest

from pybroker import shm
from shm_processes import TOPIC_ID, child, key, run_child

pytestmark = pytest.mark.timeout(60)


def test_region_name_is_stable_per_data_dir_and_distinct_across_dirs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert shm.region_name(str(a)) == shm.region_name(str(a) + "/")
    assert shm.region_name(str(a)) != shm.region_name(str(b))
    assert shm.region_name(str(a)).startswith("/pybroker-")


def test_child_process_attaches_and_parent_sees_its_writes(region, region_name):
    slot = region.offsets.allocate("orders", 2, TOPIC_ID)
    out = run_child("""
        import os, sys
        from pybroker import shm
        region = shm.SharedRegion.attach(sys.argv[1])
        region.brokers.register(1, os.getpid(), 9093, 1000)
        region.brokers.set_state(1, shm.ALIVE)
        region.brokers.heartbeat(1, 1234)
        slot = region.offsets.find("orders", 2)
        region.offsets.write(slot, TOPIC_ID, 1, 7, 0, 500, 480, 1234)
        region.ring(1).append(key(slot), 0, 499, b"batch-bytes")
        print(os.getpid(), slot)
        region.close()
    """, region_name)
    pid, child_slot = map(int, out.split())
    assert child_slot == slot
    row = region.brokers.read(1)
    assert (row.pid, row.port, row.heartbeat_ms, row.state_name) == (pid, 9093, 1234, "alive")
    assert row.is_fresh(now_ms=1500, timeout_ms=1000)
    assert not row.is_fresh(now_ms=3000, timeout_ms=1000)
    offsets = region.offsets.read(slot)
    assert (offsets.topic, offsets.partition, offsets.leader_id, offsets.leader_epoch,
            offsets.log_end_offset, offsets.high_watermark) == ("orders", 2, 1, 7, 500, 480)
    assert shm.TailReader(region.ring(1)).read_from(key(slot), 250, 1 << 20) == b"batch-bytes"


def test_stale_region_from_a_crashed_creator_is_recreated_empty(region_name):
    run_child("""
        import os, sys
        from pybroker import shm
        region = shm.SharedRegion.create(sys.argv[1], brokers=4, slots=8, ring_bytes=8192,
                                         ring_count=1)
        region.offsets.allocate("left-behind", 0, TOPIC_ID)
        os._exit(0)  # dies without unlink, as a SIGKILLed supervisor would
    """, region_name)
    region = shm.SharedRegion.create(region_name, brokers=4, slots=16, ring_bytes=8192,
                                     ring_count=1)
    try:
        assert region.slot_capacity == 16
        assert region.creator_pid == os.getpid()
        assert region.offsets.find("left-behind", 0) is None
    finally:
        region.close()
        region.unlink()


def test_create_refuses_a_region_whose_creator_still_runs(region_name):
    proc = child("""
        import sys, time
        from pybroker import shm
        region = shm.SharedRegion.create(sys.argv[1], brokers=4, slots=8, ring_bytes=8192,
                                         ring_count=1)
        print("ready", flush=True)
        time.sleep(30)
    """, region_name)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(shm.RegionInUse):
            shm.SharedRegion.create(region_name, brokers=4, slots=8, ring_bytes=8192,
                                    ring_count=1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    # Once the creator is dead the same region counts as stale.
    region = shm.SharedRegion.create(region_name, brokers=4, slots=8, ring_bytes=8192,
                                     ring_count=1)
    region.close()
    region.unlink()


def test_unlink_removes_the_name_but_attached_mappings_keep_working(region_name):
    region = shm.SharedRegion.create(region_name, brokers=2, slots=4, ring_bytes=8192,
                                     ring_count=1)
    other = shm.SharedRegion.attach(region_name)
    region.unlink()
    with pytest.raises(shm.ShmError, match="no shared-memory region"):
        shm.SharedRegion.attach(region_name)
    other.brokers.heartbeat(0, 42)
    assert region.brokers.read(0).heartbeat_ms == 42
    other.close()
    region.close()
    region.close()  # idempotent
    region.unlink()  # already gone: no error


def test_attach_to_a_foreign_object_is_a_clear_error(region_name):
    foreign = posix_ipc.SharedMemory(region_name, posix_ipc.O_CREX, size=8192)
    os.write(foreign.fd, b"not a pybroker region")
    foreign.close_fd()
    with pytest.raises(shm.ShmError, match="bad magic"):
        shm.SharedRegion.attach(region_name)


def test_attach_to_a_missing_region_is_a_clear_error(region_name):
    with pytest.raises(shm.ShmError, match="is the supervisor running"):
        shm.SharedRegion.attach(region_name)


@pytest.mark.parametrize("kwargs", [
    {"brokers": 0}, {"brokers": 65}, {"slots": 0}, {"ring_bytes": 1000},
    {"ring_bytes": 4097}, {"ring_count": 9},
])
def test_create_rejects_bad_sizes(region_name, kwargs):
    params = dict(brokers=8, slots=8, ring_bytes=8192, ring_count=1) | kwargs
    with pytest.raises(ValueError):
        shm.SharedRegion.create(region_name, **params)


def test_ring_of_a_broker_without_one_is_an_error(region):
    with pytest.raises(shm.ShmError, match="no tail ring for broker 5"):
        region.ring(5)
