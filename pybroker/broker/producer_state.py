"""Idempotent-producer state of one partition: deduplication by (producer id, epoch, sequence).

Pure logic, no I/O. Owned by the broker's event loop (not thread-safe).

Kafka's rules (ProducerStateManager / ProducerAppendInfo), per producer id:
- a batch with an older epoch than the one seen is fenced: INVALID_PRODUCER_EPOCH;
- a newer epoch must start at sequence 0 (a producer that bumped its epoch starts over);
- a producer the partition has no state for (new, or its state was lost with retention)
  may start at any sequence;
- otherwise the batch's first sequence must follow the last one seen, else
  OUT_OF_ORDER_SEQUENCE_NUMBER;
- a batch equal to one of the last ``MAX_CACHED_BATCHES`` appended is a retry: it is not
  appended again, and the reply carries the offsets it got the first time.
Sequences wrap at 2^31-1 to 0, as the producer's do.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pybroker.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber

# Kafka keeps metadata of the last 5 batches per producer: a producer has at most 5
# requests in flight per partition, so a retry is always one of these.
MAX_CACHED_BATCHES = 5
NO_SEQUENCE = -1
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque = field(default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def find_duplicate(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        for meta in self.batches:
            if meta.first_seq == first_seq and meta.last_seq == last_seq:
                return meta
        return None


def last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    """The sequence of a batch's last record; sequences wrap at INT32_MAX."""
    if base_sequence > INT32_MAX - last_offset_delta:
        return last_offset_delta - (INT32_MAX - base_sequence) - 1
    return base_sequence + last_offset_delta


def _next_sequence(seq: int) -> int:
    return 0 if seq == INT32_MAX else seq + 1


class ProducerStateManager:
    """Per-partition producer table. ``check`` before appending, ``update`` after."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        """Validate one batch. Returns the metadata of the earlier append if the batch is a
        retry of one already in the log, None if it is new; raises on fencing or a gap."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return None
        if epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"Epoch of producer {producer_id} is {epoch}, which is smaller than the last seen epoch {entry.epoch}"
            )
        if epoch > entry.epoch:
            if first_seq != 0:
                raise OutOfOrderSequenceNumber(
                    f"Invalid sequence number for new epoch of producer {producer_id} at offset: {epoch} "
                    f"(request epoch), {first_seq} (seq. number), {entry.epoch} (current producer epoch)"
                )
            return None
        duplicate = entry.find_duplicate(first_seq, last_seq)
        if duplicate is not None:
            return duplicate
        if entry.last_seq != NO_SEQUENCE and first_seq != _next_sequence(entry.last_seq):
            raise OutOfOrderSequenceNumber(
                f"Out of order sequence number for producer {producer_id} at offset: "
                f"{first_seq} (incoming seq. number), {entry.last_seq} (current end sequence number)"
            )
        return None

    def update(self, producer_id: int, epoch: int, meta: BatchMetadata) -> None:
        entry = self.producers.get(producer_id)
        if entry is None or epoch != entry.epoch:
            entry = self.producers[producer_id] = ProducerEntry(epoch)
        entry.batches.append(meta)

    def to_json(self) -> list:
        """The table as JSON-ready lists: [producer id, epoch, [[first seq, last seq,
        first offset, last offset, timestamp], ...]] per producer."""
        return [[pid, e.epoch, [[b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp]
                                for b in e.batches]]
                for pid, e in self.producers.items()]

    @classmethod
    def from_json(cls, doc: list, log_start_offset: int = 0) -> "ProducerStateManager":
        """Inverse of ``to_json``; batches below ``log_start_offset`` (gone with retention
        or DeleteRecords) are dropped, and producers left without any with them."""
        state = cls()
        for pid, epoch, batches in doc:
            kept = [BatchMetadata(*map(int, b)) for b in batches if int(b[3]) >= log_start_offset]
            if kept:
                state.producers[int(pid)] = ProducerEntry(int(epoch), deque(kept, maxlen=MAX_CACHED_BATCHES))
        return state

    def truncate_after(self, offset: int) -> None:
        """Forget batches at or above ``offset`` (the log was truncated there)."""
        for pid in list(self.producers):
            entry = self.producers[pid]
            kept = [b for b in entry.batches if b.last_offset < offset]
            if kept:
                entry.batches = deque(kept, maxlen=MAX_CACHED_BATCHES)
            else:
                del self.producers[pid]
