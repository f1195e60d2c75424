"""ApiVersions (18): what a client asks first, to learn which versions we speak.

v3 is flexible and is what librdkafka opens with; its response header stays v0 (a
client cannot know our header format before it has this answer). v4 has v3's layout and
may list a supported feature whose minimum level is 0 (KAFKA-17011).
"""
from ..schema import Api, Array, Field, BOOL, INT16, INT32, INT64, STRING

API_VERSIONS = Api(
    18, "ApiVersions", (0, 4), flexible=3,
    request=[
        Field("client_software_name", STRING, "3+"),
        Field("client_software_version", STRING, "3+"),
    ],
    response=[
        Field("error_code", INT16),
        Field("api_keys", Array([
            Field("api_key", INT16),
            Field("min_version", INT16),
            Field("max_version", INT16),
        ])),
        Field("throttle_time_ms", INT32, "1+"),
        Field("supported_features", Array([
            Field("name", STRING, "3+"),
            Field("min_version", INT16, "3+"),
            Field("max_version", INT16, "3+"),
        ]), "3+", tag=0),
        Field("finalized_features_epoch", INT64, "3+", tag=1, default=-1),
        Field("finalized_features", Array([
            Field("name", STRING, "3+"),
            Field("max_version_level", INT16, "3+"),
            Field("min_version_level", INT16, "3+"),
        ]), "3+", tag=2),
        Field("zk_migration_ready", BOOL, "3+", tag=3, default=False),
    ],
)
