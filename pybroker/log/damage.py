"""Damaged ranges of a segment: finding them, setting them aside, reporting them.

A segment is scanned batch by batch (length, magic, CRC-32C, counts, offsets moving
forward within the segment). Where a batch fails, the scan does not stop: it looks for
the next position where a valid batch starts (magic byte 2 at +16, a base offset at or
past the last good one and inside the segment, a length that fits, then the CRC), and
goes on from there. So one corrupted batch costs that batch, never the valid data after
it.

What the loader and the scrubber do with a ``SegmentScan``:

* bytes after the last valid batch of the *last* segment that lead to no valid batch are
  a torn tail (a write cut short by a crash): truncated, as Kafka does;
* every other damaged range (in the middle of a segment, or at the end of a segment that
  has a later one) is quarantined: its bytes are copied to a ``.corrupt`` file beside the
  segment, the segment is rewritten without them (the cleaner's crash-safe swap), and the
  range is logged at ERROR. Readers then see an offset gap there, like a compacted log's:
  a consumer reads past it, and the offsets it covered are named in the file name.

Quarantine files::

    <20-digit first offset>-<20-digit end offset>.corrupt
        the damaged bytes as they were; offsets first..end-1 are unreadable here
        (some of them may already have been compacted away)

Everything here reads with pread, never an mmap: a segment truncated underneath ends a
scan with a short read, not a SIGBUS. Any thread.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import struct
import time
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

from pybroker.log.record_file import fsync_dir
from pybroker.log.segment import LogSegment, file_name
from pybroker.record import batch as rb

log = logging.getLogger("pybroker.log")

CORRUPT_SUFFIX = ".corrupt"
_CORRUPT_NAME = re.compile(r"^(\d{20})-(\d{20})\.corrupt$")
_MAX_RELATIVE_OFFSET = 2**31 - 1
_WINDOW = 1 << 20
_BASE_AND_LENGTH = struct.Struct(">qi")


class Damage(NamedTuple):
    """A damaged byte range of one segment and the offsets it hides."""

    position: int
    length: int
    first_offset: int  # the offset after the last valid batch before the damage
    end_offset: int | None  # base of the next valid batch; None at the end of the segment
    reason: str


class SegmentScan(NamedTuple):
    headers: list[rb.BatchHeader]  # the valid batches, positions in the file
    damaged: list[Damage]  # ranges followed by a valid batch of the same segment
    tail: Damage | None  # bytes after the last valid batch that lead to none


class Quarantined(NamedTuple):
    """A range set aside earlier, as its ``.corrupt`` file says."""

    first_offset: int
    end_offset: int
    size: int
    path: str


class _Window:
    """pread-backed random access to the first ``size`` bytes of a file."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.size = size
        self.start = 0
        self.buf = b""

    def get(self, pos: int, n: int) -> memoryview | None:
        """``n`` bytes at ``pos``, or None past the end (or if the file shrank)."""
        if pos + n > self.size:
            return None
        if pos < self.start or pos + n > self.start + len(self.buf):
            self.buf = os.pread(self.fd, min(max(n, _WINDOW), self.size - pos), pos)
            self.start = pos
            if len(self.buf) < n:
                return None
        offset = pos - self.start
        return memoryview(self.buf)[offset:offset + n]

    def find_byte(self, value: bytes, pos: int) -> int:
        """The first position >= ``pos`` holding ``value``, or -1."""
        while pos < self.size:
            chunk = self.get(pos, min(_WINDOW, self.size - pos))
            if chunk is None:
                return -1
            found = self.buf.find(value, pos - self.start, pos - self.start + len(chunk))
            if found >= 0:
                return self.start + found
            pos += len(chunk)
        return -1


def _batch_at(win: _Window, pos: int, next_offset: int, base_offset: int,
              limit_offset: int | None) -> tuple[rb.BatchHeader | None, str]:
    head = win.get(pos, rb.LENGTH_POS + 4)
    if head is None:
        return None, f"partial batch at byte {pos}: {win.size - pos} bytes left"
    _, batch_length = _BASE_AND_LENGTH.unpack_from(head)
    size = batch_length + rb.LOG_OVERHEAD
    if batch_length < rb.MIN_BATCH_LENGTH:
        return None, f"batch at byte {pos} declares length {batch_length}"
    data = win.get(pos, size)
    if data is None:
        return None, f"partial batch at byte {pos}: declares {size} bytes, {win.size - pos} present"
    headers, _, reason = rb.scan_valid_prefix(data)
    if reason is not None:
        return None, reason.replace("at byte 0", f"at byte {pos}")
    header = headers[0]._replace(position=pos)
    if header.base_offset < next_offset:
        return None, (f"batch at byte {pos} has base offset {header.base_offset}, "
                      f"below the previous batch's next offset {next_offset}")
    if header.last_offset - base_offset > _MAX_RELATIVE_OFFSET or (
            limit_offset is not None and header.last_offset >= limit_offset):
        return None, (f"batch at byte {pos} has offsets {header.base_offset}..{header.last_offset}, "
                      f"outside segment {base_offset}")
    return header, ""


