"""The machinery both segment indexes share (Kafka's AbstractIndex): a file of fixed-size
entries, mmapped read-write, searched by binary search.

An index file is preallocated to ``max_index_size`` while its segment is active, so entries
are appended in place (with pwrite) and read through the map; it is trimmed to its entries
when the segment rolls or closes. A crash leaves the preallocated zeros behind: ``sanity_check``
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
        finally:
            os.close(fd)
        self._entries = length // entry_size
        self._length_ok = length % entry_size == 0
        self._file_size = length
        self._map: mmap.mmap | None = None
        self._map_size = 0
        self._closed = False
        self._last: tuple | None = None
        self._remap(max(length, self.max_index_size) if preallocate else length)

    # --- file and map ---------------------------------------------------------------
    # No file descriptor is held: the map is made on first use (CPython's mmap keeps a
    # duplicate of the descriptor it was made from), so a broker with thousands of idle
    # partitions holds one descriptor per partition (its .log), not five.
    def _remap(self, size: int) -> None:
        """Set the file to ``size`` bytes and drop the map (the next access maps it
        again). Unmap first: truncating a mapped file and touching the cut pages would
        raise SIGBUS."""
        size -= size % self.ENTRY.size
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file_size != size:
            fd = os.open(self.path, os.O_RDWR)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
            self._file_size = size
        self._map_size = size

    def _write_at(self, position: int, data: bytes) -> None:
        """Store entries with pwrite, not through the map: the first store to a page of
        the sparse, preallocated file faults and allocates a block with the filesystem
        journal held (milliseconds each on a busy ext4, once per page of every partition),
        where a buffered write only dirties the page cache. The map sees the same pages."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.pwrite(fd, data, position)
        finally:
            os.close(fd)

    def _view(self) -> mmap.mmap:
        if self._map is None:
            fd = os.open(self.path, os.O_RDWR)
            try:
                self._map = mmap.mmap(fd, self._map_size)
            finally:
                os.close(fd)
        return self._map

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
        return self.ENTRY.unpack_from(self._view(), n * self.ENTRY.size)

    def last_entry(self) -> tuple | None:
        """Kept in memory (every append asks for it): reading it through the map would
        map the index of every partition appended to."""
        if not self._entries:
            return None
        if self._last is None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                raw = os.pread(fd, self.ENTRY.size, (self._entries - 1) * self.ENTRY.size)
            finally:
                os.close(fd)
            self._last = self.ENTRY.unpack(raw)
        return self._last

    def _append_entry(self, *fields) -> None:
        if self.is_full:
            # Only a rebuilt index of a rolled segment grows; the active one rolls when full.
            self._remap(max(2 * self._map_size, 64 * self.ENTRY.size))
        self._write_entry(self._entries, fields)
        self._entries += 1

    def _write_entry(self, n: int, fields: tuple) -> None:
        self._write_at(n * self.ENTRY.size, self.ENTRY.pack(*fields))
        if n == self._entries - 1 or n == self._entries:
            self._last = tuple(fields)

    def _largest_lower_bound(self, key: int) -> int:
        """Slot of the last entry whose key field <= ``key``, or -1."""
        lo, hi = 0, self._entries - 1
        found = -1
        unpack, size, which = self.ENTRY.unpack_from, self.ENTRY.size, self.KEY
        m = self._view() if hi >= 0 else None
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
        self._last = None
        if old > self._entries:
            # Zero what was cut so a crash cannot resurrect stale entries.
            start, end = self._entries * self.ENTRY.size, old * self.ENTRY.size
            self._write_at(start, bytes(end - start))

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
        return self.ENTRY.iter_unpack(self._view()[:self.size_bytes])

    def flush(self) -> None:
        if self._map is not None:
            self._map.flush()

    def close(self) -> None:
        if self._closed:
            return
        self.trim_to_valid_size()
        if self._map is not None:
            self._map.close()
            self._map = None
        self._closed = True

    def release(self) -> None:
        """Close without trimming or writing anything (the file is about to go)."""
        if self._map is not None:
            self._map.close()
            self._map = None
        self._closed = True

    def close_and_delete(self) -> None:
        self.release()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
