"""The log of one partition (Kafka's UnifiedLog, minus replication state).

Directory ``<data>/<topic>-<partition>/``::

    00000000000000000000.log         record batches v2, as received
    00000000000000000000.index       sparse (relative offset, position)
    00000000000000000000.timeindex   sparse (timestamp, relative offset)
    00000000000000000000.txnindex    aborted transactions (only once one aborts here)
    00000000000000001234.log ...     the next segment, named by its base offset
    recovery-point                   offsets below it are fsynced (decimal text)
    log-start-offset                 first offset still readable (decimal text)

Offsets are assigned here on append; segments roll on ``segment.bytes`` / ``segment.ms``
(and when an index is full); retention deletes whole oldest segments by ``retention.ms`` /
``retention.bytes``; DeleteRecords moves the log start offset up and deletes the segments
wholly below it (the same path); the log cleaner compacts topics whose cleanup.policy has
``compact`` (``cleaning_plan`` / ``replace_cleaned``, see pybroker.log.cleaner), tracked by
``cleaner-offset-checkpoint``. Appends and reads work per batch and never decompress.

Owned by the broker's event-loop thread; not thread-safe.
"""
from __future__ import annotations

import bisect
import logging
import os
import shutil
import time
import uuid
from typing import NamedTuple

from pybroker import errors
from pybroker.config import TopicConfig
from pybroker.log import checkpoint, cleaner, damage, flusher, log_loader
from pybroker.log.file_slice import FileSlice
from pybroker.log.record_file import fsync_dir
from pybroker.log.segment import LogSegment, storage_error
from pybroker.log.txn_index import AbortedTxn
from pybroker.record import batch as rb

log = logging.getLogger("pybroker.log")

# A partition directory being removed: renamed first, deleted in the background.
DELETE_DIR_SUFFIX = "-delete"


class AppendInfo(NamedTuple):
    first_offset: int
    last_offset: int
    log_append_time: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int


def _now_ms() -> int:
    return int(time.time() * 1000)


