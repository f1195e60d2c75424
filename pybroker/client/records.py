"""Record batches as the producer builds them, from per-partition columns.

The per-record work (varints, record encoding) runs in the C accelerator
``pybroker._native`` when it is built, else in its pure-Python twin
``pybroker.client._records_py``; both give the same bytes. Set the environment variable
``PYBROKER_NO_NATIVE=1`` to use the Python twin even when the extension is present (the
benchmark compares both). ``IMPLEMENTATION`` names the one in use.

What is per batch (the 61-byte header, compression, one CRC-32C) stays here, in Python.
"""
from __future__ import annotations

import os

import crc32c

from pybroker.record import compression as codecs
from pybroker.record.batch import (
    ATTRIBUTES_POS, CRC_POS, HEADER, HEADER_SIZE, LOG_OVERHEAD, MAGIC, TRANSACTIONAL_BIT,
)

from pybroker.client import _records_py

if os.environ.get("PYBROKER_NO_NATIVE", "") not in ("", "0"):
    _impl = _records_py
    IMPLEMENTATION = "python"
else:
    try:
        from pybroker import _native as _impl
        IMPLEMENTATION = "native"
    except ImportError:
        _impl = _records_py
        IMPLEMENTATION = "python"

murmur2 = _impl.murmur2
encode_records = _impl.encode_records

_CRC = __import__("struct").Struct(">I")


def build_batch_from_columns(keys: list, values: list, headers: list | None, timestamps: list,
                             *, compression: int = 0, producer_id: int = -1,
                             producer_epoch: int = -1, base_sequence: int = -1,
                             transactional: bool = False, encode=None) -> bytes:
    """One v2 batch (base offset 0, leader epoch -1) holding records i = 0..n-1.

    ``headers`` is None when no record has headers, else one entry (None or pairs) per
    record. ``encode`` overrides the records-section encoder (tests pass either twin)."""
    count = len(keys)
    if not count:
        raise ValueError("a record batch needs at least one record")
    base_ts = timestamps[0]
    body = (encode or encode_records)(keys, values, headers, timestamps, base_ts)
    if compression:
        body = codecs.compress(compression, body)
    batch = bytearray(HEADER_SIZE + len(body))
    HEADER.pack_into(batch, 0, 0, HEADER_SIZE - LOG_OVERHEAD + len(body), -1, MAGIC, 0,
                     compression | (TRANSACTIONAL_BIT if transactional else 0), count - 1,
                     base_ts, max(timestamps), producer_id, producer_epoch, base_sequence, count)
    batch[HEADER_SIZE:] = body
    _CRC.pack_into(batch, CRC_POS, crc32c.crc32c(memoryview(batch)[ATTRIBUTES_POS:]))
    return bytes(batch)
