"""What each partition costs a broker that holds thousands: a new log writes no checkpoint
it does not need, an unchanged one is not rewritten, and its indexes hold no file
descriptor (CPython's mmap keeps one per map), so an idle log holds one: its .log."""
from __future__ import annotations

import os

from log_helpers import append, make_batch, offsets, read_all

from pybroker.config import TopicConfig
from pybroker.log import Log
from pybroker.log import checkpoint


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_new_log_writes_no_checkpoint_until_it_holds_data(tmp_path):
    log = Log.open(str(tmp_path / "t-0"), TopicConfig())
    log.close()
    assert sorted(os.listdir(tmp_path / "t-0")) == ["00000000000000000000.index", "00000000000000000000.log",
                                                     "00000000000000000000.timeindex"]
    log = Log.open(str(tmp_path / "t-0"), TopicConfig())
    append(log, make_batch(3))
    log.close()
    assert checkpoint.read_offset(str(tmp_path / "t-0"), checkpoint.RECOVERY_POINT) == 3


def test_an_unchanged_checkpoint_is_not_rewritten(tmp_path):
    directory = str(tmp_path / "t-0")
    log = Log.open(directory, TopicConfig())
    append(log, make_batch(3))
    log.close()
    path = os.path.join(directory, checkpoint.RECOVERY_POINT)
    os.utime(path, (1, 1))
    log = Log.open(directory, TopicConfig(), clean_shutdown=True)
    log.flush()
    log.close()
    assert os.stat(path).st_mtime == 1


def test_idle_logs_hold_one_descriptor_each_and_indexes_still_serve_reads(tmp_path):
    before = open_fds()
    logs = [Log.open(str(tmp_path / f"t-{i}"), TopicConfig()) for i in range(40)]
    assert open_fds() - before <= 40
    config = TopicConfig.parse({"index.interval.bytes": "100"})
    log = Log.open(str(tmp_path / "indexed-0"), config)
    batches = [make_batch(2, 200) for _ in range(20)]
    for batch in batches:
        append(log, batch)
    assert log.active_segment.index.entries > 5
    assert offsets(read_all(log)) == list(range(40))
    assert offsets(log.read_bytes(21, 1 << 20))[0] == 20  # found through the index
    log.close()
    for plog in logs:
        plog.close()
    assert open_fds() == before
