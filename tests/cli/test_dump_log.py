import argparse
import struct
import subprocess
import sys

import pytest

from pybroker.cli import dump_log
from pybroker.record import compression
from pybroker.record.batch import build_batch

TS = 1700000000000


def run_dump(capsys, *files, deep=False, data=False):
    args = argparse.Namespace(files=[str(f) for f in files], deep_iteration=deep, print_data_log=data)
    rc = dump_log.run(args)
    captured = capsys.readouterr()
    return rc, captured.out.splitlines(), captured.err


def write_segment(path, *batches):
    path.write_bytes(b"".join(batches))
    return path


def test_batch_line_matches_kafka_dump_log_format(tmp_path, capsys):
    batch = build_batch([(b"k%d" % i, b"v%d" % i, [], TS + i) for i in range(10)])
    seg = write_segment(tmp_path / "00000000000000000000.log", batch)
    rc, lines, _ = run_dump(capsys, seg)
    assert rc == 0
    assert lines == [
        f"Dumping {seg}",
        "Log starting offset: 0",
        "baseOffset: 0 lastOffset: 9 count: 10 baseSequence: -1 lastSequence: -1 producerId: -1 "
        "producerEpoch: -1 partitionLeaderEpoch: -1 isTransactional: false isControl: false "
        f"deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: {TS + 9} size: {len(batch)} "
        "magic: 2 compresscodec: none crcValid: true",
    ]


def test_print_data_log_prints_each_record_with_key_and_payload(tmp_path, capsys):
    b1 = build_batch([(b"abc", b"hello", [], TS), (None, b"world", [("h1", b"x"), ("h2", None)], TS + 5)])
    b2 = build_batch([(b"k", b"zz", [], TS + 7)], base_offset=2, compression=compression.GZIP,
                     producer_id=7, producer_epoch=1, base_sequence=5)
    seg = write_segment(tmp_path / "00000000000000000000.log", b1, b2)
    rc, lines, _ = run_dump(capsys, seg, data=True)
    assert rc == 0
    assert lines[3] == f"| offset: 0 CreateTime: {TS} keySize: 3 valueSize: 5 sequence: -1 headerKeys: [] key: abc payload: hello"
    assert lines[4] == f"| offset: 1 CreateTime: {TS + 5} keySize: -1 valueSize: 5 sequence: -1 headerKeys: [h1,h2] payload: world"
    assert lines[5].startswith("baseOffset: 2 lastOffset: 2 count: 1 baseSequence: 5 lastSequence: 5 producerId: 7 producerEpoch: 1 ")
    assert f"position: {len(b1)} " in lines[5]
    assert lines[5].endswith("compresscodec: gzip crcValid: true")
    assert lines[6] == f"| offset: 2 CreateTime: {TS + 7} keySize: 1 valueSize: 2 sequence: 5 headerKeys: [] key: k payload: zz"


def test_deep_iteration_without_print_data_omits_key_and_payload(tmp_path, capsys):
    seg = write_segment(tmp_path / "00000000000000000005.log", build_batch([(b"abc", b"hello", [], TS)], base_offset=5))
    rc, lines, _ = run_dump(capsys, seg, deep=True)
    assert lines[1] == "Log starting offset: 5"
    assert lines[3] == f"| offset: 5 CreateTime: {TS} keySize: 3 valueSize: 5 sequence: -1 headerKeys: []"


def test_torn_tail_is_reported_not_fatal(tmp_path, capsys):
    good = build_batch([(None, b"x" * 50, [], TS)])
    seg = write_segment(tmp_path / "00000000000000000000.log", good, good[:40])
    rc, lines, err = run_dump(capsys, seg)
    assert rc == 0
    assert lines[-1] == "Found 40 invalid bytes at the end of 00000000000000000000.log"
    assert lines[2].startswith("baseOffset: 0 ")
    assert "partial batch" in err


def test_corrupt_batch_shows_crc_invalid_and_skips_records(tmp_path, capsys):
    batch = bytearray(build_batch([(b"k", b"value", [], TS)]))
    batch[-1] ^= 0xFF
    seg = write_segment(tmp_path / "00000000000000000000.log", bytes(batch))
    rc, lines, _ = run_dump(capsys, seg, data=True)
    assert rc == 0
    assert lines[2].endswith("crcValid: false")
    assert "CRC mismatch" in lines[3]


