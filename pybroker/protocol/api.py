"""Framing and dispatch: turn a request frame into a ``Request``, a response dict into
the chunks to send, and the same in the client's direction.

Every frame on the wire is ``int32 size`` + that many bytes. After the size::

    request header v1 (non-flexible request versions)
        api_key         int16
        api_version     int16
        correlation_id  int32
        client_id       nullable string (int16 length; never compact, even in v2)
    request header v2 (flexible request versions) = v1 + tagged fields

    response header v0: correlation_id int32
    response header v1 (flexible response versions) = v0 + tagged fields
    (ApiVersions responses always use v0: a client parses them before it knows
    which versions the broker speaks.)

The first 8 bytes of a request have the same layout in every version, which is what
lets a broker answer a version it does not know (see encode_api_versions_fallback).
"""
from __future__ import annotations

import enum
import functools
import struct

from . import primitives as p
from .errors import MalformedFrame, UnsupportedVersionRequest
from .messages import (acls, api_versions, client_quotas, cluster_admin, consumer_group, fetch, group, metadata, offset_commit,
                       offsets, produce, producer_id, security, share_group, telemetry, topics, transactions)
from .schema import Api

REQUEST_HEADER_PREFIX = struct.Struct(
    ">h"  # api_key => Int16
    "h"   # api_version => Int16
    "i"   # correlation_id => Int32
)
SIZE = struct.Struct(">i")  # frame size => Int32 (bytes after this field)
CORRELATION_ID = struct.Struct(">i")
ERROR_CODE = struct.Struct(">h")


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_CLIENT_QUOTAS = 48
    ALTER_CLIENT_QUOTAS = 49
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    ALTER_USER_SCRAM_CREDENTIALS = 51
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    CONSUMER_GROUP_HEARTBEAT = 68
    CONSUMER_GROUP_DESCRIBE = 69
    SHARE_GROUP_HEARTBEAT = 76
    SHARE_GROUP_DESCRIBE = 77
    SHARE_FETCH = 78
    SHARE_ACKNOWLEDGE = 79
    DESCRIBE_SHARE_GROUP_OFFSETS = 90
    ALTER_SHARE_GROUP_OFFSETS = 91
    DELETE_SHARE_GROUP_OFFSETS = 92
    DESCRIBE_CLUSTER = 60
    GET_TELEMETRY_SUBSCRIPTIONS = 71
    PUSH_TELEMETRY = 72
    DESCRIBE_TOPIC_PARTITIONS = 75


