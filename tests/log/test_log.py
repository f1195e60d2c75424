import os

import pytest

from log_helpers import NOW, append, make_batch, offsets, read_all
from pybroker import errors
from pybroker.config import TopicConfig
from pybroker.log import Log
from pybroker.record import batch as rb


def test_append_assigns_consecutive_offsets_and_reads_back(log_dir, config):
    log = Log.open(log_dir, config)
    info = append(log, make_batch(3), make_batch(2))
    assert (info.first_offset, info.last_offset, info.log_append_time) == (0, 4, -1)
    assert append(log, make_batch(1)).first_offset == 5
    assert log.log_end_offset == 6
    assert offsets(log.read_bytes(0, 1 << 20)) == list(range(6))
    log.close()


def test_append_stamps_leader_epoch(log_dir, config):
    log = Log.open(log_dir, config)
    buf = make_batch(2)
    log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20), leader_epoch=7)
    [header] = rb.parse_batches(log.read_bytes(0, 1 << 20), 1 << 20)
    assert header.partition_leader_epoch == 7
    log.close()


def test_log_append_time_topic_rewrites_timestamps(log_dir):
    log = Log.open(log_dir, TopicConfig(message_timestamp_type="LogAppendTime"))
    info = append(log, make_batch(2, timestamp=5), now_ms=NOW)
    assert info.log_append_time == NOW
    assert [r.timestamp for r in rb.iter_records(log.read_bytes(0, 1 << 20))] == [NOW, NOW]
    log.close()


