"""The two ways a request frame can be refused before any handler sees it."""
from __future__ import annotations

from pybroker import errors


class MalformedFrame(errors.InvalidRequest):
    """The bytes do not parse under the declared schema: a length or count points past
    the end of the frame, a varint runs too long, a string is not UTF-8, or bytes are
    left over. The connection that sent it cannot be trusted to stay in sync."""


class UnsupportedVersionRequest(errors.UnsupportedVersion):
    """The api key or version is not one we declare. Carries what the fixed header
    prefix said, so the broker can still answer with the right correlation id (the
    ApiVersions fallback) or close the connection."""

    def __init__(self, api_key: int, api_version: int, correlation_id: int):
        super().__init__(f"api key {api_key} version {api_version} is not supported")
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
