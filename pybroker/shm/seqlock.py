"""Seqlocked rows in shared memory: consistent snapshots without cross-process locks.

Each row opens with one 8-byte sequence word. The row's single writer makes the word odd,
writes the fields, then makes it even again; a reader copies the row between two reads of
the word and retries while it was odd or changed. Writers never wait, readers never
block a writer.

Why this is sound from Python, which has no atomic operations:

* the sequence word is read and written through a ``memoryview`` cast to ``'q'``; an item
  assignment there is one ``memcpy`` of 8 bytes into an 8-aligned address, which the C
  compiler emits as one ``mov``, and aligned 8-byte moves are atomic on x86-64;
* x86-64 is TSO: stores become visible in program order and loads are not reordered with
  other loads, so "odd, fields, even" on the writer side and "word, copy, word" on the
  reader side cannot be observed out of order. Each step is a separate bytecode and C
  call, so the interpreter does not reorder them either.

On a weakly ordered CPU (ARM) this would need real fences; pybroker targets x86-64 for the
shared-memory path and the socket path remains available everywhere.

A writer that dies between "odd" and "even" leaves the word odd forever; readers give up
after a bounded wait with ``StaleRow`` instead of spinning, and the next writer of the row
(a restarted broker) skips the odd value, so the row heals on its next write.
"""
from __future__ import annotations

import time

# How long a reader waits for a row stuck at one odd sequence value before deciding its
# writer died. A live writer holds a row odd for microseconds, but on a loaded machine it
# can be descheduled mid-write for a scheduler slice or a few; 200 ms is well above that.
_STALE_AFTER_S = 0.2
_FAST_SPINS = 64


class ShmError(Exception):
    """A shared-memory region that cannot be used as asked (missing, wrong format, full)."""


class StaleRow(ShmError):
    """A row whose writer began an update and never finished it (the writer died)."""


class SeqlockRows:
    """``count`` rows of ``row_size`` bytes at ``base`` in a region, each led by a seq word.

    ``data`` is a byte view of the whole region and ``words`` the same memory cast to
    ``'q'``; ``base`` and ``row_size`` are multiples of 8 so every seq word is aligned.
    Any process may read; each row must have one writer at a time (the caller's protocol).
    """

    def __init__(self, data: memoryview, words: memoryview, base: int, row_size: int, count: int):
        if base % 8 or row_size % 8:
            raise ValueError("seqlock rows must be 8-byte aligned")
        self._data = data
        self._words = words
        self.base = base
        self.row_size = row_size
        self.count = count

    def offset(self, row: int) -> int:
        if not 0 <= row < self.count:
            raise IndexError(f"row {row} outside 0..{self.count - 1}")
        return self.base + row * self.row_size

    def begin_write(self, row: int) -> int:
        """Make the row's word odd; returns the token for ``end_write``."""
        index = self.offset(row) >> 3
        seq = self._words[index]
        # An odd word left by a dead writer: step past it so readers see a change.
        seq += 1 if seq % 2 == 0 else 2
        self._words[index] = seq
        return seq

    def end_write(self, row: int, token: int) -> None:
        self._words[(self.base + row * self.row_size) >> 3] = token + 1

    def snapshot(self, row: int) -> bytes:
        """A copy of the row (seq word included) that no writer touched while copying."""
        start = self.offset(row)
        index = start >> 3
        words = self._words
        data = self._data
        end = start + self.row_size
        spins = 0
        stuck_at = deadline = None
        while True:
            before = words[index]
            if before % 2 == 0:
                copy = bytes(data[start:end])
                if words[index] == before:
                    return copy
            spins += 1
            if spins > _FAST_SPINS:
                # Only a word stuck at one odd value means a dead writer; a live writer
                # that keeps changing it (or was merely descheduled) resets the clock.
                now = time.monotonic()
                if before != stuck_at:
                    stuck_at, deadline = before, now + _STALE_AFTER_S
                elif now > deadline:
                    raise StaleRow(f"row {row} at offset {start} stayed mid-write for "
                                   f"{_STALE_AFTER_S * 1000:.0f} ms: its writer died")
                time.sleep(0)
