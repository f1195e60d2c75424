"""The leader-epoch cache of one partition (Kafka's LeaderEpochFileCache, KIP-101/279).

Each entry says "leader epoch E wrote offsets from S on" (until the next entry's start).
A follower of a new leader asks the leader for the end offset of its own latest epoch
(OffsetForLeaderEpoch) and truncates where the two logs diverge, instead of trusting its
high watermark: that is what keeps an acknowledged message from being overwritten.

File ``leader-epoch-checkpoint`` in the partition directory, Kafka's text format::

    0              version
    2              number of entries
    0 0            epoch start_offset
    3 1500         ...ascending in both columns

Written atomically (temp file, fsync, rename, fsync of the directory). A missing or
unreadable file is rebuilt from the ``partitionLeaderEpoch`` of the batch headers. That
rebuild is also why a new partition has no file until it needs one (a truncation, or a
history rebuilt from existing batches): its assignments follow its batches, so the rebuild
yields the same entries; the first write then skips the fsyncs (until it is on disk the
file is absent, which is as good); every later write is durable. Creating thousands of
partitions would otherwise cost a file and two fsyncs each.

Owned by the broker's event-loop thread; not thread-safe.
"""
from __future__ import annotations

import bisect
import logging
import os
from typing import Iterable, NamedTuple

from pybroker.log.record_file import write_atomically

log = logging.getLogger("pybroker.log")

CHECKPOINT_FILE = "leader-epoch-checkpoint"
CHECKPOINT_VERSION = 0
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
# A corrupt count line must not make the loader allocate without bound.
_MAX_ENTRIES = 1_000_000


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochCache:
    """Entries ascending by epoch and by start offset. Every mutation that changes the
    entries rewrites the checkpoint (epochs change rarely: once per leader change)."""

    def __init__(self, directory: str | None, entries: Iterable[EpochEntry] = (), on_disk: bool = True):
        self.directory = directory
        self._entries: list[EpochEntry] = list(entries)
        # Whether the checkpoint file exists; its first write need not be durable.
        self._on_disk = on_disk
        # An entry that starts at the log end is kept here until a batch follows it.
        self._pending = False

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: str) -> "LeaderEpochCache | None":
        """The cache stored in ``directory``, or None when the file is absent or bad."""
        path = os.path.join(directory, CHECKPOINT_FILE)
        try:
            with open(path, "rb") as f:
                text = f.read(64 * 1024 * 1024)
        except FileNotFoundError:
            return None
        try:
            entries = parse_checkpoint(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            return None
        return cls(directory, entries)

    @classmethod
    def rebuild(cls, directory: str | None, epochs_and_offsets: Iterable[tuple[int, int]]) -> "LeaderEpochCache":
        """Build from (partitionLeaderEpoch, baseOffset) of every batch in log order. An
        empty cache of a directory without the file writes nothing: absent means empty."""
        cache = cls(directory, on_disk=directory is not None and
                    os.path.exists(os.path.join(directory, CHECKPOINT_FILE)))
        for epoch, base_offset in epochs_and_offsets:
            cache._assign(epoch, base_offset)
        if cache._entries or cache._on_disk:
            cache.flush()
        return cache

    # -- reading -------------------------------------------------------------------------

    @property
    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1].epoch if self._entries else UNDEFINED_EPOCH

    @property
    def latest_entry(self) -> EpochEntry | None:
        return self._entries[-1] if self._entries else None

    @property
    def earliest_entry(self) -> EpochEntry | None:
        return self._entries[0] if self._entries else None

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch the batch at ``offset`` was written in (the latest entry starting at
        or before it), or -1 when the cache knows none that old."""
        starts = [e.start_offset for e in self._entries]
        at = bisect.bisect_right(starts, offset)
        return self._entries[at - 1].epoch if at else UNDEFINED_EPOCH

    def start_offset_of(self, epoch: int) -> int | None:
        for entry in self._entries:
            if entry.epoch == epoch:
                return entry.start_offset
        return None

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch: the largest epoch <= the requested
        one that this log knows, and the first offset after it (the start of the next
        higher epoch, or the log end for the latest epoch). (-1, -1) when the requested
        epoch is undefined or newer than any epoch here."""
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self._entries[-1].epoch:
            return requested_epoch, log_end_offset
        epochs = [e.epoch for e in self._entries]
        higher = bisect.bisect_right(epochs, requested_epoch)
        if higher == len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            # Older than anything here (retention removed it): it ended where our
            # first known epoch began.
            return requested_epoch, self._entries[0].start_offset
        return self._entries[higher - 1].epoch, self._entries[higher].start_offset

    # -- writing -------------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset``. Entries it contradicts (an
        epoch >= it, or a start >= its start) are removed first. Returns whether the
        cache changed (and was checkpointed)."""
        if self._assign(epoch, start_offset):
            self._write_if_on_disk()
            return True
        return False

    def assign_at_log_end(self, epoch: int, log_end_offset: int) -> bool:
        """A new leader epoch starting at the log end (leadership changed): recorded in
        memory only, and written by ``write_pending`` before the first batch of it is
        appended. Until then the file loses nothing: loading drops every entry that starts
        at or past the log end. A leader change across thousands of partitions then costs
        no fsync per partition."""
        if self._assign(epoch, log_end_offset):
            self._pending = True
            return True
        return False

    def write_pending(self) -> None:
        """Write an entry ``assign_at_log_end`` kept back (before appending after it)."""
        if self._pending:
            self._write_if_on_disk()

    def save_if_absent(self, log_end_offset: int) -> None:
        """At a clean shutdown: write the file a new partition never needed, so the next
        start loads it instead of rebuilding it from every batch header. Not for a log
        whose every epoch starts at its end (an empty partition): loading would drop
        those entries and rewrite the file, an fsync per partition at every start, where
        rebuilding from no batches costs nothing."""
        if not self._on_disk and self._entries and self._entries[0].start_offset < log_end_offset:
            self.flush()

    def _write_if_on_disk(self) -> None:
        """Assignments follow the batches: while the file was never written, the entries
        are exactly what rebuilding from the log's batches yields (an absent file is
        rebuilt at load), so a new partition creates the file only when a truncation or a
        rebuilt history needs it, not with its first leader epoch or first batch."""
        if self._on_disk:
            self.flush()
        else:
            self._pending = False

    def _assign(self, epoch: int, start_offset: int) -> bool:
        if epoch < 0 or start_offset < 0:
            return False
        if self._entries:
            last = self._entries[-1]
            if epoch == last.epoch and start_offset >= last.start_offset:
                return False
        while self._entries and (self._entries[-1].epoch >= epoch or self._entries[-1].start_offset >= start_offset):
            self._entries.pop()
        self._entries.append(EpochEntry(epoch, start_offset))
        return True

    def truncate_from_end(self, end_offset: int) -> None:
        """The log was truncated to ``end_offset``: drop epochs that start at or after it."""
        if end_offset < 0 or not self._entries or self._entries[-1].start_offset < end_offset:
            return
        while self._entries and self._entries[-1].start_offset >= end_offset:
            self._entries.pop()
        self.flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at ``start_offset``: drop epochs wholly before it and move
        the start of the epoch covering it up to it."""
        if not self._entries or self._entries[0].start_offset >= start_offset:
            return
        starts = [e.start_offset for e in self._entries]
        floor = bisect.bisect_right(starts, start_offset) - 1
        covering = self._entries[floor]
        self._entries = [EpochEntry(covering.epoch, start_offset)] + self._entries[floor + 1:]
        self.flush()

    def clear_and_flush(self) -> None:
        self._entries = []
        self.flush()

    def flush(self) -> None:
        if self.directory is None:
            return
        write_checkpoint(self.directory, self._entries, durable=self._on_disk)
        self._on_disk = True
        self._pending = False

    def __repr__(self) -> str:
        return f"LeaderEpochCache({[tuple(e) for e in self._entries]})"


