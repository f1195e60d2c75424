"""One blocking TCP connection to one Kafka broker.

Wire framing (both directions)::

    Frame => Size Payload
      Size => Int32       bytes of Payload, never counting itself
      Payload => Header Body

Requests carry header v1 (api_key, api_version, correlation_id, client_id) or v2 for
flexible versions; responses carry header v0 (correlation_id) or v1. The codec in
``pybroker.protocol.api`` builds and parses both; this module only moves frames, matches
correlation ids and negotiates versions.

Version negotiation, as real clients do it: the first request on a connection is
ApiVersions v3 (flexible). A broker that does not know v3 answers with an ApiVersions v0
body carrying error 35 (UNSUPPORTED_VERSION); the client then asks again with v0. Each
later request uses the highest version both the codec and the broker support.

Not thread-safe: one thread owns a connection.
"""
from __future__ import annotations

import socket
import ssl
import struct

from pybroker import errors
from pybroker.protocol import api

SIZE = struct.Struct(">i")  # Size => Int32
# Response header v0 of ApiVersions, then the first body field:
FALLBACK_PREFIX = struct.Struct(
    ">i"  # correlation_id => Int32
    "h"   # error_code => Int16 (35 when the broker does not know our ApiVersions version)
)

# Largest response accepted. Fetch responses are bounded by the request's max_bytes
# (Kafka's default fetch.max.bytes is 50 MiB); anything beyond this is a broken peer.
DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024
APIVERSIONS_FIRST = 3
CLIENT_SOFTWARE_VERSION = "0.1.0"



# Where this client builds an older request layout than the codec declares: OffsetFetch
# v8+ carries a list of groups, and the client asks for one group at a time; Fetch v13+
# names topics by id, and the consumer asks by name.
CLIENT_VERSIONS: dict[int, tuple[int, int]] = {api.OFFSET_FETCH: (1, 7), api.FETCH: (4, 12)}

