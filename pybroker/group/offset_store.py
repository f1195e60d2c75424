"""Committed offsets of every group, kept in one append-only file.

On-disk format of ``<directory>/offsets.log``: a sequence of records, each::

    RECORD = struct ">iI"
      length  int32   bytes after this field (crc + payload)
      crc     uint32  CRC-32C of payload
    PAYLOAD:
      kind          int8    0 commit, 1 partition tombstone, 2 group tombstone
      timestamp     int64   commit time, ms
      group         int16 length + utf-8
      topic         int16 length + utf-8      (empty for a group tombstone)
      partition     int32
      offset        int64
      leader_epoch  int32   -1 = unknown
      metadata      int16 length + utf-8, -1 = null

Opening replays the file; later records win. A record that is short or fails its CRC ends
the valid prefix (a SIGKILL mid-write leaves such a torn tail): the file is truncated there
and ``dropped_bytes`` says how much was cut. ``compact()`` rewrites only the live records
to a temporary file, fsyncs it and renames it over the log, so a crash at any point leaves
either the old or the new file whole.

With ``fsync=True`` (the default) ``commit()`` returns only after the records reached the
disk, so they survive a SIGKILL or power loss of the owning process.

Owned by the group coordinator host; one thread, not thread-safe.
"""
from __future__ import annotations

import os
import struct
from typing import Iterable, NamedTuple

from pybroker import errors
from pybroker.log.record_file import RECORD_HEADER, RecordFile

FILE_NAME = "offsets.log"

_KIND_TS = struct.Struct(
    ">b"  # kind => Int8
    "q"   # timestamp => Int64 (ms)
)
_POSITION = struct.Struct(
    ">i"  # partition => Int32
    "q"   # offset => Int64
    "i"   # leader_epoch => Int32
)
_LEN = struct.Struct(">h")

COMMIT, PARTITION_TOMBSTONE, GROUP_TOMBSTONE = 0, 1, 2
# A record far larger than any commit means the length itself is garbage.
MAX_RECORD_BYTES = 1 << 20
# Rewrite once live records are under this share of the file (and the file is not tiny).
COMPACT_LIVE_RATIO = 0.5
COMPACT_MIN_BYTES = 64 * 1024


class CommittedOffset(NamedTuple):
    offset: int
    metadata: str | None
    leader_epoch: int
    commit_timestamp_ms: int


TopicPartition = tuple[str, int]


def _short_string(s: str | None) -> bytes:
    if s is None:
        return _LEN.pack(-1)
    raw = s.encode("utf-8")
    if len(raw) > 0x7FFF:
        raise errors.OffsetMetadataTooLarge(f"{len(raw)} bytes do not fit the offsets log")
    return _LEN.pack(len(raw)) + raw


def _encode(kind: int, ts: int, group: str, topic: str, partition: int, offset: int,
            epoch: int, metadata: str | None) -> bytes:
    payload = b"".join((_KIND_TS.pack(kind, ts), _short_string(group), _short_string(topic),
                        _POSITION.pack(partition, offset, epoch), _short_string(metadata)))
    return payload


def _decode(payload: memoryview):
    pos = _KIND_TS.size
    kind, ts = _KIND_TS.unpack_from(payload, 0)
    strings = []
    for _ in range(2):
        (n,) = _LEN.unpack_from(payload, pos)
        pos += 2
        strings.append(str(payload[pos:pos + n], "utf-8"))
        pos += n
    partition, offset, epoch = _POSITION.unpack_from(payload, pos)
    pos += _POSITION.size
    (n,) = _LEN.unpack_from(payload, pos)
    metadata = None if n < 0 else str(payload[pos + 2:pos + 2 + n], "utf-8")
    return kind, ts, strings[0], strings[1], partition, offset, epoch, metadata


class OffsetStore:
    def __init__(self, directory: str | os.PathLike, fsync: bool = True):
        self.path = os.path.join(directory, FILE_NAME)
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        os.makedirs(directory, exist_ok=True)
        self._file = RecordFile(self.path, fsync, MAX_RECORD_BYTES)
        self.dropped_bytes = self._file.load(lambda payload: self._apply(*_decode(payload)))

    # ------------------------------------------------------------------ recovery

    def _apply(self, kind, ts, group, topic, partition, offset, epoch, metadata) -> None:
        if kind == COMMIT:
            self._offsets.setdefault(group, {})[(topic, partition)] = \
                CommittedOffset(offset, metadata, epoch, ts)
        elif kind == PARTITION_TOMBSTONE:
            offsets = self._offsets.get(group, {})
            offsets.pop((topic, partition), None)
            if not offsets:
                self._offsets.pop(group, None)
        elif kind == GROUP_TOMBSTONE:
            self._offsets.pop(group, None)
        else:
            raise struct.error(f"unknown record kind {kind}")

    # ------------------------------------------------------------------ writes

    def _append(self, records: list[tuple]) -> None:
        if not records:
            return
        self._file.append(_encode(*r) for r in records)
        for r in records:
            self._apply(*r)

    def commit(self, group: str, offsets: dict[TopicPartition, tuple[int, str | None, int]],
               now_ms: int) -> None:
        """Stores ``{(topic, partition): (offset, metadata, leader_epoch)}`` durably."""
        self._append([(COMMIT, now_ms, group, topic, partition, offset, epoch, metadata)
                      for (topic, partition), (offset, metadata, epoch) in offsets.items()])

    def delete(self, group: str, partitions: Iterable[TopicPartition], now_ms: int) -> None:
        known = self._offsets.get(group, {})
        self._append([(PARTITION_TOMBSTONE, now_ms, group, t, p, -1, -1, None)
                      for t, p in partitions if (t, p) in known])

    def delete_group(self, group: str, now_ms: int = 0) -> bool:
        if group not in self._offsets:
            return False
        self._append([(GROUP_TOMBSTONE, now_ms, group, "", -1, -1, -1, None)])
        return True

    # ------------------------------------------------------------------ reads

    def fetch(self, group: str, partitions: Iterable[TopicPartition] | None = None
              ) -> dict[TopicPartition, CommittedOffset]:
        """Committed offsets of ``group``; with ``partitions``, only those that have one."""
        offsets = self._offsets.get(group, {})
        if partitions is None:
            return dict(offsets)
        return {tp: offsets[tp] for tp in partitions if tp in offsets}

    def groups(self) -> list[str]:
        return sorted(self._offsets)

    # ------------------------------------------------------------------ compaction

    def live_bytes(self) -> int:
        return sum(RECORD_HEADER.size + len(_encode(COMMIT, c.commit_timestamp_ms, g, t, p, c.offset,
                               c.leader_epoch, c.metadata))
                   for g, offsets in self._offsets.items() for (t, p), c in offsets.items())

    def compact(self, force: bool = False) -> bool:
        """Rewrites the file with only live records if mostly garbage (or ``force``)."""
        if not force and (self._file.size < COMPACT_MIN_BYTES
                          or self.live_bytes() >= self._file.size * COMPACT_LIVE_RATIO):
            return False
        self._file.rewrite(_encode(COMMIT, c.commit_timestamp_ms, g, t, p, c.offset,
                                   c.leader_epoch, c.metadata)
                           for g, offsets in self._offsets.items() for (t, p), c in offsets.items())
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "OffsetStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
