"""The transaction coordinator's state machine and its durable log, without processes:
epochs and fencing, Kafka's error codes, markers queued for every end, timeouts, and a
coordinator reopened on its log."""
from __future__ import annotations

import itertools

import pytest

from pybroker import errors
from pybroker.txn.coordinator import MarkerJob, TransactionCoordinator, TxnSettings
from pybroker.txn.state_machine import IllegalTransition, TransactionMetadata, TxnState
from pybroker.txn.txn_log import TransactionLog

T0 = 1_000_000


def coordinator(directory, ids=None) -> TransactionCoordinator:
    ids = ids or itertools.count(100)
    return TransactionCoordinator(TransactionLog(directory), lambda: next(ids), TxnSettings(max_timeout_ms=60_000))


def started(c, txn="t", partitions=(("a", 0),)):
    code, pid, epoch = c.init_producer_id(txn, 10_000, T0)
    assert code == 0
    assert c.add_partitions(txn, pid, epoch, partitions, T0) == 0
    return pid, epoch


def test_init_bumps_the_epoch_of_a_known_transactional_id(tmp_path):
    c = coordinator(tmp_path)
    assert tuple(c.init_producer_id("t", 10_000, T0)) == (0, 100, 0)
    assert tuple(c.init_producer_id("t", 10_000, T0)) == (0, 100, 1)
    assert c.states["t"].state is TxnState.EMPTY


def test_timeout_above_the_maximum_is_refused(tmp_path):
    c = coordinator(tmp_path)
    assert c.init_producer_id("t", 60_001, T0).error_code == errors.InvalidTransactionTimeout.code


def test_commit_prepares_queues_markers_and_completes(tmp_path):
    c = coordinator(tmp_path)
    pid, epoch = started(c, partitions=[("a", 0), ("b", 1)])
    assert c.end_txn("t", pid, epoch, True, T0 + 1) == 0
    assert c.states["t"].state is TxnState.PREPARE_COMMIT
    assert c.take_marker_jobs() == [MarkerJob("t", pid, epoch, True, frozenset({("a", 0), ("b", 1)}))]
    # While markers are written the transaction cannot move on.
    assert c.add_partitions("t", pid, epoch, [("a", 0)], T0 + 2) == errors.ConcurrentTransactions.code
    assert c.end_txn("t", pid, epoch, True, T0 + 2) == errors.ConcurrentTransactions.code
    assert c.end_txn("t", pid, epoch, False, T0 + 2) == errors.InvalidTxnState.code
    assert c.complete("t", pid, epoch, T0 + 3).state is TxnState.PREPARE_COMMIT
    assert c.states["t"].state is TxnState.COMPLETE_COMMIT and not c.states["t"].partitions
    assert c.end_txn("t", pid, epoch, True, T0 + 4) == 0  # a retry after the fact
    assert c.end_txn("t", pid, epoch, False, T0 + 4) == errors.InvalidTxnState.code


def test_errors_for_wrong_producer_and_state(tmp_path):
    c = coordinator(tmp_path)
    assert c.add_partitions("t", 1, 0, [("a", 0)], T0) == errors.InvalidProducerIdMapping.code
    pid, epoch = started(c)
    assert c.add_partitions("t", pid + 1, epoch, [("a", 0)], T0) == errors.InvalidProducerIdMapping.code
    assert c.add_partitions("t", pid, epoch - 1, [("a", 0)], T0) == errors.ProducerFenced.code
    assert c.end_txn("t", pid, epoch + 1, True, T0) == errors.ProducerFenced.code
    c.init_producer_id("u", 10_000, T0)
    assert c.end_txn("u", c.states["u"].producer_id, 0, True, T0) == errors.InvalidTxnState.code


def test_new_producer_fences_and_aborts_the_open_transaction(tmp_path):
    c = coordinator(tmp_path)
    pid, epoch = started(c)
    assert c.init_producer_id("t", 10_000, T0 + 1).error_code == errors.ConcurrentTransactions.code
    (job,) = c.take_marker_jobs()
    assert not job.commit and job.producer_epoch == epoch + 1
    # The zombie cannot commit any more.
    assert c.end_txn("t", pid, epoch, True, T0 + 2) == errors.ProducerFenced.code
    c.complete("t", pid, epoch + 1, T0 + 2)
    assert tuple(c.init_producer_id("t", 10_000, T0 + 3)) == (0, pid, epoch + 2)


