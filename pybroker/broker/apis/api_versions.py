"""ApiVersions (18): the API keys and version ranges this broker serves, and (v3+) the
features it supports and has finalized, which Kafka 4 clients and ``kafka-features``
read.

- ``metadata.version`` 4.0-IV3 (level 25): the metadata pybroker's image carries for
  clients is that of Kafka 4.0.
- ``group.version`` 1: KIP-848 consumer groups (ConsumerGroupHeartbeat) beside the
  classic protocol.
- ``share.version`` 1: KIP-932 share groups (ShareGroupHeartbeat, ShareFetch,
  ShareAcknowledge).
- ``transaction.version`` 0: transactions with the classic protocol (KIP-890 part 2's
  per-transaction epoch bump, level 2, is not implemented).

A feature finalized at level 0 is left out of the finalized list, as Kafka leaves it out.
v3 answers leave out supported features whose minimum level is 0 (older clients refuse
them, KAFKA-17011); v4 lists them all.
"""
from __future__ import annotations

SUPPORTED_FEATURES: dict[str, tuple[int, int]] = {
    "metadata.version": (7, 25),
    "group.version": (0, 1),
    "transaction.version": (0, 0),
    "share.version": (0, 1),
}
FINALIZED_FEATURES: dict[str, int] = {"metadata.version": 25, "group.version": 1,
                                      "transaction.version": 0, "share.version": 1}
# Kafka's epoch is the metadata offset of the last feature change; these never change.
FINALIZED_FEATURES_EPOCH = 1


def handle(broker, request) -> dict:
    v4 = request.api_version >= 4
    return {
        "error_code": 0,
        "api_keys": [
            {"api_key": key, "min_version": lo, "max_version": hi}
            for key, (lo, hi) in sorted(broker.api_versions.items())
        ],
        "throttle_time_ms": 0,
        "supported_features": [{"name": name, "min_version": lo, "max_version": hi}
                               for name, (lo, hi) in SUPPORTED_FEATURES.items() if v4 or lo > 0],
        "finalized_features_epoch": FINALIZED_FEATURES_EPOCH,
        "finalized_features": [{"name": name, "max_version_level": level, "min_version_level": level}
                               for name, level in FINALIZED_FEATURES.items() if level > 0],
    }
