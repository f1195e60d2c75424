"""Log.increment_log_start_offset, the log half of DeleteRecords: the start moves up
(never down), segments wholly below it go, and the new start survives a reopen."""
import os

import pytest

from log_helpers import NOW, append, make_batch, offsets, read_all
from pybroker import errors
from pybroker.config import TopicConfig
from pybroker.log import Log, checkpoint


def _filled(log_dir, config, batches: int = 60) -> Log:
    log = Log.open(log_dir, config)
    for _ in range(batches):
        append(log, make_batch(3, 50))
    assert len(log.segments) > 3
    return log


def _segment_files(log_dir) -> list[str]:
    return sorted(n for n in os.listdir(log_dir) if n.endswith(".log"))


def test_moves_the_start_and_deletes_segments_wholly_below(log_dir, config):
    log = _filled(log_dir, config)
    bases = [s.base_offset for s in log.segments]
    target = bases[2] + 1  # inside the third segment
    assert log.increment_log_start_offset(target) == 2
    assert log.log_start_offset == target
    assert [s.base_offset for s in log.segments] == bases[2:]
    assert len(_segment_files(log_dir)) == len(bases) - 2
    assert log.log_end_offset == 180
    with pytest.raises(errors.OffsetOutOfRange):
        log.read(target - 1, 1 << 20)
    # The first batch returned may start below the start (whole batches), as in Kafka.
    assert [o for o in offsets(read_all(log)) if o >= target] == list(range(target, 180))
    log.close()


def test_start_inside_the_first_segment_deletes_nothing(log_dir, config):
    log = _filled(log_dir, config)
    assert log.increment_log_start_offset(4) == 0
    assert log.log_start_offset == 4
    assert log.segments[0].base_offset == 0
    log.close()


def test_is_never_lowered(log_dir, config):
    log = _filled(log_dir, config)
    log.increment_log_start_offset(100)
    segments = len(log.segments)
    assert log.increment_log_start_offset(50) == 0
    assert log.log_start_offset == 100
    assert len(log.segments) == segments
    assert checkpoint.read_offset(log_dir, checkpoint.LOG_START_OFFSET) == 100
    log.close()


def test_past_the_log_end_is_out_of_range(log_dir, config):
    log = Log.open(log_dir, config)
    append(log, make_batch(3), make_batch(3))
    with pytest.raises(errors.OffsetOutOfRange):
        log.increment_log_start_offset(7)
    assert log.log_start_offset == 0
    log.close()


def test_up_to_the_log_end_keeps_the_active_segment(log_dir, config):
    log = _filled(log_dir, config)
    log.increment_log_start_offset(180)
    assert log.log_start_offset == log.log_end_offset == 180
    assert len(log.segments) == 1
    assert log.read(180, 1 << 20) is None
    assert append(log, make_batch(2)).first_offset == 180
    assert offsets(read_all(log)) == [180, 181]
    log.close()


@pytest.mark.parametrize("clean", [True, False])
def test_persists_across_reopen(log_dir, config, clean):
    log = _filled(log_dir, config)
    target = log.segments[3].base_offset + 2
    log.increment_log_start_offset(target)
    files = _segment_files(log_dir)
    if clean:
        log.close()
    else:
        log.flush()  # a crash after the flush: the files stay open, nothing more is written
    reopened = Log.open(log_dir, config, clean_shutdown=clean)
    assert reopened.log_start_offset == target
    assert _segment_files(log_dir) == files
    assert reopened.log_end_offset == 180
    with pytest.raises(errors.OffsetOutOfRange):
        reopened.read(target - 1, 1 << 20)
    reopened.close()


def test_retention_after_delete_records_never_lowers_the_start(log_dir):
    config = TopicConfig(segment_bytes=1024, retention_ms=60_000)
    log = Log.open(log_dir, config)
    for i in range(30):
        append(log, make_batch(3, 50, timestamp=NOW - 120_000 if i < 10 else NOW))
    bases = [s.base_offset for s in log.segments]
    target = bases[-2] + 1
    log.increment_log_start_offset(target)
    log.apply_retention(NOW)
    assert log.log_start_offset == target
    log.close()


def test_offset_for_timestamp_skips_records_below_the_start(log_dir, config):
    log = Log.open(log_dir, config)
    append(log, make_batch(5, timestamp=NOW))
    log.increment_log_start_offset(3)
    assert log.offset_for_timestamp(NOW) == (3, NOW)
    log.close()
