"""Malformed frames on raw sockets: the broker closes or answers with an error, stays up,
and its memory stays bounded. Frames are built by hand with struct, so they can lie."""
from __future__ import annotations

import random
import socket
import struct

import psutil
import pytest

REQUEST_HEADER_V1 = struct.Struct(
    ">h"  # request_api_key => Int16
    "h"   # request_api_version => Int16
    "i"   # correlation_id => Int32
)
# A request may claim sizes up to the broker's max request size; the tests below claim
# far more than they send, and check the broker never reserves what was only claimed.
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


def header(api_key: int, version: int, correlation_id: int, client_id: bytes = b"hostile") -> bytes:
    return REQUEST_HEADER_V1.pack(api_key, version, correlation_id) + struct.pack(">h", len(client_id)) + client_id


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def connect(cluster) -> socket.socket:
    host, port = cluster.addresses[0]
    sock = socket.create_connection((host, port), timeout=5)
    sock.settimeout(5)
    return sock


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the broker closes the connection (after whatever it sent) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False


def read_frame_or_close(sock: socket.socket, timeout: float = 5.0) -> bytes | None:
    """One response frame, or None when the broker closed the connection instead."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while len(buf) < 4:
            chunk = sock.recv(4 - len(buf))
            if not chunk:
                return None
            buf += chunk
        (size,) = struct.unpack(">i", buf)
        assert 0 <= size < 1 << 24, f"implausible response size {size}"
        body = b""
        while len(body) < size:
            chunk = sock.recv(size - len(body))
            if not chunk:
                return None
            body += chunk
        return body
    except ConnectionResetError:
        return None


def cluster_rss(cluster) -> int:
    root = psutil.Process(cluster.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def test_oversize_frame_prefix_closes_connection(pybroker_cluster, broker_serves):
    before = cluster_rss(pybroker_cluster)
    for size in (2**31 - 1, 2**30, 200 * 1024 * 1024):
        sock = connect(pybroker_cluster)
        sock.sendall(struct.pack(">i", size) + header(3, 4, 1))
        assert closed_by_peer(sock), f"a frame claiming {size} bytes was not refused"
        sock.close()
    assert cluster_rss(pybroker_cluster) - before < RSS_GROWTH_LIMIT
    broker_serves(pybroker_cluster.bootstrap)


@pytest.mark.parametrize("size", [-1, -(2**31), 0, 3])
def test_negative_empty_or_headerless_frame_closes_connection(pybroker_cluster, broker_serves, size):
    sock = connect(pybroker_cluster)
    sock.sendall(struct.pack(">i", size) + b"\x00" * max(size, 0))
    assert closed_by_peer(sock)
    sock.close()
    broker_serves(pybroker_cluster.bootstrap)


def test_huge_array_count_with_few_bytes_is_refused(pybroker_cluster, broker_serves):
    before = cluster_rss(pybroker_cluster)
    # Metadata v4: topics array claims 2^31-1 entries, then only one short string follows.
    metadata = header(3, 4, 11) + struct.pack(">i", 2**31 - 1) + struct.pack(">h", 1) + b"x"
    # Produce v7: a topic array of 2^30 entries.
    produce = header(0, 7, 12) + struct.pack(">hhii", -1, 1, 1000, 2**30) + b"\x00\x01t"
    # Produce v7 whose records field claims 1 GiB but carries 10 bytes.
    records = (header(0, 7, 13) + struct.pack(">hhii", -1, 1, 1000, 1) + struct.pack(">h", 1) + b"t"
               + struct.pack(">ii", 1, 0) + struct.pack(">i", 2**30) + b"\x00" * 10)
    for correlation_id, payload in ((11, metadata), (12, produce), (13, records)):
        sock = connect(pybroker_cluster)
        sock.sendall(framed(payload))
        reply = read_frame_or_close(sock)
        if reply is not None:
            # An error response is as good as a close, provided it answers this request.
            assert struct.unpack_from(">i", reply)[0] == correlation_id
        sock.close()
    assert cluster_rss(pybroker_cluster) - before < RSS_GROWTH_LIMIT
    broker_serves(pybroker_cluster.bootstrap)


def test_truncated_frames_then_disconnect_leave_broker_serving(pybroker_cluster, broker_serves):
    for sent in (0, 1, 2, 4, 9, 500):
        sock = connect(pybroker_cluster)
        sock.sendall(struct.pack(">i", 1000) + (header(3, 4, 1) + b"\x00" * 1000)[:sent])
        sock.close()
    # Half a size prefix, then gone.
    sock = connect(pybroker_cluster)
    sock.sendall(b"\x00\x00")
    sock.close()
    broker_serves(pybroker_cluster.bootstrap)


def test_garbage_bytes_are_refused(pybroker_cluster, broker_serves):
    rng = random.Random(20240521)
    for _ in range(20):
        sock = connect(pybroker_cluster)
        garbage = rng.randbytes(rng.randrange(1, 4096))
        try:
            sock.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: fine
        sock.close()
    # A frame of plausible size whose body is garbage must be answered with a close or an
    # error reply, not a hang.
    for _ in range(10):
        body = rng.randbytes(64)
        sock = connect(pybroker_cluster)
        sock.sendall(framed(body))
        reply = read_frame_or_close(sock)
        if reply is not None:
            assert struct.unpack_from(">i", reply)[0] == struct.unpack_from(">i", body, 4)[0]
        sock.close()
    broker_serves(pybroker_cluster.bootstrap)


def test_unknown_api_key_or_version_is_refused_and_broker_serves(pybroker_cluster, broker_serves):
    for api_key, version in ((9999, 0), (-1, 0), (3, 999), (0, 999)):
        sock = connect(pybroker_cluster)
        sock.sendall(framed(header(api_key, version, 21) + b"\x00" * 16))
        reply = read_frame_or_close(sock)
        if reply is not None:
            assert struct.unpack_from(">i", reply)[0] == 21
        sock.close()
    broker_serves(pybroker_cluster.bootstrap)


def test_api_versions_of_unsupported_version_falls_back_to_v0_with_error_35(pybroker_cluster):
    sock = connect(pybroker_cluster)
    # Header v2 (flexible): an empty tagged-field section follows the client id.
    sock.sendall(framed(header(18, 99, 7) + b"\x00"))
    reply = read_frame_or_close(sock)
    sock.close()
    assert reply is not None, "broker closed instead of answering ApiVersions v99"
    correlation_id, error_code, count = struct.unpack_from(">ihi", reply)
    assert (correlation_id, error_code) == (7, 35)
    assert 0 < count < 1000
    entries = [struct.unpack_from(">hhh", reply, 10 + 6 * i) for i in range(count)]
    versions = {key: (lo, hi) for key, lo, hi in entries}
    assert versions[18][0] == 0 and versions[18][1] >= 3  # ApiVersions itself
    assert versions[0][0] <= 3 <= versions[0][1]          # Produce with magic v2
    assert versions[1][0] <= 4 <= versions[1][1]          # Fetch
