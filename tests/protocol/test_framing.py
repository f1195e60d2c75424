"""Whole frames: headers, size prefixes, regions, the ApiVersions fallback, and every
declared version round-tripping through decode_request / encode_response."""
from __future__ import annotations

import struct

import pytest
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

from pybroker import protocol
from pybroker.protocol import APIS, ApiKey, SUPPORTED_VERSIONS
from protocol_samples import normalize, project, sample, versions

CASES = [(api, v, nulls) for api, v in versions() for nulls in (False, True)]
IDS = [f"{api.name}-v{v}{'-nulls' if nulls else ''}" for api, v, nulls in CASES]


def _unframe(data: bytes) -> memoryview:
    (size,) = struct.unpack_from(">i", data)
    assert size == len(data) - 4
    return memoryview(data)[4:]


@pytest.mark.parametrize("api,version,nulls", CASES, ids=IDS)
def test_request_round_trips_through_a_frame(api, version, nulls):
    body = sample(api.request[version].fields, version, nulls)
    frame = protocol.encode_request(api.key, version, 77, "client-é", body)
    req = protocol.decode_request(_unframe(frame))
    assert (req.api_key, req.api_version, req.correlation_id, req.client_id) == (api.key, version, 77, "client-é")
    assert req.header_version == (2 if api.is_flexible(version) else 1)
    assert project(req.body, body) == normalize(body)


@pytest.mark.parametrize("api,version,nulls", CASES, ids=IDS)
def test_response_round_trips_through_a_frame(api, version, nulls):
    body = sample(api.response[version].fields, version, nulls)
    if api.key == ApiKey.API_VERSIONS:
        body["error_code"] = 0  # 35 switches the body to v0; tested below
    chunks = protocol.encode_response(api.key, version, 99, body)
    assert len(chunks) == 1
    correlation_id, decoded = protocol.decode_response(api.key, version, _unframe(chunks[0]))
    assert correlation_id == 99
    assert project(decoded, body) == normalize(body)


def test_decoding_fills_fields_the_version_lacks_with_defaults():
    body = {"acks": 1, "timeout_ms": 5, "topic_data": []}
    frame = protocol.encode_request(ApiKey.PRODUCE, 3, 1, None, body)
    req = protocol.decode_request(_unframe(frame))
    assert req.client_id is None
    assert req.body == {"transactional_id": None, "acks": 1, "timeout_ms": 5, "topic_data": []}
    chunks = protocol.encode_response(ApiKey.FETCH, 4, 1, {"responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "high_watermark": 10, "records": b""}]}]})
    _, resp = protocol.decode_response(ApiKey.FETCH, 4, _unframe(chunks[0]))
    part = resp["responses"][0]["partitions"][0]
    assert resp["session_id"] == 0 and resp["error_code"] == 0
    assert part["log_start_offset"] == -1 and part["preferred_read_replica"] == -1
    assert part["aborted_transactions"] == [] and part["error_code"] == 0


def test_defaults_are_fresh_objects_per_decode():
    frame = _unframe(protocol.encode_request(ApiKey.METADATA, 1, 1, "c", {"topics": None}))
    a = protocol.decode_request(frame).body
    a["topics_extra"] = 1
    b = protocol.decode_request(frame).body
    assert "topics_extra" not in b
    chunks = protocol.encode_response(ApiKey.FETCH, 11, 1, {"responses": [{"topic": "t", "partitions": [{}]}]})
    _, r1 = protocol.decode_response(ApiKey.FETCH, 11, _unframe(chunks[0]))
    _, r2 = protocol.decode_response(ApiKey.FETCH, 11, _unframe(chunks[0]))
    r1["responses"][0]["partitions"][0]["diverging_epoch"]["epoch"] = 5
    assert r2["responses"][0]["partitions"][0]["diverging_epoch"]["epoch"] == -1


def test_encoding_ignores_unknown_keys_and_defaults_missing_ones():
    a = protocol.encode_request(ApiKey.HEARTBEAT, 0, 1, "c", {"group_id": "g", "whatever": 1})
    b = protocol.encode_request(ApiKey.HEARTBEAT, 0, 1, "c", {"group_id": "g", "generation_id": 0, "member_id": ""})
    assert a == b


def test_produce_records_decode_to_a_writable_view_of_the_frame():
    records = bytes(range(64))
    body = {"acks": -1, "timeout_ms": 100, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": records}]}]}
    frame = bytearray(protocol.encode_request(ApiKey.PRODUCE, 7, 5, "c", body))[4:]
    req = protocol.decode_request(memoryview(frame))
    view = req.body["topic_data"][0]["partition_data"][0]["records"]
    assert isinstance(view, memoryview) and bytes(view) == records
    view[0:8] = b"\xff" * 8  # the broker stamps base offsets in place
    assert bytes(frame[-64:-56]) == b"\xff" * 8


class Region:
    is_file_region = True

    def __init__(self, length):
        self.length = length


def test_fetch_response_cuts_chunks_around_file_regions():
    r1, r2 = Region(1000), Region(50)
    body = {"responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "high_watermark": 5, "records": r1},
        {"partition_index": 1, "high_watermark": 6, "records": r2}]}]}
    chunks = protocol.encode_response(ApiKey.FETCH, 11, 3, body)
    # Nothing follows the last records field in v11, so no empty trailing chunk.
    assert [type(c) for c in chunks] == [bytes, Region, bytes, Region]
    assert chunks[1] is r1 and chunks[3] is r2
    total = sum(c.length if isinstance(c, Region) else len(c) for c in chunks)
    assert struct.unpack_from(">i", chunks[0])[0] == total - 4
    # Splicing in the regions' bytes gives a frame any decoder reads.
    data = chunks[0] + b"\x01" * 1000 + chunks[2] + b"\x02" * 50
    _, resp = protocol.decode_response(ApiKey.FETCH, 11, _unframe(data))
    parts = resp["responses"][0]["partitions"]
    assert bytes(parts[0]["records"]) == b"\x01" * 1000 and bytes(parts[1]["records"]) == b"\x02" * 50


