from __future__ import annotations

import struct

import pytest

from pybroker import shm
from pybroker.shm.tail_ring import ENTRY, ENTRY_SIZE, PADDING
from shm_processes import OTHER_TOPIC_ID, TOPIC_ID, child, key

pytestmark = pytest.mark.timeout(60)

# Test batches look like Kafka's: baseOffset, then batchLength (bytes after the field),
# then a body filled with one byte derived from the offset, so a torn copy shows.
PREFIX = struct.Struct(">qi")


def make_batch(base: int, size: int) -> bytes:
    return PREFIX.pack(base, size - 12) + bytes([base % 251]) * (size - 12)


def split(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        base, length = PREFIX.unpack_from(data, pos)
        out.append((base, data[pos:pos + 12 + length]))
        pos += 12 + length
    return out


def fill(ring, slot, start, count, records=10, size=500):
    for base in range(start, start + count * records, records):
        assert ring.append(key(slot), base, base + records - 1, make_batch(base, size))


def test_read_returns_whole_batches_from_the_one_holding_the_offset(region):
    ring = region.ring(0)
    fill(ring, 7, 0, 3)
    reader = shm.TailReader(ring)
    assert [b for b, _ in split(reader.read_from(key(7), 15, 1 << 20))] == [10, 20]
    assert reader.read_from(key(7), 0, 1 << 20) == b"".join(make_batch(b, 500) for b in (0, 10, 20))


def test_caught_up_reader_gets_empty_then_the_next_batch(region):
    ring = region.ring(0)
    fill(ring, 7, 0, 2)
    reader = shm.TailReader(ring)
    assert reader.read_from(key(7), 20, 1 << 20) == b""
    assert reader.read_from(key(7), 20, 1 << 20) == b""
    fill(ring, 7, 20, 1)
    assert reader.read_from(key(7), 20, 1 << 20) == make_batch(20, 500)


def test_offset_the_ring_cannot_vouch_for_is_none(region):
    ring = region.ring(0)
    reader = shm.TailReader(ring)
    assert reader.read_from(key(7), 0, 1 << 20) is None  # empty ring
    fill(ring, 7, 100, 2)
    assert reader.read_from(key(7), 50, 1 << 20) is None   # before the oldest batch
    assert reader.read_from(key(7), 125, 1 << 20) is None  # beyond the end, not adjacent
    assert reader.read_from(key(8), 100, 1 << 20) is None  # another partition


def test_batches_of_other_partitions_are_skipped(region):
    ring = region.ring(1)
    for i in range(6):
        slot, base = i % 2, i // 2 * 10
        ring.append(key(slot), base, base + 9, make_batch(base, 200 + 100 * slot))
    reader = shm.TailReader(ring)
    assert reader.read_from(key(1), 0, 1 << 20) == b"".join(make_batch(b, 300) for b in (0, 10, 20))
    assert reader.read_from(key(0), 10, 1 << 20) == b"".join(make_batch(b, 200) for b in (10, 20))


def test_entries_of_a_deleted_topic_under_a_reused_slot_are_never_served(region):
    """The supervisor gives a deleted topic's slot to a new partition; the old topic's
    batches are still in the leader's ring under that slot. A reader of the new partition
    must not get them, whatever offsets it asks for."""
    ring = region.ring(0)
    old, new = key(7, OTHER_TOPIC_ID), key(7)
    for base in range(0, 30, 10):
        assert ring.append(old, base, base + 9, make_batch(base, 400))
    reader = shm.TailReader(ring)
    assert reader.read_from(new, 0, 1 << 20) is None
    assert reader.read_from(new, 10, 1 << 20) is None
    assert reader.read_from(key(7, partition=1), 0, 1 << 20) is None  # same topic, other index
    assert reader.read_from(old, 0, 1 << 20) == b"".join(make_batch(b, 400) for b in (0, 10, 20))
    # The new partition's own batches, interleaved with more of the old topic's.
    assert ring.append(new, 0, 4, make_batch(0, 200))
    assert ring.append(old, 30, 39, make_batch(30, 400))
    assert ring.append(new, 5, 9, make_batch(5, 200))
    assert reader.read_from(new, 0, 1 << 20) == make_batch(0, 200) + make_batch(5, 200)
    assert reader.read_from(new, 10, 1 << 20) == b""


def test_append_needs_a_real_topic_id(region):
    with pytest.raises(ValueError):
        region.ring(0).append(key(1, bytes(16)), 0, 0, b"x")


def test_max_bytes_stops_before_a_batch_that_would_exceed_it_but_never_returns_nothing(region):
    ring = region.ring(0)
    fill(ring, 7, 0, 4, size=1000)
    reader = shm.TailReader(ring)
    assert [b for b, _ in split(reader.read_from(key(7), 0, 2500))] == [0, 10]
    assert [b for b, _ in split(reader.read_from(key(7), 20, 10))] == [20]


def test_wraparound_keeps_the_newest_batches_and_drops_the_oldest(region):
    ring = region.ring(0)
    capacity = ring.capacity
    fill(ring, 7, 0, 400, size=1000)  # ~6 laps of the 64 KiB ring
    assert ring.head > 5 * capacity
    assert ring.head - capacity <= ring.tail <= ring.head
    reader = shm.TailReader(ring)
    assert reader.read_from(key(7), 0, 1 << 20) is None
    newest = split(reader.read_from(key(7), 3900, 1 << 20))
    assert [b for b, _ in newest] == [3900, 3910, 3920, 3930, 3940, 3950, 3960, 3970,
                                      3980, 3990]
    assert all(raw == make_batch(b, 1000) for b, raw in newest)
    oldest = split(reader.read_from(key(7), 3990 - 10 * 60, 1 << 20) or b"")
    assert oldest, "the last 60 batches (61 KB) fit a 64 KiB ring"
    assert [b for b, _ in oldest] == list(range(3990 - 10 * 60, 4000, 10))


def test_entry_that_does_not_fit_before_the_end_leaves_a_padding_entry(region):
    ring = region.ring(0)
    capacity = ring.capacity
    first = capacity - 104 - ENTRY_SIZE  # leaves 104 bytes: room for a padding header
    assert ring.append(key(7), 0, 9, make_batch(0, first))
    assert ring.append(key(7), 10, 19, make_batch(10, 200))
    length, slot, position, *_ = ENTRY.unpack_from(ring._data, ring._start + capacity - 104)
    assert (length, slot, position) == (104, PADDING, capacity - 104)
    assert ring.head == capacity + ENTRY_SIZE + 200
    reader = shm.TailReader(ring)
    assert reader.read_from(key(7), 0, 1 << 20) is None  # overwritten by the wrapped entry
    assert reader.read_from(key(7), 10, 1 << 20) == make_batch(10, 200)


def test_end_gap_smaller_than_an_entry_header_is_implicit_padding(region):
    ring = region.ring(0)
    capacity = ring.capacity
    first = capacity - 16 - ENTRY_SIZE
    assert ring.append(key(7), 0, 9, make_batch(0, first))
    assert ring.append(key(7), 10, 19, make_batch(10, 200))
    assert bytes(ring._data[ring._start + capacity - 16:ring._start + capacity]) == bytes(16)
    assert ring.head == capacity + ENTRY_SIZE + 200
    reader = shm.TailReader(ring)
    assert reader.read_from(key(7), 10, 1 << 20) == make_batch(10, 200)
    fill(ring, 7, 20, 200)  # the writer walks its tail over the implicit padding too
    assert reader.read_from(key(7), 20 + 199 * 10, 1 << 20) == make_batch(20 + 199 * 10, 500)


def test_tailing_reader_that_is_lapped_falls_back_to_the_socket(region):
    ring = region.ring(0)
    reader = shm.TailReader(ring)
    fill(ring, 7, 0, 5)
    assert len(split(reader.read_from(key(7), 0, 1 << 20))) == 5
    assert reader.read_from(key(7), 50, 1 << 20) == b""
    fill(ring, 7, 50, 300)  # far more than the ring holds
    assert reader.read_from(key(7), 50, 1 << 20) is None
    assert reader.read_from(key(7), 50 + 299 * 10, 1 << 20) == make_batch(50 + 299 * 10, 500)


def test_batch_larger_than_the_ring_is_refused_and_readers_see_the_gap(region):
    ring = region.ring(0)
    fill(ring, 7, 0, 2)
    assert not ring.append(key(7), 20, 29, make_batch(20, ring.capacity))
    fill(ring, 7, 30, 1)
    reader = shm.TailReader(ring)
    assert [b for b, _ in split(reader.read_from(key(7), 0, 1 << 20))] == [0, 10]
    assert reader.read_from(key(7), 20, 1 << 20) is None
    assert reader.read_from(key(7), 30, 1 << 20) == make_batch(30, 500)


def test_batches_rewritten_after_truncation_supersede_the_old_ones(region):
    ring = region.ring(0)
    fill(ring, 7, 0, 2)
    ring.append(key(7), 10, 14, make_batch(10, 300))  # the leader truncated to 10, appended again
    reader = shm.TailReader(ring)
    assert reader.read_from(key(7), 12, 1 << 20) == make_batch(10, 300)
    assert reader.read_from(key(7), 15, 1 << 20) == b""
    assert reader.read_from(key(7), 5, 1 << 20) == b"".join([make_batch(0, 500), make_batch(10, 300)])


def test_restarted_writer_empties_the_ring(region, region_name):
    fill(region.ring(0), 7, 0, 3)
    other = shm.SharedRegion.attach(region_name)
    try:
        fill(other.ring(0), 7, 30, 1)  # a new process takes the ring over
        reader = shm.TailReader(region.ring(0))
        assert reader.read_from(key(7), 0, 1 << 20) is None
        assert reader.read_from(key(7), 30, 1 << 20) == make_batch(30, 500)
    finally:
        other.close()


def test_negative_slot_is_refused(region):
    with pytest.raises(ValueError):
        region.ring(0).append(key(-1), 0, 0, b"x")


def test_reader_in_another_process_never_returns_a_torn_batch(region, region_name, tmp_path):
    slot = region.offsets.allocate("tail", 0, TOPIC_ID)
    stop = tmp_path / "stop"
    # The writer runs until the reader has checked enough batches (a CPU-starved reader
    # still gets there), at most 20 s.
    writer = child("""
        import os, random, struct, sys, time
        from pybroker import shm
        region = shm.SharedRegion.attach(sys.argv[1])
        slot = int(sys.argv[2])
        ring = region.ring(0)
        prefix = struct.Struct(">qi")
        rng = random.Random(7)
        print("go", flush=True)
        base = 0
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not (base % 100 == 0 and os.path.exists(sys.argv[3])):
            size = rng.randrange(64, 6000)
            batch = prefix.pack(base, size - 12) + bytes([base % 251]) * (size - 12)
            ring.append(key(slot), base, base + 9, batch)
            base += 10
            region.offsets.write(slot, TOPIC_ID, 0, 0, 0, base, base, 0)
        print(base)
    """, region_name, str(slot), str(stop))
    assert writer.stdout.readline().strip() == "go"
    reader = shm.TailReader(region.ring(0))
    want = 0
    got = fallbacks = 0
    while writer.poll() is None:
        if got >= 500:
            stop.touch()
        data = reader.read_from(key(slot), want, 64 * 1024)
        if data is None:
            fallbacks += 1
            want = region.offsets.read(slot).log_end_offset  # resync as a fetch would
            continue
        for base, raw in split(data):
            assert base == want
            body = raw[12:]
            assert body.count(bytes([base % 251])) == len(body), f"torn batch at {base}"
            want += 10
            got += 1
    writer.communicate()
    assert writer.returncode == 0
    assert got >= 500
