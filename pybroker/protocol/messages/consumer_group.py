"""KIP-848 consumer groups (``group.protocol=consumer``): members heartbeat with
ConsumerGroupHeartbeat (68) and the coordinator answers with their assignment;
ConsumerGroupDescribe (69) shows epochs, assignments and targets."""
from ..schema import Api, Array, Field, BOOL, INT8, INT16, INT32, STRING, UUID

_UNKNOWN_OPERATIONS = -2147483648

CONSUMER_GROUP_HEARTBEAT = Api(
    68, "ConsumerGroupHeartbeat", (0, 1), flexible=0,
    request=[
        Field("group_id", STRING),
        Field("member_id", STRING),
        Field("member_epoch", INT32),      # 0 join, -1 leave, -2 static member leaving
        Field("instance_id", STRING, nullable="0+", default=None),
        Field("rack_id", STRING, nullable="0+", default=None),
        Field("rebalance_timeout_ms", INT32, default=-1),
        Field("subscribed_topic_names", Array(STRING), nullable="0+", default=None),
        Field("subscribed_topic_regex", STRING, "1+", nullable="1+", default=None),
        Field("server_assignor", STRING, nullable="0+", default=None),
        Field("topic_partitions", Array([
            Field("topic_id", UUID),
            Field("partitions", Array(INT32)),
        ]), nullable="0+", default=None),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("member_id", STRING, nullable="0+", default=None),
        Field("member_epoch", INT32),
        Field("heartbeat_interval_ms", INT32),
        Field("assignment", [
            Field("topic_partitions", Array([
                Field("topic_id", UUID),
                Field("partitions", Array(INT32)),
            ])),
        ], nullable="0+", default=None),
    ],
)

# Shared by ShareGroupDescribe.
DESCRIBED_ASSIGNMENT = [
    Field("topic_partitions", Array([
        Field("topic_id", UUID),
        Field("topic_name", STRING),
        Field("partitions", Array(INT32)),
    ])),
]

CONSUMER_GROUP_DESCRIBE = Api(
    69, "ConsumerGroupDescribe", (0, 1), flexible=0,
    request=[
        Field("group_ids", Array(STRING)),
        Field("include_authorized_operations", BOOL, default=False),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("groups", Array([
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
            Field("group_id", STRING),
            Field("group_state", STRING),
            Field("group_epoch", INT32),
            Field("assignment_epoch", INT32),
            Field("assignor_name", STRING),
            Field("members", Array([
                Field("member_id", STRING),
                Field("instance_id", STRING, nullable="0+", default=None),
                Field("rack_id", STRING, nullable="0+", default=None),
                Field("member_epoch", INT32),
                Field("client_id", STRING),
                Field("client_host", STRING),
                Field("subscribed_topic_names", Array(STRING)),
                Field("subscribed_topic_regex", STRING, nullable="0+", default=None),
                Field("assignment", DESCRIBED_ASSIGNMENT),
                Field("target_assignment", DESCRIBED_ASSIGNMENT),
                Field("member_type", INT8, "1+", default=-1),   # KIP-1099: 0 classic, 1 consumer member
            ])),
            Field("authorized_operations", INT32, default=_UNKNOWN_OPERATIONS),
        ])),
    ],
)