def _resync(win: _Window, pos: int, next_offset: int, base_offset: int,
            limit_offset: int | None) -> rb.BatchHeader | None:
    """The first valid batch starting after ``pos``, or None."""
    candidate = pos + 1
    while True:
        found = win.find_byte(bytes([rb.MAGIC]), candidate + rb.MAGIC_POS)
        if found < 0:
            return None
        candidate = found - rb.MAGIC_POS
        head = win.get(candidate, rb.LENGTH_POS + 4)
        if head is None:
            return None
        base, length = _BASE_AND_LENGTH.unpack_from(head)
        # Cheap filters first: random bytes almost never hold a base offset in range.
        if (next_offset <= base <= base_offset + _MAX_RELATIVE_OFFSET and length >= rb.MIN_BATCH_LENGTH
                and candidate + length + rb.LOG_OVERHEAD <= win.size):
            header, _ = _batch_at(win, candidate, next_offset, base_offset, limit_offset)
            if header is not None:
                return header
        candidate += 1


def scan(fd: int, size: int, base_offset: int, limit_offset: int | None = None,
         pace: Callable[[int], None] | None = None) -> SegmentScan:
    """Validate every batch of the first ``size`` bytes of a segment file. ``limit_offset``
    (the next segment's base) bounds the offsets a batch may hold; ``pace(nbytes)`` is
    called as bytes are checked (the scrubber's rate limit)."""
    win = _Window(fd, size)
    headers: list[rb.BatchHeader] = []
    damaged: list[Damage] = []
    pos, next_offset = 0, base_offset
    checked = 0
    while pos < size:
        header, reason = _batch_at(win, pos, next_offset, base_offset, limit_offset)
        if header is None:
            resumed = _resync(win, pos, next_offset, base_offset, limit_offset)
            if resumed is None:
                return SegmentScan(headers, damaged, Damage(pos, size - pos, next_offset, None, reason))
            damaged.append(Damage(pos, resumed.position - pos, next_offset, resumed.base_offset, reason))
            header = resumed
        headers.append(header)
        next_offset = header.next_offset
        pos = header.position + header.size
        if pace is not None and pos - checked >= _WINDOW:
            pace(pos - checked)
            checked = pos
    if pace is not None and pos > checked:
        pace(pos - checked)
    return SegmentScan(headers, damaged, None)


# --- quarantine ---------------------------------------------------------------------------

# Moves whenever a log of this process comes to hold quarantined ranges (opened with
# them, or a range newly set aside): the replica repairer looks over every partition only
# after it moved, and otherwise just at the ranges it could not restore yet.
_generation = 0


def note_quarantined() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    return _generation


def corrupt_path(directory: str, first_offset: int, end_offset: int) -> str:
    return os.path.join(directory, f"{file_name(first_offset)}-{file_name(end_offset)}{CORRUPT_SUFFIX}")


