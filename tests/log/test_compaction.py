"""Log compaction at the log level (pybroker.log.cleaner through Log)."""
import os

import pytest

from pybroker.config import TopicConfig
from pybroker.log import Log, cleaner
from pybroker.record import batch as rb
from pybroker.record import compression as codecs

from log_helpers import NOW, append, read_all

DAY = 24 * 3600 * 1000


def compact_config(**overrides) -> TopicConfig:
    settings = {"cleanup.policy": "compact", "segment.bytes": 1024, "index.interval.bytes": 128,
                "segment.index.bytes": 4096, "min.cleanable.dirty.ratio": 0.01}
    settings.update(overrides)
    return TopicConfig.parse(settings)


def kv_batch(pairs, timestamp=NOW, compression=0, **kwargs) -> bytearray:
    return bytearray(rb.build_batch([(k, v, [("h", b"x")], timestamp) for k, v in pairs],
                                    compression=compression, **kwargs))


def fill(log: Log, rounds: int, keys: int = 4, timestamp: int = NOW, compression: int = 0,
         prefix: bytes = b"key") -> dict:
    """Append ``rounds`` updates of each key, one batch per round; returns the latest
    (offset, value) per key."""
    latest = {}
    for r in range(rounds):
        pairs = [(prefix + b"%d" % k, b"value-%d-%d" % (k, r) + b"." * 30) for k in range(keys)]
        info = append(log, kv_batch(pairs, timestamp, compression))
        for n, (k, v) in enumerate(pairs):
            latest[k] = (info.first_offset + n, v)
    return latest


def records(log: Log) -> list[rb.Record]:
    return list(rb.iter_records(read_all(log)))


def by_key_below(log: Log, end: int) -> dict:
    out = {}
    for r in records(log):
        if r.offset < end:
            out.setdefault(r.key, []).append(r.offset)
    return out


@pytest.mark.parametrize("compression", [codecs.NONE, codecs.GZIP, codecs.LZ4])
def test_latest_value_per_key_survives_across_segments(log_dir, compression):
    log = Log.open(log_dir, compact_config())
    latest = fill(log, 40, compression=compression)
    before = records(log)
    assert len(log.segments) > 3
    end = log.active_segment.base_offset
    size_before = log.size_bytes
    closed = len(log.segments) - 1
    assert log.clean(NOW) == closed
    assert len(log.segments) < closed  # emptied segments (all but the first) are gone
    assert log.size_bytes < size_before
    after = records(log)
    # Below the cleaned range's end: exactly one record per key, its latest offset.
    cleaned = [r for r in after if r.offset < end]
    assert len({r.key for r in cleaned}) == len(cleaned)
    for r in cleaned:
        original = next(o for o in before if o.offset == r.offset)
        assert r == original  # key, value, headers, timestamp, offset kept
    final = {r.key: (r.offset, r.value) for r in after}
    assert final == latest
    # The active segment is untouched.
    assert [r for r in after if r.offset >= end] == [r for r in before if r.offset >= end]
    offsets = [r.offset for r in after]
    assert offsets == sorted(offsets) and offsets[-1] == log.log_end_offset - 1
    assert log.cleaner_checkpoint == end
    log.close()


def test_offsets_gaps_survive_reopen_and_are_readable(log_dir):
    config = compact_config()
    log = Log.open(log_dir, config)
    latest = fill(log, 30)
    log.clean(NOW)
    expected = read_all(log)
    log.close()
    for clean_shutdown in (True, False):
        reopened = Log.open(log_dir, config, clean_shutdown=clean_shutdown)
        assert read_all(reopened) == expected
        assert {r.key: (r.offset, r.value) for r in records(reopened)} == latest
        # Reading from an offset inside a gap serves the next batch that still exists.
        gap = next(o for o in range(reopened.log_end_offset)
                   if o not in {r.offset for r in records(reopened)})
        piece = reopened.read(gap, 1 << 20)
        with piece:
            first = next(rb.iter_batches(piece.read()))[0]
        assert first.last_offset >= gap
        found = reopened.offset_for_timestamp(NOW)
        assert found is not None and found[0] == records(reopened)[0].offset
        reopened.close()


def test_data_above_high_watermark_and_young_data_untouched(log_dir):
    log = Log.open(log_dir, compact_config())
    fill(log, 40)
    bases = [s.base_offset for s in log.segments]
    hw = bases[2]
    before = records(log)
    log.clean(NOW, high_watermark=hw)
    after = records(log)
    assert [r for r in after if r.offset >= hw] == [r for r in before if r.offset >= hw]
    assert len([r for r in after if r.offset < hw]) < len([r for r in before if r.offset < hw])
    log.close()

    young = Log.open(log_dir + "-young", compact_config(**{"min.compaction.lag.ms": 60_000}))
    fill(young, 40)
    assert young.cleaning_plan(NOW + 1000) is None
    assert young.clean(NOW + 120_000) > 0
    young.close()


