"""SCRAM (RFC 5802, RFC 7677) for SASL: credentials and the two ends of the exchange.

The exchange is four messages; each side is a short state machine whose states are them::

    client-first  n,,n=<user>,r=<client nonce>
    server-first  r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
    client-final  c=biws,r=<nonce>,p=<base64 ClientProof>
    server-final  v=<base64 ServerSignature>     (or e=<error>)

What is stored per user and mechanism (Kafka's ScramCredential), never the password::

    SaltedPassword = Hi(password, salt, iterations)      PBKDF2-HMAC
    StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
    ServerKey      = HMAC(SaltedPassword, "Server Key")

Pure logic, no sockets; both the broker (``ScramServer``) and pybroker's client
(``ScramClient``) use it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_512 = "SCRAM-SHA-512"
# AlterUserScramCredentials' mechanism codes (Kafka's ScramMechanism).
MECHANISM_CODES = {SCRAM_SHA_256: 1, SCRAM_SHA_512: 2}
MECHANISM_NAMES = {code: name for name, code in MECHANISM_CODES.items()}
HASHES = {SCRAM_SHA_256: "sha256", SCRAM_SHA_512: "sha512"}
# Kafka's bounds on iterations (ScramMechanism.minIterations / maxIterations).
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384
DEFAULT_ITERATIONS = 4096


class ScramError(Exception):
    """A malformed or failed exchange; the message is safe to log (no secrets)."""


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_json(self) -> dict:
        return {"salt": _b64(self.salt), "stored_key": _b64(self.stored_key),
                "server_key": _b64(self.server_key), "iterations": self.iterations}

    @classmethod
    def from_json(cls, doc: dict) -> "ScramCredential":
        return cls(_unb64(doc["salt"]), _unb64(doc["stored_key"]), _unb64(doc["server_key"]), int(doc["iterations"]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ScramError(f"bad base64: {exc}") from None


def _hmac(mechanism: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, HASHES[mechanism]).digest()


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(HASHES[mechanism], password.encode("utf-8"), salt, iterations)


def credential_from_salted(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    client_key = _hmac(mechanism, salted, b"Client Key")
    stored_key = hashlib.new(HASHES[mechanism], client_key).digest()
    return ScramCredential(salt, stored_key, _hmac(mechanism, salted, b"Server Key"), iterations)


def make_credential(mechanism: str, password: str, iterations: int = DEFAULT_ITERATIONS,
                    salt: bytes | None = None) -> ScramCredential:
    salt = salt if salt is not None else os.urandom(32)
    return credential_from_salted(mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations)


def password_matches(mechanism: str, credential: ScramCredential, password: str) -> bool:
    """Whether ``password`` derives ``credential`` (how SASL/PLAIN is checked against the
    SCRAM store: one user store for every mechanism, no password on disk)."""
    derived = make_credential(mechanism, password, credential.iterations, credential.salt)
    return hmac.compare_digest(derived.stored_key, credential.stored_key)


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unsaslname(name: str) -> str:
    if "=" in name.replace("=3D", "").replace("=2C", ""):
        raise ScramError("invalid username encoding")
    return name.replace("=2C", ",").replace("=3D", "=")


def _attributes(message: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError(f"invalid SCRAM attribute {part[:20]!r}")
        out[part[0]] = part[2:]
    return out


class ScramServer:
    """The broker's side of one exchange. ``lookup(username)`` returns the user's
    ScramCredential for this mechanism or None. ``step(token)`` returns the next token;
    after the second step ``complete`` is True and ``username`` is authenticated."""

    def __init__(self, mechanism: str, lookup):
        self.mechanism = mechanism
        self._lookup = lookup
        self._state = "client-first"
        self.username: str | None = None
        self.complete = False
        self._credential: ScramCredential | None = None
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2_header = ""

    def step(self, token: bytes) -> bytes:
        try:
            message = bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("SCRAM message is not UTF-8") from None
        if self._state == "client-first":
            return self._client_first(message)
        if self._state == "client-final":
            return self._client_final(message)
        raise ScramError(f"unexpected SCRAM message in state {self._state}")

    def _client_first(self, message: str) -> bytes:
        # gs2-header: "n,," (no channel binding, no authzid) or "n,a=<authzid>,"
        parts = message.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y"):
            raise ScramError("invalid SCRAM client-first message (channel binding is not supported)")
        authzid = parts[1]
        bare = parts[2]
        attrs = _attributes(bare)
        if "n" not in attrs or "r" not in attrs or not attrs["r"]:
            raise ScramError("SCRAM client-first message lacks a username or nonce")
        self.username = _unsaslname(attrs["n"])
        if authzid and authzid != f"a={_saslname(self.username)}":
            raise ScramError("Authentication failed: Client requested an authorization id that is different from username")
        self._credential = self._lookup(self.username)
        if self._credential is None:
            raise ScramError("Authentication failed: Invalid user credentials")
        self._client_first_bare = bare
        self._gs2_header = _b64(f"{parts[0]},{authzid},".encode("utf-8"))
        self._nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode("ascii")
        self._server_first = f"r={self._nonce},s={_b64(self._credential.salt)},i={self._credential.iterations}"
        self._state = "client-final"
        return self._server_first.encode("utf-8")

    def _client_final(self, message: str) -> bytes:
        without_proof, sep, proof_part = message.rpartition(",p=")
        if not sep:
            raise ScramError("SCRAM client-final message lacks a proof")
        attrs = _attributes(without_proof)
        if attrs.get("r") != self._nonce:
            raise ScramError("Invalid SCRAM nonce")
        if attrs.get("c") != self._gs2_header:
            raise ScramError("Invalid SCRAM channel binding")
        proof = _unb64(proof_part)
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode("utf-8")
        cred = self._credential
        signature = _hmac(self.mechanism, cred.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("Invalid client credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(HASHES[self.mechanism], client_key).digest(), cred.stored_key):
            raise ScramError("Invalid client credentials")
        self._state = "done"
        self.complete = True
        return f"v={_b64(_hmac(self.mechanism, cred.server_key, auth_message))}".encode("utf-8")


class ScramClient:
    """pybroker's client side: ``first()``, then ``final(server_first)``, then
    ``verify(server_final)`` (which raises ScramError if the broker cannot prove it knows
    the credential)."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None):
        self.mechanism = mechanism
        self.username = username
        self.password = password
        self._nonce = nonce or base64.b64encode(os.urandom(18)).decode("ascii")
        self._client_first_bare = f"n={_saslname(username)},r={self._nonce}"
        self._auth_message = b""
        self._salted = b""

    def first(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode("utf-8")

    def final(self, server_first: bytes) -> bytes:
        text = bytes(server_first).decode("utf-8")
        attrs = _attributes(text)
        if "e" in attrs:
            raise ScramError(f"server error: {attrs['e']}")
        nonce, salt, iterations = attrs.get("r", ""), _unb64(attrs.get("s", "")), int(attrs.get("i", "0"))
        if not nonce.startswith(self._nonce) or iterations < 1:
            raise ScramError("invalid SCRAM server-first message")
        self._salted = salted_password(self.mechanism, self.password, salt, iterations)
        without_proof = f"c=biws,r={nonce}"
        self._auth_message = f"{self._client_first_bare},{text},{without_proof}".encode("utf-8")
        client_key = _hmac(self.mechanism, self._salted, b"Client Key")
        stored_key = hashlib.new(HASHES[self.mechanism], client_key).digest()
        signature = _hmac(self.mechanism, stored_key, self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={_b64(proof)}".encode("utf-8")

    def verify(self, server_final: bytes) -> None:
        attrs = _attributes(bytes(server_final).decode("utf-8"))
        if "e" in attrs:
            raise ScramError(f"server error: {attrs['e']}")
        server_key = _hmac(self.mechanism, self._salted, b"Server Key")
        expected = _hmac(self.mechanism, server_key, self._auth_message)
        if not hmac.compare_digest(_unb64(attrs.get("v", "")), expected):
            raise ScramError("the broker's SCRAM signature is wrong")


def plain_token(username: str, password: str) -> bytes:
    """SASL/PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd``."""
    return b"\0" + username.encode("utf-8") + b"\0" + password.encode("utf-8")


def parse_plain(token: bytes) -> tuple[str, str]:
    """(username, password) of a PLAIN token; ScramError when malformed, or when it
    asks for an authorization id other than the user (Kafka refuses that too)."""
    parts = bytes(token).split(b"\0")
    if len(parts) != 3:
        raise ScramError("Invalid SASL/PLAIN response: expected 3 tokens")
    try:
        authzid, username, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        raise ScramError("Invalid SASL/PLAIN response: not UTF-8") from None
    if not username:
        raise ScramError("Authentication failed: username not specified")
    if authzid and authzid != username:
        raise ScramError("Authentication failed: Client requested an authorization id that is different from username")
    return username, password
