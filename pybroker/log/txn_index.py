"""The aborted-transaction index of one segment: ``<base offset>.txnindex`` (Kafka's
TransactionIndex).

One entry per transaction aborted by an ABORT marker in this segment, in marker order::

    ENTRY = struct.Struct(
        ">h"  # version => Int16 (0)
        "q"   # producerId => Int64
        "q"   # firstOffset => Int64 (the transaction's first offset in this partition)
        "q"   # lastOffset => Int64 (the offset of its ABORT marker)
        "q"   # lastStableOffset => Int64 (the partition's LSO once it was aborted)
    )

A read_committed Fetch returns, for the range it serves, every aborted transaction that
overlaps it (``collect``); the consumer drops those producers' batches from the first
offset until their marker. The file is created at the first abort (most segments have
none), appended through the page cache like the log, and derived data: a torn entry at
the tail is dropped on load, and producer-state replay adds back what a crash lost.

Owned by its LogSegment (the broker's event-loop thread); not thread-safe.
"""
from __future__ import annotations

import bisect
import os
import struct
from typing import NamedTuple

from pybroker import errors

SUFFIX = ".txnindex"
ENTRY = struct.Struct(
    ">h"  # version => Int16 (0)
    "q"   # producerId => Int64
    "q"   # firstOffset => Int64
    "q"   # lastOffset => Int64
    "q"   # lastStableOffset => Int64
)
VERSION = 0


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    def __init__(self, path: str):
        self.path = path
        self.entries: list[AbortedTxn] = []
        self._lasts: list[int] = []
        self._fd = -1
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        whole = len(data) - len(data) % ENTRY.size
        for pos in range(0, whole, ENTRY.size):
            version, *fields = ENTRY.unpack_from(data, pos)
            entry = AbortedTxn(*fields)
            if version != VERSION or (self._lasts and entry.last_offset <= self._lasts[-1]):
                whole = pos
                break
            self.entries.append(entry)
            self._lasts.append(entry.last_offset)
        if whole != len(data):
            os.truncate(path, whole)

    def append(self, entry: AbortedTxn) -> bool:
        """Add an aborted transaction; one whose marker is not after the last entry's is
        already here (a replay after restart) and is skipped. Returns whether it was added."""
        if self._lasts and entry.last_offset <= self._lasts[-1]:
            return False
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, ENTRY.pack(VERSION, *entry))
        except OSError as exc:
            raise errors.KafkaStorageError(f"I/O error on {self.path}: {exc}") from None
        self.entries.append(entry)
        self._lasts.append(entry.last_offset)
        return True

    def collect(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_bound): marker at or after
        the fetch offset, first offset before the bound."""
        start = bisect.bisect_left(self._lasts, fetch_offset)
        return [e for e in self.entries[start:] if e.first_offset < upper_bound]

    def truncate_to(self, offset: int) -> None:
        """Forget transactions whose marker is at or after ``offset`` (the log was cut)."""
        keep = bisect.bisect_left(self._lasts, offset)
        if keep == len(self.entries):
            return
        del self.entries[keep:]
        del self._lasts[keep:]
        try:
            if os.path.exists(self.path):
                os.truncate(self.path, keep * ENTRY.size)
        except OSError as exc:
            raise errors.KafkaStorageError(f"I/O error on {self.path}: {exc}") from None

    def flush(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close_and_delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
