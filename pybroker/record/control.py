"""Control batches: the transaction markers partition leaders write (KIP-98).

A control batch is a v2 batch with the control bit (and the transactional bit) set in its
attributes, the producer id and epoch of the transaction it ends, baseSequence -1, and
exactly one uncompressed record whose key is ``CONTROL_KEY`` and value ``MARKER_VALUE``
(below).

Whether a batch is a control batch is in its header; which marker it is sits in the key
of its one record, a few bytes past the header (``marker_type``). Clients skip control
batches; read_committed consumers use ABORT markers, with the Fetch response's aborted
transactions, to drop what an aborted transaction wrote.
"""
from __future__ import annotations

import struct

from pybroker import errors
from pybroker.record import batch as rb
from pybroker.record.varint import decode_varint, decode_varlong

CONTROL_KEY = struct.Struct(
    ">h"  # version => Int16 (0)
    "h"   # type => Int16 (0 ABORT, 1 COMMIT)
)
MARKER_VALUE = struct.Struct(
    ">h"  # version => Int16 (0)
    "i"   # coordinatorEpoch => Int32
)

ABORT = 0
COMMIT = 1


def build_marker(producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int = 0,
                 now_ms: int | None = None) -> bytearray:
    """One COMMIT or ABORT control batch (offsets assigned later by the log)."""
    key = CONTROL_KEY.pack(0, COMMIT if commit else ABORT)
    value = MARKER_VALUE.pack(0, coordinator_epoch)
    return bytearray(rb.build_batch([(key, value, None, None)], producer_id=producer_id,
                                    producer_epoch=producer_epoch, transactional=True, control=True,
                                    now_ms=now_ms))


def marker_type(buf, header: rb.BatchHeader) -> int:
    """ABORT or COMMIT: the type in the key of a control batch's first record."""
    return read_marker(buf, header)[0]


def read_marker(buf, header: rb.BatchHeader) -> tuple[int, int]:
    """(ABORT or COMMIT, coordinator epoch) of a control batch: its first record's key and
    value. Reads a few bytes of an uncompressed record; raises CorruptMessage if they do
    not parse (a value too short for an epoch gives -1)."""
    with memoryview(buf) as mv:
        pos = header.position + rb.HEADER_SIZE
        end = header.position + header.size
        try:
            _length, pos = decode_varint(mv, pos)
            pos += 1  # the record's attributes
            _ts, pos = decode_varlong(mv, pos)
            _delta, pos = decode_varint(mv, pos)
            key_length, pos = decode_varint(mv, pos)
        except (IndexError, errors.KafkaError):
            raise errors.CorruptMessage(f"control batch at {header.base_offset} has no readable record") from None
        if key_length < CONTROL_KEY.size or pos + key_length > end:
            raise errors.CorruptMessage(f"control batch at {header.base_offset} has a short key")
        _version, kind = CONTROL_KEY.unpack_from(mv, pos)
        coordinator_epoch = -1
        try:
            value_length, pos = decode_varint(mv, pos + key_length)
            if value_length >= MARKER_VALUE.size and pos + MARKER_VALUE.size <= end:
                coordinator_epoch = MARKER_VALUE.unpack_from(mv, pos)[1]
        except (IndexError, errors.KafkaError):
            pass
    if kind not in (ABORT, COMMIT):
        raise errors.CorruptMessage(f"control batch at {header.base_offset} has unknown type {kind}")
    return kind, coordinator_epoch


