"""Metadata (3): brokers, topics, partitions, leaders and replicas.

A null topic list (v1+) asks for every topic; an empty one for none.
"""
from ..schema import Api, Array, Field, BOOL, INT16, INT32, STRING, UUID

_UNKNOWN_OPERATIONS = -2147483648  # INT32_MIN: "authorized operations not requested"

METADATA = Api(
    3, "Metadata", (0, 12), flexible=9,
    request=[
        Field("topics", Array([
            Field("topic_id", UUID, "10+"),
            Field("name", STRING, nullable="10+"),
        ]), nullable="1+"),
        Field("allow_auto_topic_creation", BOOL, "4+", default=True),
        Field("include_cluster_authorized_operations", BOOL, "8-10"),
        Field("include_topic_authorized_operations", BOOL, "8+"),
    ],
    response=[
        Field("throttle_time_ms", INT32, "3+"),
        Field("brokers", Array([
            Field("node_id", INT32),
            Field("host", STRING),
            Field("port", INT32),
            Field("rack", STRING, "1+", nullable="1+", default=None),
        ])),
        Field("cluster_id", STRING, "2+", nullable="2+", default=None),
        Field("controller_id", INT32, "1+", default=-1),
        Field("topics", Array([
            Field("error_code", INT16),
            Field("name", STRING, nullable="12+"),
            Field("topic_id", UUID, "10+"),
            Field("is_internal", BOOL, "1+", default=False),
            Field("partitions", Array([
                Field("error_code", INT16),
                Field("partition_index", INT32),
                Field("leader_id", INT32),
                Field("leader_epoch", INT32, "7+", default=-1),
                Field("replica_nodes", Array(INT32)),
                Field("isr_nodes", Array(INT32)),
                Field("offline_replicas", Array(INT32), "5+"),
            ])),
            Field("topic_authorized_operations", INT32, "8+", default=_UNKNOWN_OPERATIONS),
        ])),
        Field("cluster_authorized_operations", INT32, "8-10", default=_UNKNOWN_OPERATIONS),
    ],
)
