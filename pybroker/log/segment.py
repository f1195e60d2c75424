"""One log segment: ``<base offset>.log`` plus its ``.index``, ``.timeindex`` and, once a
transaction aborts in it, ``.txnindex`` (pybroker.log.txn_index).

The .log file is record batches v2 back to back, exactly as received (after the broker
rewrote baseOffset and partitionLeaderEpoch). The file name is the segment's base offset,
20 digits, zero-padded; every batch in it has base offset >= that, and offsets relative to
it fit in int32 (the indexes store them so).

Appends go through one fd opened O_APPEND with ``os.write`` (looping on short writes).
Reads walk batch headers through a read-only mmap of the .log, remapped as it grows. Two
traps shape the read path:

* touching mmap pages beyond the end of a file truncated underneath kills the process with
  SIGBUS, so every read first checks the file size with ``os.fstat`` and never touches
  bytes beyond the verified size; our own truncations unmap first;
* ``os.sendfile`` on a file truncated underneath returns 0 forever, so reads report exact
  byte ranges and the caller stops on a zero return.

Owned by one partition's ``Log`` on the broker's event-loop thread; not thread-safe.
"""
from __future__ import annotations

import mmap
import os

from pybroker import errors
from pybroker.log.index import CorruptIndex
from pybroker.log.offset_index import OffsetIndex
from pybroker.log.time_index import TimeIndex
from pybroker.log.txn_index import SUFFIX as TXN_INDEX_SUFFIX, TransactionIndex
from pybroker.record import batch as rb

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
_MAX_RELATIVE_OFFSET = 2**31 - 1
_MAX_POSITION = 2**31 - 1


def file_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


def storage_error(path: str, exc: OSError) -> errors.KafkaError:
    """The one way an I/O failure leaves this layer: KAFKA_STORAGE_ERROR naming the file."""
    return errors.KafkaStorageError(f"I/O error on {path}: {exc}")