def test_dirty_ratio_gates_cleaning(log_dir):
    log = Log.open(log_dir, compact_config(**{"min.cleanable.dirty.ratio": 0.5}))
    for r in range(40):  # distinct keys: cleaning keeps everything, the clean part is big
        fill(log, 1, prefix=b"r%d-" % r)
    assert log.clean(NOW) > 0
    checkpoint = log.cleaner_checkpoint
    clean_bytes = sum(s.size for s in log.segments[:-1])
    # A little new dirt: a few more closed segments, well below half of the cleanable bytes.
    fill(log, 12)
    dirty_bytes = sum(s.size for s in log.segments[:-1]) - clean_bytes
    assert 0 < dirty_bytes < clean_bytes
    assert log.cleaning_plan(NOW) is None
    assert log.clean(NOW) == 0 and log.cleaner_checkpoint == checkpoint
    fill(log, 60)
    plan = log.cleaning_plan(NOW)
    assert plan is not None and plan.dirty_ratio >= 0.5 and plan.first_dirty_offset == checkpoint
    plan.release()
    # max.compaction.lag.ms forces a cleaning of old dirt whatever the ratio.
    log.update_config(compact_config(**{"min.cleanable.dirty.ratio": 1.0, "max.compaction.lag.ms": 60_000}))
    assert log.cleaning_plan(NOW) is None
    assert log.clean(NOW + 120_000) > 0
    assert log.cleaner_checkpoint == log.active_segment.base_offset
    log.close()


def test_delete_policy_log_never_cleaned(log_dir):
    log = Log.open(log_dir, compact_config(**{"cleanup.policy": "delete"}))
    fill(log, 40)
    assert log.cleaning_plan(NOW) is None
    log.close()


def test_tombstones_kept_then_dropped_after_delete_retention(log_dir):
    log = Log.open(log_dir, compact_config(**{"delete.retention.ms": DAY}))
    fill(log, 10)
    append(log, kv_batch([(b"key1", None), (b"key2", None)]))
    fill(log, 30, keys=1)  # only key0 goes on: the tombstones stay the latest of key1/key2
    log.clean(NOW)
    values = {r.key: r.value for r in records(log)}
    assert values[b"key1"] is None and values[b"key2"] is None
    # A day later (and some new dirt) the tombstones go, with every trace of key1 and key2.
    fill(log, 10, keys=1)
    log.clean(NOW + DAY + 1000)
    assert {r.key for r in records(log)} == {b"key0", b"key3"}
    log.close()


def test_crash_during_swap_loses_nothing(log_dir):
    """Stop the swap after each step, reopen (start-up recovery), and check the log reads
    as before or as cleaned: every key's latest value, nothing torn."""
    config = compact_config()
    steps = ["built", "committed", "installed_indexes", "installed"]
    for step in steps:
        directory = f"{log_dir}-{step}"
        log = Log.open(directory, config)
        latest = fill(log, 30)
        expected_before = read_all(log)
        plan = log.cleaning_plan(NOW)
        cleaned = cleaner.build(plan)
        piece = cleaned[0]
        if step != "built":
            swaps = cleaner.commit_swap(directory, piece.paths)
            if step == "installed_indexes":
                cleaner.install_swap(directory, swaps[:2])
            elif step == "installed":
                cleaner.install_swap(directory, swaps)
        plan.release()
        # Crash: drop the process state without closing anything cleanly.
        for segment in log.segments:
            os.close(segment.fd)
        reopened = Log.open(directory, config, clean_shutdown=False)
        names = os.listdir(directory)
        assert not [n for n in names if n.endswith((".cleaned", ".swap"))], names
        got = {r.key: (r.offset, r.value) for r in records(reopened)}
        assert got == latest
        first = records(reopened)
        if step == "built":
            assert read_all(reopened) == expected_before
        else:
            # The first segment is the cleaned one now: one record per key in it.
            end = reopened.segments[1].base_offset
            keys = [r.key for r in first if r.offset < end]
            assert len(keys) == len(set(keys))
        assert reopened.clean(NOW) > 0
        assert {r.key: (r.offset, r.value) for r in records(reopened)} == latest
        reopened.close()


def test_reader_of_old_segment_keeps_reading_during_swap(log_dir):
    log = Log.open(log_dir, compact_config())
    fill(log, 30)
    piece = log.read(0, 1 << 20)
    expected = piece.read()
    assert log.clean(NOW) > 0
    assert log.read_bytes(0, 1 << 20) != expected
    assert piece.read() == expected
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        assert os.sendfile(sink, piece.fd, piece.position, piece.length) == piece.length
    finally:
        os.close(sink)
    piece.release()
    log.close()


