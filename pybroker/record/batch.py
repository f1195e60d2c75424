"""RecordBatch v2 (magic 2), the unit Kafka stores, replicates and serves.

Grammar (all integers big-endian unless varint)::

    RecordBatch =>
      baseOffset           int64
      batchLength          int32    bytes after this field
      partitionLeaderEpoch int32
      magic                int8     2
      crc                  uint32   CRC-32C of attributes..end of batch
      attributes           int16    bit 0-2 codec, 3 timestamp type (1 = LogAppendTime),
                                    4 transactional, 5 control
      lastOffsetDelta      int32
      baseTimestamp        int64
      maxTimestamp         int64
      producerId           int64
      producerEpoch        int16
      baseSequence         int32
      records              int32 count, then the records (compressed as a whole
                                    when the codec is not NONE)

    Record =>
      length               varint   bytes after this field
      attributes           int8     unused
      timestampDelta       varlong
      offsetDelta          varint
      keyLength            varint   -1 = null
      key                  bytes
      valueLength          varint   -1 = null
      value                bytes
      headers              varint count, then [keyLength varint, key utf-8,
                                    valueLength varint (-1 = null), value]

The broker works per batch: it validates headers and CRC (``parse_batches``), rewrites
baseOffset and partitionLeaderEpoch in place (both outside the CRC, ``assign_offsets``) and
never looks inside the records section — unless a topic's ``compression.type`` names a
codec, when ``recompress`` re-encodes that section as a whole, or the topic is compacted,
when ``keyless_records`` checks every record has a key. The log cleaner rewrites batches
with ``record_spans`` and ``rebuild_batch``. Decoding records
(``decode_batch``) is for clients, tools and tests.
"""
from __future__ import annotations

import struct
import time
from typing import Iterator, NamedTuple

import crc32c

from pybroker import errors
from pybroker.record import compression as codecs
from pybroker.record.varint import (
    decode_varint,
    decode_varlong,
    encode_varint,
    encode_varlong,
)

HEADER = struct.Struct(
    ">q"  # baseOffset => Int64
    "i"   # batchLength => Int32 (bytes after this field)
    "i"   # partitionLeaderEpoch => Int32
    "b"   # magic => Int8 (2)
    "I"   # crc => Uint32 (CRC-32C of attributes..end)
    "h"   # attributes => Int16
    "i"   # lastOffsetDelta => Int32
    "q"   # baseTimestamp => Int64
    "q"   # maxTimestamp => Int64
    "q"   # producerId => Int64
    "h"   # producerEpoch => Int16
    "i"   # baseSequence => Int32
    "i"   # recordsCount => Int32
)
HEADER_SIZE = HEADER.size  # 61

# Offsets of header fields inside a batch.
BASE_OFFSET_POS = 0
LENGTH_POS = 8
LEADER_EPOCH_POS = 12
MAGIC_POS = 16
CRC_POS = 17
ATTRIBUTES_POS = 21
MAX_TIMESTAMP_POS = 35

# baseOffset + batchLength: what precedes the length-counted part of every batch (all magics).
LOG_OVERHEAD = 12
# Smallest batchLength a v2 batch can have: the header after batchLength, zero records.
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # 49
# Smallest legacy (magic 0) message, so a legacy message set is recognised as such.
_LEGACY_MIN_LENGTH = 14

MAGIC = 2
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

CREATE_TIME = 0
LOG_APPEND_TIME = 1

_OFFSET_AND_LENGTH = struct.Struct(">qi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch, plus where it starts in the parsed buffer."""

    position: int
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & codecs.CODEC_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_BIT else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)