class LogSegment:
    """One segment of a partition's log. Not thread-safe: the owning Log's thread only."""

    def __init__(self, directory: str, base_offset: int, index_interval_bytes: int,
                 max_index_size: int, now_ms: int, active: bool = False, suffix: str = ""):
        """``suffix`` names the files of a segment being built beside the live one (the
        log cleaner's ``.cleaned``), as Kafka's LogSegment.open does."""
        self.base_offset = base_offset
        stem = os.path.join(directory, file_name(base_offset))
        self.log_path = stem + LOG_SUFFIX + suffix
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = now_ms
        try:
            self._fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(self.log_path, exc) from None
        self.size = os.fstat(self._fd).st_size
        self.index = OffsetIndex(stem + INDEX_SUFFIX + suffix, base_offset, max_index_size, preallocate=active)
        self.time_index = TimeIndex(stem + TIME_INDEX_SUFFIX + suffix, base_offset, max_index_size,
                                    preallocate=active)
        self.txn_index = TransactionIndex(stem + TXN_INDEX_SUFFIX + suffix)
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = base_offset
        # Kafka rolls by segment.ms counted from the first batch's timestamp, so the
        # decision survives restarts; an empty segment counts from its creation.
        self.rolling_base_ms: int | None = None
        self._bytes_since_index = 0
        self._map: mmap.mmap | None = None
        self._map_size = 0
        self.dirty = False

    # --- mmap access, guarded against truncation underneath ---------------------------
    def check_size(self) -> None:
        """Raise KafkaStorageError if the file shrank below what this segment holds."""
        try:
            actual = os.fstat(self._fd).st_size
        except OSError as exc:
            raise storage_error(self.log_path, exc) from None
        if actual < self.size:
            self._unmap()
            raise errors.KafkaStorageError(
                f"{self.log_path} was truncated underneath: {actual} bytes on disk, {self.size} expected")

    def _view(self, end: int) -> mmap.mmap:
        """The map covering at least [0, end); end <= self.size, checked by check_size."""
        if self._map_size < end:
            self._unmap()
            self._map = mmap.mmap(self._fd, self.size, access=mmap.ACCESS_READ)
            self._map_size = self.size
        return self._map

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
            self._map_size = 0

    def _header_at(self, position: int) -> rb.BatchHeader:
        if position + rb.HEADER_SIZE > self.size:
            raise errors.KafkaStorageError(f"{self.log_path}: batch header at {position} runs past the end")
        header = rb.read_header_unchecked(self._view(self.size), position)
        if header.batch_length < rb.MIN_BATCH_LENGTH or position + header.size > self.size:
            raise errors.KafkaStorageError(f"{self.log_path}: bad batch length at {position}")
        return header

    def batches_from(self, position: int):
        """Headers of the batches from ``position`` to the end (no CRC work)."""
        while position < self.size:
            header = self._header_at(position)
            yield header
            position += header.size

    def translate_offset(self, offset: int) -> rb.BatchHeader | None:
        """The first batch whose last offset >= ``offset``, or None."""
        if offset >= self.next_offset or self.size == 0:
            return None
        _, position = self.index.lookup(offset)
        for header in self.batches_from(position):
            if header.last_offset >= offset:
                return header
        return None

    # --- appends ------------------------------------------------------------------------
    @property
    def fd(self) -> int:
        return self._fd

    def can_hold(self, first_offset: int, last_offset: int, nbytes: int) -> bool:
        """Whether an append fits the int32 relative offsets/positions and the indexes."""
        return (last_offset - self.base_offset <= _MAX_RELATIVE_OFFSET
                and self.size + nbytes <= _MAX_POSITION
                and not self.index.is_full and not self.time_index.is_full
                and first_offset >= self.base_offset)

    def append(self, buf, headers: list[rb.BatchHeader], first_offset: int | None) -> None:
        """Write the batches (consecutive in ``buf``) whose offsets start at ``first_offset``
        and index them; with None the headers' own base offsets count (replicated or
        compacted batches, which may have gaps between them). One os.write for the whole
        range when the kernel takes it."""
        start = headers[0].position
        end = headers[-1].position + headers[-1].size
        with memoryview(buf) as mv:
            chunk = mv[start:end]
            try:
                written = 0
                total = end - start
                while written < total:
                    written += os.write(self._fd, chunk[written:])
            except OSError as exc:
                self._undo_partial_write()
                raise storage_error(self.log_path, exc) from None
            finally:
                chunk.release()
        base_position = self.size - start
        if first_offset is None:
            for header in headers:
                self._index_batch(header.base_offset, base_position + header.position, header)
            offset = headers[-1].next_offset
        else:
            offset = first_offset
            for header in headers:
                self._index_batch(offset, base_position + header.position, header)
                offset += header.last_offset_delta + 1
        self.size += end - start
        self.next_offset = offset
        self.dirty = True

    def _index_batch(self, base_offset: int, position: int, header: rb.BatchHeader) -> None:
        if self.rolling_base_ms is None:
            self.rolling_base_ms = header.max_timestamp
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = base_offset
        if self._bytes_since_index > self.index_interval_bytes:
            self.index.append(base_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index = 0
        self._bytes_since_index += header.size

    def _undo_partial_write(self) -> None:
        try:
            self._unmap()
            os.ftruncate(self._fd, self.size)
        except OSError:
            pass  # the loader truncates the torn tail on the next start

    # --- load, recovery, truncation -------------------------------------------------------
    def recover(self, limit_offset: int | None = None, is_last: bool = True) -> tuple[int, str | None, list, list]:
        """Validate every batch (CRC included, see pybroker.log.damage), truncate a torn
        tail (only ``is_last``: the log's newest segment) and rebuild both indexes from the
        valid batches. ``limit_offset`` is the next segment's base. Returns (bytes
        truncated, reason or None, damaged ranges to quarantine, the valid batches): when
        the ranges are not empty the indexes describe this file as it is and the caller
        must quarantine them and recover the rewritten segment."""
        from pybroker.log import damage

        self.check_size()
        self.index.reset()
        self.time_index.reset()
        self.max_timestamp, self.offset_of_max_timestamp = -1, self.base_offset
        self.rolling_base_ms = None
        self._bytes_since_index = 0
        found = damage.scan(self._fd, self.size, self.base_offset, limit_offset)
        ranges, torn = damage.to_quarantine(found, is_last, limit_offset)
        offset = self.base_offset
        for header in found.headers:
            self._index_batch(header.base_offset, header.position, header)
            offset = header.next_offset
        self.next_offset = offset
        self.dirty = True  # rebuilt indexes and a validated tail: fsync before trusting them
        self.txn_index.truncate_to(self.next_offset)
        if torn is None:
            return 0, None, ranges, found.headers
        self._truncate_file(torn.position)
        return torn.length, torn.reason, ranges, found.headers

    def load(self) -> None:
        """Restore in-memory state of a segment before the recovery point from its indexes
        and the batch headers after the last index entry. Raises CorruptIndex when the
        indexes do not fit the log, so the loader recovers this segment instead."""
        self.check_size()
        self.index.sanity_check(self.size)
        _, position = self.index.lookup(2**63 - 1)
        try:
            self._restore_tail_state(position)
        except errors.KafkaStorageError as exc:
            raise CorruptIndex(str(exc)) from None
        self.time_index.sanity_check(self.next_offset)

    def _restore_tail_state(self, position: int) -> None:
        self.max_timestamp = self.time_index.max_timestamp
        _, self.offset_of_max_timestamp = self.time_index.lookup(2**63 - 1)
        self.next_offset = self.index.last_offset if self.index.entries else self.base_offset
        last_indexed = position
        for header in self.batches_from(position):
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = header.base_offset
            self.next_offset = header.next_offset
        self._bytes_since_index = self.size - last_indexed
        self.rolling_base_ms = self._header_at(0).max_timestamp if self.size else None

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose last offset >= ``offset``. Returns bytes dropped."""
        self.check_size()
        header = self.translate_offset(offset)
        if header is None:
            return 0
        dropped = self.size - header.position
        self.index.truncate_to(header.base_offset)
        self.time_index.truncate_to(header.base_offset)
        self.txn_index.truncate_to(header.base_offset)
        self._truncate_file(header.position)
        _, position = self.index.lookup(2**63 - 1)
        self._restore_tail_state(position)
        if not self.size:
            self.next_offset = self.base_offset
        self.dirty = True
        return dropped

    def _truncate_file(self, size: int) -> None:
        self._unmap()  # never keep pages mapped past the new end of the file
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            raise storage_error(self.log_path, exc) from None
        self.size = size
        self.index.truncate_to_position(size)

    # --- timestamps ---------------------------------------------------------------------
    @property
    def largest_timestamp(self) -> int:
        """Largest record timestamp, or the file's mtime when empty (Kafka's rule)."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        try:
            return int(os.fstat(self._fd).st_mtime * 1000)
        except OSError:
            return self.created_ms

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int = 0) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after ``starting_offset`` with
        timestamp >= ``timestamp``."""
        if self.max_timestamp < timestamp:
            return None
        self.check_size()
        _, start_offset = self.time_index.lookup(timestamp)
        _, position = self.index.lookup(max(start_offset, starting_offset))
        for header in self.batches_from(position):
            if header.max_timestamp >= timestamp and header.last_offset >= starting_offset:
                data = bytes(self._view(self.size)[header.position:header.position + header.size])
                for record in rb.decode_batch(data):
                    if record.timestamp >= timestamp and record.offset >= starting_offset:
                        return record.offset, record.timestamp
        return None

    # --- lifecycle ----------------------------------------------------------------------
    def make_active(self) -> None:
        """Preallocate both indexes so appends store entries without resizing."""
        self.index.preallocate()
        self.time_index.preallocate()

    def on_become_inactive(self) -> None:
        """Seal the segment at roll: its last time index entry is its true max timestamp,
        and both indexes shrink to their entries."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.index.trim_to_valid_size()
        self.time_index.trim_to_valid_size()

    def flush(self) -> None:
        try:
            os.fsync(self._fd)
            self.index.flush()
            self.time_index.flush()
            self.txn_index.flush()
        except OSError as exc:
            raise storage_error(self.log_path, exc) from None
        self.dirty = False

    def close(self) -> None:
        if self._fd < 0:
            return
        self._unmap()
        if self.max_timestamp >= 0:
            self.on_become_inactive()
        self.index.close()
        self.time_index.close()
        self.txn_index.close()
        os.close(self._fd)
        self._fd = -1

    def release(self) -> None:
        """Let go of every file without sealing or writing to any: the segment is being
        deleted, and a full disk must not stop that."""
        if self._fd < 0:
            return
        self._unmap()
        self.index.release()
        self.time_index.release()
        self.txn_index.close()
        os.close(self._fd)
        self._fd = -1

    @property
    def paths(self) -> tuple[str, str, str]:
        """The .log, .index and .timeindex files (with the segment's suffix)."""
        return self.log_path, self.index.path, self.time_index.path

    def close_and_delete(self) -> None:
        """Remove the segment's files. Open dups of the fd (FileSlices) keep the data
        readable until released."""
        self._unmap()
        self.index.close_and_delete()
        self.time_index.close_and_delete()
        self.txn_index.close_and_delete()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self.log_path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"LogSegment(base={self.base_offset}, size={self.size}, next={self.next_offset})"
