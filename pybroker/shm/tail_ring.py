"""Tail ring: the most recently appended record batches of one leader broker.

The leader copies every batch it appends to its partitions into its ring; a co-located
follower (or tail consumer) asks "batches of slot S from offset O" and gets them without
a socket round trip. The ring is a cache: when what a reader needs is gone (overwritten,
never there, or changing under it) it answers None and the reader fetches over the socket,
which returns the same bytes.

Ring layout (native byte order): a 64-byte header, then ``capacity`` data bytes::

    HEADER = "q"    # head      => bytes ever written (64-bit, only grows); published last
             "q"    # tail      => absolute position of the oldest entry still intact;
                    #              published *before* the bytes behind it are overwritten
             "q"    # capacity  => data bytes (a multiple of 8)
             "q"    # writer_pid
             "32x"  # reserved

    ENTRY  = "q"    # length      => whole entry: this header + batch padded to 8 bytes
             "q"    # slot        => offsets-table slot of the partition; -1 = padding
             "q"    # position    => absolute position of this entry (catches stale headers)
             "q"    # base_offset => of the batch
             "q"    # last_offset => of the batch
             "q"    # batch_len   => bytes of batch that follow (unpadded)
             "q"    # partition   => partition index       } the partition's identity:
             "16s"  # topic_id    => the topic's UUID       } see RingKey
             ...    # batch bytes, then zero to 7 bytes of padding

What an entry guarantees. An entry is served only to a reader asking for the same
``RingKey``: slot, partition and topic id. The slot alone is a cache index that outlives
its partition (the supervisor reuses the slot of a deleted topic, and a name can be
reused), so an old entry of a deleted topic can still sit in the ring under a slot a new
partition now has; its topic id differs, and readers skip it as they skip other
partitions' entries. The batch bytes are the leader's log bytes (offsets and leader
epoch assigned, CRC intact), so a follower still checks the epoch and CRC as it would
socket bytes.

An absolute position ``p`` lives at data byte ``p % capacity``. Entries never straddle the
end: when the next entry does not fit, the writer fills the rest with a padding entry
(slot -1), or, when fewer than ENTRY.size bytes remain, leaves them as implicit padding
that both sides skip by the same rule.

Publication order (single writer, the leader's event-loop thread):
    1. advance ``tail`` past every entry the new bytes will overwrite, store it;
    2. copy the batch, then its entry header;
    3. store ``head``.
A reader loads ``head``, reads entries below it, and after reading each header and after
copying each batch reloads ``tail``: if ``tail`` moved past the entry's position the
writer may have been overwriting it mid-copy (the reader was lapped) and the copy is
discarded. That is sound because on x86-64 stores become visible in program order and
loads are not reordered with loads, and each 8-byte word is one aligned store (see
seqlock.py). Readers never write to the ring.
"""
from __future__ import annotations

import os
import struct
from typing import NamedTuple

from pybroker.shm.seqlock import ShmError

HEADER_SIZE = 64
_HEAD_WORD, _TAIL_WORD, _CAPACITY_WORD, _PID_WORD = 0, 1, 2, 3
ENTRY = struct.Struct(
    "@q"  # length
    "q"   # slot (-1 = padding)
    "q"   # position
    "q"   # base_offset
    "q"   # last_offset
    "q"   # batch_len
    "q"   # partition
    "16s" # topic_id
)
ENTRY_SIZE = ENTRY.size
# A scan reads the first six fields of every entry and the identity only of entries in the
# reader's slot, so entries of other partitions cost what they did before identities.
_ENTRY_HEAD = struct.Struct("@qqqqqq")
_IDENTITY = struct.Struct("@q16s")
_IDENTITY_AT = _ENTRY_HEAD.size
PADDING = -1
# A reader lapped this many times in one call gives up: the writer outruns it and the
# socket path will serve it better than retrying.
_MAX_RESCANS = 4
_LAPPED = object()
_NO_TOPIC = bytes(16)


