"""Offsets table: per partition, its leader, epoch, log start, log end and high watermark.

The partition's leader publishes its offsets here after every append and high-watermark
move; the supervisor (lag, under-replication), ``pybroker status`` and followers read them
without a round trip.

Row layout (native byte order, 352 bytes, 8-aligned)::

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
          "16s"   # topic_id         => the topic's UUID: which incarnation of the name
          "256s"  # topic            => UTF-8, Kafka caps names at 249 bytes

Identity. A slot is reused once its topic is deleted, and a topic name can be reused
too, so neither a slot nor a name says which partition a row (or a tail-ring entry)
belongs to. (topic id, partition) does: the controller gives every topic a fresh UUID at
creation. The supervisor writes the key (state, partition, topic id, name) when it
allocates; readers compare the row's topic id with the one their metadata names, and
``write`` refuses to publish into a row whose key is no longer the writer's partition.

Slot allocation. Rows are found by hashing (topic, partition) with CRC-32 (stable across
processes, unlike ``hash()``) and probing linearly; a probe stops at an EMPTY row and
walks over DELETED ones. Only the supervisor allocates and releases rows: it is the
controller and already the one writer of partition metadata, so allocation needs no
compare-and-swap — there is never a second allocator to race with. It allocates a row
when it creates a partition (and again on start-up for every partition, which finds the
existing row), and releases it when the topic is deleted; a tombstone that ends a probe
chain becomes EMPTY again, so deleting topics does not fill the table with tombstones.
At most ``MAX_LOAD`` of the rows hold partitions, and tombstones never take the last
sixteenth of EMPTY rows (probes for absent keys stay short): beyond that ``allocate``
answers None and the partition simply has no row — its replication and
reads use sockets only, which is a degradation, never an error. Brokers call ``find``
once per partition they lead and cache the slot; from then on, the leader is the row's
one writer (``write``), which the supervisor guarantees by fencing the old leader before
telling the new one. Readers use ``read``, which never blocks the writer (see seqlock.py).
"""
from __future__ import annotations

import struct
import uuid
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
    "16s"   # topic_id
    "256s"  # topic
)
ROW_SIZE = ROW.size
assert ROW_SIZE == 352
_KEY = struct.Struct("@qq")            # state, partition (after the seq word)
_VALUES = struct.Struct("@qqqqqq")     # leader_id .. updated_ms
_VALUES_AT = 24
_TOPIC = struct.Struct("@q16s256s")    # topic_len, topic_id, topic
_TOPIC_AT = 72
_TOPIC_ID_AT = 80
TOPIC_ID_BYTES = 16
# Open addressing with linear probing: at 3/4 full an absent key costs ~8 probes on
# average; fuller than that, probes (and every broker's lookup of a partition without a
# row) grow quickly.
MAX_LOAD = 0.75

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
    topic_id: bytes


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


def _topic_id_bytes(topic_id: bytes) -> bytes:
    if not isinstance(topic_id, bytes) or len(topic_id) != TOPIC_ID_BYTES or not any(topic_id):
        raise ValueError(f"topic id must be 16 bytes of a UUID other than zero, got {topic_id!r}")
    return topic_id


def topic_id_bytes(topic_id) -> bytes | None:
    """The 16 bytes rows and ring entries store for a topic id given as a UUID, its
    string form (as the cluster metadata keeps it) or bytes; None for none or zero (a
    client whose Metadata version carries no topic ids)."""
    if topic_id is None:
        return None
    if isinstance(topic_id, str):
        try:
            topic_id = uuid.UUID(topic_id)
        except ValueError:
            return None
    raw = topic_id.bytes if isinstance(topic_id, uuid.UUID) else bytes(topic_id)
    return raw if len(raw) == TOPIC_ID_BYTES and any(raw) else None


