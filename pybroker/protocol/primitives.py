"""Kafka's primitive wire types: how each one is laid out, read and written.

Fixed-width integers are big-endian (two's complement)::

    int8 "b" | int16 ">h" | int32 ">i" | int64 ">q" | uint16 ">H" | uint32 ">I"
    float64 ">d" | bool "b" (0 = false, anything else true) | uuid 16 raw bytes

Variable-length types, classic encoding (non-flexible versions)::

    string          int16 length N (>= 0), N bytes of UTF-8
    nullable string int16 length N, -1 = null
    bytes           int32 length N (>= 0), N bytes
    nullable bytes  int32 length N, -1 = null   (records are nullable bytes)
    array           int32 count N, N elements; -1 = null where nullable

Compact encoding (flexible versions, KIP-482) replaces each length or count by an
unsigned varint holding N + 1, so 0 means null and 1 means empty.

Varints: unsigned varint = 7 bits per byte, low group first, high bit set on every
byte but the last; a 32-bit value takes at most 5 bytes. varint/varlong are zigzag
encoded signed 32/64-bit values ((n << 1) ^ (n >> 31|63)).

Readers take ``(buf: memoryview, pos: int)`` and return ``(value, new_pos)``; every
length is checked against the bytes actually present, so a hostile length raises
MalformedFrame instead of reading past the frame or allocating what it claims.
Writers append to a bytearray.
"""
from __future__ import annotations

import struct
import uuid

from pybroker.errors import CorruptMessage
from pybroker.record.varint import decode_unsigned

from .errors import MalformedFrame

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT16 = struct.Struct(">H")
UINT32 = struct.Struct(">I")
FLOAT64 = struct.Struct(">d")

ZERO_UUID = uuid.UUID(int=0)

# -- varints ---------------------------------------------------------------


def read_uvarint(buf, pos: int, max_bytes: int = 5) -> tuple[int, int]:
    """Unsigned varint of at most ``max_bytes`` bytes (5 for 32-bit, 10 for 64-bit)."""
    try:
        return decode_unsigned(buf, pos, max_bytes)
    except CorruptMessage as exc:
        raise MalformedFrame(f"bad varint in frame: {exc}") from None


def write_uvarint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError(f"unsigned varint cannot hold {value}")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def read_varint(buf, pos: int) -> tuple[int, int]:
    raw, pos = read_uvarint(buf, pos, 5)
    return (raw >> 1) ^ -(raw & 1), pos


def write_varint(out: bytearray, value: int) -> None:
    write_uvarint(out, ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def read_varlong(buf, pos: int) -> tuple[int, int]:
    raw, pos = read_uvarint(buf, pos, 10)
    return (raw >> 1) ^ -(raw & 1), pos


def write_varlong(out: bytearray, value: int) -> None:
    write_uvarint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


# -- lengths ---------------------------------------------------------------
# A length reader returns N, or -1 for null; the caller decides whether null is allowed.


def read_len16(buf, pos: int) -> tuple[int, int]:
    if pos + 2 > len(buf):
        raise MalformedFrame("string length runs past the end of the frame")
    return INT16.unpack_from(buf, pos)[0], pos + 2


def read_len32(buf, pos: int) -> tuple[int, int]:
    if pos + 4 > len(buf):
        raise MalformedFrame("length runs past the end of the frame")
    return INT32.unpack_from(buf, pos)[0], pos + 4


def read_compact_len(buf, pos: int) -> tuple[int, int]:
    n, pos = read_uvarint(buf, pos)
    return n - 1, pos


def write_len16(out: bytearray, n: int) -> None:
    out += INT16.pack(n)


def write_len32(out: bytearray, n: int) -> None:
    out += INT32.pack(n)


def write_compact_len(out: bytearray, n: int) -> None:
    write_uvarint(out, n + 1)


def check_length(buf, pos: int, n: int, nullable: bool, what: str) -> None:
    """Refuse a negative length other than a permitted null, or one past the end."""
    if n < 0:
        if n == -1 and nullable:
            return
        raise MalformedFrame(f"{what} has invalid length {n}")
    if pos + n > len(buf):
        raise MalformedFrame(f"{what} of {n} bytes runs past the end of the frame")


# -- strings and bytes -------------------------------------------------------


def read_string(buf, pos: int, read_len=read_len16, nullable: bool = False):
    n, pos = read_len(buf, pos)
    check_length(buf, pos, n, nullable, "string")
    if n < 0:
        return None, pos
    try:
        return str(buf[pos:pos + n], "utf-8"), pos + n
    except UnicodeDecodeError as exc:
        raise MalformedFrame(f"string is not UTF-8: {exc.reason}") from None


def write_string(out: bytearray, value, write_len=write_len16, nullable: bool = False) -> None:
    if value is None:
        if not nullable:
            raise ValueError("null given for a non-nullable string")
        write_len(out, -1)
        return
    data = value.encode("utf-8")
    if write_len is write_len16 and len(data) > 0x7FFF:
        raise ValueError(f"string of {len(data)} bytes exceeds the int16 length limit")
    write_len(out, len(data))
    out += data


def read_bytes(buf, pos: int, read_len=read_len32, nullable: bool = False):
    """Bytes copied out of the frame (small fields: group metadata, assignments)."""
    n, pos = read_len(buf, pos)
    check_length(buf, pos, n, nullable, "bytes")
    if n < 0:
        return None, pos
    return bytes(buf[pos:pos + n]), pos + n


def read_records(buf, pos: int, read_len=read_len32, nullable: bool = True):
    """Records stay a memoryview slice of the frame: no copy, and writable when the frame
    is a bytearray (the broker stamps base offsets into it before appending)."""
    n, pos = read_len(buf, pos)
    check_length(buf, pos, n, nullable, "records")
    if n < 0:
        return None, pos
    return buf[pos:pos + n], pos + n


def write_bytes(out: bytearray, value, write_len=write_len32, nullable: bool = False) -> None:
    if value is None:
        if not nullable:
            raise ValueError("null given for non-nullable bytes")
        write_len(out, -1)
        return
    write_len(out, len(value) if not isinstance(value, memoryview) else value.nbytes)
    out += value


def read_uuid(buf, pos: int):
    if pos + 16 > len(buf):
        raise MalformedFrame("uuid runs past the end of the frame")
    return uuid.UUID(bytes=bytes(buf[pos:pos + 16])), pos + 16


def write_uuid(out: bytearray, value) -> None:
    if isinstance(value, uuid.UUID):
        out += value.bytes
    elif isinstance(value, (bytes, bytearray)) and len(value) == 16:
        out += value
    elif isinstance(value, str):
        try:
            out += uuid.UUID(value).bytes
        except ValueError:
            raise ValueError(f"not a uuid: {value!r}") from None
    else:
        raise ValueError(f"not a uuid: {value!r}")


# -- tagged fields -----------------------------------------------------------


def skip_tagged_fields(buf, pos: int) -> int:
    """Skip a tagged-field section (uvarint count, then tag, size, data each)."""
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        check_length(buf, pos, size, False, "tagged field")
        pos += size
    return pos
