"""The transaction coordinator: every transactional id's state, the requests that move it,
and the markers each finished transaction still needs (Kafka's TransactionCoordinator).

Every change is ``TransactionMetadata.transition`` -> ``TransactionLog.write`` (durable,
then current) before the caller hears of it. Ending a transaction is two steps, as in
Kafka: EndTxn (or a fencing InitProducerId, or a timeout) writes PrepareCommit or
PrepareAbort and queues a ``MarkerJob``; once every partition leader wrote its marker,
``complete`` writes CompleteCommit or CompleteAbort. A coordinator reopened on a log
whose transactions stopped in a Prepare state queues their markers again (``recover``).

Errors follow Kafka's (transaction version 0, the clients' default):
INVALID_PRODUCER_ID_MAPPING for an unknown id or producer id, PRODUCER_FENCED for another
epoch, CONCURRENT_TRANSACTIONS while markers are being written, INVALID_TXN_STATE for an
EndTxn that does not fit the state, INVALID_TRANSACTION_TIMEOUT above
``transaction.max.timeout.ms``.

Owned by the coordinator host's event loop: one thread, not thread-safe. Apart from the
TransactionLog it is handed it does no I/O and reads no clock.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from pybroker import errors
from pybroker.txn.state_machine import (NO_PRODUCER_EPOCH, GroupOffsets, TopicPartition,
                                        TransactionMetadata, TxnState)
from pybroker.txn.txn_log import TransactionLog

NONE = 0


@dataclass(frozen=True)
class TxnSettings:
    max_timeout_ms: int = 15 * 60 * 1000       # transaction.max.timeout.ms


class MarkerJob(NamedTuple):
    """COMMIT or ABORT markers still to be written to ``partitions``."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: frozenset[TopicPartition]


class InitResult(NamedTuple):
    error_code: int
    producer_id: int = -1
    producer_epoch: int = -1


