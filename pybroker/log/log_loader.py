"""Start-up recovery of one partition directory (Kafka's LogLoader).

1. A log cleaner swap that was committed (a ``<base>.log.swap`` exists) is completed:
   the cleaned log replaces the old one and that segment's indexes are rebuilt. Then
   stray files of interrupted operations (``.deleted``, other ``.swap``, ``.cleaned``,
   ``.tmp``) and index files whose ``.log`` is gone are removed.
2. Segments wholly below the recovery point are trusted (they were fsynced before it was
   written: when the next segment rolled, or by the periodic flush): their in-memory
   state comes from their indexes (sanity-checked; a bad index makes the segment
   recovered instead) plus the batch headers after the last index entry. After a crash
   that is only the segments written since the last roll, as in Kafka.
3. Every other segment is recovered: each batch is validated (length, magic, CRC-32C,
   offsets moving forward) and the indexes are rebuilt. Unlike Kafka, damage does not
   end the log: a torn tail of the newest segment is truncated, and any other damaged
   range is quarantined (pybroker.log.damage): its bytes go to a ``.corrupt`` file, the
   segment is rewritten with every valid batch around it, and later segments stay.

The bytes truncated and quarantined are logged (logger ``pybroker.log``) and returned.
"""
from __future__ import annotations

import logging
import os
import re
from typing import NamedTuple

from pybroker.config import TopicConfig
from pybroker.log import checkpoint, cleaner, damage
from pybroker.log.index import CorruptIndex
from pybroker.log.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LogSegment, file_name

log = logging.getLogger("pybroker.log")

STRAY_SUFFIXES = (".deleted", ".swap", ".cleaned", checkpoint.TMP_SUFFIX)
_SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")


class LoadedLog(NamedTuple):
    segments: list[LogSegment]
    log_start_offset: int
    recovery_point: int
    truncated_bytes: int  # a torn tail cut off the newest segment
    quarantined_bytes: int = 0  # damaged ranges moved to .corrupt files
    # The checkpoint files as found (an absent file reads as 0, which it means): the log
    # rewrites a checkpoint only when its value changes.
    stored_recovery_point: int = 0
    stored_log_start_offset: int = 0
    # The directory was made by this load: no file of it exists beyond the new segment's.
    created: bool = False


def remove_stray_files(directory: str) -> None:
    names = set(os.listdir(directory))
    for name in names:
        stem, _, suffix = name.rpartition(".")
        orphan_index = ("." + suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)
                        and stem + LOG_SUFFIX not in names)
        if name.endswith(STRAY_SUFFIXES) or orphan_index:
            log.info("removing stray file %s", os.path.join(directory, name))
            os.unlink(os.path.join(directory, name))


def segment_base_offsets(directory: str) -> list[int]:
    bases = []
    for name in os.listdir(directory):
        match = _SEGMENT_NAME.match(name)
        if match:
            bases.append(int(match.group(1)))
        elif name.endswith(LOG_SUFFIX):
            log.warning("ignoring %s: not a segment name", os.path.join(directory, name))
    return sorted(bases)


def load(directory: str, config: TopicConfig, clean_shutdown: bool, now_ms: int) -> LoadedLog:
    def new_segment(base: int, active: bool = False) -> LogSegment:
        return LogSegment(directory, base, config.index_interval_bytes,
                          config.segment_index_bytes, now_ms, active=active)

    if _created(directory):
        # A new partition: nothing to complete, clean up or recover.
        return LoadedLog([new_segment(0, active=True)], 0, 0, 0, created=True)
    cleaner.complete_interrupted_swaps(directory)
    remove_stray_files(directory)
    recovery_point = checkpoint.read_offset(directory, checkpoint.RECOVERY_POINT)
    stored_log_start = log_start = checkpoint.read_offset(directory, checkpoint.LOG_START_OFFSET) or 0
    bases = segment_base_offsets(directory)

    segments: list[LogSegment] = []
    truncated = 0
    quarantined_bytes = 0
    for n, base in enumerate(bases):
        stem = os.path.join(directory, file_name(base))
        indexes_present = all(os.path.exists(stem + suffix) for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX))
        segment = new_segment(base)
        if segments and base < segments[-1].next_offset:
            truncated += _drop([segment] + [new_segment(b) for b in bases[n + 1:]],
                               f"segment {base} overlaps the previous one")
            break
        next_base = bases[n + 1] if n + 1 < len(bases) else None
        # Segments wholly below the recovery point were fsynced before it was written
        # (at roll and by the periodic flush), so a crash re-checks only what follows.
        trusted = recovery_point is not None and next_base is not None and next_base <= recovery_point
        if trusted and not indexes_present:
            log.warning("rebuilding missing indexes of %s", segment.log_path)
        elif trusted:
            try:
                segment.load()
                segments.append(segment)
                continue
            except CorruptIndex as exc:
                log.warning("rebuilding indexes of %s: %s", segment.log_path, exc)
        dropped, reason, damaged, valid = segment.recover(next_base, is_last=next_base is None)
        if damaged:
            paths = damage.quarantine(directory, segment.fd, base, valid, damaged,
                                      config.index_interval_bytes, config.segment_index_bytes, now_ms)
            segment.close()
            damage.commit_repaired(directory, paths)
            damage.report(directory, segment.log_path, damaged)
            quarantined_bytes += sum(d.length for d in damaged)
            segment = new_segment(base)
            dropped, reason, damaged, _ = segment.recover(next_base, is_last=next_base is None)
            if damaged:  # the rewritten file failed its own check: the disk is lying
                raise OSError(f"{segment.log_path} is still damaged after quarantine: {damaged[0].reason}")
        segments.append(segment)
        if dropped:
            log.warning("truncated the torn tail of %s: %d bytes (%s)", segment.log_path, dropped, reason)
            truncated += dropped

    if segments:
        log_start = max(log_start, segments[0].base_offset)
    end = segments[-1].next_offset if segments else log_start
    if log_start > end or not segments:
        # The checkpointed start is past every stored offset: start afresh there.
        for segment in segments:
            segment.close_and_delete()
        segments = [new_segment(log_start)]
    while len(segments) > 1 and segments[1].base_offset <= log_start:
        segments.pop(0).close_and_delete()
    segments[-1].make_active()
    if truncated:
        log.warning("recovery of %s dropped %d bytes", directory, truncated)
    end = segments[-1].next_offset
    return LoadedLog(segments, log_start, min(recovery_point or 0, end), truncated, quarantined_bytes,
                     recovery_point or 0, stored_log_start)


def _created(directory: str) -> bool:
    """Make ``directory`` (and missing parents); whether it did not exist before."""
    try:
        os.mkdir(directory)
    except FileExistsError:
        return False
    except FileNotFoundError:
        os.makedirs(directory)
    return True


def _drop(doomed: list[LogSegment], why: str) -> int:
    dropped = 0
    for segment in doomed:
        log.warning("deleting segment %s (%d bytes): %s", segment.log_path, segment.size, why)
        dropped += segment.size
        segment.close_and_delete()
    return dropped
