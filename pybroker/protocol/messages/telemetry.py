"""Client telemetry (KIP-714): GetTelemetrySubscriptions (71) and PushTelemetry (72)."""
from ..schema import Api, Array, Field, BOOL, BYTES, INT8, INT16, INT32, STRING, UUID

GET_TELEMETRY_SUBSCRIPTIONS = Api(
    71, "GetTelemetrySubscriptions", (0, 0), flexible=0,
    request=[
        Field("client_instance_id", UUID),  # zero on the first request: the broker assigns one
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("client_instance_id", UUID),
        Field("subscription_id", INT32),
        Field("accepted_compression_types", Array(INT8)),
        Field("push_interval_ms", INT32),
        Field("telemetry_max_bytes", INT32),
        Field("delta_temporality", BOOL),
        Field("requested_metrics", Array(STRING)),  # empty: none; [""]: all
    ],
)

PUSH_TELEMETRY = Api(
    72, "PushTelemetry", (0, 0), flexible=0,
    request=[
        Field("client_instance_id", UUID),
        Field("subscription_id", INT32),
        Field("terminating", BOOL),
        Field("compression_type", INT8),
        Field("metrics", BYTES),  # OpenTelemetry MetricsData v1 protobuf
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
    ],
)
