import struct

import crc32c
import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from pybroker import errors
from pybroker.record import batch as rb
from pybroker.record import compression as codecs

CODECS = [codecs.NONE, codecs.GZIP, codecs.SNAPPY, codecs.LZ4, codecs.ZSTD]

RECORDS = [
    (b"key-0", b"value-0" * 20, [("trace", b"abc"), ("empty", None)], 1_700_000_000_000),
    (None, b"no key", [], 1_700_000_000_005),
    (b"no value", None, [], None),
    (b"", b"", [], 1_699_999_999_990),
]


def test_header_struct_is_61_bytes():
    assert rb.HEADER.size == 61


@pytest.mark.parametrize("codec", CODECS)
def test_build_then_decode_round_trips_every_codec(codec):
    data = rb.build_batch(RECORDS, base_offset=42, compression=codec, now_ms=1_700_000_000_100)
    [header] = rb.parse_batches(data, 1 << 20)
    assert header.compression == codec
    assert header.base_offset == 42 and header.records_count == 4 and header.last_offset == 45
    assert header.max_timestamp == 1_700_000_000_100
    records = rb.decode_batch(data)
    assert [r.offset for r in records] == [42, 43, 44, 45]
    assert [(r.key, r.value, r.headers) for r in records] == [(k, v, h) for k, v, h, _ in RECORDS]
    assert [r.timestamp for r in records] == [1_700_000_000_000, 1_700_000_000_005,
                                               1_700_000_000_100, 1_699_999_999_990]


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_decodes_our_batches(codec):
    data = rb.build_batch(RECORDS, base_offset=7, compression=codec, producer_id=9,
                          producer_epoch=1, base_sequence=3, now_ms=1_700_000_000_100)
    theirs = DefaultRecordBatch(bytearray(data))
    assert theirs.validate_crc()
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (9, 1, 3)
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in theirs]
    assert got == [(7 + i, r.timestamp, r.key, r.value, r.headers)
                   for i, r in enumerate(rb.decode_batch(data))]


@pytest.mark.parametrize("codec", CODECS)
def test_we_decode_kafka_python_batches(codec):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 20)
    for i in range(50):
        builder.append(i, timestamp=1000 + i, key=b"k%d" % i, value=b"v" * i, headers=[("h", b"%d" % i)])
    data = bytes(builder.build())
    [header] = rb.parse_batches(data, 1 << 20)
    assert header.compression == codec and header.records_count == 50
    records = rb.decode_batch(data)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records] == [
        (i, 1000 + i, b"k%d" % i, b"v" * i, [("h", b"%d" % i)]) for i in range(50)]


def test_every_single_bit_flip_is_detected():
    data = rb.build_batch([(b"k", b"value", [("h", b"v")], 1000)], compression=codecs.NONE)
    for byte in range(len(data)):
        if rb.LENGTH_POS > byte or rb.LEADER_EPOCH_POS <= byte < rb.MAGIC_POS:
            continue  # baseOffset and leader epoch lie outside the CRC, by Kafka's design
        for bit in range(8):
            flipped = bytearray(data)
            flipped[byte] ^= 1 << bit
            with pytest.raises((errors.CorruptMessage, errors.UnsupportedForMessageFormat,
                                errors.MessageTooLarge)):
                rb.parse_batches(flipped, 1 << 20)


def test_oversize_batch_is_message_too_large():
    data = rb.build_batch([(None, b"x" * 1000, [], 1)])
    with pytest.raises(errors.MessageTooLarge):
        rb.parse_batches(data, len(data) - 1)
    assert len(rb.parse_batches(data, len(data))) == 1


def test_trailing_partial_batch_is_corrupt_message():
    data = rb.build_batch([(None, b"x", [], 1)])
    with pytest.raises(errors.CorruptMessage):
        rb.parse_batches(data + data[:30], 1 << 20)
    with pytest.raises(errors.CorruptMessage):
        rb.parse_batches(data + data[:5], 1 << 20)


def test_empty_records_is_corrupt_message():
    with pytest.raises(errors.CorruptMessage):
        rb.parse_batches(b"", 1 << 20)


def test_legacy_magic_is_unsupported_for_message_format():
    # A magic 1 message: offset, size, crc, magic, attributes, timestamp, key, value.
    body = struct.pack(">bbqii", 1, 0, 0, -1, 1) + b"x"
    legacy = struct.pack(">qiI", 0, len(body) + 4, 0) + body
    with pytest.raises(errors.UnsupportedForMessageFormat):
        rb.parse_batches(legacy, 1 << 20)


def test_count_inconsistent_with_last_offset_delta_is_corrupt():
    data = bytearray(rb.build_batch([(None, b"a", [], 1), (None, b"b", [], 1)]))
    struct.pack_into(">i", data, 57, 3)  # recordsCount
    struct.pack_into(">I", data, rb.CRC_POS, __import__("crc32c").crc32c(bytes(data[21:])))
    with pytest.raises(errors.CorruptMessage):
        rb.parse_batches(data, 1 << 20)


def test_parse_many_batches_reports_positions():
    one = rb.build_batch([(None, b"a", [], 1)])
    two = rb.build_batch([(None, b"b", [], 1), (None, b"c", [], 2)])
    headers = rb.parse_batches(memoryview(one + two), 1 << 20)
    assert [h.position for h in headers] == [0, len(one)]
    assert [h.size for h in headers] == [len(one), len(two)]


