"""The broker's side of SASL on one connection (Kafka's SaslServerAuthenticator).

States, in the order a client goes through them::

    HANDSHAKE      ApiVersions and SaslHandshake only; anything else closes the connection
                   ("Unexpected Kafka request of type ... during SASL handshake")
    AUTHENTICATE   SaslHandshake v1+ (KIP-152): SaslAuthenticate requests carry the tokens
    RAW_TOKEN      SaslHandshake v0: the next frames are bare SASL tokens, answered bare
    AUTHENTICATED  every API, through the broker; with connections.max.reauth.ms a
                   SaslHandshake starts re-authentication (KIP-368; the principal and the
                   mechanism may not change), else the broker answers ILLEGAL_SASL_STATE

A failed exchange is answered with SASL_AUTHENTICATION_FAILED and Kafka's message after
``failed_authentication_delay_ms`` (later still for an address failing again and again:
``AuthFailures``), and the connection is closed; each client address is logged once per
interval, not once per attempt. With ``connections_max_reauth_ms`` a session ends that
long after it began: SaslAuthenticate v1+ says so (``session_lifetime_ms``), and a
request after the end closes the connection unless the client re-authenticated.

The gate exists only on SASL listeners: a PLAINTEXT connection's frames go straight to the
broker, and an authenticated one pays one clock comparison per request.

Owned by the broker's event loop thread.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import OrderedDict

from pybroker import errors
from pybroker.broker.log_limit import RateLimitedLog
from pybroker.protocol import api
from pybroker.security import scram

log = logging.getLogger("pybroker.security")

API_KEY = struct.Struct(">h")
SIZE = struct.Struct(">i")
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
HANDSHAKE, AUTHENTICATE, RAW_TOKEN, AUTHENTICATED = "handshake", "authenticate", "raw-token", "authenticated"
# Client addresses whose failures are remembered (oldest forgotten first).
MAX_TRACKED_ADDRESSES = 4096
# A failure's extra delay doubles with each further failure from its address within
# FAILURE_WINDOW_S, up to MAX_FAILURE_DELAY_S.
FAILURE_WINDOW_S = 60.0
MAX_FAILURE_DELAY_S = 5.0
# Kafka re-authenticates a connection at most once a second.
MIN_REAUTH_INTERVAL_S = 1.0


class AuthFailures:
    """Failed attempts per client address: how long to hold the next answer, and one
    log line per address per interval."""

    def __init__(self, base_delay_s: float):
        self.base_delay_s = base_delay_s
        self._by_address: OrderedDict[str, tuple[int, float, RateLimitedLog]] = OrderedDict()

    def record(self, address: str, message: str, *args) -> float:
        now = time.monotonic()
        count, last, logger = self._by_address.pop(address, (0, 0.0, None))
        if now - last > FAILURE_WINDOW_S:
            count = 0
        if logger is None:
            logger = RateLimitedLog(log, logging.WARNING, interval=FAILURE_WINDOW_S)
        count += 1
        self._by_address[address] = (count, now, logger)
        while len(self._by_address) > MAX_TRACKED_ADDRESSES:
            self._by_address.popitem(last=False)
        logger(message + " (%d failed attempts from this address in the last minute)", *args, count)
        if self.base_delay_s <= 0:
            return 0.0
        return min(MAX_FAILURE_DELAY_S, self.base_delay_s * (2 ** min(count - 1, 16)))


class SaslGate:
    """Stands between a SASL listener's connection and the broker."""

    __slots__ = ("broker", "failures", "state", "mechanism", "expires_at", "_server",
                 "_handshake_version", "_reauthenticating", "_reauth_started")

    def __init__(self, broker, failures: AuthFailures):
        self.broker = broker
        self.failures = failures
        self.state = HANDSHAKE
        self.mechanism: str | None = None
        self.expires_at = 0.0          # 0: the session never expires
        self._server = None
        self._handshake_version = 1
        self._reauthenticating = False
        self._reauth_started = 0.0

    async def handle_frame(self, conn, frame: memoryview):
        """The connection's frame handler: the same contract as ``Broker.handle_frame``."""
        state = self.state
        if state == RAW_TOKEN:
            return await self._raw_token(conn, frame)
        api_key = API_KEY.unpack_from(frame, 0)[0] if len(frame) >= 2 else -1
        if state == AUTHENTICATED:
            if api_key == SASL_HANDSHAKE and self._may_reauthenticate():
                self._reauthenticating = True
                self._reauth_started = time.monotonic()
                return self._handshake(conn, frame)
            if self.expires_at and time.monotonic() > self.expires_at:
                log.info("closing connection from %s: SASL session of %s expired (connections.max.reauth.ms)",
                         conn.peer, conn.principal)
                return False
            return await self.broker.handle_frame(conn, frame)
        if api_key == api.API_VERSIONS and state == HANDSHAKE:
            return await self.broker.handle_frame(conn, frame)
        if api_key == SASL_HANDSHAKE and state == HANDSHAKE:
            return self._handshake(conn, frame)
        if api_key == SASL_AUTHENTICATE and state == AUTHENTICATE:
            return await self._authenticate(conn, frame)
        name = api.API_NAMES.get(api_key, api_key)
        log.info("closing connection from %s: Unexpected Kafka request of type %s during SASL %s",
                 conn.peer, name, "handshake" if state == HANDSHAKE else "authentication")
        return False

    def _may_reauthenticate(self) -> bool:
        """Kafka's rule (KafkaChannel.maybeBeginServerReauthentication): only sessions that
        expire re-authenticate, at most once a second; any other SaslHandshake on an
        authenticated connection goes to the broker, which answers ILLEGAL_SASL_STATE."""
        return bool(self.expires_at) and time.monotonic() - self._reauth_started >= MIN_REAUTH_INTERVAL_S

    # -- SaslHandshake ------------------------------------------------------------------

    def _handshake(self, conn, frame: memoryview):
        request = _decode(frame)
        if request is None:
            return False
        mechanism = request.body["mechanism"]
        enabled = list(self.broker.sasl_mechanisms)
        if mechanism not in enabled:
            log.info("closing connection from %s: Unsupported SASL mechanism %s", conn.peer, mechanism)
            return self._answer_and_close(conn, request, {"error_code": errors.UnsupportedSaslMechanism.code,
                                                          "mechanisms": enabled})
        if self._reauthenticating and mechanism != self.mechanism:
            log.info("closing connection from %s: SASL mechanism change from %s to %s during re-authentication",
                     conn.peer, self.mechanism, mechanism)
            return self._answer_and_close(conn, request, {"error_code": errors.IllegalSaslState.code,
                                                          "mechanisms": enabled})
        self.mechanism = mechanism
        self._server = self._new_server(mechanism)
        self._handshake_version = request.api_version
        self.state = AUTHENTICATE if request.api_version >= 1 else RAW_TOKEN
        return api.encode_response(SASL_HANDSHAKE, request.api_version, request.correlation_id,
                                   {"error_code": 0, "mechanisms": enabled})

    def _new_server(self, mechanism: str):
        store = self.broker.credentials
        if mechanism == "PLAIN":
            return _PlainServer(store)
        return scram.ScramServer(mechanism, lambda user: store.lookup(user, mechanism))

    # -- SaslAuthenticate ---------------------------------------------------------------

    async def _authenticate(self, conn, frame: memoryview):
        request = _decode(frame)
        if request is None:
            return False
        try:
            token = self._server.step(bytes(request.body["auth_bytes"]))
        except scram.ScramError as exc:
            await self._fail(conn, exc)
            return self._answer_and_close(conn, request, {
                "error_code": errors.SaslAuthenticationFailed.code, "error_message": self._failure_message(exc)})
        lifetime_ms = 0
        if self._server.complete:
            refusal = self._complete(conn)
            if refusal is not None:
                return self._answer_and_close(conn, request, {
                    "error_code": errors.SaslAuthenticationFailed.code, "error_message": refusal})
            lifetime_ms = self.broker.config.connections_max_reauth_ms
        # Kafka sends an empty message, not null, with success.
        return api.encode_response(SASL_AUTHENTICATE, request.api_version, request.correlation_id, {
            "error_code": 0, "error_message": "", "auth_bytes": token, "session_lifetime_ms": lifetime_ms})

    async def _raw_token(self, conn, frame: memoryview):
        """SaslHandshake v0 framing: bare tokens both ways; a failure just closes."""
        try:
            token = self._server.step(bytes(frame))
        except scram.ScramError as exc:
            await self._fail(conn, exc)
            return False
        if self._server.complete:
            if self._complete(conn) is not None:
                return False
        return [SIZE.pack(len(token)) + token]

    def _complete(self, conn) -> str | None:
        principal = f"User:{self._server.username}"
        if self._reauthenticating and principal != conn.principal:
            log.info("closing connection from %s: re-authentication as %s changes the principal from %s",
                     conn.peer, principal, conn.principal)
            return f"Cannot change principals during re-authentication from {conn.principal}: {principal}"
        conn.principal = principal
        self.state = AUTHENTICATED
        self._server = None
        self._reauthenticating = False
        reauth_ms = self.broker.config.connections_max_reauth_ms
        self.expires_at = time.monotonic() + reauth_ms / 1000.0 if reauth_ms > 0 else 0.0
        return None

    def _failure_message(self, exc: scram.ScramError) -> str:
        if self.mechanism == "PLAIN":
            return "Authentication failed: Invalid username or password"
        # Kafka says no more than this for SCRAM (the reason may reveal whether a user exists).
        what = "re-authentication" if self._reauthenticating else "authentication"
        return f"Authentication failed during {what} due to invalid credentials with SASL mechanism {self.mechanism}"

    async def _fail(self, conn, exc: scram.ScramError) -> None:
        user = getattr(self._server, "username", None)
        address = conn.peer[0] if isinstance(conn.peer, tuple) else str(conn.peer)
        delay = self.failures.record(address, "failed SASL %s authentication from %s (user %r): %s",
                                     self.mechanism, address, user, exc)
        if delay:
            await asyncio.sleep(delay)

    @staticmethod
    def _answer_and_close(conn, request, body: dict):
        chunks = api.encode_response(request.api_key, request.api_version, request.correlation_id, body)
        if not conn.closed and conn.transport is not None:
            conn.flush_responses()
            for chunk in chunks:
                conn.transport.write(chunk)
        conn.close()  # the transport sends what it holds, then closes
        return None


class _PlainServer:
    """SASL/PLAIN, checked against the SCRAM store."""

    def __init__(self, store):
        self._store = store
        self.username: str | None = None
        self.complete = False

    def step(self, token: bytes) -> bytes:
        username, password = scram.parse_plain(token)
        self.username = username
        if not self._store.verify_plain(username, password):
            raise scram.ScramError("Authentication failed: Invalid username or password")
        self.complete = True
        return b""


def _decode(frame: memoryview):
    try:
        return api.decode_request(frame)
    except (api.UnsupportedVersionRequest, api.MalformedFrame) as exc:
        log.info("closing a connection in SASL authentication: %s", exc)
        return None