def test_flexible_fetch_response_region_uses_compact_length():
    chunks = protocol.encode_response(ApiKey.FETCH, 12, 3, {"responses": [{"topic": "t", "partitions": [
        {"records": Region(300)}]}]})
    data = chunks[0] + b"\x07" * 300 + chunks[2]
    _, resp = protocol.decode_response(ApiKey.FETCH, 12, _unframe(data))
    assert bytes(resp["responses"][0]["partitions"][0]["records"]) == b"\x07" * 300


def test_api_versions_response_header_is_v0_even_when_flexible():
    assert protocol.response_header_version(ApiKey.API_VERSIONS, 3) == 0
    assert protocol.response_header_version(ApiKey.METADATA, 9) == 1
    assert protocol.response_header_version(ApiKey.METADATA, 8) == 0
    body = {"error_code": 0, "api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3}]}
    frame = protocol.encode_response(ApiKey.API_VERSIONS, 3, 42, body)[0]
    theirs = ApiVersionsResponse.decode(frame, version=3, header=True, framed=True)
    assert theirs.header.correlation_id == 42
    assert [(k.api_key, k.min_version, k.max_version) for k in theirs.api_keys] == [(18, 0, 3)]


def test_librdkafka_style_api_versions_v3_request_decodes():
    theirs = ApiVersionsRequest[3](client_software_name="librdkafka", client_software_version="2.16.0")
    theirs.with_header(correlation_id=1, client_id="rdkafka")
    frame = bytes(theirs.encode(header=True, framed=True))
    req = protocol.decode_request(_unframe(frame))
    assert (req.api_key, req.api_version, req.correlation_id, req.client_id) == (18, 3, 1, "rdkafka")
    assert req.body == {"client_software_name": "librdkafka", "client_software_version": "2.16.0"}


def test_fallback_answers_with_error_35_and_the_full_list():
    frame = protocol.encode_api_versions_fallback(1234)
    theirs = ApiVersionsResponse.decode(frame, version=0, header=True, framed=True)
    assert theirs.header.correlation_id == 1234
    assert theirs.error_code == 35
    assert {k.api_key: (k.min_version, k.max_version) for k in theirs.api_keys} == SUPPORTED_VERSIONS
    # A client that asked in v4 reads it the same way.
    cid, body = protocol.decode_response(ApiKey.API_VERSIONS, 3, _unframe(frame))
    assert cid == 1234 and body["error_code"] == 35 and len(body["api_keys"]) == len(SUPPORTED_VERSIONS)


def test_supported_versions_list_exactly_what_is_declared():
    for key, (lo, hi) in SUPPORTED_VERSIONS.items():
        api = APIS[key]
        assert set(api.request) == set(api.response) == set(range(lo, hi + 1))
    assert set(SUPPORTED_VERSIONS) == set(ApiKey)
    assert protocol.API_NAMES[ApiKey.PRODUCE] == "Produce"


def test_unchanged_versions_share_one_schema():
    produce = APIS[ApiKey.PRODUCE]
    assert produce.request[3] is produce.request[8]  # v4..v8 changed only semantics
    assert produce.request[9] is not produce.request[8]  # flexible
    metadata = APIS[ApiKey.METADATA]
    assert metadata.response[4] is metadata.response[3]  # v4 changed the request only
    assert metadata.request[4] is not metadata.request[3]  # allow_auto_topic_creation
