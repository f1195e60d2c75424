"""ACL administration: DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), versions
1-3 (Kafka 4 dropped v0, which had no pattern type); flexible from v2. Codes:
pybroker.security.acls."""
from ..schema import Api, Array, Field, INT8, INT16, INT32, STRING

_FILTER = [
    Field("resource_type_filter", INT8),
    Field("resource_name_filter", STRING, nullable="0+"),
    Field("pattern_type_filter", INT8, default=3),
    Field("principal_filter", STRING, nullable="0+"),
    Field("host_filter", STRING, nullable="0+"),
    Field("operation", INT8),
    Field("permission_type", INT8),
]

DESCRIBE_ACLS = Api(
    29, "DescribeAcls", (1, 3), flexible=2,
    request=_FILTER,
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("resources", Array([
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("pattern_type", INT8, default=3),
            Field("acls", Array([
                Field("principal", STRING),
                Field("host", STRING),
                Field("operation", INT8),
                Field("permission_type", INT8),
            ])),
        ])),
    ],
)

CREATE_ACLS = Api(
    30, "CreateAcls", (1, 3), flexible=2,
    request=[
        Field("creations", Array([
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("resource_pattern_type", INT8, default=3),
            Field("principal", STRING),
            Field("host", STRING),
            Field("operation", INT8),
            Field("permission_type", INT8),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("results", Array([
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
        ])),
    ],
)

DELETE_ACLS = Api(
    31, "DeleteAcls", (1, 3), flexible=2,
    request=[
        Field("filters", Array(_FILTER)),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("filter_results", Array([
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
            Field("matching_acls", Array([
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
                Field("resource_type", INT8),
                Field("resource_name", STRING),
                Field("pattern_type", INT8, default=3),
                Field("principal", STRING),
                Field("host", STRING),
                Field("operation", INT8),
                Field("permission_type", INT8),
            ])),
        ])),
    ],
)