class Record(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _read_header(mv: memoryview, pos: int, max_batch_bytes: int | None,
                 strict_counts: bool = False) -> BatchHeader:
    """Validate the batch starting at ``pos`` and return its header; raise a Kafka error
    naming what is wrong. Work is per batch: one unpack, one crc32c over a slice.

    ``strict_counts`` is Kafka's LogValidator rule for Produce: exactly lastOffsetDelta + 1
    records. Everything that reads a log (recovery, replication, clients) accepts what
    compaction leaves: fewer records than offsets, or none (the kept last batch of an
    idempotent producer)."""
    end = len(mv)
    if end - pos < MAGIC_POS + 1:
        raise errors.CorruptMessage(f"partial batch at byte {pos}: {end - pos} bytes left")
    base_offset, batch_length = _OFFSET_AND_LENGTH.unpack_from(mv, pos)
    if batch_length < _LEGACY_MIN_LENGTH:
        raise errors.CorruptMessage(f"batch at byte {pos} declares length {batch_length}")
    size = batch_length + LOG_OVERHEAD
    if max_batch_bytes is not None and size > max_batch_bytes:
        raise errors.MessageTooLarge(
            f"batch at byte {pos} is {size} bytes, larger than the limit of {max_batch_bytes}")
    if pos + size > end:
        raise errors.CorruptMessage(
            f"partial batch at byte {pos}: declares {size} bytes, {end - pos} present")
    magic = mv[pos + MAGIC_POS]
    if magic != MAGIC:
        if magic in (0, 1):
            # A well-formed legacy message set: the client speaks an older format, which
            # Produce v3+ forbids. Not corruption, so not a retriable error either.
            raise errors.UnsupportedForMessageFormat(
                f"batch at byte {pos} has magic {magic}; only record batch v2 is accepted")
        raise errors.CorruptMessage(f"batch at byte {pos} has unknown magic {magic}")
    if batch_length < MIN_BATCH_LENGTH:
        raise errors.CorruptMessage(f"batch at byte {pos} declares length {batch_length} < {MIN_BATCH_LENGTH}")
    header = BatchHeader(pos, *HEADER.unpack_from(mv, pos))
    actual = crc32c.crc32c(mv[pos + ATTRIBUTES_POS:pos + size])
    if actual != header.crc:
        raise errors.CorruptMessage(
            f"batch at byte {pos} fails its CRC: stored {header.crc:#010x}, computed {actual:#010x}")
    if strict_counts:
        bad_count = header.records_count < 1 or header.last_offset_delta != header.records_count - 1
    else:
        bad_count = header.records_count < 0 or header.records_count > header.last_offset_delta + 1
    if bad_count:
        raise errors.CorruptMessage(
            f"batch at byte {pos} has {header.records_count} records but lastOffsetDelta "
            f"{header.last_offset_delta}")
    return header


def _byte_view(buf) -> memoryview:
    """A flat unsigned-byte view of ``buf`` (bytes-like, or a memoryview of any format),
    for ``with``: releasing it lets a bytearray behind it grow again."""
    mv = memoryview(buf)
    return mv if mv.ndim == 1 and mv.itemsize == 1 else mv.cast("B")


def parse_batches(buf, max_batch_bytes: int, strict_counts: bool = True) -> list[BatchHeader]:
    """Strictly validate the records field of a Produce request: one or more complete v2
    batches and nothing else. Raises CorruptMessage (torn, bad length, CRC, counts),
    UnsupportedForMessageFormat (magic 0/1) or MessageTooLarge (a batch larger than
    ``max_batch_bytes``). Followers pass ``strict_counts=False``: a leader's compacted log
    holds batches with fewer records than offsets."""
    with _byte_view(buf) as mv:
        end = len(mv)
        if end == 0:
            raise errors.CorruptMessage("empty records")
        headers = []
        pos = 0
        while pos < end:
            header = _read_header(mv, pos, max_batch_bytes, strict_counts)
            headers.append(header)
            pos += header.batch_length + LOG_OVERHEAD
        return headers


def scan_valid_prefix(buf, start: int = 0) -> tuple[list[BatchHeader], int, str | None]:
    """Lenient scan for log recovery: the valid batches from ``start``, the byte where the
    valid prefix ends, and why it ends there (None if the buffer ends cleanly). Besides the
    checks of ``parse_batches`` it requires offsets to move forward batch after batch."""
    headers: list[BatchHeader] = []
    with memoryview(buf) as mv:
        end = len(mv)
        pos = start
        next_offset = None
        while pos < end:
            try:
                header = _read_header(mv, pos, None)
            except errors.KafkaError as exc:
                return headers, pos, str(exc)
            if next_offset is not None and header.base_offset < next_offset:
                return headers, pos, (f"batch at byte {pos} has base offset {header.base_offset}, "
                                      f"below the previous batch's next offset {next_offset}")
            headers.append(header)
            next_offset = header.next_offset
            pos += header.size
        return headers, pos, None


def read_header_unchecked(buf, pos: int) -> BatchHeader:
    """The header at ``pos`` without CRC work, for walking a log already validated. The
    caller guarantees 61 bytes are present."""
    return BatchHeader(pos, *HEADER.unpack_from(buf, pos))


def assign_offsets(buf, headers: list[BatchHeader], base_offset: int, leader_epoch: int) -> int:
    """Give the batches consecutive offsets from ``base_offset`` and stamp the leader
    epoch, in place (both fields lie outside the CRC). Returns the last offset assigned."""
    offset = base_offset
    for header in headers:
        _INT64.pack_into(buf, header.position + BASE_OFFSET_POS, offset)
        _INT32.pack_into(buf, header.position + LEADER_EPOCH_POS, leader_epoch)
        offset += header.last_offset_delta + 1
    return offset - 1


def set_log_append_time(buf, header: BatchHeader, timestamp_ms: int) -> BatchHeader:
    """Mark the batch LogAppendTime with ``timestamp_ms`` as its max timestamp and
    recompute its CRC (both fields are covered by it). Returns the updated header."""
    pos = header.position
    attributes = header.attributes | TIMESTAMP_TYPE_BIT
    _INT16.pack_into(buf, pos + ATTRIBUTES_POS, attributes)
    _INT64.pack_into(buf, pos + MAX_TIMESTAMP_POS, timestamp_ms)
    with memoryview(buf) as mv:
        crc = crc32c.crc32c(mv[pos + ATTRIBUTES_POS:pos + header.size])
    _UINT32.pack_into(buf, pos + CRC_POS, crc)
    return header._replace(attributes=attributes, max_timestamp=timestamp_ms, crc=crc)


def recompress(buf, headers: list[BatchHeader], codec: int, max_records_bytes: int) -> bytearray:
    """The batches of ``buf`` (validated: ``headers`` from ``parse_batches``) with their
    records sections in ``codec``, as Kafka applies a topic's ``compression.type``. Only
    that section and the fields describing it (length, codec bits, CRC) change: producer
    id, epoch, sequences, timestamps and counts stay, so idempotence and ordering hold.
    Batches already in ``codec``, and control batches, are copied as they are."""
    out = bytearray()
    with _byte_view(buf) as mv:
        for h in headers:
            batch = mv[h.position:h.position + h.size]
            start = len(out)
            out += batch[:HEADER_SIZE]
            if h.compression == codec or h.is_control:
                out += batch[HEADER_SIZE:]
                continue
            out += codecs.compress(codec, records_section(mv, h, max_records_bytes))
            _INT32.pack_into(out, start + LENGTH_POS, len(out) - start - LOG_OVERHEAD)
            _INT16.pack_into(out, start + ATTRIBUTES_POS, (h.attributes & ~codecs.CODEC_MASK) | codec)
            with memoryview(out) as written:
                _UINT32.pack_into(out, start + CRC_POS, crc32c.crc32c(written[start + ATTRIBUTES_POS:]))
    return out


def _put_bytes(body: bytearray, data: bytes | None) -> None:
    if data is None:
        body += b"\x01"  # zigzag(-1): null
    else:
        body += encode_varint(len(data))
        body += data


def _encode_record(offset_delta: int, timestamp_delta: int, key, value, headers) -> bytes:
    body = bytearray(b"\x00")  # attributes
    body += encode_varlong(timestamp_delta)
    body += encode_varint(offset_delta)
    _put_bytes(body, key)
    _put_bytes(body, value)
    body += encode_varint(len(headers))
    for hkey, hvalue in headers:
        _put_bytes(body, hkey.encode("utf-8") if isinstance(hkey, str) else bytes(hkey))
        _put_bytes(body, hvalue)
    return encode_varint(len(body)) + body


def build_batch(records: list[tuple], *, base_offset: int = 0, compression: int = 0,
                producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
                partition_leader_epoch: int = -1, transactional: bool = False,
                control: bool = False, now_ms: int | None = None) -> bytes:
    """Build one v2 batch as Kafka's producer does. ``records`` holds
    ``(key, value, headers, timestamp_ms)`` tuples; a None timestamp means ``now_ms``
    (default: the wall clock). Raises ValueError for an empty batch."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    if compression not in codecs.NAMES:
        raise errors.UnsupportedCompressionType(f"unknown compression codec id {compression}")
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    timestamps = [now_ms if rec[3] is None else rec[3] for rec in records]
    base_timestamp = timestamps[0]
    body = bytearray()
    for delta, (rec, ts) in enumerate(zip(records, timestamps)):
        key, value, headers = rec[0], rec[1], rec[2] or ()
        body += _encode_record(delta, ts - base_timestamp, _as_bytes(key), _as_bytes(value),
                               [(k, _as_bytes(v)) for k, v in headers])
    if compression:
        body = codecs.compress(compression, bytes(body))
    attributes = compression | (TRANSACTIONAL_BIT if transactional else 0) | (CONTROL_BIT if control else 0)
    count = len(records)
    batch = bytearray(HEADER_SIZE)
    HEADER.pack_into(batch, 0, base_offset, HEADER_SIZE - LOG_OVERHEAD + len(body),
                     partition_leader_epoch, MAGIC, 0, attributes, count - 1, base_timestamp,
                     max(timestamps), producer_id, producer_epoch, base_sequence, count)
    batch += body
    _UINT32.pack_into(batch, CRC_POS, crc32c.crc32c(memoryview(batch)[ATTRIBUTES_POS:]))
    return bytes(batch)


def _as_bytes(value) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def decode_batch(buf) -> list[Record]:
    """Validate one batch (CRC included), decompress it and decode its records. For
    clients, tools and tests; never on the broker's hot path."""
    with memoryview(buf) as mv:
        header = _read_header(mv, 0, None)
        section = mv[HEADER_SIZE:header.size]
        try:
            data = codecs.decompress(header.compression, section)
        finally:
            section.release()
    return _decode_records(header, data)


def _decode_records(header: BatchHeader, data: bytes) -> list[Record]:
    return [record for record, _, _ in record_spans(header, data)]


def record_spans(header: BatchHeader, data: bytes) -> Iterator[tuple[Record, int, int]]:
    """Each record of a batch's (decompressed) records section with the byte range it
    occupies there, so a cleaner can keep records by copying their bytes unchanged."""
    pos = 0
    end = len(data)
    log_append = header.timestamp_type == LOG_APPEND_TIME
    for _ in range(header.records_count):
        start = pos
        length, pos = decode_varint(data, pos)
        record_end = pos + length
        if length < 0 or record_end > end:
            raise errors.CorruptMessage("record overruns its batch")
        pos += 1  # attributes
        ts_delta, pos = decode_varlong(data, pos)
        offset_delta, pos = decode_varint(data, pos)
        key, pos = _decode_bytes(data, pos, record_end)
        value, pos = _decode_bytes(data, pos, record_end)
        count, pos = decode_varint(data, pos)
        if count < 0 or count > record_end - pos:
            raise errors.CorruptMessage(f"record declares {count} headers")
        headers = []
        for _ in range(count):
            raw_key, pos = _decode_bytes(data, pos, record_end)
            if raw_key is None:
                raise errors.CorruptMessage("record header with a null key")
            hvalue, pos = _decode_bytes(data, pos, record_end)
            try:
                headers.append((raw_key.decode("utf-8"), hvalue))
            except UnicodeDecodeError:
                raise errors.CorruptMessage("record header key is not UTF-8") from None
        if pos != record_end:
            raise errors.CorruptMessage("record length does not match its fields")
        timestamp = header.max_timestamp if log_append else header.base_timestamp + ts_delta
        yield Record(header.base_offset + offset_delta, timestamp, key, value, headers), start, pos
    if pos != end:
        raise errors.CorruptMessage(f"{end - pos} bytes after the last record of the batch")


def records_section(buf, header: BatchHeader, max_records_bytes: int | None = None) -> bytes:
    """The decompressed records section of the batch ``header`` describes in ``buf``."""
    with _byte_view(buf) as mv:
        section = mv[header.position + HEADER_SIZE:header.position + header.size]
        try:
            return codecs.decompress(header.compression, section, max_records_bytes)
        finally:
            section.release()


def keyless_records(buf, headers: list[BatchHeader], max_records_bytes: int) -> list[int]:
    """Indexes (within their batch, Kafka's ``batch_index``) of data records without a
    key: what a compacted topic refuses. Decodes the records; only compacted topics pay."""
    found = []
    for header in headers:
        if header.is_control:
            continue
        data = records_section(buf, header, max_records_bytes)
        for n, (record, _, _) in enumerate(record_spans(header, data)):
            if record.key is None:
                found.append(n)
    return found


def rebuild_batch(buf, header: BatchHeader, data: bytes, kept: list[tuple[Record, int, int]]) -> bytes:
    """The batch ``header`` describes with only the ``kept`` records (spans of its
    decompressed section ``data``), as Kafka's cleaner writes it: base offset, last offset
    delta, base timestamp, producer id/epoch/base sequence and attributes stay (so offsets
    and sequences keep their meaning), the section is recompressed with the batch's own
    codec, max timestamp, count, length and CRC follow the kept records. With nothing kept
    the batch stays as an empty, uncompressed header (Kafka keeps the last batch of an
    idempotent producer that way)."""
    with _byte_view(buf) as mv:
        out = bytearray(mv[header.position:header.position + HEADER_SIZE])
    attributes = header.attributes
    if kept:
        body = b"".join(data[start:end] for _, start, end in kept)
        out += codecs.compress(header.compression, body)
    else:
        attributes &= ~codecs.CODEC_MASK
    max_timestamp = header.max_timestamp
    if kept and header.timestamp_type == CREATE_TIME:
        max_timestamp = max(record.timestamp for record, _, _ in kept)
    _INT32.pack_into(out, LENGTH_POS, len(out) - LOG_OVERHEAD)
    _INT16.pack_into(out, ATTRIBUTES_POS, attributes)
    _INT64.pack_into(out, MAX_TIMESTAMP_POS, max_timestamp)
    _INT32.pack_into(out, HEADER_SIZE - 4, len(kept))
    _UINT32.pack_into(out, CRC_POS, crc32c.crc32c(memoryview(out)[ATTRIBUTES_POS:]))
    return bytes(out)


def _decode_bytes(data: bytes, pos: int, limit: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(data, pos)
    if length == -1:
        return None, pos
    if length < 0 or pos + length > limit:
        raise errors.CorruptMessage(f"field of {length} bytes overruns its record")
    return data[pos:pos + length], pos + length


def iter_batches(buf) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Headers and byte views of concatenated batches, stopping quietly at a trailing
    partial batch (fetch responses end with one when the size limit cuts a batch)."""
    mv = memoryview(buf)
    end = len(mv)
    pos = 0
    while end - pos >= LOG_OVERHEAD:
        (batch_length,) = _INT32.unpack_from(mv, pos + LENGTH_POS)
        if pos + LOG_OVERHEAD + batch_length > end:
            return
        header = _read_header(mv, pos, None)
        yield header, mv[pos:pos + header.size]
        pos += header.size


def iter_records(buf, include_control: bool = False) -> Iterator[Record]:
    """Records of concatenated batches, tolerating a trailing partial batch. Control
    batches (transaction markers) are skipped unless asked for, as consumers do."""
    for header, view in iter_batches(buf):
        if header.is_control and not include_control:
            continue
        for record in decode_batch(view):
            yield record
