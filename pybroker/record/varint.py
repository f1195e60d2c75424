"""Variable-length integers as Kafka encodes them (protobuf style, little-endian groups of
7 bits, high bit = "more bytes follow").

Signed values (record fields) are zigzag-mapped first so small negative numbers stay short:
0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3 ...  Unsigned varints (the flexible protocol versions'
compact lengths and tagged fields) skip the zigzag step.

Decoders take ``(buf, pos)`` and return ``(value, next_pos)``; a truncated or over-long
varint raises ``errors.CorruptMessage`` instead of reading past the bytes present.
"""
from __future__ import annotations

from pybroker import errors

# A 32-bit value needs at most 5 groups of 7 bits, a 64-bit value at most 10.
_MAX_VARINT_BYTES = 5
_MAX_VARLONG_BYTES = 10


def encode_unsigned_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"unsigned varint cannot hold {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_unsigned(buf, pos: int, max_bytes: int) -> tuple[int, int]:
    """Unsigned LEB128 of at most ``max_bytes`` bytes; CorruptMessage if truncated or longer."""
    result = 0
    shift = 0
    end = len(buf)
    for i in range(max_bytes):
        if pos >= end:
            raise errors.CorruptMessage("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise errors.CorruptMessage(f"varint longer than {max_bytes} bytes")


def decode_unsigned_varint(buf, pos: int = 0) -> tuple[int, int]:
    value, pos = decode_unsigned(buf, pos, _MAX_VARINT_BYTES)
    if value > 0xFFFFFFFF:
        raise errors.CorruptMessage("unsigned varint exceeds 32 bits")
    return value, pos


def encode_varint(value: int) -> bytes:
    """Zigzag varint of a signed 32-bit value."""
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        raise ValueError(f"varint out of int32 range: {value}")
    return encode_unsigned_varint(((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def encode_varlong(value: int) -> bytes:
    """Zigzag varint of a signed 64-bit value."""
    if not -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        raise ValueError(f"varlong out of int64 range: {value}")
    return encode_unsigned_varint(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def decode_varint(buf, pos: int = 0) -> tuple[int, int]:
    raw, pos = decode_unsigned(buf, pos, _MAX_VARINT_BYTES)
    if raw > 0xFFFFFFFF:
        raise errors.CorruptMessage("varint exceeds 32 bits")
    return (raw >> 1) ^ -(raw & 1), pos


def decode_varlong(buf, pos: int = 0) -> tuple[int, int]:
    raw, pos = decode_unsigned(buf, pos, _MAX_VARLONG_BYTES)
    if raw > 0xFFFFFFFFFFFFFFFF:
        raise errors.CorruptMessage("varlong exceeds 64 bits")
    return (raw >> 1) ^ -(raw & 1), pos


def size_of_varint(value: int) -> int:
    """Encoded length of a zigzag varint/varlong, without building it."""
    raw = (value << 1) ^ (value >> 63)
    raw &= 0xFFFFFFFFFFFFFFFF
    size = 1
    while raw >= 0x80:
        raw >>= 7
        size += 1
    return size
