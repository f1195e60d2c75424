"""The "consumer" embedded protocol: bytes members put in JoinGroup metadata and leaders
put in SyncGroup assignments.

The group coordinator treats these bytes as opaque; pybroker decodes them only to show
subscriptions and assignments (DescribeGroups tooling, lag) and to run assignors in its
own client. Layouts, big-endian, non-flexible (Kafka's ConsumerProtocolSubscription.json
and ConsumerProtocolAssignment.json)::

    Subscription =>
      version          int16
      topics           [string]               (int32 count, int16-length utf-8 each)
      user_data        nullable bytes         (int32 length, -1 = null)
      owned_partitions [topic string, partitions [int32]]   v1+
      generation_id    int32                  v2+ (default -1)
      rack_id          nullable string        v3+ (int16 length, -1 = null)

    Assignment =>
      version              int16
      assigned_partitions  [topic string, partitions [int32]]
      user_data            nullable bytes

A version newer than 3 is read as far as version 3 and the rest ignored, as Kafka does:
newer fields are appended and marked ignorable, so old readers keep working.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pybroker import errors

MAX_VERSION = 3

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


@dataclass
class Subscription:
    topics: list[str]
    user_data: bytes | None = None
    owned_partitions: list[tuple[str, int]] = field(default_factory=list)
    generation_id: int = -1
    rack_id: str | None = None
    version: int = MAX_VERSION
    # Not in the embedded bytes: the coordinator knows it from JoinGroup, and assignors
    # order static members by it.
    group_instance_id: str | None = None


@dataclass
class Assignment:
    partitions: list[tuple[str, int]]
    user_data: bytes | None = None
    version: int = MAX_VERSION


# ---------------------------------------------------------------- encoding

def _string(out: list[bytes], s: str) -> None:
    raw = s.encode("utf-8")
    if len(raw) > 0x7FFF:
        raise errors.InvalidRequest(f"string of {len(raw)} bytes does not fit an int16 length")
    out.append(_INT16.pack(len(raw)))
    out.append(raw)


def _nullable_bytes(out: list[bytes], b: bytes | None) -> None:
    if b is None:
        out.append(_INT32.pack(-1))
    else:
        out.append(_INT32.pack(len(b)))
        out.append(bytes(b))


def _topic_partitions(out: list[bytes], tps: list[tuple[str, int]]) -> None:
    # Grouped by topic in first-seen order so a round trip keeps the caller's order.
    by_topic: dict[str, list[int]] = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, []).append(partition)
    out.append(_INT32.pack(len(by_topic)))
    for topic, partitions in by_topic.items():
        _string(out, topic)
        out.append(_INT32.pack(len(partitions)))
        out.append(struct.pack(f">{len(partitions)}i", *partitions))


def _check_version(version: int) -> None:
    if not 0 <= version <= MAX_VERSION:
        raise errors.UnsupportedVersion(f"consumer protocol version {version} (0..{MAX_VERSION})")


def encode_subscription(sub: Subscription) -> bytes:
    _check_version(sub.version)
    out = [_INT16.pack(sub.version), _INT32.pack(len(sub.topics))]
    for topic in sub.topics:
        _string(out, topic)
    _nullable_bytes(out, sub.user_data)
    if sub.version >= 1:
        _topic_partitions(out, sub.owned_partitions)
    if sub.version >= 2:
        out.append(_INT32.pack(sub.generation_id))
    if sub.version >= 3:
        if sub.rack_id is None:
            out.append(_INT16.pack(-1))
        else:
            _string(out, sub.rack_id)
    return b"".join(out)


def encode_assignment(assignment: Assignment) -> bytes:
    _check_version(assignment.version)
    out = [_INT16.pack(assignment.version)]
    _topic_partitions(out, assignment.partitions)
    _nullable_bytes(out, assignment.user_data)
    return b"".join(out)


# ---------------------------------------------------------------- decoding

class _Reader:
    """Cursor over untrusted bytes: every length is checked against what is present, so a
    hostile count cannot make us allocate more than the input's size."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = memoryview(buf)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise errors.InvalidRequest(
                f"consumer protocol data truncated: need {n} bytes at {self.pos} of {len(self.buf)}")
        view = self.buf[self.pos:self.pos + n]
        self.pos += n
        return view

    def int16(self) -> int:
        return _INT16.unpack(self._take(2))[0]

    def int32(self) -> int:
        return _INT32.unpack(self._take(4))[0]

    def count(self, min_item_size: int) -> int:
        n = self.int32()
        if n < 0:
            return 0  # Kafka writes -1 for a null array; treat as empty
        if n * min_item_size > len(self.buf) - self.pos:
            raise errors.InvalidRequest(f"array count {n} exceeds the bytes present")
        return n

    def string(self) -> str:
        n = self.int16()
        if n < 0:
            raise errors.InvalidRequest("null string where a string is required")
        try:
            return str(self._take(n), "utf-8")
        except UnicodeDecodeError as e:
            raise errors.InvalidRequest(f"string is not utf-8: {e}") from None

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        self.pos -= 2
        return self.string()

    def nullable_bytes(self) -> bytes | None:
        n = self.int32()
        if n < 0:
            return None
        return bytes(self._take(n))

    def topic_partitions(self) -> list[tuple[str, int]]:
        result = []
        for _ in range(self.count(6)):
            topic = self.string()
            n = self.count(4)
            result.extend((topic, p) for p in struct.unpack(f">{n}i", self._take(4 * n)))
        return result


def _version(r: _Reader) -> int:
    version = r.int16()
    if version < 0:
        raise errors.UnsupportedVersion(f"consumer protocol version {version}")
    return version


def decode_subscription(data: bytes) -> Subscription:
    r = _Reader(data)
    version = _version(r)
    topics = [r.string() for _ in range(r.count(2))]
    sub = Subscription(topics=topics, user_data=r.nullable_bytes(), version=min(version, MAX_VERSION))
    if version >= 1:
        sub.owned_partitions = r.topic_partitions()
    if version >= 2:
        sub.generation_id = r.int32()
    if version >= 3:
        sub.rack_id = r.nullable_string()
    return sub


def decode_assignment(data: bytes) -> Assignment:
    if not data:
        # The coordinator hands an empty assignment to a member the leader left out.
        return Assignment(partitions=[], version=0)
    r = _Reader(data)
    version = _version(r)
    partitions = r.topic_partitions()
    return Assignment(partitions=partitions, user_data=r.nullable_bytes(),
                      version=min(version, MAX_VERSION))
