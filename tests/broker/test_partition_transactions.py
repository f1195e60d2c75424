"""Transactions in one partition: the last stable offset, markers, the aborted-transaction
index, and all of it rebuilt when the partition is reopened after a crash or a restart."""
from __future__ import annotations

import os

import pytest

from pybroker.broker.partition import Partition
from pybroker.config import TopicConfig
from pybroker.errors import InvalidProducerEpoch, InvalidRecord, InvalidTxnState
from pybroker.log.log import Log
from pybroker.log.txn_index import ENTRY, AbortedTxn
from pybroker.record import control
from pybroker.record.batch import build_batch, iter_batches

CONFIG = TopicConfig.parse({"segment.bytes": "2000"})


def batch(pid: int, seq: int, epoch: int = 0, transactional: bool = True, n: int = 1) -> bytearray:
    return bytearray(build_batch([(None, b"v" * 40, None, None)] * n, producer_id=pid,
                                 producer_epoch=epoch, base_sequence=seq, transactional=transactional))


def open_partition(directory) -> Partition:
    return Partition("t", 0, Log.open(str(directory), CONFIG), node_id=0)


def produce(p: Partition, pid: int, seq: int, **kw) -> int:
    return p.append(memoryview(batch(pid, seq, **kw)), acks=1).base_offset


def test_open_transaction_holds_the_last_stable_offset_at_its_first_offset(tmp_path):
    p = open_partition(tmp_path)
    produce(p, 9, 0, transactional=False)
    first = produce(p, 1, 0)
    produce(p, 1, 1)
    produce(p, 9, 1, transactional=False)
    assert p.high_watermark == 4 and p.last_stable_offset == first == 1
    result, _ = p.append_marker(1, 0, commit=True)
    assert result.base_offset == 4
    assert p.last_stable_offset == p.high_watermark == 5


def test_abort_marker_is_indexed_and_collected_for_the_fetched_range(tmp_path):
    p = open_partition(tmp_path)
    produce(p, 1, 0)
    produce(p, 2, 0)
    p.append_marker(1, 0, commit=False)
    p.append_marker(2, 0, commit=True)
    assert p.log.collect_aborted_txns(0, p.log_end_offset, p.last_stable_offset) == [AbortedTxn(1, 0, 2, 1)]
    # A fetch from after the marker does not need it.
    assert p.log.collect_aborted_txns(3, p.log_end_offset, p.last_stable_offset) == []
    names = [n for n in os.listdir(tmp_path) if n.endswith(".txnindex")]
    assert [os.path.getsize(tmp_path / n) for n in names] == [ENTRY.size]


def test_marker_batches_are_control_batches_of_the_producer(tmp_path):
    p = open_partition(tmp_path)
    produce(p, 1, 0)
    p.append_marker(1, 0, commit=False, coordinator_epoch=3)
    data = p.log.read_bytes(1, 1 << 20)
    (header, _), = list(iter_batches(data))
    assert header.is_control and header.is_transactional and header.producer_id == 1
    assert control.read_marker(data, header) == (control.ABORT, 3)
    assert p.producers.producers[1].coordinator_epoch == 3


def test_clients_may_not_produce_control_batches(tmp_path):
    p = open_partition(tmp_path)
    with pytest.raises(InvalidRecord):
        p.append(memoryview(control.build_marker(1, 0, True)), acks=1)


def test_stale_marker_and_mixed_batches_are_refused(tmp_path):
    p = open_partition(tmp_path)
    produce(p, 1, 0, epoch=2)
    with pytest.raises(InvalidTxnState):
        produce(p, 1, 1, epoch=2, transactional=False)
    with pytest.raises(InvalidProducerEpoch):
        p.append_marker(1, 1, commit=False)
    # A newer epoch (the coordinator fenced the producer) closes the transaction.
    p.append_marker(1, 3, commit=False)
    with pytest.raises(InvalidProducerEpoch):
        produce(p, 1, 1, epoch=2)


@pytest.mark.parametrize("clean", [True, False], ids=["clean-shutdown", "crash"])
def test_reopened_partition_rebuilds_open_transactions_and_the_index(tmp_path, clean):
    p = open_partition(tmp_path)
    for seq in range(20):  # several segments, so snapshots exist
        produce(p, 7, seq, transactional=False)
    produce(p, 1, 0)
    p.append_marker(1, 0, commit=False)
    open_first = produce(p, 2, 0)
    produce(p, 2, 1)
    assert len(p.log.segments) > 1
    if clean:
        p.close()
    else:
        p.log.flush()
        # The index entry of the abort is lost with the crash: the replay writes it back.
        for segment in p.log.segments:
            segment.txn_index.close_and_delete()
    again = open_partition(tmp_path)
    assert again.last_stable_offset == open_first
    assert [t.producer_id for t in again.log.collect_aborted_txns(0, again.log_end_offset,
                                                                   again.last_stable_offset)] == [1]
    again.append_marker(2, 0, commit=True)
    assert again.last_stable_offset == again.log_end_offset


def test_truncating_away_a_marker_reopens_its_transaction(tmp_path):
    p = open_partition(tmp_path)
    first = produce(p, 1, 0)
    result, _ = p.append_marker(1, 0, commit=False)
    assert p.last_stable_offset == p.log_end_offset
    p.truncate_to(result.base_offset)
    assert p.last_stable_offset == first
    assert p.log.collect_aborted_txns(0, p.log_end_offset, p.log_end_offset) == []