class RingKey(NamedTuple):
    """Which partition a ring entry holds: its offsets-table slot (a fast filter), and the
    partition's identity, topic id (16 bytes of the topic's UUID) and index."""

    slot: int
    topic_id: bytes
    partition: int


def _next_header(pos: int, capacity: int) -> int:
    """``pos``, or the start of the next lap when fewer than ENTRY_SIZE bytes remain before
    the end: the implicit padding rule, shared by the writer and readers."""
    room = capacity - pos % capacity
    return pos + room if room < ENTRY_SIZE else pos


def stride_for(capacity: int) -> int:
    """Bytes one ring occupies in the region, page-aligned so rings share no page."""
    return (HEADER_SIZE + capacity + 4095) & ~4095


class TailRing:
    """One broker's ring. ``append`` is for the owning leader only; anyone may read it
    through a ``TailReader``. A new writer (a restarted broker) empties the ring on its
    first append, since it cannot vouch for what a previous writer left."""

    def __init__(self, data: memoryview, words: memoryview, base: int, capacity: int, ring_id: int):
        if base % 8 or capacity % 8 or capacity < 4 * ENTRY_SIZE:
            raise ValueError(f"ring capacity {capacity} must be a multiple of 8 and >= {4 * ENTRY_SIZE}")
        self.ring_id = ring_id
        self.capacity = capacity
        self._data = data
        self._words = words
        self._header_word = base >> 3
        self._start = base + HEADER_SIZE
        self._head: int | None = None  # writer's own copy; None until the first append
        self._tail = 0

    def init(self) -> None:
        """Write a fresh header (region creator only)."""
        w = self._header_word
        words = self._words
        words[w + _HEAD_WORD] = 0
        words[w + _TAIL_WORD] = 0
        words[w + _CAPACITY_WORD] = self.capacity
        words[w + _PID_WORD] = 0

    @property
    def head(self) -> int:
        return self._words[self._header_word + _HEAD_WORD]

    @property
    def tail(self) -> int:
        return self._words[self._header_word + _TAIL_WORD]

    @property
    def writer_pid(self) -> int:
        return self._words[self._header_word + _PID_WORD]

    def _take_over(self) -> None:
        w = self._header_word
        head = self._words[w + _HEAD_WORD]
        self._words[w + _PID_WORD] = os.getpid()
        self._words[w + _TAIL_WORD] = head
        self._head = self._tail = head

    def append(self, key: RingKey, base_offset: int, last_offset: int, batch) -> bool:
        """Publish one batch (bytes-like) of the partition ``key``. False when it is larger
        than the whole ring: readers then see a gap and fall back to the socket for it."""
        slot, topic_id, partition = key
        if slot < 0:
            raise ValueError(f"slot must be >= 0, got {slot}")
        if len(topic_id) != 16 or topic_id == _NO_TOPIC:
            raise ValueError(f"topic id must be 16 bytes of a UUID other than zero, got {topic_id!r}")
        if self._head is None:
            self._take_over()
        n = len(batch)
        size = ENTRY_SIZE + ((n + 7) & ~7)
        capacity = self.capacity
        if size > capacity:
            return False
        head = self._head
        at = head % capacity
        room = capacity - at
        pad_at = -1
        if room < size:
            pad_at, head, at = head, head + room, 0
        self._advance_tail(head + size - capacity)
        data = self._data
        start = self._start
        if pad_at >= 0 and room >= ENTRY_SIZE:
            ENTRY.pack_into(data, start + pad_at % capacity, room, PADDING, pad_at, 0, 0, 0, 0, _NO_TOPIC)
        body = start + at + ENTRY_SIZE
        data[body:body + n] = batch
        ENTRY.pack_into(data, start + at, size, slot, head, base_offset, last_offset, n, partition, topic_id)
        head += size
        self._head = head
        self._words[self._header_word + _HEAD_WORD] = head
        return True

    def _advance_tail(self, needed: int) -> None:
        tail = self._tail
        if tail >= needed:
            return
        capacity = self.capacity
        words = self._words
        start = self._start
        while tail < needed:
            tail = _next_header(tail, capacity)
            if tail >= needed:
                break
            at = tail % capacity
            length = words[(start + at) >> 3]
            if not ENTRY_SIZE <= length <= capacity - at:
                raise ShmError(f"ring {self.ring_id}: entry at {tail} has length {length}; "
                               "the ring was written by someone other than its leader")
            tail += length
        self._tail = tail
        words[self._header_word + _TAIL_WORD] = tail