def quarantined(directory: str) -> list[Quarantined]:
    """The ranges set aside in ``directory``, by first offset."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        match = _CORRUPT_NAME.match(name)
        if match:
            path = os.path.join(directory, name)
            try:
                size = os.path.getsize(path)
            except FileNotFoundError:
                continue
            found.append(Quarantined(int(match.group(1)), int(match.group(2)), size, path))
    return sorted(found)


def _copy_range(src_fd: int, dst_fd: int, position: int, length: int) -> None:
    done = 0
    while done < length:
        chunk = os.pread(src_fd, min(_WINDOW, length - done), position + done)
        if not chunk:
            raise OSError(f"segment shorter than {position + length} bytes")
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view):]
        done += len(chunk)


def write_corrupt_files(directory: str, fd: int, ranges: list[Damage]) -> list[str]:
    """Copy each damaged range to its ``.corrupt`` file (fsynced). ``end_offset`` must be
    set on every range. Returns the paths."""
    paths = []
    for damage in ranges:
        path = corrupt_path(directory, damage.first_offset, damage.end_offset)
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _copy_range(fd, out, damage.position, damage.length)
            os.fsync(out)
        finally:
            os.close(out)
        paths.append(path)
    if paths:
        fsync_dir(directory)
    return paths


def _kept_batches(fd: int, headers: list[rb.BatchHeader]) -> Iterator[tuple[bytearray, list[rb.BatchHeader]]]:
    """The valid batches in runs of about a window each: (buffer, headers relative to it)."""
    run: list[rb.BatchHeader] = []
    run_bytes = 0

    def flush_run():
        buf = bytearray()
        rel = []
        for h in run:
            data = os.pread(fd, h.size, h.position)
            if len(data) < h.size:
                raise OSError(f"segment shorter than {h.position + h.size} bytes")
            rel.append(h._replace(position=len(buf)))
            buf += data
        return buf, rel

    for header in headers:
        run.append(header)
        run_bytes += header.size
        if run_bytes >= _WINDOW:
            yield flush_run()
            run, run_bytes = [], 0
    if run:
        yield flush_run()


def write_repaired(directory: str, base_offset: int, fd: int, headers: list[rb.BatchHeader],
                   index_interval_bytes: int, max_index_size: int, now_ms: int,
                   restored: tuple[bytes, list[rb.BatchHeader]] | None = None) -> tuple[str, str, str]:
    """Write the segment anew as ``<base>.log.cleaned`` (+ indexes) holding only the
    valid batches ``headers`` of ``fd`` and, in offset order among them, the batches of
    ``restored`` (a buffer and its headers: a range refetched from another replica),
    fsynced and closed. Returns its three paths (log last), ready for the cleaner's
    ``commit_swap``/``install_swap``."""
    from pybroker.log import cleaner

    for stale in cleaner.suffixed_paths(directory, base_offset, cleaner.CLEANED_SUFFIX):
        cleaner.unlink_if_present(stale)
    segment = LogSegment(directory, base_offset, index_interval_bytes, max_index_size, now_ms,
                         suffix=cleaner.CLEANED_SUFFIX)
    if restored is None:
        runs = _kept_batches(fd, headers)
    else:
        at = restored[1][0].base_offset
        runs = itertools.chain(_kept_batches(fd, [h for h in headers if h.base_offset < at]), [restored],
                               _kept_batches(fd, [h for h in headers if h.base_offset > at]))
    try:
        for buf, rel in runs:
            segment.append(buf, rel, None)
        segment.on_become_inactive()
        segment.flush()
        log_path, index_path, time_index_path = segment.paths
        segment.close()
    except BaseException:
        segment.close_and_delete()
        raise
    return index_path, time_index_path, log_path


def commit_repaired(directory: str, paths: tuple[str, str, str]) -> None:
    """Swap a segment written by ``write_repaired`` in for the live one (the caller has
    closed the live segment's files). Crash-safe as a cleaner swap: once the log's
    ``.swap`` exists, start-up recovery completes it."""
    from pybroker.log import cleaner

    swaps = cleaner.commit_swap(directory, paths)
    cleaner.install_swap(directory, swaps)


def quarantine(directory: str, fd: int, base_offset: int, headers: list[rb.BatchHeader],
               ranges: list[Damage], index_interval_bytes: int, max_index_size: int,
               now_ms: int) -> tuple[str, str, str]:
    """Set ``ranges`` aside in ``.corrupt`` files and write the segment anew without
    them (``write_repaired``); the caller commits it with ``commit_repaired``."""
    write_corrupt_files(directory, fd, ranges)
    return write_repaired(directory, base_offset, fd, headers, index_interval_bytes, max_index_size, now_ms)


class Pacer:
    """A rate limit for scans: ``pace(nbytes)`` sleeps (the calling thread) as long as
    keeps the bytes checked since the pacer was made at or below ``max_bytes_per_s``."""

    def __init__(self, max_bytes_per_s: float):
        self.max_bytes_per_s = max_bytes_per_s
        self.started = time.monotonic()
        self.done = 0

    def __call__(self, nbytes: int) -> None:
        self.done += nbytes
        if self.max_bytes_per_s > 0:
            ahead = self.started + self.done / self.max_bytes_per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


@dataclass
class ScrubJob:
    """One closed segment for the scrubber's worker thread: scan the first ``size``
    bytes of ``fd`` (a dup the job closes) and, if damaged, write the quarantine files
    and the repaired segment. ``run`` returns (ranges, repaired paths or None); the
    owner of the log swaps the repair in (``Log.replace_damaged``)."""

    directory: str
    fd: int
    size: int
    base_offset: int
    next_base: int
    index_interval_bytes: int
    max_index_size: int
    pace: Callable[[int], None]

    def run(self) -> tuple[list[Damage], tuple[str, str, str] | None]:
        try:
            found = scan(self.fd, self.size, self.base_offset, self.next_base, self.pace)
            ranges, _ = to_quarantine(found, False, self.next_base)
            if not ranges:
                return [], None
            return ranges, quarantine(self.directory, self.fd, self.base_offset, found.headers, ranges,
                                      self.index_interval_bytes, self.max_index_size, int(time.time() * 1000))
        finally:
            os.close(self.fd)


@dataclass
class RestoreJob:
    """A quarantined range refetched from another replica, for a worker thread: check
    that ``records`` (the batches fetched from the range's first offset) hold whole,
    valid batches wholly inside [first_offset, end_offset) and none of the segment's own
    (the first ``size`` bytes of ``fd``, a dup the job closes), then write the segment
    anew with them in place. ``run`` returns the repaired paths, or raises ValueError
    naming why the batches cannot fill the range (the caller tries again later)."""

    directory: str
    fd: int
    size: int
    base_offset: int
    next_base: int
    first_offset: int
    end_offset: int
    records: bytes
    index_interval_bytes: int
    max_index_size: int
    # Filled in by run: how many bytes and batches went in.
    restored_bytes: int = 0
    restored_batches: int = 0

    def run(self) -> tuple[str, str, str]:
        try:
            fetched = self._batches_in_range()
            found = scan(self.fd, self.size, self.base_offset, self.next_base)
            if found.damaged or found.tail is not None:
                raise ValueError("the segment has damage of its own besides the quarantined range")
            first, last = fetched[1][0].base_offset, fetched[1][-1].last_offset
            if any(h.base_offset <= last and h.last_offset >= first for h in found.headers):
                raise ValueError(f"the segment already holds offsets in {first}..{last}")
            return write_repaired(self.directory, self.base_offset, self.fd, found.headers,
                                  self.index_interval_bytes, self.max_index_size, int(time.time() * 1000),
                                  restored=fetched)
        finally:
            os.close(self.fd)

    def _batches_in_range(self) -> tuple[bytes, list[rb.BatchHeader]]:
        headers, valid_end, _ = rb.scan_valid_prefix(self.records)
        inside = [h for h in headers if h.base_offset >= self.first_offset and h.last_offset < self.end_offset]
        if not inside:
            raise ValueError(f"no batch of offsets {self.first_offset}..{self.end_offset - 1} came back")
        if any(h.base_offset < self.end_offset and h.last_offset >= self.end_offset for h in headers):
            raise ValueError(f"a batch there runs past offset {self.end_offset - 1}: the replicas' batches differ")
        start = inside[0].position
        stop = inside[-1].position + inside[-1].size
        self.restored_bytes = stop - start
        self.restored_batches = len(inside)
        return (bytes(self.records[start:stop]), [h._replace(position=h.position - start) for h in inside])


def report(directory: str, segment_path: str, ranges: list[Damage]) -> None:
    """Log each quarantined range at ERROR: partition, offsets, bytes, why."""
    partition = os.path.basename(directory)
    for damage in ranges:
        log.error("%s: corrupt data quarantined: offsets %d..%d unreadable, %d bytes at byte %d of %s "
                  "moved to %s (%s); the valid batches after it are kept",
                  partition, damage.first_offset, damage.end_offset - 1, damage.length, damage.position,
                  os.path.basename(segment_path),
                  os.path.basename(corrupt_path(directory, damage.first_offset, damage.end_offset)),
                  damage.reason)


def to_quarantine(scan_: SegmentScan, is_last: bool, next_base: int | None) -> tuple[list[Damage], Damage | None]:
    """Split a scan's damage into the ranges to quarantine (end offsets filled in) and the
    torn tail to truncate (only in the last segment)."""
    ranges = list(scan_.damaged)
    torn = None
    if scan_.tail is not None:
        if is_last or next_base is None:
            torn = scan_.tail
        else:
            ranges.append(scan_.tail._replace(end_offset=next_base))
    return ranges, torn


__all__ = ["CORRUPT_SUFFIX", "Damage", "Pacer", "RestoreJob", "ScrubJob", "Quarantined", "SegmentScan", "commit_repaired", "corrupt_path",
           "quarantine", "quarantined", "report", "scan", "to_quarantine", "write_corrupt_files",
           "write_repaired"]