PRODUCE = ApiKey.PRODUCE
FETCH = ApiKey.FETCH
LIST_OFFSETS = ApiKey.LIST_OFFSETS
METADATA = ApiKey.METADATA
OFFSET_COMMIT = ApiKey.OFFSET_COMMIT
OFFSET_FETCH = ApiKey.OFFSET_FETCH
FIND_COORDINATOR = ApiKey.FIND_COORDINATOR
JOIN_GROUP = ApiKey.JOIN_GROUP
HEARTBEAT = ApiKey.HEARTBEAT
LEAVE_GROUP = ApiKey.LEAVE_GROUP
SYNC_GROUP = ApiKey.SYNC_GROUP
DESCRIBE_GROUPS = ApiKey.DESCRIBE_GROUPS
LIST_GROUPS = ApiKey.LIST_GROUPS
API_VERSIONS = ApiKey.API_VERSIONS
CREATE_TOPICS = ApiKey.CREATE_TOPICS
DELETE_TOPICS = ApiKey.DELETE_TOPICS
DELETE_RECORDS = ApiKey.DELETE_RECORDS
INIT_PRODUCER_ID = ApiKey.INIT_PRODUCER_ID
OFFSET_FOR_LEADER_EPOCH = ApiKey.OFFSET_FOR_LEADER_EPOCH
DESCRIBE_CONFIGS = ApiKey.DESCRIBE_CONFIGS
ALTER_CONFIGS = ApiKey.ALTER_CONFIGS
CREATE_PARTITIONS = ApiKey.CREATE_PARTITIONS
DELETE_GROUPS = ApiKey.DELETE_GROUPS
INCREMENTAL_ALTER_CONFIGS = ApiKey.INCREMENTAL_ALTER_CONFIGS
OFFSET_DELETE = ApiKey.OFFSET_DELETE
DESCRIBE_CLIENT_QUOTAS = ApiKey.DESCRIBE_CLIENT_QUOTAS
ALTER_CLIENT_QUOTAS = ApiKey.ALTER_CLIENT_QUOTAS
ADD_PARTITIONS_TO_TXN = ApiKey.ADD_PARTITIONS_TO_TXN
ADD_OFFSETS_TO_TXN = ApiKey.ADD_OFFSETS_TO_TXN
END_TXN = ApiKey.END_TXN
WRITE_TXN_MARKERS = ApiKey.WRITE_TXN_MARKERS
TXN_OFFSET_COMMIT = ApiKey.TXN_OFFSET_COMMIT
DESCRIBE_ACLS = ApiKey.DESCRIBE_ACLS
CREATE_ACLS = ApiKey.CREATE_ACLS
DELETE_ACLS = ApiKey.DELETE_ACLS
DESCRIBE_PRODUCERS = ApiKey.DESCRIBE_PRODUCERS
DESCRIBE_TRANSACTIONS = ApiKey.DESCRIBE_TRANSACTIONS
LIST_TRANSACTIONS = ApiKey.LIST_TRANSACTIONS
CONSUMER_GROUP_HEARTBEAT = ApiKey.CONSUMER_GROUP_HEARTBEAT
CONSUMER_GROUP_DESCRIBE = ApiKey.CONSUMER_GROUP_DESCRIBE
SHARE_GROUP_HEARTBEAT = ApiKey.SHARE_GROUP_HEARTBEAT
SHARE_GROUP_DESCRIBE = ApiKey.SHARE_GROUP_DESCRIBE
SHARE_FETCH = ApiKey.SHARE_FETCH
SHARE_ACKNOWLEDGE = ApiKey.SHARE_ACKNOWLEDGE
DESCRIBE_SHARE_GROUP_OFFSETS = ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS
ALTER_SHARE_GROUP_OFFSETS = ApiKey.ALTER_SHARE_GROUP_OFFSETS
DELETE_SHARE_GROUP_OFFSETS = ApiKey.DELETE_SHARE_GROUP_OFFSETS
DESCRIBE_LOG_DIRS = ApiKey.DESCRIBE_LOG_DIRS
ELECT_LEADERS = ApiKey.ELECT_LEADERS
ALTER_PARTITION_REASSIGNMENTS = ApiKey.ALTER_PARTITION_REASSIGNMENTS
LIST_PARTITION_REASSIGNMENTS = ApiKey.LIST_PARTITION_REASSIGNMENTS
DESCRIBE_CLUSTER = ApiKey.DESCRIBE_CLUSTER
GET_TELEMETRY_SUBSCRIPTIONS = ApiKey.GET_TELEMETRY_SUBSCRIPTIONS
PUSH_TELEMETRY = ApiKey.PUSH_TELEMETRY
DESCRIBE_TOPIC_PARTITIONS = ApiKey.DESCRIBE_TOPIC_PARTITIONS
SASL_HANDSHAKE = ApiKey.SASL_HANDSHAKE
SASL_AUTHENTICATE = ApiKey.SASL_AUTHENTICATE
DESCRIBE_USER_SCRAM_CREDENTIALS = ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS
ALTER_USER_SCRAM_CREDENTIALS = ApiKey.ALTER_USER_SCRAM_CREDENTIALS

APIS: dict[int, Api] = {api.key: api for api in (
    produce.PRODUCE, fetch.FETCH, offsets.LIST_OFFSETS, metadata.METADATA,
    offset_commit.OFFSET_COMMIT, offset_commit.OFFSET_FETCH, group.FIND_COORDINATOR,
    group.JOIN_GROUP, group.HEARTBEAT, group.LEAVE_GROUP, group.SYNC_GROUP,
    group.DESCRIBE_GROUPS, group.LIST_GROUPS, api_versions.API_VERSIONS,
    topics.CREATE_TOPICS, topics.DELETE_TOPICS, offsets.DELETE_RECORDS,
    producer_id.INIT_PRODUCER_ID, offsets.OFFSET_FOR_LEADER_EPOCH, topics.DESCRIBE_CONFIGS,
    topics.CREATE_PARTITIONS, group.DELETE_GROUPS, offset_commit.OFFSET_DELETE,
    topics.ALTER_CONFIGS, topics.INCREMENTAL_ALTER_CONFIGS,
    transactions.ADD_PARTITIONS_TO_TXN, transactions.ADD_OFFSETS_TO_TXN, transactions.END_TXN,
    transactions.WRITE_TXN_MARKERS,
    transactions.TXN_OFFSET_COMMIT, transactions.DESCRIBE_PRODUCERS, transactions.DESCRIBE_TRANSACTIONS,
    transactions.LIST_TRANSACTIONS,
    consumer_group.CONSUMER_GROUP_HEARTBEAT, consumer_group.CONSUMER_GROUP_DESCRIBE,
    share_group.SHARE_GROUP_HEARTBEAT, share_group.SHARE_GROUP_DESCRIBE, share_group.SHARE_FETCH,
    share_group.SHARE_ACKNOWLEDGE, share_group.DESCRIBE_SHARE_GROUP_OFFSETS,
    share_group.ALTER_SHARE_GROUP_OFFSETS, share_group.DELETE_SHARE_GROUP_OFFSETS,
    cluster_admin.DESCRIBE_CLUSTER, cluster_admin.DESCRIBE_TOPIC_PARTITIONS, cluster_admin.DESCRIBE_LOG_DIRS,
    acls.DESCRIBE_ACLS, acls.CREATE_ACLS, acls.DELETE_ACLS,
    cluster_admin.ELECT_LEADERS, cluster_admin.ALTER_PARTITION_REASSIGNMENTS,
    cluster_admin.LIST_PARTITION_REASSIGNMENTS, telemetry.GET_TELEMETRY_SUBSCRIPTIONS, telemetry.PUSH_TELEMETRY,
    security.SASL_HANDSHAKE, security.SASL_AUTHENTICATE, security.DESCRIBE_USER_SCRAM_CREDENTIALS,
    security.ALTER_USER_SCRAM_CREDENTIALS, client_quotas.DESCRIBE_CLIENT_QUOTAS, client_quotas.ALTER_CLIENT_QUOTAS,
)}
assert set(APIS) == set(ApiKey), "every ApiKey needs a declaration"

