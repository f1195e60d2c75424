"""The leader-epoch cache: assignment, OffsetForLeaderEpoch lookups, truncation, and its
checkpoint file in Kafka's format."""
import os

import pytest

from pybroker.config import TopicConfig
from pybroker.log.leader_epoch import (
    CHECKPOINT_FILE,
    EpochEntry,
    LeaderEpochCache,
    parse_checkpoint,
)
from pybroker.log.log import Log
from pybroker.record.batch import build_batch, parse_batches


def _cache(tmp_path, *pairs):
    cache = LeaderEpochCache(str(tmp_path))
    for epoch, start in pairs:
        cache.assign(epoch, start)
    return cache


def test_assign_appends_only_new_epochs(tmp_path):
    cache = _cache(tmp_path, (0, 0), (0, 5), (1, 10), (1, 12))
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(1, 10)]
    assert cache.latest_epoch == 1


def test_assign_removes_contradicted_entries(tmp_path):
    cache = _cache(tmp_path, (0, 0), (2, 10), (3, 20))
    cache.assign(2, 15)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(2, 15)]
    cache.assign(4, 5)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(4, 5)]


def test_negative_epochs_are_ignored(tmp_path):
    cache = _cache(tmp_path, (-1, 0))
    assert cache.entries == []


def test_end_offset_for_latest_epoch_is_log_end(tmp_path):
    cache = _cache(tmp_path, (0, 0), (2, 10))
    assert cache.end_offset_for(2, 42) == (2, 42)


def test_end_offset_for_older_epoch_is_start_of_next(tmp_path):
    cache = _cache(tmp_path, (0, 0), (2, 10), (5, 30))
    assert cache.end_offset_for(0, 42) == (0, 10)
    # Epoch 1 never led here: the answer is the largest epoch below it.
    assert cache.end_offset_for(1, 42) == (0, 10)
    assert cache.end_offset_for(3, 42) == (2, 30)


def test_end_offset_for_unknown_epochs_is_undefined(tmp_path):
    cache = _cache(tmp_path, (3, 10), (4, 20))
    assert cache.end_offset_for(9, 42) == (-1, -1)
    assert cache.end_offset_for(-1, 42) == (-1, -1)
    assert cache.end_offset_for(1, 42) == (1, 10)
    assert LeaderEpochCache(None).end_offset_for(0, 5) == (-1, -1)


def test_truncate_from_end_drops_epochs_starting_at_or_after(tmp_path):
    cache = _cache(tmp_path, (0, 0), (1, 10), (2, 20))
    cache.truncate_from_end(20)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(1, 10)]
    cache.truncate_from_end(15)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(1, 10)]
    cache.truncate_from_end(3)
    assert cache.entries == [EpochEntry(0, 0)]


def test_truncate_from_start_moves_covering_epoch_up(tmp_path):
    cache = _cache(tmp_path, (0, 0), (1, 10), (2, 20))
    cache.truncate_from_start(15)
    assert cache.entries == [EpochEntry(1, 15), EpochEntry(2, 20)]
    cache.truncate_from_start(20)
    assert cache.entries == [EpochEntry(2, 20)]


def test_checkpoint_round_trips_in_kafka_format(tmp_path):
    _cache(tmp_path, (0, 0), (3, 1500))
    text = (tmp_path / CHECKPOINT_FILE).read_text()
    assert text == "0\n2\n0 0\n3 1500\n"
    loaded = LeaderEpochCache.load(str(tmp_path))
    assert loaded.entries == [EpochEntry(0, 0), EpochEntry(3, 1500)]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


@pytest.mark.parametrize("text", [
    "", "1\n0\n", "0\n3\n0 0\n", "0\n1\n0\n", "0\n2\n3 10\n1 20\n", "0\n1\n-1 0\n",
    "0\n99999999999\n", "0\n1\n0 0\n5 5\n", "x\n0\n",
])
def test_bad_checkpoint_is_rejected(text):
    with pytest.raises(ValueError):
        parse_checkpoint(text)


