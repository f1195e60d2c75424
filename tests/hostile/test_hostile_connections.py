"""Abusive connection patterns: a slow sender or many idle sockets must not stall others."""
from __future__ import annotations

import socket
import struct
import threading
import time

from kafka.protocol.metadata import ApiVersionsRequest

SLOW_BYTE_INTERVAL = 0.1
# A healthy loopback round trip is a millisecond; one second means the broker waited
# on someone else.
RESPONSIVE_WITHIN = 1.0


def api_versions_v0_frame(correlation_id: int) -> bytes:
    request = ApiVersionsRequest()
    request.API_VERSION = 0
    request.with_header(correlation_id=correlation_id, client_id="slowloris")
    return bytes(request.encode(header=True, framed=True))


def read_header(sock: socket.socket) -> tuple[int, int]:
    """(correlation id, error code) of an ApiVersions v0 response frame."""
    sock.settimeout(5)
    (size,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
    body = sock.recv(size, socket.MSG_WAITALL)
    assert len(body) == size, "connection closed mid-response"
    return struct.unpack_from(">ih", body)


def round_trip_seconds(bootstrap: str, wire) -> float:
    start = time.monotonic()
    with wire.RawClient(bootstrap, timeout=5) as client:
        client.metadata(None)
    return time.monotonic() - start


def test_slowloris_does_not_block_other_clients(pybroker_cluster, wire, broker_serves):
    frame = api_versions_v0_frame(correlation_id=42)
    host, port = pybroker_cluster.addresses[0]
    slow = socket.create_connection((host, port), timeout=10)
    done = threading.Event()
    errors: list[BaseException] = []

    def drip():
        try:
            for i in range(len(frame)):
                slow.sendall(frame[i:i + 1])
                time.sleep(SLOW_BYTE_INTERVAL)
        except OSError as exc:
            errors.append(exc)
        finally:
            done.set()

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        time.sleep(0.3)  # the slow request is now half-read by the broker
        worst = max(round_trip_seconds(pybroker_cluster.bootstrap, wire) for _ in range(5))
        assert worst < RESPONSIVE_WITHIN, f"a round trip took {worst:.2f}s during slowloris"
        broker_serves(pybroker_cluster.bootstrap)
        assert not done.is_set(), "the slow request finished before the check: too short to prove"
        assert done.wait(len(frame) * SLOW_BYTE_INTERVAL + 5)
        assert not errors, errors
        # Reassembled byte by byte, the slow request still gets its proper answer.
        assert read_header(slow) == (42, 0)
    finally:
        slow.close()
        dripper.join(5)


def test_two_hundred_idle_connections_do_not_hurt(pybroker_cluster, wire, broker_serves):
    host, port = pybroker_cluster.addresses[0]
    baseline = round_trip_seconds(pybroker_cluster.bootstrap, wire)
    idle = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection((host, port), timeout=5))
        loaded = max(round_trip_seconds(pybroker_cluster.bootstrap, wire) for _ in range(5))
        assert loaded < max(RESPONSIVE_WITHIN, 10 * baseline), \
            f"round trip {loaded:.3f}s with 200 idle connections (baseline {baseline:.3f}s)"
        broker_serves(pybroker_cluster.bootstrap)
        # The idle ones are still connected and usable, not silently dropped.
        probe = idle[-1]
        probe.sendall(api_versions_v0_frame(correlation_id=7))
        assert read_header(probe) == (7, 0)
    finally:
        for sock in idle:
            sock.close()
    broker_serves(pybroker_cluster.bootstrap)


def test_connection_flood_opened_and_dropped_leaves_broker_serving(pybroker_cluster, broker_serves):
    host, port = pybroker_cluster.addresses[0]
    for _ in range(300):
        sock = socket.create_connection((host, port), timeout=5)
        # RST instead of FIN: SO_LINGER with a zero timeout.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    broker_serves(pybroker_cluster.bootstrap)