class TransactionCoordinator:
    def __init__(self, log: TransactionLog, next_producer_id: Callable[[], int],
                 settings: TxnSettings | None = None):
        self.log = log
        self.settings = settings or TxnSettings()
        self._next_producer_id = next_producer_id
        self._jobs: list[MarkerJob] = []

    @property
    def states(self) -> dict[str, TransactionMetadata]:
        return self.log.states

    def take_marker_jobs(self) -> list[MarkerJob]:
        jobs, self._jobs = self._jobs, []
        return jobs

    def recover(self) -> int:
        """Queue the markers of transactions the log left in a Prepare state."""
        for meta in self.states.values():
            if meta.state.is_prepare:
                self._queue_markers(meta)
        return len(self._jobs)

    def _queue_markers(self, meta: TransactionMetadata) -> None:
        self._jobs.append(MarkerJob(meta.transactional_id, meta.producer_id, meta.producer_epoch,
                                    meta.state is TxnState.PREPARE_COMMIT, meta.partitions))

    # -- InitProducerId ------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, timeout_ms: int, now_ms: int,
                         expected_producer_id: int = -1, expected_epoch: int = -1) -> InitResult:
        if not transactional_id:
            return InitResult(errors.InvalidRequest.code)
        if not 0 < timeout_ms <= self.settings.max_timeout_ms:
            return InitResult(errors.InvalidTransactionTimeout.code)
        meta = self.states.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(transactional_id, self._next_producer_id(), NO_PRODUCER_EPOCH, timeout_ms)
        expected = expected_producer_id >= 0
        if expected and meta.producer_epoch != NO_PRODUCER_EPOCH and expected_producer_id != meta.producer_id:
            return InitResult(errors.ProducerFenced.code)
        if meta.state.is_prepare:
            return InitResult(errors.ConcurrentTransactions.code)
        if meta.state is TxnState.ONGOING:
            # A new incarnation of the producer: abort what the old one left open, with an
            # epoch the old one cannot write with; the client retries once it is done.
            self._end(meta.prepare_end(False, now_ms, fence=True))
            return InitResult(errors.ConcurrentTransactions.code)
        if meta.epoch_exhausted and (not expected or expected_epoch == meta.producer_epoch):
            new = meta.bump_epoch(timeout_ms, now_ms, new_producer_id=self._next_producer_id())
        elif not expected or meta.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == meta.producer_epoch:
            new = meta.bump_epoch(timeout_ms, now_ms)
            if not expected:
                # Kafka remembers the previous epoch only for a client that named it.
                new = replace(new, last_producer_epoch=NO_PRODUCER_EPOCH)
        elif expected_epoch == meta.last_producer_epoch:
            # A retry of the bump that already happened: the same answer again.
            return InitResult(NONE, meta.producer_id, meta.producer_epoch)
        else:
            return InitResult(errors.ProducerFenced.code)
        self.log.write(new)
        return InitResult(NONE, new.producer_id, new.producer_epoch)

    # -- enlisting partitions and offsets -------------------------------------------------

    def _check_producer(self, transactional_id: str, producer_id: int, epoch: int
                        ) -> tuple[int, TransactionMetadata | None]:
        meta = self.states.get(transactional_id)
        if not transactional_id:
            return errors.InvalidRequest.code, None
        if meta is None or meta.producer_id != producer_id:
            return errors.InvalidProducerIdMapping.code, None
        if meta.producer_epoch != epoch:
            return errors.ProducerFenced.code, None
        if meta.state.is_prepare:
            return errors.ConcurrentTransactions.code, None
        return NONE, meta

    def add_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                       partitions, now_ms: int) -> int:
        code, meta = self._check_producer(transactional_id, producer_id, epoch)
        if code:
            return code
        partitions = frozenset(partitions)
        if meta.state is TxnState.ONGOING and partitions <= meta.partitions:
            return NONE
        self.log.write(meta.add(now_ms, partitions))
        return NONE

    def verify_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                          partitions) -> dict[TopicPartition, int]:
        """KIP-890's verify-only AddPartitionsToTxn: NONE for each partition already in the
        ongoing transaction, TRANSACTION_ABORTABLE for the others."""
        code, meta = self._check_producer(transactional_id, producer_id, epoch)
        if code:
            return {tp: code for tp in partitions}
        inside = meta.partitions if meta.state is TxnState.ONGOING else frozenset()
        return {tp: NONE if tp in inside else errors.TransactionAbortable.code for tp in partitions}

    def add_offsets(self, transactional_id: str, producer_id: int, epoch: int, group_id: str, now_ms: int) -> int:
        code, meta = self._check_producer(transactional_id, producer_id, epoch)
        if code:
            return code
        if meta.state is TxnState.ONGOING and group_id in meta.groups:
            return NONE
        self.log.write(meta.add(now_ms, group=group_id))
        return NONE

    def commit_offsets(self, transactional_id: str, producer_id: int, epoch: int, group_id: str,
                       offsets: GroupOffsets, now_ms: int) -> int:
        """TxnOffsetCommit: the offsets wait in the transaction for its end."""
        code, meta = self._check_producer(transactional_id, producer_id, epoch)
        if code:
            return code
        if meta.state is not TxnState.ONGOING or group_id not in meta.groups:
            return errors.InvalidTxnState.code
        self.log.write(meta.with_offsets(group_id, offsets, now_ms))
        return NONE

    def pending_offsets(self, group_id: str) -> set[TopicPartition]:
        """Partitions of ``group_id`` with offsets in a transaction not yet complete."""
        return {tp for meta in self.states.values() if not meta.state.is_complete
                for tp in meta.pending_offsets.get(group_id, {})}

    # -- ending --------------------------------------------------------------------------

    def end_txn(self, transactional_id: str, producer_id: int, epoch: int, commit: bool, now_ms: int) -> int:
        if not transactional_id:
            return errors.InvalidRequest.code
        meta = self.states.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return errors.InvalidProducerIdMapping.code
        if meta.producer_epoch != epoch:
            return errors.ProducerFenced.code
        state = meta.state
        if state is TxnState.ONGOING:
            self._end(meta.prepare_end(commit, now_ms))
            return NONE
        same = (state in (TxnState.COMPLETE_COMMIT, TxnState.PREPARE_COMMIT)) == commit
        if state is TxnState.EMPTY or not same:
            return errors.InvalidTxnState.code
        # A retry of an EndTxn already accepted: done, or still writing markers.
        return NONE if state.is_complete else errors.ConcurrentTransactions.code

    def _end(self, prepared: TransactionMetadata) -> None:
        self.log.write(prepared)
        self._queue_markers(prepared)

    def complete(self, transactional_id: str, producer_id: int, epoch: int, now_ms: int) -> TransactionMetadata | None:
        """Every marker of the prepared transaction is written: complete it. Returns the
        prepared state it ended (its pending offsets), or None if that moved on already."""
        meta = self.states.get(transactional_id)
        if meta is None or not meta.state.is_prepare or (meta.producer_id, meta.producer_epoch) != (producer_id, epoch):
            return None
        self.log.write(meta.complete(now_ms))
        return meta

    def abort_timed_out(self, now_ms: int) -> list[str]:
        """Abort (fencing the producer) every ongoing transaction older than its timeout."""
        expired = [m for m in self.states.values()
                   if m.state is TxnState.ONGOING and m.start_ms + m.timeout_ms <= now_ms]
        for meta in expired:
            self._end(meta.prepare_end(False, now_ms, fence=True))
        return [m.transactional_id for m in expired]

    def next_deadline_ms(self) -> int | None:
        deadlines = [m.start_ms + m.timeout_ms for m in self.states.values() if m.state is TxnState.ONGOING]
        return min(deadlines) if deadlines else None

    # -- admin ---------------------------------------------------------------------------

    def describe(self, transactional_ids: list[str]) -> list[dict]:
        described = []
        for txn_id in transactional_ids:
            meta = self.states.get(txn_id)
            if meta is None or not txn_id:
                code = errors.InvalidRequest.code if not txn_id else errors.TransactionalIdNotFound.code
                described.append({"error_code": code, "transactional_id": txn_id, "transaction_state": "",
                                  "transaction_timeout_ms": 0, "transaction_start_time_ms": -1,
                                  "producer_id": -1, "producer_epoch": -1, "topics": []})
                continue
            topics: dict[str, list[int]] = {}
            for topic, partition in sorted(meta.partitions):
                topics.setdefault(topic, []).append(partition)
            described.append({
                "error_code": NONE, "transactional_id": txn_id, "transaction_state": meta.state.value,
                "transaction_timeout_ms": meta.timeout_ms, "transaction_start_time_ms": meta.start_ms,
                "producer_id": meta.producer_id, "producer_epoch": meta.producer_epoch,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
            })
        return described

    def list(self, states: list[str], producer_ids: list[int], duration_ms: int, now_ms: int) -> dict:
        known = {s.value for s in TxnState}
        unknown = [s for s in states if s not in known]
        wanted = {s for s in states if s in known}
        rows = []
        for meta in sorted(self.states.values(), key=lambda m: m.transactional_id):
            if wanted and meta.state.value not in wanted:
                continue
            if producer_ids and meta.producer_id not in producer_ids:
                continue
            if duration_ms >= 0 and (meta.start_ms < 0 or now_ms - meta.start_ms < duration_ms):
                continue
            rows.append({"transactional_id": meta.transactional_id, "producer_id": meta.producer_id,
                         "transaction_state": meta.state.value})
        return {"error_code": NONE, "unknown_state_filters": unknown, "transaction_states": rows}
