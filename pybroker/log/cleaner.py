"""Log compaction (Kafka's LogCleaner) for topics whose ``cleanup.policy`` has ``compact``.

A cleaning has three steps, split by thread:

1. ``Log.cleaning_plan`` (the log's thread) picks the cleanable range: the closed segments
   wholly below the high watermark whose records are all older than
   ``min.compaction.lag.ms``. Its dirty part starts at the cleaner checkpoint (where the
   last cleaning stopped). The plan exists only when dirty bytes / cleanable bytes reach
   ``min.cleanable.dirty.ratio`` or the dirty part waited past ``max.compaction.lag.ms``.
   It holds a dup of each segment's fd, so the files stay readable whatever happens to
   them meanwhile.
2. ``build`` (any thread: the broker runs it in a worker) maps each key of the dirty part
   to its latest offset, then writes each cleanable segment anew as
   ``<base>.log.cleaned`` (+ ``.index.cleaned``, ``.timeindex.cleaned``), fsynced, keeping
   per key only the record with the latest offset. A tombstone (null value) that is the
   latest of its key goes once its segment is older than ``delete.retention.ms``.
   Records keep offset, key, value, headers and timestamp; batches keep base offset, last
   offset delta, producer id/epoch/base sequence and attributes (the section is
   recompressed with the batch's own codec). A batch left empty disappears, except the
   last batch of a producer the partition still tracks, kept empty for sequence
   continuity. Control and transactional batches are kept whole (their keys do not enter
   the map: an aborted value must not hide the committed one before it).
3. ``Log.replace_cleaned`` (the log's thread) swaps each cleaned segment in, crash-safely:
   rename the indexes, then the log, from ``.cleaned`` to ``.swap`` (the log's rename is
   the commit point), fsync the directory, close the old segment, rename the ``.swap``
   files over the live ones, fsync the directory, open the new segment. At start-up the
   loader finishes a swap whose ``.log.swap`` exists and deletes every other leftover.
   A fetch still reading the old segment holds a dup of its fd: the replaced inode stays
   readable until that fd is closed, as when retention deletes a segment.

Differences from Kafka: one cleaned segment per old segment (Kafka merges small ones),
an exact in-memory key map without a size cap (Kafka's dedupe buffer holds hashes and
cleans in rounds), tombstone age from the segment's largest timestamp (Kafka 3.x marks
batches with a delete horizon), transactional data kept whole.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Iterator

from pybroker.config import TopicConfig
from pybroker.log.record_file import fsync_dir
from pybroker.log.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, LogSegment, file_name
from pybroker.record import batch as rb

log = logging.getLogger("pybroker.log")

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
# Cleaned batches are written to the new segment in chunks of about this many bytes.
_WRITE_CHUNK = 1 << 20
_READ_CHUNK = 1 << 20


@dataclass
class SegmentSource:
    """One segment to clean, as it was when the plan was made."""

    segment: LogSegment
    fd: int  # a dup of the segment's fd, owned by the plan
    size: int
    largest_timestamp: int

    @property
    def base_offset(self) -> int:
        return self.segment.base_offset


@dataclass
class CleanedSegment:
    """The ``.cleaned`` files written for one source (closed, fsynced)."""

    source: SegmentSource
    paths: tuple[str, str, str]
    size: int


@dataclass
class CleaningPlan:
    directory: str
    config: TopicConfig
    sources: list[SegmentSource]
    first_dirty_offset: int
    end_offset: int  # first offset not cleaned: the base of the segment after the range
    dirty_ratio: float
    now_ms: int
    # Last offsets of the last batch of each producer the partition tracks.
    retain_last_offsets: frozenset = field(default_factory=frozenset)
    started: float = field(default_factory=time.monotonic)

    def release(self) -> None:
        for source in self.sources:
            if source.fd >= 0:
                os.close(source.fd)
                source.fd = -1


def read_batches(fd: int, size: int) -> Iterator[tuple[rb.BatchHeader, bytes]]:
    """Headers (position relative to the batch) and bytes of the batches in the first
    ``size`` bytes of ``fd``, read with pread: never an mmap, so a file truncated
    underneath ends the walk with an error instead of a SIGBUS."""
    pos = 0
    buf = b""
    buf_start = 0
    while pos < size:
        want = min(size - pos, max(_READ_CHUNK, rb.HEADER_SIZE))
        if pos + rb.HEADER_SIZE > buf_start + len(buf):
            buf, buf_start = os.pread(fd, want, pos), pos
            if len(buf) < rb.HEADER_SIZE:
                raise OSError(f"segment being cleaned is shorter than {pos + rb.HEADER_SIZE} bytes")
        header = rb.read_header_unchecked(buf, pos - buf_start)
        end = pos + header.size
        if header.batch_length < rb.MIN_BATCH_LENGTH or end > size:
            raise OSError(f"bad batch length at byte {pos} of a segment being cleaned")
        if end > buf_start + len(buf):
            buf, buf_start = os.pread(fd, max(want, header.size), pos), pos
            if len(buf) < header.size:
                raise OSError(f"segment being cleaned is shorter than {end} bytes")
        start = pos - buf_start
        yield header._replace(position=0), buf[start:start + header.size]
        pos = end


def build_offset_map(plan: CleaningPlan) -> dict[bytes, int]:
    """Key -> latest offset over the dirty part of the plan."""
    latest: dict[bytes, int] = {}
    uppers = [s.base_offset for s in plan.sources[1:]] + [plan.end_offset]
    for source, upper in zip(plan.sources, uppers):
        if upper <= plan.first_dirty_offset:
            continue  # wholly in the clean part
        for header, data in read_batches(source.fd, source.size):
            if header.is_control or header.is_transactional or header.last_offset < plan.first_dirty_offset:
                continue
            section = rb.records_section(data, header)
            for record, _, _ in rb.record_spans(header, section):
                if record.key is not None and record.offset >= plan.first_dirty_offset:
                    latest[record.key] = record.offset
    return latest


def clean_batch(header: rb.BatchHeader, data: bytes, latest: dict[bytes, int],
                drop_tombstones: bool, retain_last_offsets) -> bytes | None:
    """The batch with only the records to keep; ``data`` itself when all stay, None when
    the batch goes."""
    if header.is_control or header.is_transactional:
        return data
    section = rb.records_section(data, header)
    spans = list(rb.record_spans(header, section))
    kept = []
    for span in spans:
        record = span[0]
        if record.key is None:
            continue  # Kafka's cleaner drops keyless records of a compacted log
        if latest.get(record.key, -1) > record.offset:
            continue
        if record.value is None and drop_tombstones:
            continue
        kept.append(span)
    if len(kept) == len(spans):
        return data
    if not kept and header.last_offset not in retain_last_offsets:
        return None
    return rb.rebuild_batch(data, header, section, kept)


def build(plan: CleaningPlan) -> list[CleanedSegment]:
    """Write the ``.cleaned`` files of every segment of the plan (step 2). Touches only
    those files and the plan's fds: safe off the log's thread."""
    latest = build_offset_map(plan)
    horizon = plan.now_ms - plan.config.delete_retention_ms
    out = []
    for source in plan.sources:
        out.append(_write_cleaned(plan, source, latest, source.largest_timestamp < horizon))
    return out


def _write_cleaned(plan: CleaningPlan, source: SegmentSource, latest: dict[bytes, int],
                   drop_tombstones: bool) -> CleanedSegment:
    config = plan.config
    for stale in suffixed_paths(plan.directory, source.base_offset, CLEANED_SUFFIX):
        unlink_if_present(stale)
    segment = LogSegment(plan.directory, source.base_offset, config.index_interval_bytes,
                         config.segment_index_bytes, plan.now_ms, suffix=CLEANED_SUFFIX)
    try:
        pending: list[bytes] = []
        pending_bytes = 0
        for header, data in read_batches(source.fd, source.size):
            cleaned = clean_batch(header, data, latest, drop_tombstones, plan.retain_last_offsets)
            if cleaned is None:
                continue
            pending.append(cleaned)
            pending_bytes += len(cleaned)
            if pending_bytes >= _WRITE_CHUNK:
                _append(segment, pending)
                pending, pending_bytes = [], 0
        if pending:
            _append(segment, pending)
        segment.on_become_inactive()
        segment.flush()
        size = segment.size
        log_path, index_path, time_index_path = segment.paths
        paths = (index_path, time_index_path, log_path)  # the order commit_swap renames in
        segment.close()
    except BaseException:
        segment.close_and_delete()
        raise
    return CleanedSegment(source, paths, size)


def _append(segment: LogSegment, batches: list[bytes]) -> None:
    buf = bytearray(b"".join(batches))
    headers = []
    pos = 0
    for batch in batches:
        headers.append(rb.read_header_unchecked(buf, pos))
        pos += len(batch)
    segment.append(buf, headers, None)


def suffixed_paths(directory: str, base_offset: int, suffix: str) -> list[str]:
    stem = os.path.join(directory, file_name(base_offset))
    # The log last: its rename is what commits a swap.
    return [stem + INDEX_SUFFIX + suffix, stem + TIME_INDEX_SUFFIX + suffix, stem + LOG_SUFFIX + suffix]


def unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def discard(cleaned: CleanedSegment) -> None:
    for path in cleaned.paths:
        unlink_if_present(path)


def commit_swap(directory: str, paths: tuple[str, str, str]) -> list[str]:
    """Rename a cleaned segment's files (``CleanedSegment.paths``: indexes, then the log)
    to ``.swap``, the log last (the commit point: from then on start-up recovery finishes
    the swap), and fsync the directory. Returns the ``.swap`` paths in the same order."""
    swaps = []
    index_path, time_index_path, log_path = paths
    for path in (index_path, time_index_path, log_path):
        swap = path[:-len(CLEANED_SUFFIX)] + SWAP_SUFFIX
        os.replace(path, swap)
        swaps.append(swap)
    fsync_dir(directory)
    return swaps


def install_swap(directory: str, swaps: list[str]) -> None:
    """Rename the ``.swap`` files over the live ones, indexes first (a crash between
    leaves the log's ``.swap``, and recovery rebuilds the indexes), then fsync."""
    for swap in swaps:
        os.replace(swap, swap[:-len(SWAP_SUFFIX)])
    fsync_dir(directory)


def complete_interrupted_swaps(directory: str) -> None:
    """Start-up: a ``<base>.log.swap`` is a cleaned segment whose swap was committed but
    not finished. Install it and delete that segment's indexes (old or new, they are
    rebuilt from the log). Other ``.swap`` and ``.cleaned`` files are leftovers the
    loader deletes."""
    completed = False
    for name in sorted(os.listdir(directory)):
        if not name.endswith(LOG_SUFFIX + SWAP_SUFFIX):
            continue
        completed = True
        swap = os.path.join(directory, name)
        stem = swap[:-len(LOG_SUFFIX + SWAP_SUFFIX)]
        log.info("completing the interrupted swap of %s", swap)
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            unlink_if_present(stem + suffix)
            unlink_if_present(stem + suffix + SWAP_SUFFIX)
        os.replace(swap, stem + LOG_SUFFIX)
    if completed:
        fsync_dir(directory)
