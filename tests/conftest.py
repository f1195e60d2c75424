"""Shared test helpers: unique topic names, deadlines, and a raw Kafka wire client.

The raw client encodes requests with kafka-python's schema-driven codec, an encoder
independent of pybroker's own, so tests that speak the wire directly check pybroker
against Kafka's published schemas rather than against itself. The cluster fixtures come
from the ``pybroker.testing`` plugin (loaded by its entry point, not here).
"""
from __future__ import annotations

import itertools
import socket
import sys
import struct
import uuid
from typing import Iterable, Sequence

import pytest

from pybroker.testing import wait_until  # noqa: F401  (re-exported to the tests)
from kafka.protocol.admin import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

# Kafka record batch attribute bits 0..2: compression codec.
CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD = 0, 1, 2, 3, 4
CODEC_NAMES = {"gzip": CODEC_GZIP, "snappy": CODEC_SNAPPY, "lz4": CODEC_LZ4, "zstd": CODEC_ZSTD}

_RESPONSES = {
    ApiVersionsRequest.API_KEY: ApiVersionsResponse,
    MetadataRequest.API_KEY: MetadataResponse,
    ProduceRequest.API_KEY: ProduceResponse,
    FetchRequest.API_KEY: FetchResponse,
    ListOffsetsRequest.API_KEY: ListOffsetsResponse,
    InitProducerIdRequest.API_KEY: InitProducerIdResponse,
    CreateTopicsRequest.API_KEY: CreateTopicsResponse,
    DeleteTopicsRequest.API_KEY: DeleteTopicsResponse,
    CreatePartitionsRequest.API_KEY: CreatePartitionsResponse,
}

_topic_counter = itertools.count()


@pytest.fixture
def topic(request) -> str:
    """A topic name no other test (or xdist worker) uses."""
    return unique_topic(request.node.name)


def unique_topic(hint: str = "t") -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in hint)[:60]
    return f"{safe}-{next(_topic_counter)}-{uuid.uuid4().hex[:8]}"


class ConnectionClosed(Exception):
    """The broker closed the connection (EOF or reset)."""


class RawClient:
    """One blocking TCP connection speaking Kafka frames; requests via kafka-python's codec.

    Not thread-safe. Every socket operation is bounded by ``timeout`` seconds.
    """

    def __init__(self, address: str | tuple[str, int], timeout: float = 10.0,
                 client_id: str = "pybroker-tests"):
        if isinstance(address, str):
            host, _, port = address.split(",")[0].rpartition(":")
            address = (host, int(port))
        self.address = address
        self.client_id = client_id
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.settimeout(timeout)
        self._correlation = itertools.count(1)

    # -- framing ----------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            try:
                chunk = self.sock.recv(min(n, 1 << 20))
            except ConnectionResetError as exc:
                raise ConnectionClosed(str(exc)) from exc
            if not chunk:
                raise ConnectionClosed("EOF")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(size)

    def is_closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the broker closes the connection within ``timeout`` (EOF or reset),
        after draining anything it sent first."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except (socket.timeout, TimeoutError):
            return False

    # -- requests ---------------------------------------------------------------------

    def send(self, request, version: int) -> int:
        """Encode and send ``request``; return its correlation id (no reply is read)."""
        correlation_id = next(self._correlation)
        request.API_VERSION = version
        request.with_header(correlation_id=correlation_id, client_id=self.client_id)
        self.send_bytes(bytes(request.encode(header=True, framed=True)))
        return correlation_id

    def request(self, request, version: int):
        """Send ``request`` at ``version`` and decode its response."""
        correlation_id = self.send(request, version)
        frame = self.read_frame()
        response_class = _RESPONSES[request.API_KEY]
        response = response_class.decode(frame, version=version, header=True)
        assert response.header.correlation_id == correlation_id, "correlation id mismatch"
        return response

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- APIs used by the tests -------------------------------------------------------

    def metadata(self, topics: Sequence[str] | None, auto_create: bool = True, version: int = 4):
        req = MetadataRequest(
            topics=None if topics is None else [MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=auto_create,
        )
        return self.request(req, version)

    def wait_for_leaders(self, topic: str, timeout: float = 10.0, auto_create: bool = True):
        """Metadata until every partition of ``topic`` has a leader; returns the topic entry."""
        def ready():
            md = self.metadata([topic], auto_create=auto_create)
            entry = md.topics[0]
            if entry.error_code == 0 and entry.partitions and all(p.leader_id >= 0 for p in entry.partitions):
                return entry
            return None
        return wait_until(ready, timeout, what=f"leaders of {topic}")

    def produce(self, topic: str, partition: int, records: bytes, acks: int = 1,
                version: int = 7, timeout_ms: int = 5000):
        """Produce one batch; returns the partition response (None for acks=0)."""
        req = ProduceRequest(
            transactional_id=None, acks=acks, timeout_ms=timeout_ms,
            topic_data=[ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=partition, records=records)],
            )],
        )
        if acks == 0:
            self.send(req, version)
            return None
        resp = self.request(req, version)
        return resp.responses[0].partition_responses[0]

    def fetch(self, topic: str, partition: int, offset: int, max_bytes: int = 1 << 20,
              max_wait_ms: int = 0, version: int = 10):
        req = FetchRequest(
            replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=0, max_bytes=max_bytes,
            isolation_level=0, session_id=0, session_epoch=-1,
            topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                FetchRequest.FetchTopic.FetchPartition(
                    partition=partition, current_leader_epoch=-1, fetch_offset=offset,
                    log_start_offset=-1, partition_max_bytes=max_bytes)])],
            forgotten_topics_data=[],
        )
        resp = self.request(req, version)
        return resp.responses[0].partitions[0]

    def fetch_batches(self, topic: str, partition: int, offset: int = 0, **kwargs) -> list:
        """Fetch from ``offset`` and return kafka-python's decoded record batches."""
        part = self.fetch(topic, partition, offset, **kwargs)
        assert part.error_code == 0, f"fetch error {part.error_code}"
        return batches_of(part.records)

    def list_offsets(self, topic: str, partition: int, timestamp: int, version: int = 1):
        req = ListOffsetsRequest(
            replica_id=-1, isolation_level=0,
            topics=[ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
                ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                    partition_index=partition, current_leader_epoch=-1, timestamp=timestamp)])],
        )
        return self.request(req, version).topics[0].partitions[0]

    def init_producer_id(self, version: int = 0):
        req = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000)
        return self.request(req, version)

    def create_topic(self, name: str, partitions: int = 1, replication: int = 1,
                     configs: dict[str, str] | None = None, version: int = 2):
        req = CreateTopicsRequest(
            topics=[CreateTopicsRequest.CreatableTopic(
                name=name, num_partitions=partitions, replication_factor=replication,
                assignments=[],
                configs=[CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(name=k, value=v)
                         for k, v in (configs or {}).items()],
            )],
            timeout_ms=10000, validate_only=False,
        )
        return self.request(req, version).topics[0]


