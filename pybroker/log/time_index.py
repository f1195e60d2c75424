"""Sparse time index of one segment (``<base offset>.timeindex``).

Entry (12 bytes), appended with the offset index when the segment's largest timestamp so
far has grown::

    timestamp      int64   largest timestamp in the segment up to this batch
    relativeOffset int32   base offset of the first batch that reached it - segment base

Timestamps are strictly increasing, so a binary search finds where records with
timestamp >= T can start: every batch before the entry's offset has max timestamp <=
the entry's timestamp.

Owned by one ``LogSegment`` on the broker's event-loop thread; not thread-safe.
"""
from __future__ import annotations

import struct

from pybroker.log.index import CorruptIndex, Index

ENTRY = struct.Struct(
    ">q"  # timestamp => Int64
    "i"   # relativeOffset => Int32
)


class TimeIndex(Index):
    ENTRY = ENTRY
    KEY = 0

    def maybe_append(self, timestamp: int, offset: int) -> None:
        last = self.last_entry()
        if last is not None and timestamp <= last[0]:
            return
        relative = offset - self.base_offset
        if last is not None and relative < last[1]:
            raise ValueError(f"time index entry ({timestamp}, {offset}) goes back in {self.path}")
        if last is not None and relative == last[1]:
            # Same batch, larger timestamp (LogAppendTime rewrite): update in place.
            self._write_entry(self._entries - 1, (timestamp, relative))
            return
        self._append_entry(timestamp, relative)

    def lookup(self, target_ts: int) -> tuple[int, int]:
        """(timestamp, offset) of the last entry with timestamp <= target, else
        (-1, base offset): where a scan for the first record >= target may start."""
        slot = self._largest_lower_bound(target_ts)
        if slot < 0:
            return -1, self.base_offset
        timestamp, relative = self.entry(slot)
        return timestamp, self.base_offset + relative

    @property
    def max_timestamp(self) -> int:
        last = self.last_entry()
        return -1 if last is None else last[0]

    def truncate_to(self, offset: int) -> None:
        """Drop entries whose offset >= ``offset``."""
        n = self._entries
        while n and self.base_offset + self.entry(n - 1)[1] >= offset:
            n -= 1
        self._truncate_entries(n)

    def sanity_check(self, next_offset: int) -> None:
        self.check_layout()
        prev = None
        for n, (timestamp, relative) in enumerate(self.iter_entries()):
            if relative < 0 or self.base_offset + relative >= max(next_offset, self.base_offset + 1):
                raise CorruptIndex(f"{self.path}: entry {n} offset {relative} out of range")
            if prev is not None and (timestamp <= prev[0] or relative < prev[1]):
                raise CorruptIndex(f"{self.path}: entry {n} is not above entry {n - 1}")
            prev = (timestamp, relative)
