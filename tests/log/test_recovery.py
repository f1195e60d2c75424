import logging
import os
import random

import pytest

from log_helpers import append, make_batch, offsets, read_all
from pybroker.log import Log
from pybroker.record import batch as rb


def fill(log_dir, config, n=30):
    log = Log.open(log_dir, config)
    sizes = []
    for i in range(n):
        sizes.append(len(make_batch(2 + i % 3, 40)))
        append(log, make_batch(2 + i % 3, 40))
    bases = [s.base_offset for s in log.segments]
    log.close()
    return bases


def seg_path(log_dir, base, suffix=".log"):
    return os.path.join(log_dir, f"{base:020d}{suffix}")


@pytest.mark.parametrize("seed", range(6))
def test_random_tail_cut_keeps_exactly_the_whole_batches_before_it(log_dir, config, seed):
    bases = fill(log_dir, config)
    last = seg_path(log_dir, bases[-1])
    with open(last, "rb") as f:
        original = f.read()
    cut = random.Random(seed).randrange(0, len(original))
    os.truncate(last, cut)
    headers, valid_end, _ = rb.scan_valid_prefix(original[:cut])
    log = Log.open(log_dir, config)
    assert log.recovery_truncated_bytes == cut - valid_end
    assert os.path.getsize(last) == valid_end
    expected_end = headers[-1].next_offset if headers else bases[-1]
    assert log.log_end_offset == expected_end
    assert offsets(read_all(log)) == list(range(expected_end))
    assert append(log, make_batch(1)).first_offset == expected_end
    log.close()


def test_garbage_appended_is_truncated_and_logged(log_dir, config, caplog):
    bases = fill(log_dir, config)
    last = seg_path(log_dir, bases[-1])
    size = os.path.getsize(last)
    with open(last, "ab") as f:
        f.write(os.urandom(300))
    with caplog.at_level(logging.WARNING, logger="pybroker.log"):
        log = Log.open(log_dir, config, clean_shutdown=True)
    assert log.recovery_truncated_bytes == 300
    assert os.path.getsize(last) == size
    assert any("300" in r.getMessage() for r in caplog.records)
    log.close()


def test_bit_flip_in_last_batch_is_detected_and_truncated(log_dir, config):
    bases = fill(log_dir, config)
    last = seg_path(log_dir, bases[-1])
    with open(last, "rb") as f:
        data = bytearray(f.read())
    headers, _, _ = rb.scan_valid_prefix(data)
    victim = headers[-1]
    data[victim.position + victim.size - 5] ^= 0x10
    with open(last, "wb") as f:
        f.write(data)
    log = Log.open(log_dir, config)
    assert log.recovery_truncated_bytes == victim.size
    assert log.log_end_offset == victim.base_offset
    log.close()


def batches_of(path):
    with open(path, "rb") as f:
        data = f.read()
    headers, _, _ = rb.scan_valid_prefix(data)
    return data, headers


def flip(path, position, length=16):
    with open(path, "r+b") as f:
        f.seek(position)
        chunk = bytearray(f.read(length))
        f.seek(position)
        f.write(bytes(b ^ 0xFF for b in chunk))


def crash_before_checkpoint(log_dir):
    """As after a crash before the recovery point covered these segments."""
    os.unlink(os.path.join(log_dir, "recovery-point"))


def test_corruption_in_middle_segment_keeps_every_valid_batch_after_it(log_dir, config, caplog):
    bases = fill(log_dir, config, n=60)
    assert len(bases) >= 3
    middle = seg_path(log_dir, bases[1])
    original, headers = batches_of(middle)
    victim = headers[len(headers) // 2]
    flip(middle, victim.position + 40)
    crash_before_checkpoint(log_dir)
    with caplog.at_level(logging.ERROR, logger="pybroker.log"):
        log = Log.open(log_dir, config)
    assert [s.base_offset for s in log.segments] == bases
    assert log.recovery_truncated_bytes == 0
    assert log.recovery_quarantined_bytes == victim.size
    lost = set(range(victim.base_offset, victim.next_offset))
    assert offsets(read_all(log)) == [o for o in range(log.log_end_offset) if o not in lost]
    # The damaged bytes are set aside beside the segment, named by the offsets they hid.
    [q] = log.quarantined
    assert (q.first_offset, q.end_offset, q.size) == (victim.base_offset, victim.next_offset, victim.size)
    with open(q.path, "rb") as f:
        corrupt = f.read()
    assert corrupt[:40] == original[victim.position:victim.position + 40]
    errors_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"offsets {victim.base_offset}..{victim.last_offset}" in m and str(victim.size) in m
               for m in errors_logged)
    end = log.log_end_offset
    assert append(log, make_batch(1)).first_offset == end
    log.close()
    # The repaired segment is whole: a later recovery finds nothing more.
    crash_before_checkpoint(log_dir)
    again = Log.open(log_dir, config)
    assert again.recovery_quarantined_bytes == 0 and again.recovery_truncated_bytes == 0
    assert offsets(read_all(again)) == [o for o in range(end + 1) if o not in lost]
    again.close()


