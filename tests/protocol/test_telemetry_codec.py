"""GetTelemetrySubscriptions (71) and PushTelemetry (72) against bytes laid out by hand
from Kafka's message definitions (kafka-python ships no schema for them): flexible v0,
compact arrays and bytes, an empty tagged-field section after each struct."""
from __future__ import annotations

import struct
import uuid

from pybroker.protocol import api

INSTANCE = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def test_get_telemetry_subscriptions_response_layout():
    body = {"throttle_time_ms": 7, "error_code": 0, "client_instance_id": str(INSTANCE), "subscription_id": -5,
            "accepted_compression_types": [4, 3], "push_interval_ms": 300000, "telemetry_max_bytes": 1048576,
            "delta_temporality": True, "requested_metrics": ["org.apache.kafka."]}
    expected = (struct.pack(">ih", 7, 0) + INSTANCE.bytes + struct.pack(">i", -5)
                + bytes([3, 4, 3]) + struct.pack(">ii?", 300000, 1048576, True)
                + bytes([2, 18]) + b"org.apache.kafka." + b"\x00")
    schema = api.APIS[api.GET_TELEMETRY_SUBSCRIPTIONS].response[0]
    assert schema.encode(body) == expected
    decoded, end = schema.decode(memoryview(expected))
    assert end == len(expected) and decoded["requested_metrics"] == ["org.apache.kafka."]


def test_push_telemetry_request_layout():
    wire = INSTANCE.bytes + struct.pack(">i?b", 9, False, 4) + bytes([4]) + b"abc" + b"\x00"
    decoded, end = api.APIS[api.PUSH_TELEMETRY].request[0].decode(memoryview(wire))
    assert end == len(wire)
    assert (decoded["subscription_id"], decoded["terminating"], decoded["compression_type"]) == (9, False, 4)
    assert bytes(decoded["metrics"]) == b"abc" and str(decoded["client_instance_id"]) == str(INSTANCE)
