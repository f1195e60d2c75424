"""Producer state of one partition: deduplication by (producer id, epoch, sequence), and
the transactions in progress here (KIP-98).

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

Transactions. A producer's first transactional batch opens its transaction here at that
batch's offset (``current_txn_first_offset``); its COMMIT or ABORT marker closes it. A
non-transactional batch from a producer whose transaction is open is refused
(INVALID_TXN_STATE), as is a marker older than the producer's epoch. The first offset of
the oldest open transaction, or of a closed one whose marker the high watermark has not
yet passed, is the partition's first unstable offset: the last stable offset (LSO), up to
which read_committed consumers read, is the lower of it and the high watermark.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pybroker.errors import InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequenceNumber

# Kafka keeps metadata of the last 5 batches per producer: a producer has at most 5
# requests in flight per partition, so a retry is always one of these.
MAX_CACHED_BATCHES = 5
NO_SEQUENCE = -1
NO_OFFSET = -1
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
    # Offset of the open transaction's first batch here, -1 when none is open.
    current_txn_first_offset: int = NO_OFFSET
    coordinator_epoch: int = -1
    # Timestamp of the producer's last batch or marker (DescribeProducers).
    last_timestamp: int = -1

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
        # Producer id -> first offset of its open transaction.
        self.ongoing: dict[int, int] = {}
        # (first offset, marker offset) of closed transactions whose marker is not yet
        # below the high watermark: still unstable for read_committed.
        self.unreplicated: list[tuple[int, int]] = []

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int,
              transactional: bool = False) -> BatchMetadata | None:
        """Validate one batch. Returns the metadata of the earlier append if the batch is a
        retry of one already in the log, None if it is new; raises on fencing or a gap."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return None
        if epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"Epoch of producer {producer_id} is {epoch}, which is smaller than the last seen epoch {entry.epoch}"
            )
        if not transactional and entry.current_txn_first_offset != NO_OFFSET:
            raise InvalidTxnState(
                f"Producer {producer_id} sent a non-transactional batch while its transaction "
                f"from offset {entry.current_txn_first_offset} is open")
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

    def _entry_for(self, producer_id: int, epoch: int) -> ProducerEntry:
        """The producer's entry at ``epoch``: a newer epoch starts its sequences afresh but
        keeps an open transaction (only a marker closes one)."""
        entry = self.producers.get(producer_id)
        if entry is None or epoch != entry.epoch:
            old = entry
            entry = self.producers[producer_id] = ProducerEntry(epoch)
            if old is not None:
                entry.current_txn_first_offset = old.current_txn_first_offset
                entry.coordinator_epoch = old.coordinator_epoch
        return entry

    def update(self, producer_id: int, epoch: int, meta: BatchMetadata, transactional: bool = False) -> None:
        entry = self._entry_for(producer_id, epoch)
        entry.batches.append(meta)
        entry.last_timestamp = meta.timestamp
        if transactional and entry.current_txn_first_offset == NO_OFFSET:
            entry.current_txn_first_offset = meta.first_offset
            self.ongoing[producer_id] = meta.first_offset

    def check_marker(self, producer_id: int, epoch: int) -> None:
        entry = self.producers.get(producer_id)
        if entry is not None and epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"Marker epoch {epoch} of producer {producer_id} is older than its epoch {entry.epoch}")

    def complete_txn(self, producer_id: int, epoch: int, coordinator_epoch: int, marker_offset: int,
                     timestamp: int = -1) -> int:
        """A COMMIT or ABORT marker of ``producer_id`` at ``marker_offset`` closes its open
        transaction. Returns the transaction's first offset (the marker's own when nothing
        of it was written here, as Kafka records it). Raises INVALID_PRODUCER_EPOCH for a
        marker older than the producer's epoch."""
        self.check_marker(producer_id, epoch)
        entry = self._entry_for(producer_id, epoch)
        first = entry.current_txn_first_offset
        first = marker_offset if first == NO_OFFSET else first
        entry.current_txn_first_offset = NO_OFFSET
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        self.ongoing.pop(producer_id, None)
        self.unreplicated.append((first, marker_offset))
        return first

    def first_unstable_offset(self) -> int | None:
        """The first offset read_committed consumers may not pass yet, or None."""
        firsts = [first for first, _ in self.unreplicated]
        firsts.extend(self.ongoing.values())
        return min(firsts) if firsts else None

    def on_high_watermark(self, high_watermark: int) -> None:
        """Closed transactions whose marker is now below the high watermark are stable."""
        if self.unreplicated:
            self.unreplicated = [t for t in self.unreplicated if t[1] >= high_watermark]

    def to_json(self) -> list:
        """The table as JSON-ready lists: [producer id, epoch, [[first seq, last seq,
        first offset, last offset, timestamp], ...], open transaction's first offset,
        coordinator epoch, last timestamp] per producer."""
        return [[pid, e.epoch, [[b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp]
                                for b in e.batches], e.current_txn_first_offset, e.coordinator_epoch,
                 e.last_timestamp]
                for pid, e in self.producers.items()]

    @classmethod
    def from_json(cls, doc: list, log_start_offset: int = 0, unreplicated=()) -> "ProducerStateManager":
        """Inverse of ``to_json`` (rows of older snapshots lack the transaction fields);
        batches below ``log_start_offset`` (gone with retention or DeleteRecords) are
        dropped, and producers left without any and without an open transaction with them."""
        state = cls()
        for row in doc:
            pid, epoch, batches = int(row[0]), int(row[1]), row[2]
            extra = [int(x) for x in row[3:6]]
            txn_first, coordinator_epoch, last_ts = extra + [NO_OFFSET, -1, -1][len(extra):]
            kept = [BatchMetadata(*map(int, b)) for b in batches if int(b[3]) >= log_start_offset]
            if kept or txn_first != NO_OFFSET:
                state.producers[pid] = ProducerEntry(int(epoch), deque(kept, maxlen=MAX_CACHED_BATCHES),
                                                     txn_first, coordinator_epoch, last_ts)
                if txn_first != NO_OFFSET:
                    state.ongoing[pid] = txn_first
        state.unreplicated = [(int(a), int(b)) for a, b in unreplicated]
        return state

    def truncate_after(self, offset: int) -> None:
        """Forget batches at or above ``offset`` (the log was truncated there), and
        transactions that began there."""
        for pid in list(self.producers):
            entry = self.producers[pid]
            kept = [b for b in entry.batches if b.last_offset < offset]
            if entry.current_txn_first_offset >= offset:
                entry.current_txn_first_offset = NO_OFFSET
                self.ongoing.pop(pid, None)
            if kept or entry.current_txn_first_offset != NO_OFFSET:
                entry.batches = deque(kept, maxlen=MAX_CACHED_BATCHES)
            else:
                del self.producers[pid]
        self.unreplicated = [t for t in self.unreplicated if t[1] < offset]