def test_damaged_end_of_a_closed_segment_is_quarantined_not_truncated(log_dir, config):
    bases = fill(log_dir, config, n=60)
    middle = seg_path(log_dir, bases[1])
    _, headers = batches_of(middle)
    victim = headers[-1]
    flip(middle, victim.position + victim.size - 16)
    crash_before_checkpoint(log_dir)
    log = Log.open(log_dir, config)
    assert [s.base_offset for s in log.segments] == bases
    assert [(q.first_offset, q.end_offset) for q in log.quarantined] == [(victim.base_offset, bases[2])]
    lost = set(range(victim.base_offset, bases[2]))
    assert offsets(read_all(log)) == [o for o in range(log.log_end_offset) if o not in lost]
    log.close()


def test_damaged_batch_length_resyncs_on_the_next_batch(log_dir, config):
    bases = fill(log_dir, config, n=60)
    last = seg_path(log_dir, bases[-1])
    _, headers = batches_of(last)
    assert len(headers) >= 3
    victim = headers[1]
    flip(last, victim.position + 8, 4)  # the batch length field
    log = Log.open(log_dir, config)
    assert log.segments[-1].base_offset == bases[-1]
    lost = set(range(victim.base_offset, victim.next_offset))
    assert offsets(read_all(log)) == [o for o in range(log.log_end_offset) if o not in lost]
    assert log.log_end_offset == headers[-1].next_offset
    log.close()


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_deleted_index_is_rebuilt(log_dir, config, suffix):
    bases = fill(log_dir, config, n=60)
    before = Log.open(log_dir, config, clean_shutdown=True)
    expected = read_all(before)
    entries = before.segments[0].index.entries
    before.close()
    os.unlink(seg_path(log_dir, bases[0], suffix))
    log = Log.open(log_dir, config, clean_shutdown=True)
    assert log.recovery_truncated_bytes == 0
    assert log.segments[0].index.entries == entries
    assert read_all(log) == expected
    log.close()


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_garbage_index_is_rebuilt_not_trusted(log_dir, config, suffix):
    bases = fill(log_dir, config, n=60)
    before = Log.open(log_dir, config, clean_shutdown=True)
    expected = read_all(before)
    before.close()
    with open(seg_path(log_dir, bases[0], suffix), "wb") as f:
        f.write(os.urandom(1003))
    log = Log.open(log_dir, config, clean_shutdown=True)
    assert read_all(log) == expected
    assert log.offset_for_timestamp(0) == (0, rb.decode_batch(expected)[0].timestamp)
    log.close()


def test_preallocated_index_left_by_a_crash_is_rebuilt(log_dir, config):
    bases = fill(log_dir, config, n=60)
    index = seg_path(log_dir, bases[0], ".index")
    os.truncate(index, config.segment_index_bytes)  # trailing zeros, as after a crash
    log = Log.open(log_dir, config, clean_shutdown=True)
    assert offsets(read_all(log)) == list(range(log.log_end_offset))
    log.close()


def test_stray_files_are_removed(log_dir, config):
    fill(log_dir, config, n=3)
    for name in ("00000000000000000007.log.deleted", "00000000000000000009.index.swap",
                 "recovery-point.tmp", "00000000000000000500.index"):
        open(os.path.join(log_dir, name), "wb").close()
    log = Log.open(log_dir, config, clean_shutdown=True)
    names = os.listdir(log_dir)
    assert not any(n.endswith((".deleted", ".swap", ".tmp")) for n in names)
    assert "00000000000000000500.index" not in names
    log.close()


def test_log_start_offset_survives_restart(log_dir):
    from pybroker.config import TopicConfig
    config = TopicConfig(segment_bytes=1024, retention_bytes=2000, retention_ms=-1)
    log = Log.open(log_dir, config)
    for _ in range(40):
        append(log, make_batch(2, 50))
    log.apply_retention()
    start = log.log_start_offset
    assert start > 0
    log.close()
    reopened = Log.open(log_dir, config)
    assert reopened.log_start_offset == start
    reopened.close()
