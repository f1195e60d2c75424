"""The machinery both segment indexes share (Kafka's AbstractIndex): a file of fixed-size
entries, mmapped read-write, searched by binary search.

An index file is preallocated to ``max_index_size`` while its segment is active, so entries
are appended with a store into the map and no syscall; it is trimmed to its entries when
the segment rolls or closes. A crash leaves the preallocated zeros behind: ``sanity_check``
then fails and the loader rebuilds the index from the log. Indexes are derived data:
never trusted blindly, always rebuildable.

Owned by one partition's ``Log`` on the broker's event-loop thread; not thread-safe.
"""
from __future__ import annotations

import mmap
import os
import struct


class CorruptIndex(Exception):
    """An index file fails its sanity check; the loader rebuilds it from the log."""


class Index:
    ENTRY: struct.Struct  # set by subclasses
    # Index of the field ordered by the binary search (offset or timestamp).
    KEY = 0

    def __init__(self, path: str, base_offset: int, max_index_size: int, preallocate: bool = False):
        self.path = path
        self.base_offset = base_offset
        entry_size = self.ENTRY.size
        self.max_index_size = max(entry_size, max_index_size - max_index_size % entry_size)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            length = os.fstat(fd).st_size
            self._entries = length // entry_size
            self._length_ok = length % entry_size == 0
            self._map: mmap.mmap | None = None
            self._map_size = 0
            self._open = True
            self._remap(max(length, self.max_index_size) if preallocate else length, fd)
        finally:
            # The map keeps a descriptor of its own: holding ours too would cost every
            # partition two more fds (5,000 partitions would need 25,000).
            os.close(fd)

    # --- file and map ---------------------------------------------------------------
    def _remap(self, size: int, fd: int | None = None) -> None:
        """Set the file and map to ``size`` bytes. Unmap first: truncating a mapped file
        and touching the cut pages would raise SIGBUS."""
        size -= size % self.ENTRY.size
        if self._map is not None:
            self._map.close()
            self._map = None
        own = fd is None
        if own:
            fd = os.open(self.path, os.O_RDWR)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
            self._map_size = size
            if size:
                self._map = mmap.mmap(fd, size)
        finally:
            if own:
                os.close(fd)

    @property
    def entries(self) -> int:
        return self._entries

    @property
    def max_entries(self) -> int:
        return self._map_size // self.ENTRY.size

    @property
    def is_full(self) -> bool:
        return self._entries >= self.max_entries

    @property
    def size_bytes(self) -> int:
        return self._entries * self.ENTRY.size

    def entry(self, n: int) -> tuple:
        return self.ENTRY.unpack_from(self._map, n * self.ENTRY.size)

    def last_entry(self) -> tuple | None:
        return self.entry(self._entries - 1) if self._entries else None

    def _append_entry(self, *fields) -> None:
        if self.is_full:
            # Only a rebuilt index of a rolled segment grows; the active one rolls when full.
            self._remap(max(2 * self._map_size, 64 * self.ENTRY.size))
        self.ENTRY.pack_into(self._map, self._entries * self.ENTRY.size, *fields)
        self._entries += 1

    def _largest_lower_bound(self, key: int) -> int:
        """Slot of the last entry whose key field <= ``key``, or -1."""
        lo, hi = 0, self._entries - 1
        found = -1
        unpack, size, which = self.ENTRY.unpack_from, self.ENTRY.size, self.KEY
        m = self._map
        while lo <= hi:
            mid = (lo + hi) // 2
            if unpack(m, mid * size)[which] <= key:
                found = mid
                lo = mid + 1
            else:
                hi = mid - 1
        return found

    def _truncate_entries(self, n: int) -> None:
        old = self._entries
        self._entries = max(0, min(n, old))
        if self._map is not None and old > self._entries:
            # Zero what was cut so a crash cannot resurrect stale entries.
            start, end = self._entries * self.ENTRY.size, old * self.ENTRY.size
            self._map[start:end] = bytes(end - start)

    def reset(self) -> None:
        self._truncate_entries(0)

    def resize(self, new_size: int) -> None:
        self._remap(max(new_size, self.size_bytes))

    def preallocate(self) -> None:
        self._remap(max(self.max_index_size, self.size_bytes))

    def trim_to_valid_size(self) -> None:
        self._remap(self.size_bytes)

    # --- lifecycle ------------------------------------------------------------------
    def check_layout(self) -> None:
        if not self._length_ok:
            raise CorruptIndex(f"{self.path}: length is not a multiple of {self.ENTRY.size}")

    def iter_entries(self):
        if not self._entries:
            return iter(())
        return self.ENTRY.iter_unpack(self._map[:self.size_bytes])

    def flush(self) -> None:
        if self._map is not None:
            self._map.flush()

    def close(self) -> None:
        if not self._open:
            return
        self.trim_to_valid_size()
        if self._map is not None:
            self._map.close()
            self._map = None
        self._open = False

    def close_and_delete(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self._open = False
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
