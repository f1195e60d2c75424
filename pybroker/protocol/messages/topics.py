"""Topic administration: CreateTopics (19), DeleteTopics (20), CreatePartitions (37),
DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44) (resource type
2 = topic, 4 = broker)."""
from ..schema import Api, Array, Field, BOOL, INT8, INT16, INT32, STRING, UUID

CREATE_TOPICS = Api(
    19, "CreateTopics", (0, 7), flexible=5,     # v6: THROTTLING_QUOTA_EXCEEDED; v7: topic ids
    request=[
        Field("topics", Array([
            Field("name", STRING),
            Field("num_partitions", INT32),  # -1: the broker default (v4+)
            Field("replication_factor", INT16),
            Field("assignments", Array([
                Field("partition_index", INT32),
                Field("broker_ids", Array(INT32)),
            ])),
            Field("configs", Array([
                Field("name", STRING),
                Field("value", STRING, nullable="0+"),
            ])),
        ])),
        Field("timeout_ms", INT32, default=60000),
        Field("validate_only", BOOL, "1+", default=False),
    ],
    response=[
        Field("throttle_time_ms", INT32, "2+"),
        Field("topics", Array([
            Field("name", STRING),
            Field("topic_id", UUID, "7+"),
            Field("error_code", INT16),
            Field("error_message", STRING, "1+", nullable="0+"),
            Field("topic_config_error_code", INT16, "5+", tag=0),
            Field("num_partitions", INT32, "5+", default=-1),
            Field("replication_factor", INT16, "5+", default=-1),
            Field("configs", Array([
                Field("name", STRING),
                Field("value", STRING, nullable="5+"),
                Field("read_only", BOOL),
                Field("config_source", INT8, default=-1),
                Field("is_sensitive", BOOL),
            ]), "5+", nullable="5+"),
        ])),
    ],
)

DELETE_TOPICS = Api(
    20, "DeleteTopics", (0, 6), flexible=4,     # v5: THROTTLING_QUOTA_EXCEEDED; v6: by topic id
    request=[
        Field("topics", Array([
            Field("name", STRING, nullable="6+", default=None),
            Field("topic_id", UUID),
        ]), "6+"),
        Field("topic_names", Array(STRING), "0-5"),
        Field("timeout_ms", INT32),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("responses", Array([
            Field("name", STRING, nullable="6+"),
            Field("topic_id", UUID, "6+"),
            Field("error_code", INT16),
            Field("error_message", STRING, "5+", nullable="5+", default=None),
        ])),
    ],
)

CREATE_PARTITIONS = Api(
    37, "CreatePartitions", (0, 3), flexible=2,
    request=[
        Field("topics", Array([
            Field("name", STRING),
            Field("count", INT32),  # the new total, not the number to add
            Field("assignments", Array([
                Field("broker_ids", Array(INT32)),
            ]), nullable="0+"),
        ])),
        Field("timeout_ms", INT32),
        Field("validate_only", BOOL),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("results", Array([
            Field("name", STRING),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
        ])),
    ],
)

DESCRIBE_CONFIGS = Api(
    32, "DescribeConfigs", (0, 4), flexible=4,
    request=[
        Field("resources", Array([
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("configuration_keys", Array(STRING), nullable="0+"),  # null: all
        ])),
        Field("include_synonyms", BOOL, "1+", default=False),
        Field("include_documentation", BOOL, "3+", default=False),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("results", Array([
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+"),
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("configs", Array([
                Field("name", STRING),
                Field("value", STRING, nullable="0+"),
                Field("read_only", BOOL),
                Field("config_source", INT8, "1+", default=-1),
                Field("is_default", BOOL, "0"),
                Field("is_sensitive", BOOL),
                Field("synonyms", Array([
                    Field("name", STRING),
                    Field("value", STRING, nullable="0+"),
                    Field("source", INT8),
                ]), "1+"),
                Field("config_type", INT8, "3+", default=0),
                Field("documentation", STRING, "3+", nullable="0+"),
            ])),
        ])),
    ],
)


def _alter_configs_request(*operation: Field) -> list[Field]:
    """AlterConfigs and IncrementalAlterConfigs requests differ only by the operation
    IncrementalAlterConfigs gives each config."""
    return [
        Field("resources", Array([
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("configs", Array([
                Field("name", STRING),
                *operation,
                Field("value", STRING, nullable="0+"),
            ])),
        ])),
        Field("validate_only", BOOL, default=False),
    ]


# Both answer alike: one result per resource.
_ALTER_CONFIGS_RESPONSE = [
    Field("throttle_time_ms", INT32),
    Field("responses", Array([
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("resource_type", INT8),
        Field("resource_name", STRING),
    ])),
]

# AlterConfigs: a resource's configs become its whole set of overrides (a name left out
# reverts to its default).
ALTER_CONFIGS = Api(
    33, "AlterConfigs", (0, 2), flexible=2,
    request=_alter_configs_request(),
    response=_ALTER_CONFIGS_RESPONSE,
)

INCREMENTAL_ALTER_CONFIGS = Api(
    44, "IncrementalAlterConfigs", (0, 1), flexible=1,
    request=_alter_configs_request(Field("config_operation", INT8)),  # 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT
    response=_ALTER_CONFIGS_RESPONSE,
)
