"""Client quotas (KIP-546): DescribeClientQuotas (48) and AlterClientQuotas (49), versions
0-1, flexible from v1. An entity is a list of (entity_type, entity_name) with types
``user``, ``client-id``, ``ip``; a null name is the type's default entity. Match types:
pybroker.cluster.client_quotas."""
from ..schema import Api, Array, Field, BOOL, FLOAT64, INT8, INT16, INT32, STRING

_ENTITY = Array([
    Field("entity_type", STRING),
    Field("entity_name", STRING, nullable="0+", default=None),
])

DESCRIBE_CLIENT_QUOTAS = Api(
    48, "DescribeClientQuotas", (0, 1), flexible=1,
    request=[
        Field("components", Array([
            Field("entity_type", STRING),
            Field("match_type", INT8),   # 0 EXACT, 1 DEFAULT, 2 ANY (specified)
            Field("match", STRING, nullable="0+", default=None),
        ])),
        Field("strict", BOOL),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("entries", Array([
            Field("entity", _ENTITY),
            Field("values", Array([
                Field("key", STRING),
                Field("value", FLOAT64),
            ])),
        ]), nullable="0+", default=None),
    ],
)

ALTER_CLIENT_QUOTAS = Api(
    49, "AlterClientQuotas", (0, 1), flexible=1,
    request=[
        Field("entries", Array([
            Field("entity", _ENTITY),
            Field("ops", Array([
                Field("key", STRING),
                Field("value", FLOAT64),
                Field("remove", BOOL),
            ])),
        ])),
        Field("validate_only", BOOL),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("entries", Array([
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
            Field("entity", _ENTITY),
        ])),
    ],
)
