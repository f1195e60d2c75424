"""The classic consumer-group protocol: FindCoordinator (10) locates the coordinator,
JoinGroup (11) / SyncGroup (14) form a generation (the leader computes the assignment
client-side), Heartbeat (12) keeps a member alive, LeaveGroup (13) leaves; and the
admin side DescribeGroups (15), ListGroups (16), DeleteGroups (42)."""
from ..schema import Api, Array, Field, BOOL, BYTES, INT8, INT16, INT32, STRING

_UNKNOWN_OPERATIONS = -2147483648

FIND_COORDINATOR = Api(
    10, "FindCoordinator", (0, 4), flexible=3,
    request=[
        Field("key", STRING, "0-3"),
        Field("key_type", INT8, "1+", default=0),  # 0 group, 1 transaction
        Field("coordinator_keys", Array(STRING), "4+"),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16, "0-3"),
        Field("error_message", STRING, "1-3", nullable="1-3"),
        Field("node_id", INT32, "0-3"),
        Field("host", STRING, "0-3"),
        Field("port", INT32, "0-3"),
        Field("coordinators", Array([
            Field("key", STRING, "4+"),
            Field("node_id", INT32, "4+"),
            Field("host", STRING, "4+"),
            Field("port", INT32, "4+"),
            Field("error_code", INT16, "4+"),
            Field("error_message", STRING, "4+", nullable="4+"),
        ]), "4+"),
    ],
)

JOIN_GROUP = Api(
    11, "JoinGroup", (0, 6), flexible=6,
    request=[
        Field("group_id", STRING),
        Field("session_timeout_ms", INT32),
        Field("rebalance_timeout_ms", INT32, "1+", default=-1),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, "5+", nullable="5+", default=None),
        Field("protocol_type", STRING),
        Field("protocols", Array([
            Field("name", STRING),
            Field("metadata", BYTES),
        ])),
        Field("reason", STRING, "8+", nullable="8+", default=None),
    ],
    response=[
        Field("throttle_time_ms", INT32, "2+"),
        Field("error_code", INT16),
        Field("generation_id", INT32, default=-1),
        Field("protocol_type", STRING, "7+", nullable="7+", default=None),
        Field("protocol_name", STRING, nullable="7+"),
        Field("leader", STRING),
        Field("skip_assignment", BOOL, "9+", default=False),
        Field("member_id", STRING),
        Field("members", Array([
            Field("member_id", STRING),
            Field("group_instance_id", STRING, "5+", nullable="5+", default=None),
            Field("metadata", BYTES),
        ])),
    ],
)

HEARTBEAT = Api(
    12, "Heartbeat", (0, 4), flexible=4,
    request=[
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, "3+", nullable="3+", default=None),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
    ],
)

LEAVE_GROUP = Api(
    13, "LeaveGroup", (0, 4), flexible=4,
    request=[
        Field("group_id", STRING),
        Field("member_id", STRING, "0-2"),
        Field("members", Array([
            Field("member_id", STRING),
            Field("group_instance_id", STRING, nullable="3+", default=None),
            Field("reason", STRING, "5+", nullable="5+", default=None),
        ]), "3+"),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
        Field("members", Array([
            Field("member_id", STRING),
            Field("group_instance_id", STRING, nullable="3+"),
            Field("error_code", INT16),
        ]), "3+"),
    ],
)

SYNC_GROUP = Api(
    14, "SyncGroup", (0, 4), flexible=4,
    request=[
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, "3+", nullable="3+", default=None),
        Field("protocol_type", STRING, "5+", nullable="5+", default=None),
        Field("protocol_name", STRING, "5+", nullable="5+", default=None),
        Field("assignments", Array([
            Field("member_id", STRING),
            Field("assignment", BYTES),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
        Field("protocol_type", STRING, "5+", nullable="5+", default=None),
        Field("protocol_name", STRING, "5+", nullable="5+", default=None),
        Field("assignment", BYTES),
    ],
)

DESCRIBE_GROUPS = Api(
    15, "DescribeGroups", (0, 5), flexible=5,
    request=[
        Field("groups", Array(STRING)),
        Field("include_authorized_operations", BOOL, "3+"),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("groups", Array([
            Field("error_code", INT16),
            Field("error_message", STRING, "6+", nullable="6+", default=None),
            Field("group_id", STRING),
            Field("group_state", STRING),
            Field("protocol_type", STRING),
            Field("protocol_data", STRING),
            Field("members", Array([
                Field("member_id", STRING),
                Field("group_instance_id", STRING, "4+", nullable="4+", default=None),
                Field("client_id", STRING),
                Field("client_host", STRING),
                Field("member_metadata", BYTES),
                Field("member_assignment", BYTES),
            ])),
            Field("authorized_operations", INT32, "3+", default=_UNKNOWN_OPERATIONS),
        ])),
    ],
)

LIST_GROUPS = Api(
    16, "ListGroups", (0, 5), flexible=3,
    request=[
        Field("states_filter", Array(STRING), "4+"),
        Field("types_filter", Array(STRING), "5+"),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
        Field("groups", Array([
            Field("group_id", STRING),
            Field("protocol_type", STRING),
            Field("group_state", STRING, "4+"),
            Field("group_type", STRING, "5+"),
        ])),
    ],
)

DELETE_GROUPS = Api(
    42, "DeleteGroups", (0, 2), flexible=2,
    request=[
        Field("groups_names", Array(STRING)),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("results", Array([
            Field("group_id", STRING),
            Field("error_code", INT16),
        ])),
    ],
)