def test_assign_offsets_rewrites_in_place_without_breaking_crc():
    buf = bytearray(rb.build_batch([(None, b"a", [], 1)] * 3) + rb.build_batch([(None, b"b", [], 1)] * 2))
    headers = rb.parse_batches(buf, 1 << 20)
    assert rb.assign_offsets(memoryview(buf), headers, 100, 7) == 104
    after = rb.parse_batches(buf, 1 << 20)  # CRC still valid
    assert [(h.base_offset, h.partition_leader_epoch) for h in after] == [(100, 7), (103, 7)]
    assert [r.offset for r in rb.iter_records(buf)] == [100, 101, 102, 103, 104]


def test_set_log_append_time_sets_type_and_max_timestamp():
    buf = bytearray(rb.build_batch([(None, b"a", [], 1), (None, b"b", [], 2)]))
    [header] = rb.parse_batches(buf, 1 << 20)
    updated = rb.set_log_append_time(buf, header, 5555)
    [reparsed] = rb.parse_batches(buf, 1 << 20)
    assert reparsed == updated
    assert reparsed.timestamp_type == rb.LOG_APPEND_TIME and reparsed.max_timestamp == 5555
    assert [r.timestamp for r in rb.decode_batch(buf)] == [5555, 5555]


def test_scan_valid_prefix_stops_at_torn_tail():
    one = rb.build_batch([(None, b"a", [], 1)], base_offset=0)
    two = rb.build_batch([(None, b"b", [], 1)], base_offset=1)
    headers, end, reason = rb.scan_valid_prefix(one + two)
    assert (len(headers), end, reason) == (2, len(one + two), None)
    headers, end, reason = rb.scan_valid_prefix(one + two[:-1])
    assert (len(headers), end) == (1, len(one)) and "partial" in reason


def test_scan_valid_prefix_rejects_offsets_going_backwards():
    one = rb.build_batch([(None, b"a", [], 1)], base_offset=5)
    headers, end, reason = rb.scan_valid_prefix(one + one)
    assert (len(headers), end) == (1, len(one)) and "below" in reason


def test_iter_records_tolerates_trailing_partial_batch():
    one = rb.build_batch([(b"k", b"a", [], 1)], base_offset=0)
    two = rb.build_batch([(b"k", b"b", [], 1)], base_offset=1)
    assert [r.value for r in rb.iter_records(one + two[:20])] == [b"a"]


def test_iter_records_skips_control_batches_unless_asked():
    data = bytearray(rb.build_batch([(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", [], 1)],
                                    transactional=True))
    struct.pack_into(">h", data, rb.ATTRIBUTES_POS, rb.TRANSACTIONAL_BIT | rb.CONTROL_BIT)
    struct.pack_into(">I", data, rb.CRC_POS, __import__("crc32c").crc32c(bytes(data[21:])))
    assert list(rb.iter_records(data)) == []
    assert len(list(rb.iter_records(data, include_control=True))) == 1


def test_decode_rejects_record_overrunning_batch():
    data = bytearray(rb.build_batch([(b"key", b"value", [], 1)]))
    data[rb.HEADER_SIZE] = 0x7E  # record length varint: 63 bytes, far more than present
    struct.pack_into(">I", data, rb.CRC_POS, __import__("crc32c").crc32c(bytes(data[21:])))
    with pytest.raises(errors.CorruptMessage):
        rb.decode_batch(data)


def test_build_rejects_empty_batch():
    with pytest.raises(ValueError):
        rb.build_batch([])


ALL_CODECS = [codecs.NONE, codecs.GZIP, codecs.SNAPPY, codecs.LZ4, codecs.ZSTD]


@pytest.mark.parametrize("target", ALL_CODECS)
def test_recompress_changes_only_the_records_section(target):
    records = [(b"k%d" % i, b"value %d " % i * 20, [("h", b"v")], 1_700_000_000_000 + i) for i in range(30)]
    batches = [rb.build_batch(records[:10], compression=source, producer_id=7, producer_epoch=2,
                              base_sequence=10 * n, transactional=(n == 1))
               for n, source in enumerate([codecs.NONE, codecs.GZIP, codecs.ZSTD])]
    buf = bytearray(b"".join(batches))
    before = rb.parse_batches(buf, 1 << 20)
    out = rb.recompress(buf, before, target, 1 << 20)
    after = rb.parse_batches(out, 1 << 20)  # lengths and CRCs valid
    assert [h.compression for h in after] == [target] * 3
    keep = ("base_offset", "last_offset_delta", "base_timestamp", "max_timestamp", "producer_id",
            "producer_epoch", "base_sequence", "records_count", "is_transactional", "timestamp_type")
    assert [[getattr(h, f) for f in keep] for h in after] == [[getattr(h, f) for f in keep] for h in before]
    assert rb.decode_batch(bytes(out)) == rb.decode_batch(bytes(buf))
    if target == codecs.NONE:  # a batch already in the codec is copied byte for byte
        assert bytes(out[:before[0].size]) == batches[0]


def test_recompress_leaves_control_batches_alone():
    control = bytearray(rb.build_batch([(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", None, 1)]))
    attributes = struct.unpack_from(">h", control, rb.ATTRIBUTES_POS)[0] | rb.CONTROL_BIT
    struct.pack_into(">h", control, rb.ATTRIBUTES_POS, attributes)
    struct.pack_into(">I", control, rb.CRC_POS, crc32c.crc32c(bytes(control[rb.ATTRIBUTES_POS:])))
    headers = rb.parse_batches(control, 1 << 20)
    assert bytes(rb.recompress(control, headers, codecs.ZSTD, 1 << 20)) == bytes(control)


def test_recompress_refuses_records_that_inflate_beyond_the_limit():
    bomb = rb.build_batch([(None, b"\x00" * (1 << 20), None, 1)], compression=codecs.GZIP)
    assert len(bomb) < 4096
    with pytest.raises(errors.MessageTooLarge):
        rb.recompress(bomb, rb.parse_batches(bomb, 1 << 20), codecs.LZ4, 1 << 16)