def build_batch(records: Iterable[tuple[bytes | None, bytes | None]], codec: int = CODEC_NONE,
                producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
                timestamps: Sequence[int] | None = None, headers=()) -> bytes:
    """A v2 record batch built by kafka-python's builder (an encoder independent of ours)."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False, producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=base_sequence, batch_size=1 << 30)
    for i, (key, value) in enumerate(records):
        ts = timestamps[i] if timestamps is not None else None
        if builder.append(i, timestamp=ts, key=key, value=value, headers=list(headers)) is None:
            raise ValueError("record did not fit the batch")
    return bytes(builder.build())


def batches_of(records: bytes | None) -> list:
    """Decode a fetched record set into kafka-python batch objects (a torn last batch,
    allowed by the protocol, is skipped)."""
    out = []
    if not records:
        return out
    mem = MemoryRecords(bytes(records))
    while mem.has_next():
        batch = mem.next_batch()
        if batch is None:
            break
        out.append(batch)
    return out


@pytest.fixture
def raw_client():
    """Factory ``raw_client(address_or_bootstrap, timeout=10) -> RawClient``; closed after the test."""
    made: list[RawClient] = []

    def make(address, **kwargs) -> RawClient:
        client = RawClient(address, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def assert_broker_serves(bootstrap: str, timeout: float = 10.0) -> None:
    """A fresh connection can create a topic (auto-create), produce and fetch back."""
    name = unique_topic("alive")
    with RawClient(bootstrap, timeout=timeout) as client:
        client.wait_for_leaders(name, timeout=timeout)
        value = uuid.uuid4().bytes
        part = client.produce(name, 0, build_batch([(b"k", value)]), acks=1)
        assert part.error_code == 0, f"produce after abuse failed: error {part.error_code}"
        batches = client.fetch_batches(name, 0, 0)
        values = [r.value for b in batches for r in b]
        assert values == [value], f"fetch after abuse returned {values!r}"


@pytest.fixture
def broker_serves():
    """The function ``assert_broker_serves(bootstrap)`` (a fresh client produces and consumes)."""
    return assert_broker_serves


def stored_codecs(cluster, topic: str, partition: int = 0) -> dict[str, set[int]]:
    """Compression codecs of the batches of ``topic``/``partition`` as a raw Fetch returns
    them and as the segment files on disk hold them (``<topic>-<partition>/*.log`` anywhere
    under the data dir). The broker stores batches as received, so both must agree."""
    with RawClient(cluster.bootstrap) as client:
        fetched = {b.compression_type for b in client.fetch_batches(topic, partition, 0)}
    on_disk: set[int] = set()
    for segment in sorted(cluster.data_dir.rglob(f"{topic}-{partition}/*.log")):
        on_disk |= {b.compression_type for b in batches_of(segment.read_bytes())}
    return {"fetched": fetched, "on_disk": on_disk}


# Captured at import: other test directories have a conftest module of their own, and
# the name "conftest" in sys.modules points at whichever was imported last.
_THIS_MODULE = sys.modules[__name__]


@pytest.fixture
def wire():
    """This module: RawClient, build_batch, batches_of, stored_codecs, CODEC_* constants."""
    return _THIS_MODULE


class SmallFilesystem:
    """A tmpfs of ``size`` bytes at ``path``: a disk that really fills up (ENOSPC)."""

    def __init__(self, path, size: int):
        self.path = path
        self.size = size

    def free_bytes(self) -> int:
        import os

        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, name: str = "filler") -> str:
        """Write a file until not one more byte fits. Returns its path."""
        import errno
        import os

        path = os.path.join(self.path, name)
        chunk = b"\0" * (1 << 20)
        with open(path, "wb", buffering=0) as f:
            while True:
                try:
                    f.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return path
                    chunk = chunk[:len(chunk) // 2]


@pytest.fixture
def small_filesystem(tmp_path):
    """A 64 MiB tmpfs mounted for the test (``SmallFilesystem``), or a skip saying why
    this machine cannot mount one (mounting needs root)."""
    import os
    import subprocess

    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a 64 MiB tmpfs to fill up (needs root): {result.stderr.strip()}")
    try:
        yield SmallFilesystem(mount_point, 64 << 20)
    finally:
        # Lazy: a broker process a failed test left behind must not keep it mounted.
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
        os.rmdir(mount_point)