def format_checkpoint(entries: list[EpochEntry]) -> str:
    lines = [str(CHECKPOINT_VERSION), str(len(entries))]
    lines += [f"{e.epoch} {e.start_offset}" for e in entries]
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> list[EpochEntry]:
    """Entries of a checkpoint file; ValueError names what is wrong."""
    lines = text.split("\n")
    if len(lines) < 2:
        raise ValueError("missing version or count line")
    version = int(lines[0])
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"unsupported version {version}")
    count = int(lines[1])
    if not 0 <= count <= _MAX_ENTRIES or len(lines) < 2 + count:
        raise ValueError(f"count {count} does not match the {len(lines) - 2} lines present")
    entries = []
    for line in lines[2:2 + count]:
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"malformed entry line {line!r}")
        entry = EpochEntry(int(fields[0]), int(fields[1]))
        if entry.epoch < 0 or entry.start_offset < 0:
            raise ValueError(f"negative entry {line!r}")
        if entries and (entry.epoch <= entries[-1].epoch or entry.start_offset < entries[-1].start_offset):
            raise ValueError(f"entry {line!r} does not follow {tuple(entries[-1])}")
        entries.append(entry)
    if any(line.strip() for line in lines[2 + count:]):
        raise ValueError("lines after the declared entries")
    return entries


def write_checkpoint(directory: str, entries: list[EpochEntry], durable: bool = True) -> None:
    write_atomically(os.path.join(directory, CHECKPOINT_FILE), format_checkpoint(entries).encode("ascii"),
                     durable=durable)