def test_expired_transaction_is_aborted_with_a_fencing_epoch(tmp_path):
    c = coordinator(tmp_path)
    pid, epoch = started(c)
    assert c.next_deadline_ms() == T0 + 10_000
    assert c.abort_timed_out(T0 + 9_999) == []
    assert c.abort_timed_out(T0 + 10_000) == ["t"]
    assert c.states["t"].state is TxnState.PREPARE_ABORT and c.states["t"].producer_epoch == epoch + 1
    assert c.next_deadline_ms() is None


def test_offsets_wait_in_the_transaction(tmp_path):
    c = coordinator(tmp_path)
    pid, epoch = started(c)
    offsets = {("in", 0): (42, None, -1)}
    assert c.commit_offsets("t", pid, epoch, "g", offsets, T0) == errors.InvalidTxnState.code
    assert c.add_offsets("t", pid, epoch, "g", T0) == 0
    assert c.commit_offsets("t", pid, epoch, "g", offsets, T0) == 0
    assert c.pending_offsets("g") == {("in", 0)}
    c.end_txn("t", pid, epoch, True, T0)
    prepared = c.complete("t", pid, epoch, T0)
    assert prepared.pending_offsets == {"g": offsets}
    assert c.pending_offsets("g") == set()


def test_reopened_log_keeps_state_and_requeues_prepared_markers(tmp_path):
    c = coordinator(tmp_path)
    pid, epoch = started(c)
    c.end_txn("t", pid, epoch, False, T0)
    c.log.close()
    again = coordinator(tmp_path, itertools.count(500))
    assert again.states["t"].state is TxnState.PREPARE_ABORT
    assert again.recover() == 1
    assert again.take_marker_jobs()[0].partitions == frozenset({("a", 0)})


def test_torn_tail_of_the_log_is_dropped(tmp_path):
    c = coordinator(tmp_path)
    started(c)
    c.log.close()
    with open(c.log.path, "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")
    again = TransactionLog(tmp_path)
    assert again.dropped_bytes == 11 and again.states["t"].state is TxnState.ONGOING


def test_illegal_transition_is_refused():
    meta = TransactionMetadata("t", 1, 0, 1000)
    with pytest.raises(IllegalTransition):
        meta.prepare_end(True, T0)


def test_describe_and_list(tmp_path):
    c = coordinator(tmp_path)
    pid, _ = started(c, partitions=[("a", 1), ("a", 0)])
    (d,) = c.describe(["t"])
    assert d["transaction_state"] == "Ongoing" and d["topics"] == [{"topic": "a", "partitions": [0, 1]}]
    assert c.describe(["nope"])[0]["error_code"] == errors.TransactionalIdNotFound.code
    listed = c.list(["Ongoing", "Bogus"], [], -1, T0)
    assert listed["unknown_state_filters"] == ["Bogus"]
    assert listed["transaction_states"] == [{"transactional_id": "t", "producer_id": pid, "transaction_state": "Ongoing"}]
    assert c.list([], [], 5_000, T0 + 1_000)["transaction_states"] == []


def test_verify_only_reports_partitions_outside_the_transaction(tmp_path):
    c = coordinator(tmp_path)
    pid, epoch = started(c, partitions=[("a", 0)])
    assert c.verify_partitions("t", pid, epoch, [("a", 0), ("a", 1)]) == {
        ("a", 0): 0, ("a", 1): errors.TransactionAbortable.code}
    assert c.verify_partitions("t", pid, epoch + 1, [("a", 0)]) == {("a", 0): errors.ProducerFenced.code}
    assert c.states["t"].partitions == frozenset({("a", 0)})  # verifying adds nothing


def test_retried_init_with_the_previous_epoch_gets_the_same_answer(tmp_path):
    c = coordinator(tmp_path)
    _, pid, epoch = c.init_producer_id("t", 10_000, T0)
    assert tuple(c.init_producer_id("t", 10_000, T0, pid, epoch)) == (0, pid, epoch + 1)
    assert tuple(c.init_producer_id("t", 10_000, T0, pid, epoch)) == (0, pid, epoch + 1)  # KIP-360 retry
    assert c.init_producer_id("t", 10_000, T0, pid, epoch - 5).error_code == errors.ProducerFenced.code
    assert c.init_producer_id("t", 10_000, T0, pid + 1, epoch + 1).error_code == errors.ProducerFenced.code