class Log:
    """One partition's segments, offsets and checkpoints. Not thread-safe: the broker's
    event-loop thread only."""

    def __init__(self, directory: str, config: TopicConfig, loaded: log_loader.LoadedLog):
        self.directory = directory
        self._config = config
        self._segments: list[LogSegment] = loaded.segments
        self._bases = [s.base_offset for s in self._segments]
        self._log_start_offset = loaded.log_start_offset
        self._recovery_point = loaded.recovery_point
        self.recovery_truncated_bytes = loaded.truncated_bytes
        self.recovery_quarantined_bytes = loaded.quarantined_bytes
        # A new partition: no checkpoint, snapshot or .corrupt file of it exists yet (the
        # partition skips looking for them: thousands are created at once).
        self.created = loaded.created
        # Ranges set aside as .corrupt files (pybroker.log.damage): offsets readers skip.
        self.quarantined: list[damage.Quarantined] = [] if self.created else damage.quarantined(directory)
        if self.quarantined:
            damage.note_quarantined()
        self._dir_dirty = False
        self._closed = False
        self._deleted = False  # read by flusher jobs: a deleted log's files are not written
        # Where fsyncs and checkpoint writes run (the broker's worker thread; inline here).
        self.flusher: flusher.Flusher = flusher.INLINE
        # Bumped by every truncation: a flush that finishes after one must not move the
        # recovery point over the offsets the truncation replaced.
        self._flush_generation = 0
        # The last recovery point queued for the checkpoint file (written or about to be),
        # first what the file holds: an unchanged value is not rewritten (each write is
        # two fsyncs, and a broker opens and closes thousands of partitions).
        self._queued_recovery_point = loaded.stored_recovery_point
        # Where the dirty (not yet compacted) part of a compacted log begins.
        self._cleaner_checkpoint = 0 if self.created else \
            checkpoint.read_offset(directory, checkpoint.CLEANER_OFFSET) or 0
        # The partition's LeaderEpochCache when replication keeps one: truncation and
        # retention here must move it in step with the offsets it describes.
        self.epoch_cache = None

    @classmethod
    def open(cls, directory: str, config: TopicConfig, clean_shutdown: bool = False,
             now_ms: int | None = None) -> "Log":
        """Open (creating if needed) and recover the log in ``directory``."""
        now_ms = _now_ms() if now_ms is None else now_ms
        try:
            loaded = log_loader.load(directory, config, clean_shutdown, now_ms)
        except OSError as exc:
            raise storage_error(directory, exc) from None
        self = cls(directory, config, loaded)
        if not clean_shutdown or loaded.truncated_bytes or loaded.quarantined_bytes:
            # Make what recovery checked (or cut) durable before the recovery point says
            # so. After a clean shutdown the files were flushed when they were closed:
            # nothing to wait for (an fsync per partition made restarts of thousands of
            # partitions take minutes); a rebuilt index is left to the next flush.
            self.flush()
        if self._log_start_offset != loaded.stored_log_start_offset:
            checkpoint.write_offset(directory, checkpoint.LOG_START_OFFSET, self._log_start_offset)
        return self

    create = open

    # --- state --------------------------------------------------------------------------
    @property
    def config(self) -> TopicConfig:
        return self._config

    def update_config(self, config: TopicConfig) -> None:
        self._config = config
        for segment in self._segments:
            segment.index_interval_bytes = config.index_interval_bytes

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> list[LogSegment]:
        return list(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    def _check_open(self) -> None:
        if self._closed:
            raise errors.KafkaStorageError(f"log {self.directory} is closed")

    # --- appends ------------------------------------------------------------------------
    def append(self, buf, headers: list[rb.BatchHeader], leader_epoch: int = 0,
               now_ms: int | None = None) -> AppendInfo:
        """Assign offsets to validated batches (from ``parse_batches`` over ``buf``, which
        must be writable) and write them. Returns where they landed."""
        self._check_open()
        now_ms = _now_ms() if now_ms is None else now_ms
        first = self.log_end_offset
        last = rb.assign_offsets(buf, headers, first, leader_epoch)
        append_time = -1
        if self._config.message_timestamp_type == "LogAppendTime":
            append_time = now_ms
            headers = [rb.set_log_append_time(buf, h, now_ms) for h in headers]
        self._write(buf, headers, first, last, now_ms)
        return AppendInfo(first, last, append_time, self._log_start_offset)

    def append_with_offsets(self, buf, headers: list[rb.BatchHeader],
                            now_ms: int | None = None) -> AppendInfo:
        """Append batches whose offsets are already assigned (replication): the first at or
        after the log end offset, each after the previous (a compacted leader log has gaps
        between batches)."""
        self._check_open()
        if not headers:
            raise errors.CorruptMessage("no batches to append")
        first = headers[0].base_offset
        if first < self.log_end_offset:
            raise errors.InvalidRecord(
                f"batch offset {first} is below the log end offset {self.log_end_offset}")
        expected = first
        for header in headers:
            if header.base_offset < expected:
                raise errors.InvalidRecord(
                    f"batch offset {header.base_offset} does not follow {expected - 1}")
            expected = header.next_offset
        self._write(buf, headers, first, expected - 1, _now_ms() if now_ms is None else now_ms,
                    offsets_assigned=True)
        return AppendInfo(first, expected - 1, -1, self._log_start_offset)

    def _write(self, buf, headers, first: int, last: int, now_ms: int,
               offsets_assigned: bool = False) -> None:
        if not headers:
            raise errors.CorruptMessage("no batches to append")
        segment_bytes = self._config.segment_bytes
        total = 0
        max_timestamp = -1
        for header in headers:
            if header.size > segment_bytes:
                raise errors.RecordListTooLarge(
                    f"batch of {header.size} bytes exceeds segment.bytes {segment_bytes}")
            total += header.size
            max_timestamp = max(max_timestamp, header.max_timestamp)
        segment = self.maybe_roll(total, first, last, max_timestamp, now_ms)
        segment.append(buf, headers, None if offsets_assigned else first)
        if self.log_end_offset - self._recovery_point >= self._config.flush_messages:
            self.flush()

    def maybe_roll(self, nbytes: int = 0, first_offset: int | None = None,
                   last_offset: int | None = None, max_timestamp: int = -1,
                   now_ms: int | None = None) -> LogSegment:
        """The segment the next append goes to, rolling first if the active one is full,
        too old, has a full index or cannot hold the offsets relatively."""
        now_ms = _now_ms() if now_ms is None else now_ms
        segment = self._segments[-1]
        if first_offset is None:
            first_offset = last_offset = segment.next_offset
        if segment.size == 0:
            if segment.base_offset != first_offset and not segment.can_hold(first_offset, last_offset, nbytes):
                return self.roll(now_ms, first_offset)
            return segment
        if segment.rolling_base_ms is not None and segment.rolling_base_ms >= 0 and max_timestamp >= 0:
            waited = max_timestamp - segment.rolling_base_ms
        else:
            waited = now_ms - segment.created_ms
        if (segment.size > self._config.segment_bytes - nbytes
                or waited > self._config.segment_ms
                or not segment.can_hold(first_offset, last_offset, nbytes)):
            return self.roll(now_ms, first_offset)
        return segment

    def roll(self, now_ms: int | None = None, base_offset: int | None = None) -> LogSegment:
        """Seal the active segment and start a new one at the log end offset (an empty
        active segment is replaced only if the new base differs)."""
        self._check_open()
        now_ms = _now_ms() if now_ms is None else now_ms
        base = self.log_end_offset if base_offset is None else base_offset
        old = self._segments[-1]
        if old.size == 0 and old.base_offset == base:
            return old
        if old.size == 0:
            self._segments.pop()
            self._bases.pop()
            old.close_and_delete()
        else:
            old.on_become_inactive()
        segment = LogSegment(self.directory, base, self._config.index_interval_bytes,
                             self._config.segment_index_bytes, now_ms, active=True)
        self._segments.append(segment)
        self._bases.append(base)
        self._dir_dirty = True
        if old.size:
            # Kafka's roll: flush what is now closed and move the recovery point to the
            # new active segment, so a crash re-checks only what follows the last roll.
            self.flush_async(base)
        return segment

    # --- reads --------------------------------------------------------------------------
    def read(self, offset: int, max_bytes: int, max_offset: int | None = None,
             min_one: bool = True) -> FileSlice | None:
        """Whole batches from the one containing ``offset``, up to ``max_bytes`` (at least
        one batch if ``min_one``), only batches with base offset < ``max_offset``, within
        one segment. None when there is nothing to read. The caller releases the slice."""
        self._check_open()
        end = self.log_end_offset
        if offset < self._log_start_offset or offset > end:
            raise errors.OffsetOutOfRange(
                f"offset {offset} is outside [{self._log_start_offset}, {end}] of {self.directory}")
        upper = end if max_offset is None else min(end, max_offset)
        if offset >= upper:
            return None
        n = max(0, bisect.bisect_right(self._bases, offset) - 1)
        for segment in self._segments[n:]:
            segment.check_size()
            first = segment.translate_offset(offset)
            if first is None:
                continue
            length = 0
            last_offset = first.base_offset
            for header in segment.batches_from(first.position):
                if header.base_offset >= upper:
                    break
                if length + header.size > max_bytes and (length or not min_one):
                    break
                length += header.size
                last_offset = header.last_offset
            if not length:
                return None
            return FileSlice(os.dup(segment.fd), first.position, length, first.base_offset, last_offset)
        return None

    def batch_end(self, offset: int) -> int | None:
        """The last offset of the batch holding ``offset`` (None past the log end or
        before its start): where a batch-aligned share acquisition stops."""
        if offset < self._log_start_offset or offset >= self.log_end_offset:
            return None
        n = max(0, bisect.bisect_right(self._bases, offset) - 1)
        for segment in self._segments[n:]:
            header = segment.translate_offset(offset)
            if header is not None:
                return header.last_offset
        return None

    def read_bytes(self, offset: int, max_bytes: int, max_offset: int | None = None,
                   min_one: bool = True) -> bytes:
        """Like ``read`` but returns the bytes (b"" when nothing to read)."""
        piece = self.read(offset, max_bytes, max_offset, min_one)
        if piece is None:
            return b""
        with piece:
            return piece.read()

    # --- transactions ----------------------------------------------------------------
    def append_aborted_txn(self, entry: AbortedTxn) -> None:
        """Index a transaction aborted by the marker at ``entry.last_offset`` in the
        segment holding that marker (a replayed one already indexed is skipped)."""
        n = max(0, bisect.bisect_right(self._bases, entry.last_offset) - 1)
        self._segments[n].txn_index.append(entry)

    def collect_aborted_txns(self, fetch_offset: int, upper_bound: int,
                             stable_offset: int) -> list[AbortedTxn]:
        """The aborted transactions a read_committed fetch of [fetch_offset, upper_bound)
        must report: every one whose marker lies at or after ``fetch_offset`` and whose
        first offset lies before ``upper_bound`` (Kafka's collectAbortedTransactions).
        Such a marker lies below the last stable offset, so segments from there on are
        not searched."""
        found: list[AbortedTxn] = []
        n = max(0, bisect.bisect_right(self._bases, fetch_offset) - 1)
        for segment in self._segments[n:]:
            if segment.base_offset >= stable_offset and segment.base_offset > fetch_offset:
                break
            found.extend(segment.txn_index.collect(fetch_offset, upper_bound))
        return found

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the earliest record with timestamp >= ``timestamp_ms``."""
        self._check_open()
        for segment in self._segments:
            if segment.max_timestamp >= timestamp_ms:
                # Records below the log start (DeleteRecords can leave some in the first
                # segment) are gone for readers: the search starts at the log start.
                found = segment.find_offset_by_timestamp(timestamp_ms, self._log_start_offset)
                if found is not None:
                    return found
        return None

    def max_timestamp_and_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record carrying the log's largest timestamp
        (ListOffsets MAX_TIMESTAMP, KIP-734), or None for a log without records."""
        self._check_open()
        largest = max((segment.max_timestamp for segment in self._segments), default=-1)
        return self.offset_for_timestamp(largest) if largest >= 0 else None

    # --- compaction (pybroker.log.cleaner) -----------------------------------------------
    @property
    def cleaner_checkpoint(self) -> int:
        return max(self._cleaner_checkpoint, self._log_start_offset)

    def _set_cleaner_checkpoint(self, offset: int) -> None:
        self._cleaner_checkpoint = offset
        checkpoint.write_offset(self.directory, checkpoint.CLEANER_OFFSET, offset)

    def cleaning_plan(self, now_ms: int | None = None, high_watermark: int | None = None,
                      retain_last_offsets=frozenset()) -> cleaner.CleaningPlan | None:
        """What the log cleaner should compact now, or None (not a compacted topic,
        nothing cleanable, or too little dirt). The cleanable range is the closed
        segments wholly below ``high_watermark`` whose records are older than
        min.compaction.lag.ms; it is cleaned when its dirty part (from the cleaner
        checkpoint) is at least min.cleanable.dirty.ratio of it, or older than
        max.compaction.lag.ms. The caller runs ``cleaner.build`` then ``replace_cleaned``
        (or ``plan.release()`` to give up)."""
        self._check_open()
        config = self._config
        if not config.compact:
            return None
        now_ms = _now_ms() if now_ms is None else now_ms
        candidates = []
        for n, segment in enumerate(self._segments[:-1]):
            upper = self._segments[n + 1].base_offset
            if high_watermark is not None and upper > high_watermark:
                break
            if config.min_compaction_lag_ms and now_ms - segment.largest_timestamp < config.min_compaction_lag_ms:
                break
            candidates.append(segment)
        if not candidates:
            return None
        end = self._segments[len(candidates)].base_offset
        first_dirty = self.cleaner_checkpoint
        if first_dirty >= end:
            return None
        uppers = [s.base_offset for s in candidates[1:]] + [end]
        dirty = [s for s, upper in zip(candidates, uppers) if upper > first_dirty]
        total = sum(s.size for s in candidates)
        ratio = sum(s.size for s in dirty) / total if total else 0.0
        overdue = now_ms - dirty[0].largest_timestamp > config.max_compaction_lag_ms
        if not total or (ratio < config.min_cleanable_dirty_ratio and not overdue):
            return None
        sources = [cleaner.SegmentSource(s, os.dup(s.fd), s.size, s.largest_timestamp) for s in candidates]
        return cleaner.CleaningPlan(self.directory, config, sources, first_dirty, end, ratio, now_ms,
                                    frozenset(retain_last_offsets))

    def replace_cleaned(self, plan: cleaner.CleaningPlan, cleaned: list[cleaner.CleanedSegment]) -> int:
        """Swap the cleaned segments in (crash-safe, see pybroker.log.cleaner) and move
        the cleaner checkpoint to the end of the cleaned range. A segment that changed
        since the plan (deleted by retention, truncated) keeps its old form. Returns how
        many segments were replaced. Releases the plan."""
        try:
            if self._closed:
                for piece in cleaned:
                    cleaner.discard(piece)
                return 0
            replaced = 0
            for piece in cleaned:
                old = piece.source.segment
                try:
                    n = next(i for i, s in enumerate(self._segments) if s is old)
                except StopIteration:
                    n = -1
                if n < 0 or n == len(self._segments) - 1 or old.size != piece.source.size:
                    cleaner.discard(piece)
                    continue
                if piece.size == 0 and n > 0:
                    # Nothing left: the segment goes (its offsets join the gap before the
                    # next one). The first stays, even empty, to hold the log start.
                    cleaner.discard(piece)
                    del self._segments[n]
                    del self._bases[n]
                    old.close_and_delete()
                    self._dir_dirty = True
                    replaced += 1
                    continue
                try:
                    swaps = cleaner.commit_swap(self.directory, piece.paths)
                    old.close()
                    cleaner.install_swap(self.directory, swaps)
                    segment = LogSegment(self.directory, old.base_offset, self._config.index_interval_bytes,
                                         self._config.segment_index_bytes, _now_ms())
                except OSError as exc:
                    raise storage_error(self.directory, exc) from None
                segment.load()
                self._segments[n] = segment
                replaced += 1
            self.flush()
            if replaced == len(cleaned) and plan.end_offset > self._cleaner_checkpoint:
                self._set_cleaner_checkpoint(plan.end_offset)
            log.info("cleaned %s: %d of %d segments (offsets %d..%d, dirty ratio %.2f), %d -> %d bytes in %d ms",
                     self.directory, replaced, len(cleaned), plan.sources[0].base_offset, plan.end_offset - 1,
                     plan.dirty_ratio, sum(p.source.size for p in cleaned), sum(p.size for p in cleaned),
                     (time.monotonic() - plan.started) * 1000)
            return replaced
        finally:
            plan.release()

    def clean(self, now_ms: int | None = None, high_watermark: int | None = None,
              retain_last_offsets=frozenset()) -> int:
        """Plan, build and swap in one call (tests, tools). Returns segments replaced."""
        plan = self.cleaning_plan(now_ms, high_watermark, retain_last_offsets)
        if plan is None:
            return 0
        try:
            cleaned = cleaner.build(plan)
        except BaseException:
            plan.release()
            raise
        return self.replace_cleaned(plan, cleaned)

    # --- damage (pybroker.log.damage) ------------------------------------------------------
    def closed_segments(self) -> list[tuple[LogSegment, int]]:
        """Every segment but the active one, with the base offset of the segment after it."""
        return [(s, self._segments[n + 1].base_offset) for n, s in enumerate(self._segments[:-1])]

    def replace_damaged(self, segment: LogSegment, size: int, paths: tuple[str, str, str],
                        ranges: list[damage.Damage]) -> bool:
        """Swap in ``paths``, the segment rewritten without ``ranges`` by
        ``damage.quarantine`` from the first ``size`` bytes of ``segment``, and report the
        ranges at ERROR. When the segment changed since (deleted, truncated, cleaned) the
        rewrite and its ``.corrupt`` files are discarded and False returned."""
        corrupt = [damage.corrupt_path(self.directory, d.first_offset, d.end_offset) for d in ranges]
        if not self._swap_rewritten(segment, size, paths, discard_if_changed=corrupt):
            return False
        damage.report(self.directory, segment.log_path, ranges)
        return True

    def segment_holding(self, offset: int) -> tuple[LogSegment, int] | None:
        """The closed segment whose offsets cover ``offset``, with the next segment's base
        offset; None when that is the active segment or no segment."""
        n = bisect.bisect_right(self._bases, offset) - 1
        if n < 0 or n >= len(self._segments) - 1:
            return None
        return self._segments[n], self._segments[n + 1].base_offset

    def replace_restored(self, segment: LogSegment, size: int, paths: tuple[str, str, str],
                         restored: damage.Quarantined) -> bool:
        """Swap in ``paths``, the segment rewritten by ``damage.RestoreJob`` from the
        first ``size`` bytes of ``segment`` with the quarantined range ``restored``
        filled in again, and remove that range's ``.corrupt`` file: the offsets are
        readable here again. When the segment changed since (deleted, truncated,
        cleaned) the rewrite is discarded and False returned."""
        return self._swap_rewritten(segment, size, paths, unlink_after=restored.path)

    def _swap_rewritten(self, segment: LogSegment, size: int, paths: tuple[str, str, str],
                        discard_if_changed: list[str] = (), unlink_after: str | None = None) -> bool:
        """Swap a closed segment rewritten from its first ``size`` bytes (the cleaner's
        crash-safe swap) in for ``segment``, then remove ``unlink_after`` (the swapped-in
        bytes are durable first). When the segment changed since, ``paths`` and
        ``discard_if_changed`` are removed instead and False returned."""
        self._check_open()
        n = next((i for i, s in enumerate(self._segments) if s is segment), -1)
        if n < 0 or n == len(self._segments) - 1 or segment.size != size:
            for path in list(paths) + list(discard_if_changed):
                cleaner.unlink_if_present(path)
            return False
        try:
            segment.close()
            damage.commit_repaired(self.directory, paths)
            repaired = LogSegment(self.directory, segment.base_offset, self._config.index_interval_bytes,
                                  self._config.segment_index_bytes, _now_ms())
            repaired.load()
            if unlink_after is not None:
                cleaner.unlink_if_present(unlink_after)
                fsync_dir(self.directory)
        except OSError as exc:
            raise storage_error(self.directory, exc) from None
        self._segments[n] = repaired
        self.quarantined = damage.quarantined(self.directory)
        if self.quarantined:
            damage.note_quarantined()
        return True

    # --- retention and truncation -------------------------------------------------------
    def apply_retention(self, now_ms: int | None = None, high_watermark: int | None = None) -> int:
        """Delete the oldest segments past retention.ms, then those beyond retention.bytes.
        Returns how many segments were deleted. Only data below ``high_watermark`` (when
        given) is eligible, as in Kafka, and only when ``cleanup.policy`` includes
        ``delete``: a compact-only topic keeps its records however old."""
        self._check_open()
        if "delete" not in self._config.cleanup_policies:
            return 0
        now_ms = _now_ms() if now_ms is None else now_ms
        deleted = 0
        retention_ms = self._config.retention_ms
        if retention_ms >= 0:
            deleted += self._delete_oldest(
                lambda s: now_ms - s.largest_timestamp > retention_ms, high_watermark, now_ms)
        retention_bytes = self._config.retention_bytes
        if retention_bytes >= 0:
            excess = self.size_bytes - retention_bytes

            def over_size(segment: LogSegment) -> bool:
                nonlocal excess
                if excess - segment.size >= 0:
                    excess -= segment.size
                    return True
                return False
            deleted += self._delete_oldest(over_size, high_watermark, now_ms)
        return deleted

    def _delete_oldest(self, predicate, high_watermark: int | None, now_ms: int) -> int:
        doomed = []
        for n, segment in enumerate(self._segments):
            is_last = n == len(self._segments) - 1
            upper = segment.next_offset if is_last else self._segments[n + 1].base_offset
            if is_last and segment.size == 0:
                break
            if high_watermark is not None and upper > high_watermark:
                break
            if not predicate(segment):
                break
            doomed.append(segment)
        if not doomed:
            return 0
        if doomed[-1] is self._segments[-1]:
            self.roll(now_ms)  # Kafka's rule: an expired active segment is rolled, then deleted
        self._set_log_start_offset(self._segments[len(doomed)].base_offset)
        self._remove_oldest(len(doomed), "by retention")
        return len(doomed)

    def increment_log_start_offset(self, offset: int) -> int:
        """Raise the log start offset to ``offset`` (DeleteRecords on a leader; a follower
        taking its leader's start) and delete the segments wholly below it. An offset at
        or below the current start changes nothing: deleted records never come back.
        Returns how many segments were deleted. The active segment is never deleted, so
        the log end offset stays where it is."""
        self._check_open()
        if offset > self.log_end_offset:
            raise errors.OffsetOutOfRange(
                f"cannot move the log start of {self.directory} to {offset}, past its end {self.log_end_offset}")
        if offset <= self._log_start_offset:
            return 0
        self._set_log_start_offset(offset)
        n = bisect.bisect_right(self._bases, offset) - 1
        self._remove_oldest(n, f"below the log start offset {offset}")
        return n

    def _remove_oldest(self, n: int, why: str) -> None:
        """Drop the ``n`` oldest segments, which the log start offset (already
        checkpointed) has left behind."""
        if n <= 0:
            return
        doomed = self._segments[:n]
        del self._segments[:n]
        del self._bases[:n]
        for segment in doomed:
            log.info("deleting segment %s %s", segment.log_path, why)
            segment.close_and_delete()

    def _set_log_start_offset(self, offset: int) -> None:
        if offset > self._log_start_offset:
            self._log_start_offset = offset
            # Checkpoint before the files go, so a crash never resurrects deleted offsets.
            checkpoint.write_offset(self.directory, checkpoint.LOG_START_OFFSET, offset)
            if self.epoch_cache is not None:
                self.epoch_cache.truncate_from_start(offset)

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose last offset >= ``offset`` (whole batches: the log end
        offset becomes the base of the first batch dropped). Returns bytes dropped.

        The leader-epoch cache is trimmed to the log end even when no batch goes (as
        Kafka's UnifiedLog.truncateTo does): a broker elected leader that appended nothing
        before losing leadership holds an epoch starting at its log end, which no log
        truncation would otherwise remove, and a follower asking the leader about that
        epoch would get the same answer forever."""
        self._check_open()
        if offset >= self.log_end_offset:
            if self.epoch_cache is not None:
                self.epoch_cache.truncate_from_end(self.log_end_offset)
            return 0
        if offset <= self._log_start_offset:
            return self._truncate_fully_and_start_at(offset)
        dropped = 0
        while len(self._segments) > 1 and self._segments[-1].base_offset >= offset:
            segment = self._segments.pop()
            self._bases.pop()
            dropped += segment.size
            segment.close_and_delete()
        active = self._segments[-1]
        dropped += active.truncate_to(offset)
        active.make_active()
        self._lower_recovery_point(self.log_end_offset)
        if self._cleaner_checkpoint > self.log_end_offset:
            self._set_cleaner_checkpoint(self.log_end_offset)
        if self.epoch_cache is not None:
            self.epoch_cache.truncate_from_end(self.log_end_offset)
        return dropped

    def truncate_fully_and_start_at(self, offset: int) -> int:
        """Drop everything and continue at ``offset`` (a follower whose whole log lies
        below the leader's log start). Returns bytes dropped."""
        self._check_open()
        return self._truncate_fully_and_start_at(offset)

    def _truncate_fully_and_start_at(self, offset: int) -> int:
        dropped = self.size_bytes
        for segment in self._segments:
            segment.close_and_delete()
        self._segments = [LogSegment(self.directory, offset, self._config.index_interval_bytes,
                                     self._config.segment_index_bytes, _now_ms(), active=True)]
        self._bases = [offset]
        self._log_start_offset = offset
        checkpoint.write_offset(self.directory, checkpoint.LOG_START_OFFSET, offset)
        self._lower_recovery_point(offset)
        if self._cleaner_checkpoint:
            self._set_cleaner_checkpoint(offset)
        if self.epoch_cache is not None:
            self.epoch_cache.clear_and_flush()
        return dropped

    # --- durability and lifecycle -------------------------------------------------------
    def flush(self) -> None:
        """fsync every segment written since the last flush, then checkpoint the recovery
        point at the log end offset (the checkpoint write goes through the flusher, in
        order with the background flushes)."""
        self._check_open()
        end = self.log_end_offset
        for segment in self._segments:
            if segment.dirty:
                segment.flush()
        if self._dir_dirty:
            try:
                fsync_dir(self.directory)
            except OSError as exc:
                raise storage_error(self.directory, exc) from None
            self._dir_dirty = False
        self._recovery_point = end
        self._write_recovery_point(end)

    def flush_async(self, upto: int | None = None) -> None:
        """On the flusher: fsync the segments written since the last flush that lie below
        ``upto`` (default: all, up to the log end), and the directory, then checkpoint
        ``upto`` as the recovery point. The in-memory recovery point moves when the job
        is done, unless a truncation came in between."""
        self._check_open()
        upto = self.log_end_offset if upto is None else upto
        flushed: list[LogSegment] = []
        for segment in self._segments:
            if segment.base_offset >= upto:
                break
            if segment.dirty:
                segment.dirty = False
                flushed.append(segment)
        sync_dir = self._dir_dirty
        self._dir_dirty = False
        if not flushed and not sync_dir and upto == self._queued_recovery_point:
            return
        self._queued_recovery_point = upto
        paths = [path for segment in flushed for path in (*segment.paths, segment.txn_index.path)]
        directory = self.directory
        generation = self._flush_generation

        def job() -> None:
            for path in paths:
                if self._deleted:
                    return
                flusher.fsync_path(path)
            if sync_dir and not self._deleted:
                fsync_dir(directory)
            self._write_checkpoint_now(checkpoint.RECOVERY_POINT, upto)

        def done(_result, exc: BaseException | None) -> None:
            if exc is not None:
                for segment in flushed:
                    segment.dirty = True
                self._dir_dirty = self._dir_dirty or sync_dir
                self._queued_recovery_point = -1  # write it again next time
                self._report_flush_failure(exc)
                return
            self._flush_failed = False
            if generation == self._flush_generation:
                if not self._closed:
                    self._recovery_point = max(self._recovery_point, min(upto, self.log_end_offset))

        self.flusher.submit(job, done)

    _flush_failed = False

    def _report_flush_failure(self, exc: BaseException) -> None:
        if self._deleted:
            return
        if not self._flush_failed:  # once until a flush succeeds again: a full disk fails them all
            log.warning("flush of %s failed: %s", self.directory, exc)
        self._flush_failed = True

    def _write_checkpoint_now(self, name: str, offset: int) -> None:
        """Flusher thread (or inline): write one checkpoint file unless the log is gone."""
        if not self._deleted:
            checkpoint.write_offset(self.directory, name, offset)

    def write_checkpoint(self, name: str, offset: int) -> None:
        """Write a checkpoint file of this partition through the flusher, in order with
        every other background write of it (the partition's high watermark uses this)."""
        def done(_result, exc):
            if exc is not None:
                self._report_flush_failure(exc)

        self.flusher.submit(lambda: self._write_checkpoint_now(name, offset), done)

    def _write_recovery_point(self, offset: int) -> None:
        if offset == self._queued_recovery_point:
            return
        self._queued_recovery_point = offset

        def done(_result, exc):
            if exc is not None:
                self._queued_recovery_point = -1
                self._report_flush_failure(exc)

        self.flusher.submit(lambda: self._write_checkpoint_now(checkpoint.RECOVERY_POINT, offset), done)

    def _lower_recovery_point(self, offset: int) -> None:
        """A truncation: flushes still in flight must not raise the recovery point past
        ``offset``, and the checkpoint follows them down (the flusher keeps the order)."""
        self._flush_generation += 1
        self._recovery_point = min(self._recovery_point, offset)
        if self._queued_recovery_point > self._recovery_point or self._queued_recovery_point < 0:
            self._write_recovery_point(self._recovery_point)

    def close(self) -> None:
        """Flush, trim the indexes and release every file."""
        if self._closed:
            return
        self.flush()
        for segment in self._segments:
            segment.close()
        self._closed = True

    def delete(self) -> None:
        """Close without writing anything (a full disk must not stop a deletion), rename
        the directory ``<dir>.<id>-delete`` and remove it on the flusher, as Kafka does:
        unlinking needs no free space, so the space comes back even on a full disk. A
        crash in between leaves the ``-delete`` directory, which the log manager removes
        at start."""
        self._deleted = True
        if not self._closed:
            for segment in self._segments:
                segment.release()
            self._closed = True
        doomed = f"{self.directory}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
        try:
            os.rename(self.directory, doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot rename %s for deletion (%s): removing it in place", self.directory, exc)
            doomed = self.directory
        self.flusher.submit(lambda: shutil.rmtree(doomed, ignore_errors=True))

    def __repr__(self) -> str:
        return (f"Log({self.directory!r}, start={self._log_start_offset}, "
                f"end={self.log_end_offset}, segments={len(self._segments)})")
