"""Offsets table: per partition, its leader, epoch, log start, log end and high watermark.

The partition's leader publishes its offsets here after every append and high-watermark
move; the supervisor (lag, under-replication), ``pybroker status`` and followers read them
without a round trip.

Row layout (native byte order, 336 bytes, 8-aligned)::

    ROW = "q"     # seq              => seqlock word (odd while the row is being rewritten)
          "q"     # state            => EMPTY (never used) / USED / DELETED (tombstone)
          "q"     # partition
          "q"     # leader_id        => -1 = none
          "q"     # leader_epoch
          "q"     # log_start_offset
          "q"     # log_end_offset
          "q"     # high_watermark
          "q"     # updated_ms       => wall clock of the last write
          "q"     # topic_len        => bytes of topic used (1..249)
          "256s"  # topic            => UTF-8, Kafka caps names at 249 bytes

Slot allocation. Rows are found by hashing (topic, partition) with CRC-32 (stable across
processes, unlike ``hash()``) and probing linearly; a probe stops at an EMPTY row and
walks over DELETED ones. Only the supervisor allocates and releases rows: it is the
controller and already the one writer of partition metadata, so allocation needs no
compare-and-swap — there is never a second allocator to race with. It allocates a row
when it creates a partition (and again on start-up for every partition, which finds the
existing row), and releases it when the topic is deleted. Brokers call ``find`` once per
partition they lead and cache the slot; from then on, the leader is the row's one writer
(``write``), which the supervisor guarantees by fencing the old leader before telling the
new one. Readers use ``read``, which never blocks the writer (see seqlock.py).
"""
from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from pybroker import errors
from pybroker.shm.seqlock import SeqlockRows, ShmError

MAX_TOPIC_BYTES = 249
ROW = struct.Struct(
    "@q"    # seq
    "q"     # state
    "q"     # partition
    "q"     # leader_id
    "q"     # leader_epoch
    "q"     # log_start_offset
    "q"     # log_end_offset
    "q"     # high_watermark
    "q"     # updated_ms
    "q"     # topic_len
    "256s"  # topic
)
ROW_SIZE = ROW.size
assert ROW_SIZE == 336
_KEY = struct.Struct("@qq")            # state, partition (after the seq word)
_VALUES = struct.Struct("@qqqqqq")     # leader_id .. updated_ms
_VALUES_AT = 24
_TOPIC = struct.Struct("@q256s")       # topic_len, topic
_TOPIC_AT = 72

EMPTY, USED, DELETED = 0, 1, 2


class OffsetsRow(NamedTuple):
    slot: int
    topic: str
    partition: int
    leader_id: int
    leader_epoch: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int
    updated_ms: int


def _key_bytes(topic: str, partition: int) -> bytes:
    if not isinstance(topic, str):
        raise errors.InvalidTopicException(f"topic must be a str, not {type(topic).__name__}")
    raw = topic.encode("utf-8")
    if not 0 < len(raw) <= MAX_TOPIC_BYTES:
        raise errors.InvalidTopicException(
            f"topic name is {len(raw)} bytes; Kafka allows 1..{MAX_TOPIC_BYTES}")
    if not 0 <= partition < 2**31:
        raise errors.InvalidRequest(f"partition {partition} outside 0..2^31-1")
    return raw


class OffsetsTable:
    """The partition rows of one region. See the module docstring for who writes what."""

    def __init__(self, data: memoryview, words: memoryview, base: int, capacity: int):
        self._rows = SeqlockRows(data, words, base, ROW_SIZE, capacity)
        self._data = data
        self.capacity = capacity

    @staticmethod
    def size_for(capacity: int) -> int:
        return capacity * ROW_SIZE

    def _probe(self, raw: bytes, partition: int):
        """Yields (slot, unpacked row) along the probe sequence of a key, EMPTY included."""
        capacity = self.capacity
        start = zlib.crc32(raw + partition.to_bytes(4, "big")) % capacity
        for step in range(capacity):
            slot = (start + step) % capacity
            yield slot, ROW.unpack(self._rows.snapshot(slot))

    def find(self, topic: str, partition: int) -> int | None:
        """The slot of (topic, partition), or None if the supervisor never allocated it."""
        raw = _key_bytes(topic, partition)
        for slot, row in self._probe(raw, partition):
            state = row[1]
            if state == EMPTY:
                return None
            if state == USED and row[2] == partition and row[10][:row[9]] == raw:
                return slot
        return None

    def allocate(self, topic: str, partition: int, now_ms: int = 0) -> int:
        """Supervisor only: the slot of (topic, partition), claiming one if it has none."""
        raw = _key_bytes(topic, partition)
        free = None
        for slot, row in self._probe(raw, partition):
            state = row[1]
            if state == USED:
                if row[2] == partition and row[10][:row[9]] == raw:
                    return slot
            elif free is None:
                free = slot
            if state == EMPTY:
                break
        if free is None:
            raise ShmError(f"offsets table full ({self.capacity} slots); "
                           "create the region with more slots")
        rows = self._rows
        at = rows.offset(free)
        token = rows.begin_write(free)
        _KEY.pack_into(self._data, at + 8, USED, partition)
        _VALUES.pack_into(self._data, at + _VALUES_AT, -1, -1, 0, 0, 0, now_ms)
        _TOPIC.pack_into(self._data, at + _TOPIC_AT, len(raw), raw)
        rows.end_write(free, token)
        return free

    def release(self, topic: str, partition: int) -> bool:
        """Supervisor only: turn the row into a tombstone. False if there was none."""
        slot = self.find(topic, partition)
        if slot is None:
            return False
        rows = self._rows
        token = rows.begin_write(slot)
        _KEY.pack_into(self._data, rows.offset(slot) + 8, DELETED, partition)
        rows.end_write(slot, token)
        return True

    def write(self, slot: int, leader_id: int, leader_epoch: int, log_start_offset: int,
              log_end_offset: int, high_watermark: int, now_ms: int) -> None:
        """Leader only: publish the partition's offsets (one seqlocked store of 48 bytes)."""
        rows = self._rows
        token = rows.begin_write(slot)
        _VALUES.pack_into(self._data, rows.offset(slot) + _VALUES_AT, leader_id, leader_epoch,
                          log_start_offset, log_end_offset, high_watermark, now_ms)
        rows.end_write(slot, token)

    def read(self, slot: int) -> OffsetsRow | None:
        """A consistent snapshot of the slot, or None if it holds no partition."""
        row = ROW.unpack(self._rows.snapshot(slot))
        if row[1] != USED:
            return None
        return OffsetsRow(slot, row[10][:row[9]].decode("utf-8"), row[2], *row[3:9])

    def rows(self) -> list[OffsetsRow]:
        """Every allocated partition, in slot order."""
        return [row for row in map(self.read, range(self.capacity)) if row is not None]
