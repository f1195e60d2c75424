"""SASL and SCRAM credentials: SaslHandshake (17), SaslAuthenticate (36, KIP-152 framing;
v1 adds KIP-368's session lifetime), DescribeUserScramCredentials (50) and
AlterUserScramCredentials (51)."""
from ..schema import Api, Array, Field, BYTES, INT8, INT16, INT32, INT64, STRING

SASL_HANDSHAKE = Api(
    17, "SaslHandshake", (0, 1), flexible=None,
    request=[Field("mechanism", STRING)],
    response=[
        Field("error_code", INT16),
        Field("mechanisms", Array(STRING)),
    ],
)

SASL_AUTHENTICATE = Api(
    36, "SaslAuthenticate", (0, 2), flexible=2,
    request=[Field("auth_bytes", BYTES)],
    response=[
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("auth_bytes", BYTES),
        Field("session_lifetime_ms", INT64, "1+"),
    ],
)

DESCRIBE_USER_SCRAM_CREDENTIALS = Api(
    50, "DescribeUserScramCredentials", (0, 0), flexible=0,
    request=[
        Field("users", Array([Field("name", STRING)]), nullable="0+", default=None),  # null/empty: all
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("results", Array([
            Field("user", STRING),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
            Field("credential_infos", Array([
                Field("mechanism", INT8),   # 1 SCRAM-SHA-256, 2 SCRAM-SHA-512
                Field("iterations", INT32),
            ])),
        ])),
    ],
)

ALTER_USER_SCRAM_CREDENTIALS = Api(
    51, "AlterUserScramCredentials", (0, 0), flexible=0,
    request=[
        Field("deletions", Array([
            Field("name", STRING),
            Field("mechanism", INT8),
        ])),
        Field("upsertions", Array([
            Field("name", STRING),
            Field("mechanism", INT8),
            Field("iterations", INT32),
            Field("salt", BYTES),
            Field("salted_password", BYTES),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("results", Array([
            Field("user", STRING),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
        ])),
    ],
)
