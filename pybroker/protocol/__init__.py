"""The Kafka wire protocol: primitives, message schemas, request/response framing.

Used by the broker (decode_request / encode_response) and by pybroker's own client
(encode_request / decode_response). See api.py for the framing and schema.py for how
messages are declared.
"""
from .errors import MalformedFrame, UnsupportedVersionRequest
from .api import (API_NAMES, APIS, SUPPORTED_VERSIONS, ApiKey, Request, decode_request,
                  decode_response, encode_api_versions_fallback, encode_request,
                  encode_response, response_header_version)

__all__ = [
    "MalformedFrame", "UnsupportedVersionRequest", "API_NAMES", "APIS", "SUPPORTED_VERSIONS",
    "ApiKey", "Request", "decode_request", "decode_response", "encode_api_versions_fallback",
    "encode_request", "encode_response", "response_header_version",
]