def test_unreadable_checkpoint_loads_as_missing(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\xff\xfe garbage")
    assert LeaderEpochCache.load(str(tmp_path)) is None
    assert LeaderEpochCache.load(str(tmp_path / "absent")) is None


def test_rebuild_from_batch_epochs(tmp_path):
    cache = LeaderEpochCache.rebuild(str(tmp_path), [(0, 0), (0, 3), (2, 7), (2, 9), (5, 12)])
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(2, 7), EpochEntry(5, 12)]
    assert LeaderEpochCache.load(str(tmp_path)).entries == cache.entries


def _append(plog, epoch, n=2):
    buf = bytearray(build_batch([(None, b"v%d" % i, [], None) for i in range(n)]))
    plog.append(buf, parse_batches(buf, 1 << 20), epoch)


def test_log_truncation_and_retention_move_attached_cache(tmp_path):
    plog = Log.open(str(tmp_path / "t-0"), TopicConfig())
    cache = LeaderEpochCache(plog.directory)
    plog.epoch_cache = cache
    cache.assign(0, 0)
    _append(plog, 0)
    cache.assign(1, plog.log_end_offset)
    _append(plog, 1)
    cache.assign(2, plog.log_end_offset)
    _append(plog, 2)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(1, 2), EpochEntry(2, 4)]
    plog.truncate_to(4)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(1, 2)]
    plog.truncate_fully_and_start_at(10)
    assert cache.entries == []
    assert plog.log_start_offset == plog.log_end_offset == 10
    plog.close()


def test_a_new_partitions_cache_writes_no_file_until_shutdown(tmp_path):
    """Assignments that follow the batches need no file (a rebuild yields them); a clean
    shutdown leaves one so the next start need not rebuild it."""
    from pybroker.log.leader_epoch import CHECKPOINT_FILE

    cache = LeaderEpochCache.rebuild(str(tmp_path), [])
    assert cache.assign_at_log_end(0, 0)
    cache.write_pending()
    assert cache.assign(1, 10)
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    cache.save_if_absent(log_end_offset=20)
    assert LeaderEpochCache.load(str(tmp_path)).entries == [(0, 0), (1, 10)]
    cache.truncate_from_end(5)  # from now on every change is written
    assert LeaderEpochCache.load(str(tmp_path)).entries == [(0, 0)]


def test_an_empty_partitions_cache_writes_no_file_at_shutdown(tmp_path):
    """Epochs that start at the log end of a log holding nothing would be dropped (and the
    file rewritten) by the next load: the shutdown writes no file, the load rebuilds an
    empty cache for free."""
    from pybroker.log.leader_epoch import CHECKPOINT_FILE

    cache = LeaderEpochCache.rebuild(str(tmp_path), [])
    assert cache.assign_at_log_end(3, 0)
    cache.save_if_absent(log_end_offset=0)
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    assert LeaderEpochCache.load(str(tmp_path)) is None


def test_truncating_at_the_log_end_drops_an_epoch_that_wrote_nothing(tmp_path):
    """A broker elected leader that appended nothing holds an epoch starting at its log
    end; truncating to the log end (a no-op for the log) must still drop it, or a follower
    keeps asking the leader about that epoch forever."""
    plog = Log.open(str(tmp_path / "t-0"), TopicConfig())
    cache = LeaderEpochCache(plog.directory)
    plog.epoch_cache = cache
    cache.assign(0, 0)
    _append(plog, 0)
    cache.assign(2, plog.log_end_offset)  # leader of epoch 2 from offset 2, no appends
    assert plog.truncate_to(plog.log_end_offset) == 0
    assert cache.entries == [EpochEntry(0, 0)]
    assert plog.truncate_to(plog.log_end_offset + 5) == 0  # past the end: the same
    assert cache.entries == [EpochEntry(0, 0)]
    assert LeaderEpochCache.load(plog.directory).entries == [EpochEntry(0, 0)]
    assert plog.log_end_offset == 2
    plog.close()