class BrokerConnection:
    """A blocking socket speaking the Kafka protocol to one broker.

    ``request`` sends one request and waits for its response (none for a Produce with
    acks=0). Any framing or protocol fault closes the socket; the next request
    reconnects.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str = "pybroker",
        timeout: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        security=None,
    ):
        # pybroker.client.security.ClientSecurity; None: PLAINTEXT.
        self.security = security
        self.host = host
        self.port = int(port)
        self.client_id = client_id
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._sock: socket.socket | None = None
        self._correlation_id = 0
        # api_key -> (min, max) the broker advertises; learned once per connection.
        self.broker_versions: dict[int, tuple[int, int]] | None = None

    def __repr__(self) -> str:
        return f"BrokerConnection({self.host}:{self.port})"

    # -- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        if self._sock is not None:
            return
        unix = self.host.startswith("/")
        security = None if unix else self.security
        try:
            if unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(self.host)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if security is not None and security.uses_tls:
                try:
                    sock = security.ssl_context().wrap_socket(sock, server_hostname=self.host)
                except BaseException:
                    sock.close()
                    raise
        except socket.timeout:
            raise errors.RequestTimedOut(f"connecting to {self.host}:{self.port} timed out") from None
        except ssl.SSLError as exc:
            raise errors.NetworkException(f"TLS with {self.host}:{self.port} failed: {exc}") from None
        except OSError as exc:
            raise errors.NetworkException(
                f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self._sock = sock
        try:
            if self.broker_versions is None:
                self.broker_versions = self._negotiate()
            if security is not None and security.uses_sasl:
                self._authenticate(security)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> "BrokerConnection":
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- versions ----------------------------------------------------------------

    def _negotiate(self) -> dict[int, tuple[int, int]]:
        body = {"client_software_name": "pybroker", "client_software_version": CLIENT_SOFTWARE_VERSION}
        frame = self._roundtrip(api.API_VERSIONS, APIVERSIONS_FIRST, body)
        _, error_code = FALLBACK_PREFIX.unpack_from(frame, 0)
        if error_code == errors.UnsupportedVersion.code:
            # The answer is a v0 body whatever we asked: ask again in v0.
            frame = self._roundtrip(api.API_VERSIONS, 0, {})
            _, response = api.decode_response(api.API_VERSIONS, 0, memoryview(frame))
        else:
            _, response = api.decode_response(api.API_VERSIONS, APIVERSIONS_FIRST, memoryview(frame))
        if response["error_code"]:
            raise errors.for_code(response["error_code"])("ApiVersions failed")
        return {k["api_key"]: (k["min_version"], k["max_version"]) for k in response["api_keys"]}

    def _authenticate(self, security) -> None:
        """SaslHandshake v1, then SaslAuthenticate until the mechanism completes (KIP-152)."""
        from pybroker.security import scram

        mechanism = security.sasl_mechanism
        response = self.request(api.SASL_HANDSHAKE, {"mechanism": mechanism}, version=1)
        if response["error_code"]:
            raise errors.for_code(response["error_code"])(
                f"SASL mechanism {mechanism} is not enabled on the broker (enabled: {', '.join(response['mechanisms'])})")
        version = min(2, self.broker_versions.get(api.SASL_AUTHENTICATE, (0, 0))[1])

        def step(token: bytes) -> bytes:
            reply = self.request(api.SASL_AUTHENTICATE, {"auth_bytes": token}, version=version)
            if reply["error_code"]:
                raise errors.for_code(reply["error_code"])(reply.get("error_message"))
            return bytes(reply["auth_bytes"])

        if mechanism == "PLAIN":
            step(scram.plain_token(security.sasl_plain_username, security.sasl_plain_password))
            return
        client = scram.ScramClient(mechanism, security.sasl_plain_username, security.sasl_plain_password)
        try:
            client.verify(step(client.final(step(client.first()))))
        except scram.ScramError as exc:
            raise errors.SaslAuthenticationFailed(str(exc)) from None

    def version_for(self, api_key: int) -> int:
        """Highest version of ``api_key`` both this codec and the broker support."""
        self.connect()
        ours = CLIENT_VERSIONS.get(api_key) or api.SUPPORTED_VERSIONS.get(api_key)
        theirs = self.broker_versions.get(api_key)
        if ours is None or theirs is None:
            raise errors.UnsupportedVersion(
                f"API {api_key} is not supported by {'the broker' if ours else 'this client'}"
            )
        low, high = max(ours[0], theirs[0]), min(ours[1], theirs[1])
        if low > high:
            raise errors.UnsupportedVersion(
                f"API {api_key}: broker supports {theirs[0]}..{theirs[1]}, client {ours[0]}..{ours[1]}"
            )
        return high

    # -- requests ----------------------------------------------------------------

    def request(
        self,
        api_key: int,
        body: dict,
        version: int | None = None,
        raise_errors: bool = False,
    ) -> dict | None:
        """Send ``body`` as ``api_key`` and return the decoded response.

        A Produce with acks=0 gets no response from Kafka: returns None. With
        ``raise_errors`` a non-zero top-level ``error_code`` raises its Kafka error
        (carrying ``error_message`` when the response has one).
        """
        self.connect()
        if version is None:
            version = self.version_for(api_key)
        expect_response = not (api_key == api.PRODUCE and body.get("acks") == 0)
        frame = self._roundtrip(api_key, version, body, expect_response)
        if frame is None:
            return None
        try:
            _, response = api.decode_response(api_key, version, memoryview(frame))
        except errors.KafkaError:
            self.close()
            raise
        if raise_errors and response.get("error_code"):
            raise errors.for_code(response["error_code"])(response.get("error_message"))
        return response

    def send_request(self, api_key: int, body: dict, version: int | None = None) -> tuple[int, int] | None:
        """Send without waiting: returns ``(correlation_id, version)`` to pass to
        ``read_response``, or None for a Produce with acks=0 (Kafka never answers it).
        Responses come back in request order, so several requests may be in flight."""
        self.connect()
        if version is None:
            version = self.version_for(api_key)
        expect_response = not (api_key == api.PRODUCE and body.get("acks") == 0)
        correlation_id = self._send(api_key, version, body)
        return (correlation_id, version) if expect_response else None

    def read_response(self, api_key: int, pending: tuple[int, int]) -> dict:
        """The decoded response to a request sent by ``send_request``."""
        correlation_id, version = pending
        frame = self._receive(correlation_id)
        try:
            _, response = api.decode_response(api_key, version, memoryview(frame))
        except errors.KafkaError:
            self.close()
            raise
        return response

    def _roundtrip(self, api_key: int, version: int, body: dict, expect_response: bool = True) -> bytearray | None:
        correlation_id = self._send(api_key, version, body)
        if not expect_response:
            return None
        return self._receive(correlation_id)

    def _send(self, api_key: int, version: int, body: dict) -> int:
        self._correlation_id = (self._correlation_id + 1) & 0x7FFFFFFF
        correlation_id = self._correlation_id
        data = api.encode_request(api_key, version, correlation_id, self.client_id, body)
        if self._sock is None:
            raise errors.NetworkException(f"connection to {self.host}:{self.port} is closed")
        try:
            self._sock.sendall(data)
        except socket.timeout:
            self.close()
            raise errors.RequestTimedOut(f"sending to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            self.close()
            raise errors.NetworkException(f"connection to {self.host}:{self.port} failed: {exc}") from None
        return correlation_id

    def _receive(self, correlation_id: int) -> bytearray:
        if self._sock is None:
            raise errors.NetworkException(f"connection to {self.host}:{self.port} is closed")
        try:
            frame = self._read_frame()
        except socket.timeout:
            self.close()
            raise errors.RequestTimedOut(
                f"no response from {self.host}:{self.port} within {self.timeout}s"
            ) from None
        except OSError as exc:
            self.close()
            raise errors.NetworkException(f"connection to {self.host}:{self.port} failed: {exc}") from None
        if len(frame) < 4:
            self.close()
            raise errors.NetworkException(f"response frame of {len(frame)} bytes has no header")
        (got,) = SIZE.unpack_from(frame, 0)
        if got != correlation_id:
            self.close()
            raise errors.NetworkException(
                f"correlation id mismatch from {self.host}:{self.port}: sent {correlation_id}, got {got}"
            )
        return frame

    def _read_frame(self) -> bytearray:
        (size,) = SIZE.unpack(self._read_exact(4))
        if size < 0 or size > self.max_response_bytes:
            self.close()
            raise errors.NetworkException(
                f"response of {size} bytes from {self.host}:{self.port} exceeds the limit "
                f"of {self.max_response_bytes}"
            )
        return self._read_exact(size)

    def _read_exact(self, n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            chunk = self._sock.recv_into(view[got:], n - got)
            if chunk == 0:
                raise ConnectionResetError("connection closed by the broker")
            got += chunk
        return buf
