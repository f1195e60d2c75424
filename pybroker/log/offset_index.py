"""Sparse offset index of one segment (``<base offset>.index``).

Entry (8 bytes), one per ``index.interval.bytes`` of log::

    relativeOffset int32   batch base offset - segment base offset
    position       int32   byte position of that batch in the .log file

A lookup finds the last entry at or below the target offset; the reader then walks batch
headers from that position. Entries are strictly increasing in both fields.

Owned by one ``LogSegment`` on the broker's event-loop thread; not thread-safe.
"""
from __future__ import annotations

import struct

from pybroker.log.index import CorruptIndex, Index

ENTRY = struct.Struct(
    ">i"  # relativeOffset => Int32
    "i"   # position => Int32
)


class OffsetIndex(Index):
    ENTRY = ENTRY
    KEY = 0

    def append(self, offset: int, position: int) -> None:
        last = self.last_entry()
        relative = offset - self.base_offset
        if last is not None and (relative <= last[0] or position <= last[1]):
            raise ValueError(f"index entry ({offset}, {position}) does not follow {last} in {self.path}")
        self._append_entry(relative, position)

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry with offset <= target, else (base, 0)."""
        slot = self._largest_lower_bound(target_offset - self.base_offset)
        if slot < 0:
            return self.base_offset, 0
        relative, position = self.entry(slot)
        return self.base_offset + relative, position

    @property
    def last_offset(self) -> int:
        last = self.last_entry()
        return self.base_offset if last is None else self.base_offset + last[0]

    def truncate_to(self, offset: int) -> None:
        """Drop entries whose offset >= ``offset``."""
        self._truncate_entries(self._largest_lower_bound(offset - self.base_offset - 1) + 1)

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or past ``position`` (the log was cut there)."""
        n = self._entries
        while n and self.entry(n - 1)[1] >= position:
            n -= 1
        self._truncate_entries(n)

    def sanity_check(self, log_size: int) -> None:
        self.check_layout()
        prev = None
        for n, (relative, position) in enumerate(self.iter_entries()):
            if relative < 0 or position < 0 or position >= max(log_size, 1):
                raise CorruptIndex(f"{self.path}: entry {n} ({relative}, {position}) out of range")
            if prev is not None and (relative <= prev[0] or position <= prev[1]):
                raise CorruptIndex(f"{self.path}: entry {n} is not above entry {n - 1}")
            prev = (relative, position)
