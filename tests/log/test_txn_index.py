"""The aborted-transaction index (.txnindex): Kafka's 34-byte entries, lookups by fetch
range, truncation, and a torn tail dropped on load."""
from __future__ import annotations

from pybroker.log.txn_index import ENTRY, AbortedTxn, TransactionIndex


def test_entries_survive_reopening_in_kafkas_format(tmp_path):
    path = str(tmp_path / "00000000000000000000.txnindex")
    index = TransactionIndex(path)
    assert index.append(AbortedTxn(7, 10, 20, 21))
    assert index.append(AbortedTxn(8, 15, 30, 31))
    assert not index.append(AbortedTxn(7, 10, 20, 21))  # a replayed marker is skipped
    index.close()
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == 2 * ENTRY.size == 68
    assert ENTRY.unpack_from(data, 0) == (0, 7, 10, 20, 21)
    assert TransactionIndex(path).entries == [AbortedTxn(7, 10, 20, 21), AbortedTxn(8, 15, 30, 31)]


def test_collect_returns_transactions_overlapping_the_range(tmp_path):
    index = TransactionIndex(str(tmp_path / "x.txnindex"))
    index.append(AbortedTxn(1, 0, 5, 6))
    index.append(AbortedTxn(2, 8, 12, 13))
    index.append(AbortedTxn(3, 20, 25, 26))
    assert [t.producer_id for t in index.collect(6, 20)] == [2]
    assert [t.producer_id for t in index.collect(0, 100)] == [1, 2, 3]
    assert [t.producer_id for t in index.collect(5, 9)] == [1, 2]


def test_truncate_and_torn_tail(tmp_path):
    path = str(tmp_path / "x.txnindex")
    index = TransactionIndex(path)
    for n in range(3):
        index.append(AbortedTxn(n, n * 10, n * 10 + 5, n * 10 + 6))
    index.truncate_to(16)  # entry 2 (marker 25) goes, entry 1 (marker 15) stays
    assert [t.producer_id for t in index.entries] == [0, 1]
    index.close()
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x01")  # a torn entry
    again = TransactionIndex(path)
    assert [t.producer_id for t in again.entries] == [0, 1]
    with open(path, "rb") as f:
        assert len(f.read()) == 2 * ENTRY.size
