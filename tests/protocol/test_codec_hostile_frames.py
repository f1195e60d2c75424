"""Malformed and hostile request frames: each is refused with MalformedFrame (or
UnsupportedVersionRequest carrying the parsed correlation id), fast and without
allocating what the frame claims."""
from __future__ import annotations

import struct
import time

import pytest

from pybroker import errors, protocol
from pybroker.protocol import ApiKey, MalformedFrame, UnsupportedVersionRequest, primitives
from protocol_samples import sample, versions

EXAMPLES = [(api, v) for api, v in versions() if v in (api.min_version, api.max_version)]


def _frame(api, version, nulls=False) -> bytes:
    body = sample(api.request[version].fields, version, nulls)
    return protocol.encode_request(api.key, version, 7, "c", body)[4:]


def test_malformed_frame_is_an_invalid_request_error():
    assert issubclass(MalformedFrame, errors.InvalidRequest)
    assert MalformedFrame("x").code == 42
    assert UnsupportedVersionRequest(1, 2, 3).code == 35


@pytest.mark.parametrize("api,version", EXAMPLES, ids=[f"{a.name}-v{v}" for a, v in EXAMPLES])
def test_every_truncation_of_a_valid_request_is_malformed(api, version):
    frame = _frame(api, version)
    for cut in range(len(frame)):
        with pytest.raises(MalformedFrame):
            protocol.decode_request(memoryview(frame[:cut]))


def test_trailing_bytes_after_a_request_body_are_ignored_as_kafka_does():
    frame = _frame(protocol.APIS[ApiKey.HEARTBEAT], 1)
    assert protocol.decode_request(frame + b"\x00").body == protocol.decode_request(frame).body


def test_librdkafka_metadata_v12_with_a_retired_field_decodes():
    # librdkafka 2.x still writes include_cluster_authorized_operations in v12.
    frame = bytes.fromhex("0003000c00000005000772646b61666b610000000000010000")
    request = protocol.decode_request(memoryview(frame))
    assert request.api_version == 12 and request.body["topics"] is None


def _metadata_v1_with_topic_count(count: int, tail: bytes = b"\x00" * 10) -> bytes:
    header = struct.pack(">hhih", ApiKey.METADATA, 1, 9, -1)
    return header + struct.pack(">i", count) + tail


def test_huge_array_count_with_few_bytes_fails_fast():
    frame = _metadata_v1_with_topic_count(2**31 - 1)
    start = time.perf_counter()
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)
    assert time.perf_counter() - start < 0.5  # allocating 2**31 entries would take far longer


def test_huge_compact_array_count_fails_fast():
    # Metadata v9 (flexible): header v2, then a compact array count as a uvarint.
    count = bytearray()
    primitives.write_uvarint(count, 2**31 - 1)
    frame = struct.pack(">hhih", ApiKey.METADATA, 9, 9, -1) + b"\x00" + bytes(count) + b"\x00" * 10
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_huge_int32_array_count_fails_fast():
    # OffsetFetch v1 partition_indexes is an int32 array, unpacked in one call.
    frame = (struct.pack(">hhih", ApiKey.OFFSET_FETCH, 1, 9, -1) + struct.pack(">h", 1) + b"g"
             + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", 2**30) + b"\x00" * 8)
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


@pytest.mark.parametrize("length", [-2, -100, -32768])
def test_negative_string_length_other_than_null_is_malformed(length):
    frame = struct.pack(">hhih", ApiKey.METADATA, 1, 9, length)
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame + struct.pack(">i", -1))


def test_null_in_a_non_nullable_string_is_malformed():
    frame = struct.pack(">hhih", ApiKey.HEARTBEAT, 0, 9, -1) + struct.pack(">h", -1) + b"\x00" * 8
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


@pytest.mark.parametrize("count", [-1, -2])
def test_null_in_a_non_nullable_array_is_malformed(count):
    # Metadata v0 topics are not nullable (v1+ are).
    frame = struct.pack(">hhih", ApiKey.METADATA, 0, 9, -1) + struct.pack(">i", count)
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_null_metadata_topics_is_accepted_from_v1():
    req = protocol.decode_request(_metadata_v1_with_topic_count(-1, b""))
    assert req.body["topics"] is None


