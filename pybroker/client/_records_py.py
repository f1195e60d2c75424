"""Pure-Python twin of the C accelerator ``pybroker._native`` (native/_native.c).

Same functions, same bytes: ``murmur2``, ``encode_varint``, ``encode_varlong`` and
``encode_records`` (the records section of a RecordBatch v2; the record grammar is at
the top of ``pybroker.record.batch``). ``tests/client/test_records_codec.py`` runs one
suite against both implementations.
"""
from __future__ import annotations

from pybroker.client.partitioner import murmur2
from pybroker.record.varint import encode_varint, encode_varlong

__all__ = ["murmur2", "encode_varint", "encode_varlong", "encode_records"]

# zigzag(-1): the length of a null key, value or header value.
_NULL = b"\x01"
# Varints of small non-negative values, the common case for offset deltas and lengths.
_SMALL = [encode_varint(i) for i in range(1 << 12)]


def _field(value, what: str, index: int) -> bytes:
    if value is None:
        return _NULL
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, bytes):
        try:
            value = bytes(memoryview(value))
        except TypeError:
            raise TypeError(f"{what} of record {index} must be bytes, str or None, "
                            f"not {type(value).__name__}") from None
    n = len(value)
    if n > 0x7FFFFFFF:
        raise ValueError(f"record {index} is larger than 2 GiB")
    return (_SMALL[n] if n < 4096 else encode_varint(n)) + value


def _headers(headers, index: int) -> bytes:
    if not headers:
        return b"\x00"
    try:
        pairs = list(headers)
    except TypeError:
        raise TypeError("headers must be a sequence of (key, value) pairs") from None
    parts = [encode_varint(len(pairs))]
    for j, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"header {j} of record {index} is not a (key, value) pair")
        if pair[0] is None:
            raise TypeError(f"header {j} of record {index} has a null key")
        parts.append(_field(pair[0], "header key", index))
        parts.append(_field(pair[1], "header value", index))
    return b"".join(parts)


def encode_records(keys: list, values: list, headers: list | None, timestamps: list,
                   base_timestamp: int) -> bytes:
    """The records section for records i = 0..n-1 with offset delta i."""
    n = len(keys)
    if len(values) != n or len(timestamps) != n or (headers is not None and len(headers) != n):
        raise ValueError("keys, values, timestamps (and headers unless None) must be lists of one length")
    out = []
    append = out.append
    small = _SMALL
    for i in range(n):
        body = b"".join((
            b"\x00",
            encode_varlong(timestamps[i] - base_timestamp),
            small[i] if i < 4096 else encode_varint(i),
            _field(keys[i], "key", i),
            _field(values[i], "value", i),
            _headers(headers[i], i) if headers is not None else b"\x00",
        ))
        if len(body) > 0x7FFFFFFF:
            raise ValueError(f"record {i} is larger than 2 GiB")
        append(encode_varint(len(body)))
        append(body)
    return b"".join(out)
