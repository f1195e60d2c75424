import pytest

from pybroker import errors
from pybroker.record import varint


@pytest.mark.parametrize("value", [0, 1, -1, 63, -64, 64, 300, -300, 2**31 - 1, -2**31])
def test_varint_round_trips_int32(value):
    data = varint.encode_varint(value)
    assert varint.decode_varint(data + b"tail") == (value, len(data))
    assert varint.size_of_varint(value) == len(data)


@pytest.mark.parametrize("value", [0, -1, 2**40, -2**40, 2**63 - 1, -2**63])
def test_varlong_round_trips_int64(value):
    data = varint.encode_varlong(value)
    assert varint.decode_varlong(data) == (value, len(data))


def test_zigzag_keeps_small_negatives_short():
    assert varint.encode_varint(-1) == b"\x01"
    assert varint.encode_varint(1) == b"\x02"
    assert varint.encode_varint(-64) == b"\x7f"


def test_unsigned_varint_round_trips_and_rejects_negative():
    for value in (0, 127, 128, 2**32 - 1):
        data = varint.encode_unsigned_varint(value)
        assert varint.decode_unsigned_varint(data) == (value, len(data))
    with pytest.raises(ValueError):
        varint.encode_unsigned_varint(-1)


def test_truncated_varint_is_corrupt_message():
    with pytest.raises(errors.CorruptMessage):
        varint.decode_varint(b"\x80\x80")


def test_overlong_varint_is_corrupt_message():
    with pytest.raises(errors.CorruptMessage):
        varint.decode_varint(b"\xff" * 6 + b"\x01")
    with pytest.raises(errors.CorruptMessage):
        varint.decode_varlong(b"\xff" * 11)


def test_out_of_range_encode_is_rejected():
    with pytest.raises(ValueError):
        varint.encode_varint(2**31)
