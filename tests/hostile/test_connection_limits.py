"""Kafka's connection limits on a real broker process: request buffers that grow only as
bytes arrive, the queued-request memory budget, the idle and partial-request timeouts,
the connection caps and a lowered file-descriptor limit.

Frames are ApiVersions v0 requests, padded where a test needs them large: the broker
ignores bytes after a request's body, as Kafka does, and answers each."""
from __future__ import annotations

import socket
import struct
import threading
import time

import psutil
import pytest

from pybroker.testing import wait_until
from test_hostile_frames import closed_by_peer

MIB = 1024 * 1024
REQUEST_HEADER_V1 = struct.Struct(
    ">h"  # request_api_key => Int16 (18: ApiVersions)
    "h"   # request_api_version => Int16
    "i"   # correlation_id => Int32
    "h"   # client_id length => Int16
)
CLIENT_ID = b"limits"


def api_versions_frame(correlation_id: int, size: int = 0) -> bytes:
    """A framed ApiVersions v0 request of ``size`` bytes after the size prefix (at least
    its header), padded with zeros."""
    payload = REQUEST_HEADER_V1.pack(18, 0, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    payload += bytes(max(0, size - len(payload)))
    return struct.pack(">i", len(payload)) + payload


def answered(sock: socket.socket, correlation_id: int, timeout: float = 10.0) -> bool:
    sock.settimeout(timeout)
    head = sock.recv(8, socket.MSG_WAITALL)
    if len(head) < 8:
        return False
    size, got = struct.unpack(">ii", head)
    rest = size - 4
    while rest:
        chunk = sock.recv(min(rest, 1 << 16))
        if not chunk:
            return False
        rest -= len(chunk)
    return got == correlation_id


def broker_process(cluster) -> psutil.Process:
    root = psutil.Process(cluster.pid)
    [broker] = [p for p in root.children(recursive=True) if "pybroker.broker.main" in p.cmdline()]
    return broker


def broker_log(cluster) -> str:
    return (cluster.data_dir / "logs" / "broker-0.log").read_text(errors="replace")


def connect(cluster, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(cluster.addresses[0], timeout=timeout)


def limited_cluster(factory, **settings):
    args = []
    for key, value in settings.items():
        args += ["--broker-config", f"{key.replace('_', '.')}={value}"]
    return factory(extra_args=args)


@pytest.mark.parametrize("connections", [20, pytest.param(500, marks=pytest.mark.slow)])
def test_declared_100mib_frames_trickled_hold_no_memory(pybroker_cluster, broker_serves, connections):
    """Slowloris: connections that each declare a 100 MiB request and send a byte now and
    then. Buffers grow with the bytes that arrived, so the broker stays small."""
    broker = broker_process(pybroker_cluster)
    before = broker.memory_info().rss
    socks = []
    try:
        for i in range(connections):
            sock = connect(pybroker_cluster)
            sock.sendall(struct.pack(">i", 100 * MIB) + REQUEST_HEADER_V1.pack(18, 0, i, 0))
            socks.append(sock)
        for _ in range(3):
            time.sleep(0.3)
            for sock in socks:
                sock.sendall(b"\0")
        time.sleep(0.5)
        grown = broker.memory_info().rss - before
        # 64 KiB of buffer per connection, and the connections' own bookkeeping.
        bound = 64 * MIB + connections * 192 * 1024
        assert grown < bound, f"{connections} trickling 100 MiB requests grew the broker by {grown / MIB:.0f} MiB"
        broker_serves(pybroker_cluster.bootstrap)
    finally:
        for sock in socks:
            sock.close()


def test_large_requests_past_the_memory_budget_all_get_answers(pybroker_cluster_factory):
    """queued.max.request.bytes of 2 MiB and six clients sending 3 MiB requests at once:
    reading pauses while the budget is spent, and every request is still answered."""
    cluster = limited_cluster(pybroker_cluster_factory, queued_max_request_bytes=2 * MIB)
    broker = broker_process(cluster)
    before = broker.memory_info().rss
    results = {}

    def send(i):
        with connect(cluster, timeout=30) as sock:
            sock.sendall(api_versions_frame(i, 3 * MIB))
            results[i] = answered(sock, i, timeout=30)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: True for i in range(6)}
    assert broker.memory_info().rss - before < 64 * MIB


def test_a_stalled_partial_request_is_closed(pybroker_cluster_factory):
    cluster = limited_cluster(pybroker_cluster_factory, socket_request_read_timeout_ms=1000)
    stalled = connect(cluster)
    frame = api_versions_frame(1, 1000)
    stalled.sendall(frame[:500])
    trickler = connect(cluster)
    trickler.sendall(frame[:10])
    start = time.monotonic()
    # A byte every 0.2 s is traffic, but the request is never completed in time.
    closed = False
    for byte in frame[10:60]:
        try:
            trickler.sendall(bytes([byte]))
        except OSError:
            closed = True
            break
        time.sleep(0.2)
    assert closed or closed_by_peer(trickler, 5), "a trickled request was never timed out"
    assert closed_by_peer(stalled, 5)
    assert time.monotonic() - start < 15
    with connect(cluster) as fresh:
        fresh.sendall(frame)
        assert answered(fresh, 1)


def test_idle_connections_are_closed_and_busy_ones_kept(pybroker_cluster_factory, wire):
    cluster = limited_cluster(pybroker_cluster_factory, connections_max_idle_ms=1000)
    idle = connect(cluster)
    with wire.RawClient(cluster.bootstrap, timeout=10) as busy:
        busy.wait_for_leaders("kept")
        start = time.monotonic()
        while not closed_by_peer(idle, 0.3):
            assert time.monotonic() - start < 10, "an idle connection was kept"
            busy.metadata(["kept"])
        # A long poll longer than the idle timeout is a request in flight, not idleness.
        part = busy.fetch("kept", 0, 0, max_wait_ms=2500)
        assert part.error_code == 0
        busy.metadata(["kept"])


@pytest.mark.parametrize("setting, logged", [
    ("max_connections_per_ip", "max.connections.per.ip 3"),
    ("max_connections", "max.connections allows 3"),
])
def test_connections_beyond_the_caps_are_refused(pybroker_cluster_factory, setting, logged):
    cluster = limited_cluster(pybroker_cluster_factory, **{setting: 3})
    held = [connect(cluster) for _ in range(3)]
    try:
        for i, sock in enumerate(held):
            sock.sendall(api_versions_frame(i))
            assert answered(sock, i)
        assert closed_by_peer(connect(cluster), 5), "a fourth connection was served"
        wait_until(lambda: logged in broker_log(cluster), 5, what="the refusal logged")
        held.pop().close()
        wait_until(lambda: _serves(cluster), 10, what="a new connection once one closed")
    finally:
        for sock in held:
            sock.close()


def _serves(cluster) -> bool:
    try:
        with connect(cluster) as sock:
            sock.sendall(api_versions_frame(99))
            return answered(sock, 99, timeout=2)
    except OSError:
        return False


@pytest.mark.parametrize("below_open", [False, True], ids=["below-limit", "limit-below-open-fds"])
def test_fd_exhaustion_keeps_open_connections_served(pybroker_cluster, wire, below_open):
    """RLIMIT_NOFILE lowered on the broker, then more sockets than it allows: the client
    that was connected before keeps producing, new connections are refused with a log
    line per interval (not one per attempt), and the broker accepts again once the flood
    goes away. With the limit below the descriptors already open, every accept fails
    with EMFILE: the same must hold."""
    broker = broker_process(pybroker_cluster)
    with wire.RawClient(pybroker_cluster.bootstrap, timeout=10) as client:
        client.wait_for_leaders("fds")
        original = broker.rlimit(psutil.RLIMIT_NOFILE)
        open_before = broker.num_fds()
        nofile = open_before - 4 if below_open else 256
        broker.rlimit(psutil.RLIMIT_NOFILE, (nofile, original[1]))
        log_before = len(broker_log(pybroker_cluster))
        flood = []
        try:
            for _ in range(50 if below_open else 2 * nofile):
                sock = connect(pybroker_cluster, timeout=0.5)
                flood.append(sock)
            for i in range(50):
                part = client.produce("fds", 0, wire.build_batch([(b"k", b"v%d" % i)]), acks=1)
                assert part.error_code == 0
            time.sleep(1)
            assert broker.num_fds() <= max(nofile, open_before)
            logged = broker_log(pybroker_cluster)[log_before:]
            assert len(logged) < 20_000, f"{len(logged)} bytes of log for one flood"
            assert "refused a connection" in logged or "cannot accept" in logged
        finally:
            for sock in flood:
                sock.close()
            broker.rlimit(psutil.RLIMIT_NOFILE, original if below_open else (nofile, original[1]))
        wait_until(lambda: _serves(pybroker_cluster), 15, what="accepting after the flood")
        assert len(client.fetch_batches("fds", 0, 0)) == 50