def test_garbage_length_is_reported_as_invalid_bytes(tmp_path, capsys):
    good = build_batch([(None, b"v", [], TS)])
    junk = struct.pack(">qi", 1, 2**31 - 1) + b"\0" * 60
    seg = write_segment(tmp_path / "00000000000000000000.log", good, junk)
    rc, lines, _ = run_dump(capsys, seg)
    assert rc == 0
    assert lines[-1] == f"Found {len(junk)} invalid bytes at the end of 00000000000000000000.log"


def test_offset_index_stops_at_preallocated_zeros(tmp_path, capsys):
    idx = tmp_path / "00000000000000000100.index"
    idx.write_bytes(struct.pack(">ii", 0, 0) + struct.pack(">ii", 7, 4096) + b"\0" * 80)
    rc, lines, _ = run_dump(capsys, idx)
    assert rc == 0
    assert lines == [f"Dumping {idx}", "offset: 100 position: 0", "offset: 107 position: 4096"]


def test_time_index_lists_timestamp_and_offset(tmp_path, capsys):
    idx = tmp_path / "00000000000000000010.timeindex"
    idx.write_bytes(struct.pack(">qi", TS, 3) + struct.pack(">qi", TS + 9, 8) + b"\0" * 24)
    rc, lines, _ = run_dump(capsys, idx)
    assert lines == [f"Dumping {idx}", f"timestamp: {TS} offset: 13", f"timestamp: {TS + 9} offset: 18"]


def test_unknown_suffix_is_ignored_and_missing_file_fails(tmp_path, capsys):
    other = tmp_path / "leader-epoch-checkpoint"
    other.write_text("0\n")
    rc, lines, _ = run_dump(capsys, other)
    assert rc == 0 and lines == [f"Ignoring unknown file {other}"]
    rc, _, err = run_dump(capsys, tmp_path / "00000000000000000000.log")
    assert rc == 1 and "Error reading" in err


def test_file_not_named_by_offset_fails(tmp_path, capsys):
    bad = tmp_path / "segment.log"
    bad.write_bytes(build_batch([(None, b"v", [], TS)]))
    rc, _, err = run_dump(capsys, bad)
    assert rc == 1 and "base offset" in err


def test_dump_log_subcommand_is_registered(tmp_path):
    seg = write_segment(tmp_path / "00000000000000000000.log", build_batch([(None, b"v", [], TS)]))
    out = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "dump-log", "--files", str(seg)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[2].startswith("baseOffset: 0 lastOffset: 0 count: 1 ")


@pytest.mark.parametrize("codec", sorted(compression.NAMES))
def test_every_codec_is_named_like_kafka(tmp_path, capsys, codec):
    seg = write_segment(tmp_path / "00000000000000000000.log",
                        build_batch([(None, b"payload" * 10, [], TS)], compression=codec))
    rc, lines, _ = run_dump(capsys, seg, data=True)
    assert lines[2].endswith(f"compresscodec: {compression.NAMES[codec]} crcValid: true")
    assert lines[3].endswith("payload: " + "payload" * 10)


def test_compacted_batches_with_gaps_are_dumped(tmp_path, capsys):
    from pybroker.record import batch as rb
    whole = bytearray(build_batch([(b"a", b"1", [], TS), (b"b", b"2", [], TS + 1), (b"a", b"3", [], TS + 2)],
                                  compression=compression.LZ4))
    header = rb.parse_batches(whole, 1 << 20)[0]
    section = rb.records_section(whole, header)
    spans = list(rb.record_spans(header, section))
    compacted = rb.rebuild_batch(whole, header, section, spans[1:])  # offset 0 compacted away
    later = build_batch([(b"c", b"4", [], TS + 3)], base_offset=10)
    seg = write_segment(tmp_path / "00000000000000000000.log", compacted, later)
    rc, lines, err = run_dump(capsys, seg, data=True)
    assert rc == 0 and not err
    assert lines[2].startswith("baseOffset: 0 lastOffset: 2 count: 2 ")
    assert lines[2].endswith("compresscodec: lz4 crcValid: true")
    assert [line.split(" CreateTime")[0] for line in lines[3:5]] == ["| offset: 1", "| offset: 2"]
    assert lines[5].startswith("baseOffset: 10 lastOffset: 10 count: 1 ")
