"""`pybroker dump-log`: print segment, offset index and time index files, like
kafka-dump-log.

Files on disk (one partition directory, Kafka's names)::

    <20-digit base offset>.log        record batches v2, back to back
    <20-digit base offset>.index      entries of
        ">i"  # relative offset => Int32 (offset - base offset)
        "i"   # position => Int32 (byte position of a batch in the .log)
    <20-digit base offset>.timeindex  entries of
        ">q"  # timestamp => Int64 (max timestamp so far)
        "i"   # relative offset => Int32

Index files may be preallocated: a zero entry after the first marks the end, as in Kafka.
The files are read with pread, batch by batch, never mapped: a broker may truncate a
segment underneath us, and a read past the end must be a short read, not a SIGBUS.
A torn or corrupt tail is reported, never fatal.
"""
from __future__ import annotations

import os
import struct
import sys

import crc32c

from pybroker import errors
from pybroker.record import batch as rb
from pybroker.record import compression

INDEX_ENTRY = struct.Struct(
    ">i"  # relative offset => Int32
    "i"   # position => Int32
)
TIME_INDEX_ENTRY = struct.Struct(
    ">q"  # timestamp => Int64
    "i"   # relative offset => Int32
)
# A control record's key and value (transaction markers).
CONTROL_KEY = struct.Struct(
    ">h"  # version => Int16
    "h"   # type => Int16 (0 ABORT, 1 COMMIT)
)
END_TXN_VALUE = struct.Struct(
    ">h"  # version => Int16
    "i"   # coordinatorEpoch => Int32
)
DELETE_HORIZON_BIT = 0x40  # attributes bit 6: base timestamp is the delete horizon
INT32_MAX = 2**31 - 1
TIMESTAMP_TYPES = {rb.CREATE_TIME: "CreateTime", rb.LOG_APPEND_TIME: "LogAppendTime"}
CONTROL_TYPES = {0: "ABORT", 1: "COMMIT"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dump-log", help="print the contents of log segments and their indexes",
        description="Print .log, .index and .timeindex files as kafka-dump-log does.",
    )
    p.add_argument("--files", nargs="+", required=True, metavar="FILE",
                   help="segment (.log), offset index (.index) or time index (.timeindex) files")
    p.add_argument("--print-data-log", action="store_true",
                   help="print record keys and payloads (implies --deep-iteration)")
    p.add_argument("--deep-iteration", action="store_true",
                   help="print every record, not only the batch headers")
    p.set_defaults(func=run)


def run(args) -> int:
    status = 0
    out = sys.stdout
    for path in args.files:
        try:
            status |= dump_file(path, out, deep=args.deep_iteration or args.print_data_log,
                                print_data=args.print_data_log)
        except OSError as exc:
            print(f"Error reading {path}: {exc.strerror or exc}", file=sys.stderr)
            status = 1
    return status


def base_offset_of(path: str) -> int:
    stem = os.path.basename(path).split(".", 1)[0]
    if not stem.isdigit():
        raise ValueError(f"{os.path.basename(path)} is not named by a base offset")
    return int(stem)


def dump_file(path: str, out, deep: bool = False, print_data: bool = False) -> int:
    """Dump one file to ``out``; returns 1 if it is not named by a base offset."""
    name = os.path.basename(path)
    kind = name.rsplit(".", 1)[-1] if "." in name else ""
    if kind not in ("log", "index", "timeindex"):
        out.write(f"Ignoring unknown file {path}\n")
        return 0
    out.write(f"Dumping {path}\n")
    try:
        base = base_offset_of(path)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    with open(path, "rb") as f:
        fd = f.fileno()
        if kind == "log":
            out.write(f"Log starting offset: {base}\n")
            return dump_log_segment(fd, name, out, deep, print_data)
        if kind == "index":
            return dump_index(fd, name, base, out, INDEX_ENTRY, "offset: {1} position: {0}\n", offset_first=True)
        return dump_index(fd, name, base, out, TIME_INDEX_ENTRY, "timestamp: {0} offset: {1}\n", offset_first=False)


def dump_index(fd: int, name: str, base: int, out, entry: struct.Struct, line: str, offset_first: bool) -> int:
    size = os.fstat(fd).st_size
    count = size // entry.size
    data = os.pread(fd, count * entry.size, 0)
    count = len(data) // entry.size  # the file may have shrunk since fstat
    for i in range(count):
        a, b = entry.unpack_from(data, i * entry.size)
        relative = a if offset_first else b
        # Preallocated index: zeros after the first entry are unused space.
        if i > 0 and relative == 0:
            break
        if offset_first:
            out.write(line.format(b, base + relative))
        else:
            out.write(line.format(a, base + relative))
    if size % entry.size:
        out.write(f"Found {size % entry.size} invalid bytes at the end of {name}\n")
    return 0


