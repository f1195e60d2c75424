"""Primitive encodings: varint boundaries, zigzag, compact lengths, refusals."""
from __future__ import annotations

import uuid

import pytest

from pybroker import protocol
from pybroker.protocol import ApiKey, MalformedFrame, primitives as p


@pytest.mark.parametrize("value,encoded", [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"),
                                           (300, b"\xac\x02"), (2**32 - 1, b"\xff\xff\xff\xff\x0f")])
def test_unsigned_varint_matches_kafka_layout(value, encoded):
    out = bytearray()
    p.write_uvarint(out, value)
    assert bytes(out) == encoded
    assert p.read_uvarint(memoryview(encoded), 0) == (value, len(encoded))


@pytest.mark.parametrize("value", [0, -1, 1, -64, 63, 2**31 - 1, -(2**31)])
def test_varint_zigzag_round_trips(value):
    out = bytearray()
    p.write_varint(out, value)
    assert len(out) <= 5
    assert p.read_varint(memoryview(bytes(out)), 0) == (value, len(out))


@pytest.mark.parametrize("value", [0, -1, 1, 2**63 - 1, -(2**63)])
def test_varlong_zigzag_round_trips(value):
    out = bytearray()
    p.write_varlong(out, value)
    assert len(out) <= 10
    assert p.read_varlong(memoryview(bytes(out)), 0) == (value, len(out))


def test_zigzag_small_values_are_one_byte():
    out = bytearray()
    p.write_varint(out, -1)
    assert bytes(out) == b"\x01"


def test_varint_running_off_the_end_is_malformed():
    with pytest.raises(MalformedFrame):
        p.read_uvarint(memoryview(b"\x80\x80"), 0)


def test_compact_string_null_and_empty():
    out = bytearray()
    p.write_string(out, None, p.write_compact_len, True)
    p.write_string(out, "", p.write_compact_len, True)
    p.write_string(out, "ab", p.write_compact_len, True)
    assert bytes(out) == b"\x00\x01\x03ab"
    buf = memoryview(bytes(out))
    v1, pos = p.read_string(buf, 0, p.read_compact_len, True)
    v2, pos = p.read_string(buf, pos, p.read_compact_len, True)
    v3, pos = p.read_string(buf, pos, p.read_compact_len, True)
    assert (v1, v2, v3, pos) == (None, "", "ab", len(out))
    with pytest.raises(MalformedFrame):
        p.read_string(buf, 0, p.read_compact_len, False)


def test_uuid_round_trips():
    u = uuid.uuid4()
    out = bytearray()
    p.write_uuid(out, u)
    assert p.read_uuid(memoryview(bytes(out)), 0) == (u, 16)
    with pytest.raises(MalformedFrame):
        p.read_uuid(memoryview(bytes(out[:15])), 0)


def test_uuid_accepts_its_text_and_raw_forms():
    u = uuid.uuid4()
    for form in (str(u), u.bytes):
        out = bytearray()
        p.write_uuid(out, form)
        assert bytes(out) == u.bytes
    with pytest.raises(ValueError):
        p.write_uuid(bytearray(), "not-a-uuid")


def test_encoding_a_value_out_of_range_names_the_message():
    with pytest.raises(ValueError, match="Heartbeat"):
        protocol.encode_request(ApiKey.HEARTBEAT, 0, 1, "c", {"group_id": "g", "generation_id": 2**40})


def test_encoding_null_into_a_non_nullable_field_is_refused():
    with pytest.raises(ValueError):
        protocol.encode_request(ApiKey.HEARTBEAT, 0, 1, "c", {"group_id": None})