def test_rolls_on_segment_bytes_and_reads_across_segments(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(60):
        append(log, make_batch(3, 50))
    assert len(log.segments) > 3
    assert all(s.size <= config.segment_bytes for s in log.segments)
    assert offsets(read_all(log)) == list(range(180))
    assert offsets(log.read_bytes(0, 1000))[-1] < 60  # one read never crosses max_bytes
    log.close()


def test_rolls_on_segment_ms_by_first_batch_timestamp(log_dir):
    log = Log.open(log_dir, TopicConfig(segment_ms=1000))
    append(log, make_batch(1, timestamp=NOW))
    append(log, make_batch(1, timestamp=NOW + 500))
    assert len(log.segments) == 1
    append(log, make_batch(1, timestamp=NOW + 1500))
    assert [s.base_offset for s in log.segments] == [0, 2]
    log.close()


def test_index_is_sparse_and_lookups_land_on_the_containing_batch(log_dir, config):
    log = Log.open(log_dir, TopicConfig(index_interval_bytes=300))
    for _ in range(40):
        append(log, make_batch(4, 30))
    segment = log.active_segment
    assert 0 < segment.index.entries < 40
    for target in (0, 1, 37, 38, 99, 159):
        indexed_offset, position = segment.index.lookup(target)
        assert indexed_offset <= target
        header = segment.translate_offset(target)
        assert header.base_offset <= target <= header.last_offset
        assert header.position >= position
        assert offsets(log.read_bytes(target, 1))[0] == header.base_offset
    log.close()


def test_read_honours_max_bytes_min_one_and_max_offset(log_dir, config):
    log = Log.open(log_dir, config)
    batch_size = len(make_batch(2))
    for _ in range(5):
        append(log, make_batch(2))
    piece = log.read(0, batch_size * 2 + 10)
    assert (piece.position, piece.length, piece.first_offset, piece.last_offset) == (0, batch_size * 2, 0, 3)
    piece.release()
    assert len(log.read_bytes(0, 1)) == batch_size  # min_one: one whole batch even if larger
    assert log.read(0, 1, min_one=False) is None
    assert offsets(log.read_bytes(0, 1 << 20, max_offset=4)) == [0, 1, 2, 3]
    assert log.read(4, 1 << 20, max_offset=4) is None
    assert log.read(10, 1 << 20) is None  # at the log end offset
    assert offsets(log.read_bytes(3, 1 << 20)) == list(range(2, 10))  # from the containing batch
    log.close()


def test_batch_end_is_the_last_offset_of_the_batch_holding_an_offset(log_dir, config):
    log = Log.open(log_dir, TopicConfig(segment_bytes=400))
    for _ in range(20):
        append(log, make_batch(4, 30))
    assert len(log.segments) > 2
    assert [log.batch_end(o) for o in (0, 3, 4, 42, 79)] == [3, 3, 7, 43, 79]
    assert log.batch_end(80) is None and log.batch_end(-1) is None
    log.increment_log_start_offset(10)
    assert log.batch_end(9) is None and log.batch_end(10) == 11
    log.close()


def test_read_outside_log_is_offset_out_of_range(log_dir, config):
    log = Log.open(log_dir, config)
    append(log, make_batch(2))
    with pytest.raises(errors.OffsetOutOfRange):
        log.read(3, 100)
    with pytest.raises(errors.OffsetOutOfRange):
        log.read(-1, 100)
    log.close()


def test_file_slice_stays_readable_after_retention_deletes_segment(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(40):
        append(log, make_batch(3, 50))
    piece = log.read(0, 1 << 20)
    expected = piece.read()
    log.update_config(TopicConfig(segment_bytes=4096, retention_bytes=0))
    assert log.apply_retention(NOW) >= 1
    assert not os.path.exists(os.path.join(log_dir, "00000000000000000000.log"))
    assert piece.read() == expected
    sent = os.sendfile(os.open(os.devnull, os.O_WRONLY), piece.fd, piece.position, piece.length)
    assert sent == piece.length
    piece.release()
    log.close()


def test_retention_by_time_moves_log_start_offset(log_dir):
    config = TopicConfig(segment_bytes=1024, retention_ms=60_000)
    log = Log.open(log_dir, config)
    for _ in range(20):
        append(log, make_batch(2, 50, timestamp=NOW - 120_000))
    for _ in range(20):
        append(log, make_batch(2, 50, timestamp=NOW))
    deleted = log.apply_retention(NOW)
    assert deleted >= 1
    assert log.log_start_offset == log.segments[0].base_offset > 0
    assert all(s.max_timestamp >= NOW - 60_000 for s in log.segments[:-1])
    with pytest.raises(errors.OffsetOutOfRange):
        log.read(0, 100)
    assert offsets(log.read_bytes(log.log_start_offset, 1 << 20))[0] == log.log_start_offset
    log.close()


def test_retention_rolls_and_deletes_an_expired_active_segment(log_dir):
    log = Log.open(log_dir, TopicConfig(retention_ms=1000))
    append(log, make_batch(2, timestamp=NOW - 5000))
    assert log.apply_retention(NOW) == 1
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (2, 2, 0)
    assert append(log, make_batch(1)).first_offset == 2
    log.close()


def test_retention_by_bytes_deletes_oldest_segments_while_over_limit(log_dir):
    # Kafka's rule: a segment goes only if the log stays >= retention.bytes without it.
    log = Log.open(log_dir, TopicConfig(segment_bytes=1024, retention_bytes=3000))
    for _ in range(40):
        append(log, make_batch(2, 50))
    before = log.size_bytes
    assert log.apply_retention(NOW) > 0
    assert 3000 <= log.size_bytes < 3000 + log.segments[0].size < before
    assert log.log_start_offset == log.segments[0].base_offset
    log.close()


@pytest.mark.parametrize("policy, kept", [("compact", True), ("compact,delete", False), ("delete", False)])
def test_retention_applies_only_to_topics_whose_cleanup_policy_deletes(log_dir, policy, kept):
    config = TopicConfig.parse({"segment.bytes": "1024", "retention.ms": "1000", "retention.bytes": "0",
                                "cleanup.policy": policy})
    log = Log.open(log_dir, config)
    for _ in range(20):
        append(log, make_batch(2, 50, timestamp=NOW - 5000))
    segments = len(log.segments)
    assert (log.apply_retention(NOW) == 0) == kept
    assert (len(log.segments) == segments and log.log_start_offset == 0) == kept
    log.close()


def test_retention_spares_data_above_high_watermark(log_dir):
    log = Log.open(log_dir, TopicConfig(segment_bytes=1024, retention_bytes=0))
    for _ in range(30):
        append(log, make_batch(2, 50))
    second_base = log.segments[1].base_offset
    assert log.apply_retention(NOW, high_watermark=second_base) == 1
    assert log.log_start_offset == second_base
    log.close()


def test_truncate_to_drops_whole_batches_and_allows_reappend(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(40):
        append(log, make_batch(3, 50))
    log.truncate_to(31)  # inside batch 30..32
    assert log.log_end_offset == 30
    assert offsets(log.read_bytes(27, 1 << 20)) == [27, 28, 29]
    assert append(log, make_batch(1)).first_offset == 30
    log.close()
    reopened = Log.open(log_dir, config, clean_shutdown=True)
    assert reopened.log_end_offset == 31
    reopened.close()


def test_append_with_offsets_requires_contiguous_offsets(log_dir, config):
    log = Log.open(log_dir, config)
    one = bytearray(rb.build_batch([(None, b"a", [], NOW)] * 2, base_offset=0))
    two = bytearray(rb.build_batch([(None, b"b", [], NOW)], base_offset=2))
    buf = one + two
    info = log.append_with_offsets(memoryview(buf), rb.parse_batches(buf, 1 << 20))
    assert (info.first_offset, info.last_offset, log.log_end_offset) == (0, 2, 3)
    gap = bytearray(rb.build_batch([(None, b"c", [], NOW)], base_offset=1))
    with pytest.raises(errors.InvalidRecord):
        log.append_with_offsets(memoryview(gap), rb.parse_batches(gap, 1 << 20))
    log.close()


def test_batch_larger_than_segment_is_record_list_too_large(log_dir):
    log = Log.open(log_dir, TopicConfig(segment_bytes=200))
    with pytest.raises(errors.RecordListTooLarge):
        append(log, make_batch(5, 100))
    assert log.log_end_offset == 0
    log.close()


def test_offset_for_timestamp_finds_earliest_record_at_or_after(log_dir, config):
    log = Log.open(log_dir, config)
    for i in range(30):
        buf = bytearray(rb.build_batch([(None, b"x" * 40, [], NOW + 10 * i + j) for j in range(3)]))
        log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20))
    assert log.offset_for_timestamp(NOW) == (0, NOW)
    assert log.offset_for_timestamp(NOW + 101) == (31, NOW + 101)
    assert log.offset_for_timestamp(NOW + 103) == (33, NOW + 110)
    assert log.offset_for_timestamp(NOW + 10_000) is None
    log.close()


def test_reopen_after_clean_close_keeps_everything(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(30):
        append(log, make_batch(3, 50))
    before = read_all(log)
    segments = [(s.base_offset, s.size, s.next_offset) for s in log.segments]
    log.close()
    reopened = Log.open(log_dir, config, clean_shutdown=True)
    assert reopened.recovery_truncated_bytes == 0
    assert [(s.base_offset, s.size, s.next_offset) for s in reopened.segments] == segments
    assert read_all(reopened) == before
    assert append(reopened, make_batch(1)).first_offset == 90
    reopened.close()


def test_flush_writes_recovery_point_checkpoint(log_dir, config):
    log = Log.open(log_dir, config)
    append(log, make_batch(4))
    log.flush()
    with open(os.path.join(log_dir, "recovery-point")) as f:
        assert f.read().strip() == "4"
    log.close()


def test_file_truncated_underneath_gives_storage_error_not_a_crash(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(10):
        append(log, make_batch(3, 50))
    assert log.read_bytes(0, 1 << 20)  # maps the file
    os.truncate(os.path.join(log_dir, "00000000000000000000.log"), 100)
    with pytest.raises(errors.KafkaStorageError):
        log.read(0, 1 << 20)
    with pytest.raises(errors.KafkaStorageError):
        log.offset_for_timestamp(NOW)
    log.close()


def test_slice_of_file_truncated_underneath_reads_short(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(5):
        append(log, make_batch(3, 50))
    piece = log.read(0, 1 << 20)
    os.truncate(os.path.join(log_dir, "00000000000000000000.log"), 10)
    assert len(piece.read()) == 10
    out = os.open(os.devnull, os.O_WRONLY)
    try:
        assert os.sendfile(out, piece.fd, piece.position + 10, piece.length - 10) == 0
    finally:
        os.close(out)
    piece.release()
    log.close()


def test_delete_removes_directory(log_dir, config):
    log = Log.open(log_dir, config)
    append(log, make_batch(1))
    log.delete()
    assert not os.path.exists(log_dir)