def dump_log_segment(fd: int, name: str, out, deep: bool, print_data: bool) -> int:
    size = os.fstat(fd).st_size
    pos = 0
    reason = None
    while pos < size:
        head = os.pread(fd, rb.HEADER_SIZE, pos)
        if len(head) < rb.HEADER_SIZE:
            reason = f"partial batch header at byte {pos}: {len(head)} bytes"
            break
        header = rb.read_header_unchecked(head, 0)._replace(position=pos)
        if header.batch_length < rb.MIN_BATCH_LENGTH:
            reason = f"batch at byte {pos} declares length {header.batch_length}"
            break
        if pos + header.size > size:
            reason = f"partial batch at byte {pos}: declares {header.size} bytes, {size - pos} present"
            break
        data = os.pread(fd, header.size, pos)
        if len(data) < header.size:
            reason = f"file shrank while reading the batch at byte {pos}"
            break
        crc_valid = header.magic == rb.MAGIC and crc32c.crc32c(memoryview(data)[rb.ATTRIBUTES_POS:]) == header.crc
        out.write(format_batch(header, crc_valid))
        if deep and header.magic == rb.MAGIC:
            if crc_valid:
                try:
                    lines = format_records(header, rb.decode_batch(data), print_data)
                except errors.KafkaError as exc:
                    lines = f"| records of the batch at byte {pos} cannot be decoded: {exc}\n"
            else:
                lines = f"| records of the batch at byte {pos} skipped: CRC mismatch\n"
            out.write(lines)
        pos += header.size
    if pos < size:
        # Like kafka-dump-log: a bad tail is a finding about the data, not a failure of
        # the tool, so the exit code stays 0.
        out.write(f"Found {size - pos} invalid bytes at the end of {name}\n")
        print(f"{name}: {reason}", file=sys.stderr)
    return 0


def last_sequence(header: rb.BatchHeader) -> int:
    if header.base_sequence < 0:
        return -1
    seq = header.base_sequence + header.last_offset_delta
    return seq - INT32_MAX - 1 if seq > INT32_MAX else seq


def format_batch(h: rb.BatchHeader, crc_valid: bool) -> str:
    horizon = f"OptionalLong[{h.base_timestamp}]" if h.attributes & DELETE_HORIZON_BIT else "OptionalLong.empty"
    codec = compression.NAMES.get(h.compression, f"unknown({h.compression})")
    return (
        f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.records_count} "
        f"baseSequence: {h.base_sequence} lastSequence: {last_sequence(h)} "
        f"producerId: {h.producer_id} producerEpoch: {h.producer_epoch} "
        f"partitionLeaderEpoch: {h.partition_leader_epoch} "
        f"isTransactional: {str(h.is_transactional).lower()} isControl: {str(h.is_control).lower()} "
        f"deleteHorizonMs: {horizon} position: {h.position} "
        f"{TIMESTAMP_TYPES[h.timestamp_type]}: {h.max_timestamp} size: {h.size} "
        f"magic: {h.magic} compresscodec: {codec} crcValid: {str(crc_valid).lower()}\n"
    )


def format_records(h: rb.BatchHeader, records: list[rb.Record], print_data: bool) -> str:
    ts_type = TIMESTAMP_TYPES[h.timestamp_type]
    lines = []
    for rec in records:
        seq = -1
        if h.base_sequence >= 0:
            seq = h.base_sequence + (rec.offset - h.base_offset)
            if seq > INT32_MAX:
                seq -= INT32_MAX + 1
        parts = [
            f"| offset: {rec.offset} {ts_type}: {rec.timestamp} "
            f"keySize: {-1 if rec.key is None else len(rec.key)} "
            f"valueSize: {-1 if rec.value is None else len(rec.value)} "
            f"sequence: {seq} headerKeys: [{','.join(k for k, _ in rec.headers)}]"
        ]
        if h.is_control:
            parts.append(format_control(rec))
        elif print_data:
            if rec.key is not None:
                parts.append(f" key: {rec.key.decode('utf-8', 'replace')}")
            if rec.value is not None:
                parts.append(f" payload: {rec.value.decode('utf-8', 'replace')}")
        parts.append("\n")
        lines.append("".join(parts))
    return "".join(lines)


def format_control(rec: rb.Record) -> str:
    if rec.key is None or len(rec.key) < CONTROL_KEY.size:
        return " controlType: UNKNOWN"
    _, ctype = CONTROL_KEY.unpack_from(rec.key, 0)
    if ctype in CONTROL_TYPES and rec.value is not None and len(rec.value) >= END_TXN_VALUE.size:
        _, epoch = END_TXN_VALUE.unpack_from(rec.value, 0)
        return f" endTxnMarker: {CONTROL_TYPES[ctype]} coordinatorEpoch: {epoch}"
    return f" controlType: UNKNOWN({ctype})"
