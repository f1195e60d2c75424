"""ApiVersions (18): the API keys and version ranges this broker serves."""
from __future__ import annotations


def handle(broker, request) -> dict:
    return {
        "error_code": 0,
        "api_keys": [
            {"api_key": key, "min_version": lo, "max_version": hi}
            for key, (lo, hi) in sorted(broker.api_versions.items())
        ],
        "throttle_time_ms": 0,
    }
