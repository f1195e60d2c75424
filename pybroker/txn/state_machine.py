"""The state of one transactional id (Kafka's TransactionMetadata and TransactionState).

States and the states each may be entered from (Kafka's validPreviousStates)::

    EMPTY            <- EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT   InitProducerId bumps the epoch
    ONGOING          <- ONGOING, EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT
                                                   AddPartitionsToTxn / AddOffsetsToTxn
    PREPARE_COMMIT   <- ONGOING                    EndTxn(commit): markers are being written
    PREPARE_ABORT    <- ONGOING                    EndTxn(abort), or the coordinator fences
                                                   the producer (a new InitProducerId, a timeout)
    COMPLETE_COMMIT  <- PREPARE_COMMIT             every partition has its marker
    COMPLETE_ABORT   <- PREPARE_ABORT

``TransactionMetadata`` is a frozen record; a transition returns the next record and
checks the move is legal (``transition``). The coordinator writes that record to the
transaction log and only then makes it current, so the in-memory state never runs ahead
of what is durable (Kafka's prepareTransitionTo / completeTransitionTo).

Pure logic: no I/O, no clock (times are passed in).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
# Kafka rotates to a new producer id before the epoch (an int16) overflows.
MAX_EPOCH = 32767


class TxnState(enum.Enum):
    # The values are Kafka's state names, as DescribeTransactions and ListTransactions show them.
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"

    @property
    def is_prepare(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)

    @property
    def is_complete(self) -> bool:
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


_S = TxnState
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_COMMIT: frozenset({_S.ONGOING}),
    _S.PREPARE_ABORT: frozenset({_S.ONGOING}),
    _S.COMPLETE_COMMIT: frozenset({_S.PREPARE_COMMIT}),
    _S.COMPLETE_ABORT: frozenset({_S.PREPARE_ABORT}),
}

TopicPartition = tuple[str, int]
# {(topic, partition): (offset, metadata, leader epoch)}
GroupOffsets = dict[TopicPartition, tuple[int, "str | None", int]]


class IllegalTransition(Exception):
    """A move the state machine does not allow: a bug in the caller, not a client error."""


@dataclass(frozen=True)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    # The epoch before the last bump, so a retried InitProducerId is recognised (KIP-360).
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    partitions: frozenset[TopicPartition] = frozenset()
    # Groups whose offsets ride on the transaction (AddOffsetsToTxn) and the offsets each
    # has committed in it (TxnOffsetCommit): the group sees them only at commit.
    groups: frozenset[str] = frozenset()
    pending_offsets: dict[str, GroupOffsets] = field(default_factory=dict)
    start_ms: int = -1
    update_ms: int = -1

    def transition(self, state: TxnState, now_ms: int, **changes) -> "TransactionMetadata":
        if self.state not in VALID_PREVIOUS[state]:
            raise IllegalTransition(
                f"transactional id {self.transactional_id}: {self.state.value} -> {state.value} is not allowed")
        return replace(self, state=state, update_ms=now_ms, **changes)

    # -- the transitions, named after Kafka's prepare* methods -------------------------------

    def bump_epoch(self, timeout_ms: int, now_ms: int, new_producer_id: int | None = None
                   ) -> "TransactionMetadata":
        """InitProducerId on a completed transaction: the next epoch (or a new producer id
        at epoch 0 once the epoch is exhausted), nothing enlisted."""
        if new_producer_id is not None:
            pid, epoch, last = new_producer_id, 0, NO_PRODUCER_EPOCH
        else:
            pid, epoch, last = self.producer_id, self.producer_epoch + 1, self.producer_epoch
        return self.transition(TxnState.EMPTY, now_ms, producer_id=pid, producer_epoch=epoch,
                               last_producer_epoch=last, timeout_ms=timeout_ms, partitions=frozenset(),
                               groups=frozenset(), pending_offsets={}, start_ms=-1)

    def add(self, now_ms: int, partitions=(), group: str | None = None) -> "TransactionMetadata":
        """AddPartitionsToTxn / AddOffsetsToTxn: the transaction is ongoing from the first."""
        start = self.start_ms if self.state is TxnState.ONGOING else now_ms
        if self.state is not TxnState.ONGOING:
            base_partitions, base_groups, offsets = frozenset(), frozenset(), {}
        else:
            base_partitions, base_groups, offsets = self.partitions, self.groups, self.pending_offsets
        groups = base_groups | ({group} if group is not None else set())
        return self.transition(TxnState.ONGOING, now_ms, partitions=base_partitions | frozenset(partitions),
                               groups=groups, pending_offsets=offsets, start_ms=start)

    def with_offsets(self, group: str, offsets: GroupOffsets, now_ms: int) -> "TransactionMetadata":
        """TxnOffsetCommit: offsets pending in the transaction until it ends."""
        merged = {**self.pending_offsets, group: {**self.pending_offsets.get(group, {}), **offsets}}
        return self.transition(TxnState.ONGOING, now_ms, pending_offsets=merged)

    def prepare_end(self, commit: bool, now_ms: int, fence: bool = False) -> "TransactionMetadata":
        """EndTxn, or the coordinator aborting (``fence`` bumps the epoch first, so markers
        carry an epoch the old producer can no longer write with)."""
        epoch, last = self.producer_epoch, self.last_producer_epoch
        if fence:
            epoch, last = self.producer_epoch + 1, self.producer_epoch
        return self.transition(TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, now_ms,
                               producer_epoch=epoch, last_producer_epoch=last)

    def complete(self, now_ms: int) -> "TransactionMetadata":
        """Every marker is written: the transaction is over, nothing stays enlisted."""
        state = TxnState.COMPLETE_COMMIT if self.state is TxnState.PREPARE_COMMIT else TxnState.COMPLETE_ABORT
        return self.transition(state, now_ms, partitions=frozenset(), groups=frozenset(), pending_offsets={})

    @property
    def epoch_exhausted(self) -> bool:
        return self.producer_epoch >= MAX_EPOCH - 1

    # -- the transaction log's record ------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "transactional_id": self.transactional_id, "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch, "last_producer_epoch": self.last_producer_epoch,
            "timeout_ms": self.timeout_ms, "state": self.state.value,
            "partitions": sorted([t, p] for t, p in self.partitions), "groups": sorted(self.groups),
            "pending_offsets": {g: [[t, p, o, m, e] for (t, p), (o, m, e) in sorted(offsets.items())]
                                for g, offsets in self.pending_offsets.items()},
            "start_ms": self.start_ms, "update_ms": self.update_ms,
        }

    @classmethod
    def from_json(cls, doc: dict) -> "TransactionMetadata":
        return cls(
            transactional_id=doc["transactional_id"], producer_id=int(doc["producer_id"]),
            producer_epoch=int(doc["producer_epoch"]), timeout_ms=int(doc["timeout_ms"]),
            state=TxnState(doc["state"]), last_producer_epoch=int(doc["last_producer_epoch"]),
            partitions=frozenset((t, int(p)) for t, p in doc["partitions"]), groups=frozenset(doc["groups"]),
            pending_offsets={g: {(t, int(p)): (int(o), m, int(e)) for t, p, o, m, e in rows}
                             for g, rows in doc["pending_offsets"].items()},
            start_ms=int(doc["start_ms"]), update_ms=int(doc["update_ms"]),
        )