SUPPORTED_VERSIONS: dict[int, tuple[int, int]] = {
    key: (api.min_version, api.max_version) for key, api in sorted(APIS.items())}
API_NAMES: dict[int, str] = {key: api.name for key, api in APIS.items()}


class Request:
    """A decoded request. ``body`` holds every field of the API across versions."""

    __slots__ = ("api_key", "api_version", "correlation_id", "client_id", "body", "header_version", "peer", "principal",
                 "listener", "size", "throttle_ms", "quota_bytes")

    def __init__(self, api_key, api_version, correlation_id, client_id, body, header_version):
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
        self.client_id = client_id
        self.body = body
        self.header_version = header_version
        # The server sets the client's address here (JoinGroup reports it as client host).
        self.peer = None
        # Set by the server too: the authenticated principal ("User:name").
        self.principal = "User:ANONYMOUS"
        # ... and the name of the listener it came in on (Metadata advertises that listener).
        self.listener = None
        # The frame's size in bytes (what a produce quota counts).
        self.size = 0
        # Set by a handler whose client went over a quota: how long its connection is muted.
        self.throttle_ms = 0
        # ... and what it counted against a byte-rate quota (a fetch may take it back).
        self.quota_bytes = 0

    def __repr__(self):
        return (f"Request({API_NAMES.get(self.api_key, self.api_key)} v{self.api_version}, "
                f"correlation_id={self.correlation_id}, client_id={self.client_id!r})")


def _api(api_key: int, api_version: int) -> Api | None:
    api = APIS.get(api_key)
    if api is None or not api.min_version <= api_version <= api.max_version:
        return None
    return api


def response_element_schema(api_key: int, api_version: int, field_name: str):
    """The schema of one element of a response's top-level struct array (for
    ``schema.PreEncoded`` elements of responses whose parts are cached)."""
    api = _api(api_key, api_version)
    if api is None:
        raise ValueError(f"no response schema for api key {api_key} version {api_version}")
    return api.response[api_version].element_schema(field_name)


@functools.lru_cache(maxsize=None)
def has_throttle_time(api_key: int, api_version: int) -> bool:
    """Whether the response of this API version carries ``throttle_time_ms``."""
    return any(f.name == "throttle_time_ms" and f.in_version(api_version) for f in APIS[api_key].response[api_version].fields)


def response_header_version(api_key: int, api_version: int) -> int:
    api = APIS[api_key]
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if api.is_flexible(api_version) else 0


def _encode_body(schema, out: bytearray, chunks: list, body: dict) -> None:
    try:
        schema.encode_into(out, chunks, body)
    except (struct.error, TypeError, AttributeError) as exc:
        # A value of the wrong type or range is a bug in the caller's dict: name the
        # message it was building.
        raise ValueError(f"cannot encode {schema.name} v{schema.version}: {exc}") from exc


# -- server side ---------------------------------------------------------------


