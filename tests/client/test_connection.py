"""BrokerConnection against a scripted fake broker (framing, negotiation, faults)."""
import socket
import struct
import threading

import pytest

from pybroker import errors
from pybroker.client.connection import BrokerConnection
from pybroker.protocol import api

ALL_VERSIONS = [
    {"api_key": k, "min_version": lo, "max_version": hi} for k, (lo, hi) in api.SUPPORTED_VERSIONS.items()
]


class FakeBroker:
    """Accepts one connection; ``handler(request) -> bytes | None`` scripts each reply
    (None closes the connection)."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            while True:
                try:
                    head = conn.recv(4, socket.MSG_WAITALL)
                except ConnectionResetError:  # the client gave up on us: expected in fault tests
                    return
                if len(head) < 4:
                    return
                (size,) = struct.unpack(">i", head)
                frame = conn.recv(size, socket.MSG_WAITALL)
                try:
                    request = api.decode_request(memoryview(frame))
                except api.UnsupportedVersionRequest as exc:
                    request = exc
                self.requests.append(request)
                reply = self.handler(request)
                if reply is None:
                    return
                conn.sendall(reply)

    def close(self):
        self.sock.close()
        self.thread.join(5)


def respond(request, body):
    return b"".join(bytes(c) for c in api.encode_response(request.api_key, request.api_version,
                                                          request.correlation_id, body))


def api_versions_reply(request, versions=ALL_VERSIONS):
    return respond(request, {"error_code": 0, "api_keys": versions, "throttle_time_ms": 0})


@pytest.fixture
def fake():
    made = []

    def make(handler):
        broker = FakeBroker(handler)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def metadata_body():
    return {"throttle_time_ms": 0, "brokers": [{"node_id": 0, "host": "h", "port": 1, "rack": None}],
            "cluster_id": "c", "controller_id": 0, "topics": []}


def test_negotiates_with_api_versions_v3_then_uses_highest_common_version(fake):
    def handler(req):
        if req.api_key == api.API_VERSIONS:
            return api_versions_reply(req, [{"api_key": 18, "min_version": 0, "max_version": 3},
                                            {"api_key": 3, "min_version": 0, "max_version": 5}])
        return respond(req, metadata_body())

    broker = fake(handler)
    with BrokerConnection("127.0.0.1", broker.port, client_id="me") as conn:
        response = conn.request(api.METADATA, {"topics": None})
    assert response["brokers"][0]["host"] == "h"
    assert [(r.api_key, r.api_version) for r in broker.requests] == [(18, 3), (3, 5)]
    assert broker.requests[1].client_id == "me"


def test_falls_back_to_api_versions_v0_on_unsupported_version(fake):
    def handler(req):
        if isinstance(req, api.UnsupportedVersionRequest) or (req.api_key == 18 and req.api_version == 3):
            return api.encode_api_versions_fallback(req.correlation_id)
        return api_versions_reply(req, [{"api_key": 18, "min_version": 0, "max_version": 2},
                                        {"api_key": 3, "min_version": 0, "max_version": 4}])

    broker = fake(handler)
    conn = BrokerConnection("127.0.0.1", broker.port)
    conn.connect()
    try:
        assert conn.broker_versions[3] == (0, 4)
        assert conn.version_for(api.METADATA) == 4
    finally:
        conn.close()


def test_no_common_version_raises_unsupported_version(fake):
    broker = fake(lambda req: api_versions_reply(req, [{"api_key": 18, "min_version": 0, "max_version": 3},
                                                       {"api_key": 0, "min_version": 0, "max_version": 2}]))
    with BrokerConnection("127.0.0.1", broker.port) as conn:
        with pytest.raises(errors.UnsupportedVersion):
            conn.version_for(api.PRODUCE)
        with pytest.raises(errors.UnsupportedVersion):
            conn.version_for(api.FETCH)


def test_correlation_id_mismatch_closes_the_connection(fake):
    def handler(req):
        if req.api_key == api.API_VERSIONS:
            return api_versions_reply(req)
        return b"".join(bytes(c) for c in api.encode_response(req.api_key, req.api_version,
                                                              req.correlation_id + 7, metadata_body()))

    broker = fake(handler)
    conn = BrokerConnection("127.0.0.1", broker.port)
    with pytest.raises(errors.NetworkException, match="correlation id mismatch"):
        conn.request(api.METADATA, {"topics": None})
    assert not conn.connected


def test_oversize_response_is_refused_without_reading_it(fake):
    def handler(req):
        if req.api_key == api.API_VERSIONS:
            return api_versions_reply(req)
        return struct.pack(">ii", 1 << 30, req.correlation_id)

    broker = fake(handler)
    conn = BrokerConnection("127.0.0.1", broker.port, max_response_bytes=1 << 20)
    with pytest.raises(errors.NetworkException, match="exceeds the limit"):
        conn.request(api.METADATA, {"topics": None})
    assert not conn.connected


def test_broker_closing_mid_response_is_a_network_error(fake):
    def handler(req):
        if req.api_key == api.API_VERSIONS:
            return api_versions_reply(req)
        return None

    broker = fake(handler)
    conn = BrokerConnection("127.0.0.1", broker.port)
    with pytest.raises(errors.NetworkException, match="closed"):
        conn.request(api.METADATA, {"topics": None})


def test_silent_broker_times_out(fake):
    release = threading.Event()

    def handler(req):
        release.wait(5)
        return None

    broker = fake(handler)
    conn = BrokerConnection("127.0.0.1", broker.port, timeout=0.3)
    try:
        with pytest.raises(errors.RequestTimedOut):
            conn.connect()
    finally:
        release.set()


def test_top_level_error_raises_only_when_asked(fake):
    def handler(req):
        if req.api_key == api.API_VERSIONS and req.correlation_id == 1:
            return api_versions_reply(req)
        return respond(req, {"error_code": errors.ClusterAuthorizationFailed.code, "api_keys": []})

    broker = fake(handler)
    with BrokerConnection("127.0.0.1", broker.port) as conn:
        assert conn.request(api.API_VERSIONS, {}, version=0)["error_code"] == 31
        with pytest.raises(errors.ClusterAuthorizationFailed):
            conn.request(api.API_VERSIONS, {}, version=0, raise_errors=True)


def test_produce_with_acks_0_expects_no_response(fake):
    def handler(req):
        if req.api_key == api.API_VERSIONS:
            return api_versions_reply(req)
        return b""  # Kafka sends nothing for acks=0

    broker = fake(handler)
    with BrokerConnection("127.0.0.1", broker.port) as conn:
        body = {"acks": 0, "timeout_ms": 1000, "topic_data": []}
        assert conn.request(api.PRODUCE, body) is None


def test_unreachable_broker_is_a_network_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.NetworkException, match="cannot connect"):
        BrokerConnection("127.0.0.1", port).connect()
