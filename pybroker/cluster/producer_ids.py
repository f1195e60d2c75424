"""Producer ids, handed out from blocks persisted ahead of use (Kafka's ProducerIdManager):
a restart skips the rest of a block but never reuses an id. Each allocator owns a slot in
the top bits (a broker its id; the transaction coordinator ``COORDINATOR_SLOT``), so ids of
different allocators never collide.

File: ``<path>``, decimal text, the first id of the next block (written atomically).
Not thread-safe: one owner.
"""
from __future__ import annotations

import os

from pybroker.log.record_file import write_atomically

BLOCK = 1000
SLOT_SHIFT = 40
# Far above any broker id: the supervisor's transaction coordinator.
COORDINATOR_SLOT = 1 << 22


class ProducerIdBlock:
    def __init__(self, path: str, slot: int):
        self.path = path
        self.slot = slot
        self._next = 0
        self._limit = 0

    def next_id(self) -> int:
        if self._next >= self._limit:
            start = 0
            if os.path.exists(self.path):
                with open(self.path, "rb") as f:
                    start = int(f.read().strip() or 0)
            write_atomically(self.path, str(start + BLOCK).encode())
            self._next, self._limit = start, start + BLOCK
        pid = (self.slot << SLOT_SHIFT) | self._next
        self._next += 1
        return pid