def test_segment_changed_during_build_keeps_its_old_form(log_dir):
    config = compact_config(**{"cleanup.policy": "compact,delete", "retention.bytes": 0})
    log = Log.open(log_dir, config)
    fill(log, 30)
    plan = log.cleaning_plan(NOW)
    cleaned = cleaner.build(plan)
    assert log.apply_retention(NOW) > 0  # deletes segments while the cleaner worked
    assert log.replace_cleaned(plan, cleaned) == 0
    assert not [n for n in os.listdir(log_dir) if n.endswith((".cleaned", ".swap"))]
    log.close()


def test_last_batch_of_idempotent_producer_kept_empty(log_dir):
    log = Log.open(log_dir, compact_config())
    first = append(log, kv_batch([(b"0", b"1" * 40), (b"1", b"1" * 40)], producer_id=7,
                                 producer_epoch=0, base_sequence=0))
    other = append(log, kv_batch([(b"0", b"0" * 40)], producer_id=8, producer_epoch=0, base_sequence=0))
    fill(log, 30, keys=2, prefix=b"")  # overwrites "0" and "1"
    log.clean(NOW, retain_last_offsets={first.last_offset})
    batches = [h for h, _ in rb.iter_batches(read_all(log))]
    kept = [h for h in batches if h.producer_id == 7]
    assert len(kept) == 1
    h = kept[0]
    assert (h.base_offset, h.last_offset, h.records_count) == (first.first_offset, first.last_offset, 0)
    assert (h.producer_epoch, h.base_sequence) == (0, 0)
    assert not [h for h in batches if h.producer_id == 8]
    assert other.first_offset not in {r.offset for r in records(log)}
    log.close()


def test_control_and_transactional_batches_kept_whole(log_dir):
    log = Log.open(log_dir, compact_config())
    txn = append(log, kv_batch([(b"key0", b"t" * 40)], producer_id=3, producer_epoch=0, base_sequence=0,
                               transactional=True))
    fill(log, 30)
    log.clean(NOW)
    assert txn.first_offset in {r.offset for r in records(log)}
    log.close()


def test_produce_validation_stays_strict_but_log_readers_accept_compacted_batches():
    batch = kv_batch([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    header = rb.parse_batches(batch, 1 << 20)[0]
    section = rb.records_section(batch, header)
    spans = list(rb.record_spans(header, section))
    compacted = rb.rebuild_batch(batch, header, section, [spans[2]])
    with pytest.raises(Exception):
        rb.parse_batches(bytearray(compacted), 1 << 20)
    [h] = rb.parse_batches(bytearray(compacted), 1 << 20, strict_counts=False)
    assert (h.records_count, h.last_offset_delta) == (1, 2)
    assert [(r.offset, r.key) for r in rb.decode_batch(compacted)] == [(2, b"c")]


def test_compaction_configs_have_kafkas_names_defaults_and_ranges():
    defaults = TopicConfig().to_kafka()
    assert defaults["delete.retention.ms"] == "86400000"
    assert defaults["min.cleanable.dirty.ratio"] == "0.5"
    assert defaults["min.compaction.lag.ms"] == "0"
    assert defaults["max.compaction.lag.ms"] == str(2**63 - 1)
    assert TopicConfig.parse({"min.cleanable.dirty.ratio": "0.25"}).min_cleanable_dirty_ratio == 0.25
    for bad in ({"min.cleanable.dirty.ratio": "1.5"}, {"min.cleanable.dirty.ratio": "-0.1"},
                {"min.cleanable.dirty.ratio": "half"}, {"delete.retention.ms": "-1"},
                {"max.compaction.lag.ms": "0"}, {"min.compaction.lag.ms": "-5"}):
        with pytest.raises(Exception, match=next(iter(bad))):
            TopicConfig.parse(bad)
    assert TopicConfig.parse({"cleanup.policy": "delete,compact"}).compact
    assert not TopicConfig().compact


def test_follower_replicates_a_compacted_leader_log(log_dir):
    leader = Log.open(log_dir, compact_config())
    latest = fill(leader, 30)
    leader.clean(NOW)
    follower = Log.open(log_dir + "-follower", compact_config())
    while follower.log_end_offset < leader.log_end_offset:
        data = bytearray(leader.read_bytes(follower.log_end_offset, 1 << 20))
        headers = rb.parse_batches(data, len(data), strict_counts=False)
        assert headers[0].base_offset >= follower.log_end_offset
        follower.append_with_offsets(memoryview(data), headers, now_ms=NOW)
    assert read_all(follower) == read_all(leader)
    assert {r.key: (r.offset, r.value) for r in records(follower)} == latest
    follower.close()
    reopened = Log.open(log_dir + "-follower", compact_config(), clean_shutdown=False)
    assert read_all(reopened) == read_all(leader)
    reopened.close()
    leader.close()