@pytest.mark.parametrize("length", [-2, -7])
def test_negative_records_length_other_than_null_is_malformed(length):
    frame = bytearray(protocol.encode_request(ApiKey.PRODUCE, 3, 1, None, {
        "acks": 1, "timeout_ms": 1, "topic_data": [{"name": "t", "partition_data": [
            {"index": 0, "records": None}]}]})[4:])
    struct.pack_into(">i", frame, len(frame) - 4, length)
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_records_length_past_the_end_is_malformed():
    frame = bytearray(protocol.encode_request(ApiKey.PRODUCE, 3, 1, None, {
        "acks": 1, "timeout_ms": 1, "topic_data": [{"name": "t", "partition_data": [
            {"index": 0, "records": b"abcd"}]}]})[4:])
    struct.pack_into(">i", frame, len(frame) - 8, 2**31 - 1)
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_invalid_utf8_string_is_malformed():
    frame = struct.pack(">hhih", ApiKey.HEARTBEAT, 0, 9, 2) + b"\xff\xfe" + struct.pack(">h", 0) + b"\x00" * 4 + struct.pack(">h", 0)
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_overlong_varint_is_malformed():
    frame = struct.pack(">hhih", ApiKey.API_VERSIONS, 3, 9, -1) + b"\x00" + b"\xff" * 6 + b"\x01"
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_tagged_field_size_past_the_end_is_malformed():
    # ApiVersions v3 request: header tagged-field section claims one field of 100 bytes.
    frame = struct.pack(">hhih", ApiKey.API_VERSIONS, 3, 9, -1) + b"\x01\x00\x64" + b"\x00" * 5
    with pytest.raises(MalformedFrame):
        protocol.decode_request(frame)


def test_unknown_tagged_fields_are_skipped():
    body = bytearray(b"\x02a\x02b")  # compact strings "a", "b"
    body += b"\x02" + b"\x05\x03xyz" + b"\x09\x00"  # two unknown tags: 5 (3 bytes), 9 (empty)
    frame = struct.pack(">hhih", ApiKey.API_VERSIONS, 3, 9, -1) + b"\x00" + bytes(body)
    req = protocol.decode_request(frame)
    assert req.body == {"client_software_name": "a", "client_software_version": "b"}


def test_known_tagged_field_that_lies_about_its_size_is_malformed():
    # ApiVersions v3 response, tag 1 (finalized_features_epoch, int64) declared 2 bytes.
    frame = struct.pack(">i", 1) + struct.pack(">h", 0) + b"\x01" + struct.pack(">i", 0) + b"\x01\x01\x02\x00\x00"
    with pytest.raises(MalformedFrame):
        protocol.decode_response(ApiKey.API_VERSIONS, 3, frame)


@pytest.mark.parametrize("size", range(8))
def test_frames_shorter_than_the_fixed_header_are_malformed(size):
    with pytest.raises(MalformedFrame):
        protocol.decode_request(b"\x00\x12\x00\x03\x00\x00\x00\x05"[:size])


@pytest.mark.parametrize("api_key,api_version", [(18, 5), (18, 99), (0, 2), (1, 3), (1000, 0), (-1, 0), (4, 0), (3, -1)])
def test_unsupported_api_or_version_carries_the_parsed_header(api_key, api_version):
    frame = struct.pack(">hhi", api_key, api_version, 31337) + b"junk"
    with pytest.raises(UnsupportedVersionRequest) as info:
        protocol.decode_request(frame)
    assert (info.value.api_key, info.value.api_version, info.value.correlation_id) == (api_key, api_version, 31337)


def test_random_garbage_never_raises_anything_but_protocol_errors():
    import random
    rng = random.Random(1234)
    frames = [bytes(_frame(api, v)) for api, v in EXAMPLES]
    for _ in range(3000):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(8, len(frame))] = rng.randrange(256)
        try:
            protocol.decode_request(frame)
        except (MalformedFrame, UnsupportedVersionRequest):
            pass
