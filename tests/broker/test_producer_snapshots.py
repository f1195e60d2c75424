"""Producer-state snapshots: a partition reopened after a restart still deduplicates a
producer's retry, also when that producer's last batch lies in an older segment."""
from __future__ import annotations

import os

import pytest

from pybroker.broker import producer_snapshot
from pybroker.broker.partition import Partition
from pybroker.config import TopicConfig
from pybroker.log.log import Log
from pybroker.record.batch import build_batch

# Small segments: a few batches each, so rolls happen.
CONFIG = TopicConfig.parse({"segment.bytes": "400"})


def batch(pid: int, seq: int, value: bytes = b"v" * 40) -> bytearray:
    return bytearray(build_batch([(None, value, None, 1_700_000_000_000)], producer_id=pid,
                                 producer_epoch=0, base_sequence=seq))


def open_partition(directory) -> Partition:
    return Partition("t", 0, Log.open(str(directory), CONFIG), node_id=0)


def produce(p: Partition, pid: int, seq: int):
    return p.append(memoryview(batch(pid, seq)), acks=1)


def fill(p: Partition) -> int:
    """Producer 1 writes once; producer 2 then fills segments until several rolled.
    Returns producer 1's offset."""
    first = produce(p, 1, 0).base_offset
    for seq in range(12):
        produce(p, 2, seq)
    assert len(p.log.segments) >= 3 and p.log.active_segment.base_offset > first
    return first


@pytest.mark.parametrize("clean", [True, False], ids=["clean-shutdown", "crash"])
def test_retry_of_a_batch_in_an_older_segment_is_deduplicated_after_a_restart(tmp_path, clean):
    p = open_partition(tmp_path)
    first = fill(p)
    end = p.log_end_offset
    if clean:
        p.close()
    else:
        p.log.flush()  # the process dies: no close, no shutdown snapshot, only roll snapshots
    again = open_partition(tmp_path)
    retry = produce(again, 1, 0)
    assert retry.base_offset == first and again.log_end_offset == end  # not appended twice
    assert produce(again, 1, 1).base_offset == end  # and the producer goes on
    again.close()


def test_without_snapshots_only_the_active_segment_is_known(tmp_path):
    # What the snapshots fix: a log from before they existed.
    p = open_partition(tmp_path)
    fill(p)
    end = p.log_end_offset
    p.close()
    for offset in producer_snapshot.offsets(str(tmp_path)):
        os.remove(producer_snapshot.path_of(str(tmp_path), offset))
    again = open_partition(tmp_path)
    assert produce(again, 1, 0).base_offset == end  # unknown producer: appended again
    again.close()


def test_clean_shutdown_snapshot_is_at_the_log_end_and_restores_the_table(tmp_path):
    p = open_partition(tmp_path)
    fill(p)
    table = p.producers.to_json()
    p.close()
    assert producer_snapshot.offsets(str(tmp_path))[-1] == p.log_end_offset
    assert len(producer_snapshot.offsets(str(tmp_path))) == producer_snapshot.KEEP
    again = open_partition(tmp_path)
    assert again.producers.to_json() == table
    again.close()


def test_snapshot_beyond_the_log_end_or_corrupt_is_ignored(tmp_path):
    p = open_partition(tmp_path)
    first = fill(p)
    p.close()
    directory = str(tmp_path)
    newest = producer_snapshot.offsets(directory)[-1]
    with open(producer_snapshot.path_of(directory, newest), "r+b") as f:
        f.seek(12)
        f.write(b"#")  # fails its CRC
    ghost = producer_snapshot.path_of(directory, newest + 1000)  # describes records the log lost
    with open(ghost, "wb") as f:
        f.write(b"\x00" * 16)
    again = open_partition(tmp_path)
    assert produce(again, 1, 0).base_offset == first  # the older (roll) snapshot served
    again.close()


def test_truncation_removes_snapshots_above_the_cut(tmp_path):
    p = open_partition(tmp_path)
    fill(p)
    snapshots = producer_snapshot.offsets(str(tmp_path))
    p.truncate_to(snapshots[0] - 1)
    assert all(o <= p.log_end_offset for o in producer_snapshot.offsets(str(tmp_path)))
    p.close()


def test_a_failed_snapshot_write_does_not_fail_the_append(tmp_path, monkeypatch, caplog):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(producer_snapshot, "write_atomically", disk_full)
    p = open_partition(tmp_path)
    fill(p)  # rolls try to snapshot
    p.close()
    assert "producer-state snapshot not written" in caplog.text
