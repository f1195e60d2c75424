import pytest

from pybroker.broker.producer_state import BatchMetadata, ProducerStateManager, last_sequence, INT32_MAX
from pybroker.errors import InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequenceNumber


def _append(state, pid, epoch, first, last, offset):
    assert state.check(pid, epoch, first, last) is None
    state.update(pid, epoch, BatchMetadata(first, last, offset, offset + last - first, 0))


def test_new_producer_may_start_at_any_sequence():
    state = ProducerStateManager()
    assert state.check(7, 0, 42, 50) is None


def test_retry_of_a_recent_batch_returns_its_first_offset():
    state = ProducerStateManager()
    _append(state, 1, 0, 0, 9, 100)
    _append(state, 1, 0, 10, 19, 110)
    dup = state.check(1, 0, 0, 9)
    assert dup is not None and dup.first_offset == 100
    assert state.check(1, 0, 10, 19).first_offset == 110


def test_gap_in_sequence_is_out_of_order():
    state = ProducerStateManager()
    _append(state, 1, 0, 0, 9, 0)
    with pytest.raises(OutOfOrderSequenceNumber):
        state.check(1, 0, 11, 12)


def test_older_epoch_is_fenced_and_new_epoch_must_start_at_zero():
    state = ProducerStateManager()
    _append(state, 1, 3, 0, 0, 0)
    with pytest.raises(InvalidProducerEpoch):
        state.check(1, 2, 1, 1)
    with pytest.raises(OutOfOrderSequenceNumber):
        state.check(1, 4, 5, 5)
    assert state.check(1, 4, 0, 3) is None


def test_only_the_last_five_batches_are_remembered():
    state = ProducerStateManager()
    for i in range(7):
        _append(state, 1, 0, i, i, i)
    assert state.check(1, 0, 6, 6) is not None
    assert state.check(1, 0, 2, 2) is not None
    with pytest.raises(OutOfOrderSequenceNumber):
        state.check(1, 0, 1, 1)


def test_sequence_wraps_at_int32_max():
    assert last_sequence(INT32_MAX, 0) == INT32_MAX
    assert last_sequence(INT32_MAX, 1) == 0
    assert last_sequence(INT32_MAX - 1, 3) == 1
    state = ProducerStateManager()
    _append(state, 1, 0, INT32_MAX - 1, INT32_MAX, 0)
    assert state.check(1, 0, 0, 4) is None


def test_truncation_forgets_batches_above_the_cut():
    state = ProducerStateManager()
    _append(state, 1, 0, 0, 9, 0)
    _append(state, 1, 0, 10, 19, 10)
    state.truncate_after(10)
    assert state.check(1, 0, 10, 19) is None
    state.truncate_after(0)
    assert state.producers == {}


def test_json_round_trip_keeps_epochs_and_the_last_five_batches():
    state = ProducerStateManager()
    for i in range(7):
        _append(state, 1, 3, i, i, 100 + i)
    _append(state, 2, 0, 0, 9, 200)
    again = ProducerStateManager.from_json(state.to_json())
    assert again.to_json() == state.to_json()
    assert again.check(1, 3, 6, 6).first_offset == 106
    with pytest.raises(InvalidProducerEpoch):
        again.check(1, 2, 7, 7)


def test_from_json_drops_batches_below_the_log_start():
    state = ProducerStateManager()
    _append(state, 1, 0, 0, 0, 10)
    _append(state, 1, 0, 1, 1, 20)
    _append(state, 2, 0, 0, 0, 5)
    again = ProducerStateManager.from_json(state.to_json(), log_start_offset=15)
    assert again.to_json() == [[1, 0, [[1, 1, 20, 20, 0]], -1, -1, 0]]


def test_snapshot_rows_without_transaction_fields_still_load():
    again = ProducerStateManager.from_json([[1, 0, [[1, 1, 20, 20, 0]]]])
    assert again.check(1, 0, 2, 2) is None and not again.ongoing


def _append_txn(state, pid, epoch, first, last, offset):
    assert state.check(pid, epoch, first, last, transactional=True) is None
    state.update(pid, epoch, BatchMetadata(first, last, offset, offset + last - first, 0), transactional=True)


def test_first_transactional_batch_opens_a_transaction_at_its_offset():
    state = ProducerStateManager()
    _append_txn(state, 1, 0, 0, 4, 100)
    _append_txn(state, 1, 0, 5, 9, 105)
    assert state.first_unstable_offset() == 100
    assert state.producers[1].current_txn_first_offset == 100


def test_marker_closes_the_transaction_but_it_stays_unstable_until_replicated():
    state = ProducerStateManager()
    _append_txn(state, 1, 0, 0, 4, 100)
    _append_txn(state, 2, 0, 0, 0, 103)
    assert state.complete_txn(1, 0, 0, 110) == 100
    assert state.first_unstable_offset() == 100
    state.on_high_watermark(111)
    assert state.first_unstable_offset() == 103
    state.complete_txn(2, 0, 0, 111)
    state.on_high_watermark(112)
    assert state.first_unstable_offset() is None


def test_marker_without_data_here_records_its_own_offset():
    state = ProducerStateManager()
    assert state.complete_txn(9, 3, 0, 42) == 42


def test_non_transactional_batch_inside_an_open_transaction_is_invalid():
    state = ProducerStateManager()
    _append_txn(state, 1, 0, 0, 0, 100)
    with pytest.raises(InvalidTxnState):
        state.check(1, 0, 1, 1, transactional=False)


def test_marker_older_than_the_producer_epoch_is_fenced():
    state = ProducerStateManager()
    _append_txn(state, 1, 5, 0, 0, 100)
    with pytest.raises(InvalidProducerEpoch):
        state.complete_txn(1, 4, 0, 101)


def test_open_transaction_survives_json_round_trip_and_truncation():
    state = ProducerStateManager()
    _append_txn(state, 1, 0, 0, 0, 100)
    state.complete_txn(1, 0, 0, 101)
    _append_txn(state, 1, 0, 1, 1, 102)
    again = ProducerStateManager.from_json(state.to_json(), 0, state.unreplicated)
    assert again.ongoing == {1: 102} and again.unreplicated == [(100, 101)]
    again.truncate_after(102)
    assert again.ongoing == {} and again.first_unstable_offset() == 100
