"""A scrub of partition directories: every batch's CRC (pybroker.log.damage) and every
index entry checked against the batches it points at. Read only: it reports, the
broker's recovery or scrubber repairs.

Index entries checked (files read with pread, preallocated zeros end them):

    .index      (relative offset, position): the position is where a valid batch
                starts, and that batch's base offset is base + relative offset
    .timeindex  (timestamp, relative offset): timestamps never go down, and the offset
                is a valid batch's base offset

Any thread; safe beside a running broker (never an mmap: a segment truncated or deleted
underneath ends its scan early, it does not crash the reader).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pybroker.log import damage, offset_index, time_index
from pybroker.log.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, file_name

_SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")
_INDEX_ENTRY = offset_index.ENTRY  # (relative offset, position)
_TIME_INDEX_ENTRY = time_index.ENTRY  # (timestamp, relative offset)


@dataclass
class SegmentReport:
    path: str
    size: int
    batches: int
    damaged: list[damage.Damage]  # ranges recovery would quarantine
    torn_tail: damage.Damage | None  # the newest segment's tail recovery would truncate
    index_problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.damaged and self.torn_tail is None and not self.index_problems


@dataclass
class PartitionReport:
    directory: str
    segments: list[SegmentReport] = field(default_factory=list)
    quarantined: list[damage.Quarantined] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.quarantined and all(s.ok for s in self.segments)

    @property
    def bytes_checked(self) -> int:
        return sum(s.size for s in self.segments)


def segment_bases(directory: str) -> list[int]:
    return sorted(int(m.group(1)) for m in map(_SEGMENT_NAME.match, os.listdir(directory)) if m)


def _entries(path: str, entry: struct.Struct) -> Iterator[tuple]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    for n in range(len(data) // entry.size):
        fields = entry.unpack_from(data, n * entry.size)
        if n and not any(fields):
            return  # preallocated and never written
        yield fields


def check_indexes(stem: str, base_offset: int, scan: damage.SegmentScan) -> list[str]:
    """What is wrong with a segment's ``.index`` and ``.timeindex`` given its batches."""
    problems = []
    by_position = {h.position: h.base_offset for h in scan.headers}
    bases = {h.base_offset for h in scan.headers}
    # Entries into damaged bytes follow from that damage: reported once, as the damage.
    lost = scan.damaged + ([scan.tail] if scan.tail else [])

    def in_damage(position: int | None = None, offset: int | None = None) -> bool:
        return any((position is not None and d.position <= position < d.position + d.length)
                   or (offset is not None and d.first_offset <= offset
                       and (d.end_offset is None or offset < d.end_offset)) for d in lost)

    for path, check in ((stem + INDEX_SUFFIX, "index"), (stem + TIME_INDEX_SUFFIX, "timeindex")):
        if not os.path.exists(path):
            problems.append(f"{os.path.basename(path)} is missing (recovery rebuilds it)")
    for n, (relative, position) in enumerate(_entries(stem + INDEX_SUFFIX, _INDEX_ENTRY)):
        if n == 0 and not scan.headers and relative == position == 0:
            break  # an empty segment's preallocated index: zeros, not an entry
        if by_position.get(position) != base_offset + relative and not in_damage(position=position):
            problems.append(f"{os.path.basename(stem)}{INDEX_SUFFIX} entry {n} (offset {base_offset + relative}, "
                            f"position {position}) does not point at that batch")
            break
    last_timestamp = None
    for n, (timestamp, relative) in enumerate(_entries(stem + TIME_INDEX_SUFFIX, _TIME_INDEX_ENTRY)):
        if n == 0 and not scan.headers and timestamp == relative == 0:
            break
        if (base_offset + relative not in bases and not in_damage(offset=base_offset + relative)) or (last_timestamp is not None and timestamp < last_timestamp):
            problems.append(f"{os.path.basename(stem)}{TIME_INDEX_SUFFIX} entry {n} (timestamp {timestamp}, "
                            f"offset {base_offset + relative}) does not fit the batches")
            break
        last_timestamp = timestamp
    return problems


def verify_segment(directory: str, base_offset: int, next_base: int | None,
                   pace: Callable[[int], None] | None = None) -> SegmentReport:
    stem = os.path.join(directory, file_name(base_offset))
    path = stem + LOG_SUFFIX
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        scan = damage.scan(fd, size, base_offset, next_base, pace)
    finally:
        os.close(fd)
    ranges, torn = damage.to_quarantine(scan, next_base is None, next_base)
    return SegmentReport(path, size, len(scan.headers), ranges, torn, check_indexes(stem, base_offset, scan))


def verify_partition(directory: str, pace: Callable[[int], None] | None = None) -> PartitionReport:
    report = PartitionReport(directory, quarantined=damage.quarantined(directory))
    bases = segment_bases(directory)
    for n, base in enumerate(bases):
        next_base = bases[n + 1] if n + 1 < len(bases) else None
        try:
            report.segments.append(verify_segment(directory, base, next_base, pace))
        except FileNotFoundError:
            continue  # deleted by retention meanwhile
    return report


def partition_dirs(root: str, depth: int = 3) -> list[str]:
    """``root`` if it holds segments, else the directories under it that do (a broker's
    data dir, or a cluster's with its ``broker-N`` dirs)."""
    try:
        names = os.listdir(root)
    except NotADirectoryError:
        return []
    if any(_SEGMENT_NAME.match(n) for n in names):
        return [root]
    if depth == 0:
        return []
    found = []
    for name in sorted(names):
        path = os.path.join(root, name)
        if os.path.isdir(path) and not name.endswith(("-delete", "-stray")) and name not in ("run", "meta"):
            found.extend(partition_dirs(path, depth - 1))
    return found