class OffsetsTable:
    """The partition rows of one region. See the module docstring for who writes what."""

    def __init__(self, data: memoryview, words: memoryview, base: int, capacity: int):
        self._rows = SeqlockRows(data, words, base, ROW_SIZE, capacity)
        self._data = data
        self._words = words
        self.capacity = capacity
        self.limit = max(1, int(capacity * MAX_LOAD))
        self._occupied_limit = max(self.limit, capacity - max(1, capacity // 16))
        self._counts: list[int] | None = None  # allocator's [USED rows, non-EMPTY rows]

    @staticmethod
    def size_for(capacity: int) -> int:
        return capacity * ROW_SIZE

    @staticmethod
    def capacity_for(partitions: int) -> int:
        """Rows a table needs so that ``partitions`` rows keep it under MAX_LOAD, with
        room to double."""
        return int(2 * partitions / MAX_LOAD) + 1

    def _state(self, slot: int) -> int:
        return self._words[(self._rows.offset(slot) >> 3) + 1]

    def _probe(self, raw: bytes, partition: int):
        """Yields (slot, unpacked row) along the probe sequence of a key, EMPTY included."""
        capacity = self.capacity
        start = zlib.crc32(raw + partition.to_bytes(4, "big")) % capacity
        for step in range(capacity):
            slot = (start + step) % capacity
            yield slot, ROW.unpack(self._rows.snapshot(slot))

    @staticmethod
    def _is_key(row: tuple, raw: bytes, partition: int) -> bool:
        return row[1] == USED and row[2] == partition and row[11][:row[9]] == raw

    def find(self, topic: str, partition: int) -> int | None:
        """The slot of (topic, partition), or None if it has none (never allocated, or
        the table had no room). The row's topic id says which incarnation of the name
        holds it: compare it with yours (``read``)."""
        raw = _key_bytes(topic, partition)
        for slot, row in self._probe(raw, partition):
            if row[1] == EMPTY:
                return None
            if self._is_key(row, raw, partition):
                return slot
        return None

    def _load(self) -> list[int]:
        if self._counts is None:
            states = [self._state(slot) for slot in range(self.capacity)]
            self._counts = [states.count(USED), len(states) - states.count(EMPTY)]
        return self._counts

    def used(self) -> int:
        """Rows holding a partition: at most ``limit``."""
        return self._load()[0]

    def occupied(self) -> int:
        """Rows not EMPTY (partitions and tombstones)."""
        return self._load()[1]

    def allocate(self, topic: str, partition: int, topic_id: bytes, now_ms: int = 0) -> int | None:
        """Supervisor only: the slot of (topic, partition) for the topic ``topic_id``
        (16 bytes), claiming one if it has none. A row left by an older incarnation of
        the name is taken over with its offsets reset. None when the table is at its
        load limit: the partition goes without a row (sockets only)."""
        raw = _key_bytes(topic, partition)
        topic_id = _topic_id_bytes(topic_id)
        free = None
        for slot, row in self._probe(raw, partition):
            state = row[1]
            if self._is_key(row, raw, partition):
                if row[10] == topic_id:
                    return slot
                free = slot  # a stale incarnation: rekey it in place
                break
            if state != USED and free is None:
                free = slot
            if state == EMPTY:
                break
        if free is None:
            return None
        state = self._state(free)
        counts = self._load()
        if state != USED:
            if counts[0] >= self.limit or (state == EMPTY and counts[1] >= self._occupied_limit):
                return None
            counts[0] += 1
            counts[1] += state == EMPTY
        rows = self._rows
        at = rows.offset(free)
        token = rows.begin_write(free)
        _KEY.pack_into(self._data, at + 8, USED, partition)
        _VALUES.pack_into(self._data, at + _VALUES_AT, -1, -1, 0, 0, 0, now_ms)
        _TOPIC.pack_into(self._data, at + _TOPIC_AT, len(raw), topic_id, raw)
        rows.end_write(free, token)
        return free

    def release(self, topic: str, partition: int) -> bool:
        """Supervisor only: turn the row into a tombstone (EMPTY when no probe chain runs
        through it). False if there was none."""
        slot = self.find(topic, partition)
        if slot is None:
            return False
        self._set_state(slot, DELETED, partition)
        counts = self._counts
        if counts is not None:
            counts[0] -= 1
        # A tombstone followed by an EMPTY row ends every probe that reaches it, so it
        # can be EMPTY itself; that may in turn free the tombstones just before it.
        capacity = self.capacity
        while self._state((slot + 1) % capacity) == EMPTY and self._state(slot) == DELETED:
            self._set_state(slot, EMPTY, 0)
            if counts is not None:
                counts[1] -= 1
            slot = (slot - 1) % capacity
        return True

    def _set_state(self, slot: int, state: int, partition: int) -> None:
        rows = self._rows
        token = rows.begin_write(slot)
        _KEY.pack_into(self._data, rows.offset(slot) + 8, state, partition)
        rows.end_write(slot, token)

    def write(self, slot: int, topic_id: bytes, leader_id: int, leader_epoch: int, log_start_offset: int,
              log_end_offset: int, high_watermark: int, now_ms: int) -> bool:
        """Leader only: publish the partition's offsets (one seqlocked store of 48 bytes).
        False, writing nothing, when the row no longer belongs to the topic ``topic_id``
        (deleted, its slot reused): forget the slot."""
        rows = self._rows
        at = rows.offset(slot)
        if self._words[(at >> 3) + 1] != USED or self._data[at + _TOPIC_ID_AT:at + _TOPIC_ID_AT + 16] != topic_id:
            return False
        token = rows.begin_write(slot)
        _VALUES.pack_into(self._data, at + _VALUES_AT, leader_id, leader_epoch,
                          log_start_offset, log_end_offset, high_watermark, now_ms)
        rows.end_write(slot, token)
        return True

    def read(self, slot: int) -> OffsetsRow | None:
        """A consistent snapshot of the slot, or None if it holds no partition."""
        row = ROW.unpack(self._rows.snapshot(slot))
        if row[1] != USED:
            return None
        return OffsetsRow(slot, row[11][:row[9]].decode("utf-8"), row[2], *row[3:9], row[10])

    def rows(self) -> list[OffsetsRow]:
        """Every allocated partition, in slot order."""
        return [row for row in map(self.read, range(self.capacity)) if row is not None]