class TailReader:
    """Reads one ring for one process, remembering where each slot's last read ended so a
    tailing follower scans only what is new. Not thread-safe: one per reader thread."""

    def __init__(self, ring: TailRing):
        self.ring = ring
        self._hints: dict[RingKey, tuple[int, int]] = {}  # key -> (next offset, position)

    def read_from(self, key: RingKey, offset: int, max_bytes: int = 1 << 20) -> bytes | None:
        """Whole batches of partition ``key`` from the one holding ``offset`` on, at most
        ``max_bytes`` unless the first batch alone is larger (as Kafka's Fetch does).

        Returns b"" when the ring shows the partition ends just before ``offset`` (nothing
        new yet), and None when the ring cannot answer: the batch was overwritten, never
        fit, or the writer lapped this reader. None means "fetch over the socket"."""
        for _ in range(_MAX_RESCANS):
            result = self._scan(key, offset, max_bytes)
            if result is not _LAPPED:
                return result
        return None

    def _scan(self, key: RingKey, offset: int, max_bytes: int):
        slot, topic_id, partition = key
        ring = self.ring
        words = ring._words
        data = ring._data
        start = ring._start
        capacity = ring.capacity
        tail_word = ring._header_word + _TAIL_WORD
        head = words[ring._header_word + _HEAD_WORD]
        tail = words[tail_word]
        hint = self._hints.get(key)
        if hint is not None and hint[0] == offset and hint[1] >= tail:
            pos, contiguous = hint[1], True
        else:
            pos, contiguous = tail, False
        parts: list[bytes] = []
        lasts: list[int] = []  # last offset of each collected batch
        total = 0
        expect = offset
        while True:
            pos = _next_header(pos, capacity)
            if pos >= head:
                break
            at = pos % capacity
            room = capacity - at
            length, entry_slot, position, base, last, n = _ENTRY_HEAD.unpack_from(data, start + at)
            if words[tail_word] > pos:
                return _LAPPED
            if position != pos or not ENTRY_SIZE + n <= length <= room:
                raise ShmError(f"ring {ring.ring_id}: bad entry at {pos} "
                               f"(length {length}, position {position})")
            if entry_slot == slot and _IDENTITY.unpack_from(data, start + at + _IDENTITY_AT) == (partition, topic_id):
                if parts and base != expect:
                    if base > expect:
                        break  # a gap (a batch too large for the ring): the socket serves it
                    # Offsets went backwards: the leader truncated and appended again, so
                    # this entry supersedes the collected batches from its base on.
                    while parts and lasts[-1] >= base:
                        total -= len(parts.pop())
                        lasts.pop()
                    expect = lasts[-1] + 1 if parts else offset
                    contiguous = bool(parts)
                if last < expect:
                    contiguous = last == expect - 1
                elif base <= expect:
                    if parts and total + n > max_bytes:
                        break
                    body = start + at + ENTRY_SIZE
                    copy = bytes(data[body:body + n])
                    if words[tail_word] > pos:
                        return _LAPPED
                    parts.append(copy)
                    lasts.append(last)
                    total += n
                    expect = last + 1
                    contiguous = True
                    pos += length
                    resume_at = pos
                    if total >= max_bytes:
                        break
                    continue
                else:
                    return None  # the batch holding the offset is not in the ring
            pos += length
        if parts:
            self._hints[key] = (expect, resume_at)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if contiguous:
            self._hints[key] = (offset, pos)
            return b""
        return None
