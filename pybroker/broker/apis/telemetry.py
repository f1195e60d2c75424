"""Client telemetry (KIP-714): GetTelemetrySubscriptions (71) and PushTelemetry (72).

pybroker collects no client metrics, so every client gets the empty subscription (no
requested metrics), which tells a Kafka 4 client (Java, librdkafka 2.5+) to send nothing;
a first request with the zero instance id gets a fresh id, as Kafka assigns it. A push
anyway is checked as Kafka checks it (the subscription id, the size) and dropped.
"""
from __future__ import annotations

import uuid
import zlib

from pybroker import errors
from pybroker.protocol.primitives import ZERO_UUID

# Kafka's defaults: telemetry.max.bytes and the push interval of a subscription.
TELEMETRY_MAX_BYTES = 1024 * 1024
PUSH_INTERVAL_MS = 300_000
# The codecs a client may compress pushes with (zstd, lz4, gzip, snappy), Kafka's order.
ACCEPTED_COMPRESSION = [4, 3, 1, 2]
# The empty subscription's id: a hash of its (empty) metric list and interval, stable
# across brokers and restarts, as Kafka derives subscription ids from their content.
SUBSCRIPTION_ID = zlib.crc32(f"[]:{PUSH_INTERVAL_MS}".encode()) - 2**31


def get_subscriptions(broker, request) -> dict:
    instance = request.body["client_instance_id"]
    if str(instance) == str(ZERO_UUID):
        instance = str(uuid.uuid4())
    return {"throttle_time_ms": 0, "error_code": 0, "client_instance_id": instance,
            "subscription_id": SUBSCRIPTION_ID, "accepted_compression_types": ACCEPTED_COMPRESSION,
            "push_interval_ms": PUSH_INTERVAL_MS, "telemetry_max_bytes": TELEMETRY_MAX_BYTES,
            "delta_temporality": True, "requested_metrics": []}


def push(broker, request) -> dict:
    body = request.body
    code = 0
    if str(body["client_instance_id"]) == str(ZERO_UUID):
        code = errors.InvalidRequest.code
    elif body["subscription_id"] != SUBSCRIPTION_ID:
        code = errors.UnknownSubscriptionId.code
    elif len(body["metrics"]) > TELEMETRY_MAX_BYTES:
        code = errors.TelemetryTooLarge.code
    return {"throttle_time_ms": 0, "error_code": code}