def decode_request(frame) -> Request:
    """Parse a request frame (the bytes after the size prefix). Raises
    UnsupportedVersionRequest for an api/version we do not declare, MalformedFrame for
    anything that does not parse, never anything else."""
    buf = frame if isinstance(frame, memoryview) else memoryview(frame)
    if len(buf) < REQUEST_HEADER_PREFIX.size:
        raise MalformedFrame(f"request frame of {len(buf)} bytes is shorter than a header")
    api_key, api_version, correlation_id = REQUEST_HEADER_PREFIX.unpack_from(buf, 0)
    api = _api(api_key, api_version)
    if api is None:
        raise UnsupportedVersionRequest(api_key, api_version, correlation_id)
    flexible = api.is_flexible(api_version)
    try:
        client_id, pos = p.read_string(buf, REQUEST_HEADER_PREFIX.size, p.read_len16, True)
        if flexible:
            pos = p.skip_tagged_fields(buf, pos)
        body, pos = api.request[api_version].decode(buf, pos)
    except struct.error as exc:  # a safety net: lengths are checked before unpacking
        raise MalformedFrame(str(exc)) from None
    # Bytes after the body are ignored, as Kafka's request parser ignores them: librdkafka
    # 2.x sends Metadata v11/v12 with a field that left the schema in v11
    # (include_cluster_authorized_operations), and Kafka serves it.
    return Request(api_key, api_version, correlation_id, client_id, body, 2 if flexible else 1)


def encode_response(api_key: int, api_version: int, correlation_id: int, body: dict) -> list:
    """The whole response as [bytes, region, bytes, ..., bytes]; the first chunk starts
    with the int32 size, which counts the regions' lengths."""
    api = _api(api_key, api_version)
    if api is None:
        raise ValueError(f"no response schema for api key {api_key} version {api_version}")
    out = bytearray(SIZE.size)  # size, patched below
    out += CORRELATION_ID.pack(correlation_id)
    if response_header_version(api_key, api_version) == 1:
        out.append(0)  # no tagged fields in the header
    chunks: list = []
    _encode_body(api.response[api_version], out, chunks, body)
    if not chunks:
        SIZE.pack_into(out, 0, len(out) - SIZE.size)
        return [bytes(out)]
    if out:
        chunks.append(bytes(out))
    size = sum(c.length if getattr(c, "is_file_region", False) else len(c) for c in chunks)
    chunks[0] = SIZE.pack(size - SIZE.size) + chunks[0][SIZE.size:]
    return chunks


def encode_api_versions_fallback(correlation_id: int) -> bytes:
    """Response header v0 + ApiVersions v0 body with UNSUPPORTED_VERSION and our full
    list: the answer to an ApiVersions request of a version we do not speak. The client
    reads the list and retries with a version from it."""
    body = {"error_code": 35, "api_keys": [
        {"api_key": key, "min_version": lo, "max_version": hi}
        for key, (lo, hi) in SUPPORTED_VERSIONS.items()]}
    return encode_response(ApiKey.API_VERSIONS, 0, correlation_id, body)[0]


# -- client side -------------------------------------------------------------------


def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   body: dict) -> bytes:
    """A complete request frame, size prefix included."""
    api = _api(api_key, api_version)
    if api is None:
        raise ValueError(f"no request schema for api key {api_key} version {api_version}")
    out = bytearray(SIZE.size)
    out += REQUEST_HEADER_PREFIX.pack(api_key, api_version, correlation_id)
    p.write_string(out, client_id, p.write_len16, True)
    if api.is_flexible(api_version):
        out.append(0)  # no tagged fields in the header
    chunks: list = []
    _encode_body(api.request[api_version], out, chunks, body)
    if chunks:
        raise ValueError("a request cannot carry a file region")
    SIZE.pack_into(out, 0, len(out) - SIZE.size)
    return bytes(out)


def decode_response(api_key: int, api_version: int, frame) -> tuple[int, dict]:
    """(correlation_id, body) of a response frame (the bytes after the size prefix)."""
    api = _api(api_key, api_version)
    if api is None:
        raise ValueError(f"no response schema for api key {api_key} version {api_version}")
    buf = frame if isinstance(frame, memoryview) else memoryview(frame)
    if len(buf) < CORRELATION_ID.size:
        raise MalformedFrame("response frame is shorter than its header")
    correlation_id = CORRELATION_ID.unpack_from(buf, 0)[0]
    pos = CORRELATION_ID.size
    if api_key == ApiKey.API_VERSIONS:
        # A broker that does not speak our ApiVersions version answers in v0
        # (UNSUPPORTED_VERSION plus its list), whatever version we asked in.
        if len(buf) >= pos + 2 and ERROR_CODE.unpack_from(buf, pos)[0] == 35:
            api_version = 0
    elif response_header_version(api_key, api_version) == 1:
        pos = p.skip_tagged_fields(buf, pos)
    try:
        body, pos = api.response[api_version].decode(buf, pos)
    except struct.error as exc:
        raise MalformedFrame(str(exc)) from None
    if pos != len(buf):
        raise MalformedFrame(f"{api.name} v{api_version} response has {len(buf) - pos} bytes left over")
    return correlation_id, body
