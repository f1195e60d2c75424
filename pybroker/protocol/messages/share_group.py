"""KIP-932 share groups (Queues for Kafka): ShareGroupHeartbeat (76) and
ShareGroupDescribe (77) for membership, ShareFetch (78) to acquire records (with the
acknowledgements of earlier ones piggybacked) and ShareAcknowledge (79). Version 0 was
Kafka 4.0's early access and is gone; v1 is the stable protocol, v2 adds renewals.
DescribeShareGroupOffsets (90) reports each share-partition's start offset and lag;
AlterShareGroupOffsets (91) sets start offsets (the group must be empty) and
DeleteShareGroupOffsets (92) drops a group's share state for whole topics."""
from .consumer_group import DESCRIBED_ASSIGNMENT as _DESCRIBED_ASSIGNMENT
from ..schema import Api, Array, Field, BOOL, INT8, INT16, INT32, INT64, RECORDS, STRING, UUID

_UNKNOWN_OPERATIONS = -2147483648

_TOPIC_PARTITIONS = [
    Field("topic_id", UUID),
    Field("partitions", Array(INT32)),
]

SHARE_GROUP_HEARTBEAT = Api(
    76, "ShareGroupHeartbeat", (1, 1), flexible=0,
    request=[
        Field("group_id", STRING),
        Field("member_id", STRING),
        Field("member_epoch", INT32),      # 0 join, -1 leave
        Field("rack_id", STRING, nullable="0+", default=None),
        Field("subscribed_topic_names", Array(STRING), nullable="0+", default=None),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("member_id", STRING, nullable="0+", default=None),
        Field("member_epoch", INT32),
        Field("heartbeat_interval_ms", INT32),
        Field("assignment", [Field("topic_partitions", Array(_TOPIC_PARTITIONS))], nullable="0+", default=None),
    ],
)

SHARE_GROUP_DESCRIBE = Api(
    77, "ShareGroupDescribe", (1, 1), flexible=0,
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
                Field("rack_id", STRING, nullable="0+", default=None),
                Field("member_epoch", INT32),
                Field("client_id", STRING),
                Field("client_host", STRING),
                Field("subscribed_topic_names", Array(STRING)),
                Field("assignment", _DESCRIBED_ASSIGNMENT),
            ])),
            Field("authorized_operations", INT32, default=_UNKNOWN_OPERATIONS),
        ])),
    ],
)

# AcknowledgeTypes: 0 gap, 1 accept, 2 release, 3 reject, 4 renew (v2); one type for the
# whole batch, or one per offset.
_ACK_BATCHES = Array([
    Field("first_offset", INT64),
    Field("last_offset", INT64),
    Field("acknowledge_types", Array(INT8)),
])

_LEADER = [
    Field("leader_id", INT32, default=-1),
    Field("leader_epoch", INT32, default=-1),
]

_NODE_ENDPOINTS = Array([
    Field("node_id", INT32),
    Field("host", STRING),
    Field("port", INT32),
    Field("rack", STRING, nullable="0+", default=None),
])

SHARE_FETCH = Api(
    78, "ShareFetch", (1, 2), flexible=0,
    request=[
        Field("group_id", STRING, nullable="0+", default=None),
        Field("member_id", STRING, nullable="0+"),
        Field("share_session_epoch", INT32),      # 0 opens a session, -1 closes it
        Field("max_wait_ms", INT32),
        Field("min_bytes", INT32),
        Field("max_bytes", INT32, default=0x7FFFFFFF),
        Field("max_records", INT32, "1+"),
        Field("batch_size", INT32, "1+"),
        Field("share_acquire_mode", INT8, "2+", default=0),
        Field("is_renew_ack", BOOL, "2+", default=False),
        Field("topics", Array([
            Field("topic_id", UUID),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("partition_max_bytes", INT32, "0"),
                Field("acknowledgement_batches", _ACK_BATCHES),
            ])),
        ])),
        Field("forgotten_topics_data", Array(_TOPIC_PARTITIONS)),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("acquisition_lock_timeout_ms", INT32, "1+"),
        Field("responses", Array([
            Field("topic_id", UUID),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
                Field("acknowledge_error_code", INT16),
                Field("acknowledge_error_message", STRING, nullable="0+", default=None),
                Field("current_leader", _LEADER),
                Field("records", RECORDS, nullable="0"),
                Field("acquired_records", Array([
                    Field("first_offset", INT64),
                    Field("last_offset", INT64),
                    Field("delivery_count", INT16),
                ])),
            ])),
        ])),
        Field("node_endpoints", _NODE_ENDPOINTS),
    ],
)

SHARE_ACKNOWLEDGE = Api(
    79, "ShareAcknowledge", (1, 2), flexible=0,
    request=[
        Field("group_id", STRING, nullable="0+", default=None),
        Field("member_id", STRING, nullable="0+"),
        Field("share_session_epoch", INT32),
        Field("is_renew_ack", BOOL, "2+", default=False),
        Field("topics", Array([
            Field("topic_id", UUID),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("acknowledgement_batches", _ACK_BATCHES),
            ])),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("acquisition_lock_timeout_ms", INT32, "2+"),
        Field("responses", Array([
            Field("topic_id", UUID),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
                Field("current_leader", _LEADER),
            ])),
        ])),
        Field("node_endpoints", _NODE_ENDPOINTS),
    ],
)


DESCRIBE_SHARE_GROUP_OFFSETS = Api(
    90, "DescribeShareGroupOffsets", (0, 1), flexible=0,
    request=[
        Field("groups", Array([
            Field("group_id", STRING),
            Field("topics", Array([
                Field("topic_name", STRING),
                Field("partitions", Array(INT32)),
            ]), nullable="0+", default=None),          # null: every partition with share state
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("groups", Array([
            Field("group_id", STRING),
            Field("topics", Array([
                Field("topic_name", STRING),
                Field("topic_id", UUID),
                Field("partitions", Array([
                    Field("partition_index", INT32),
                    Field("start_offset", INT64),
                    Field("leader_epoch", INT32),
                    Field("lag", INT64, "1+", default=-1),
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+", default=None),
                ])),
            ])),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
        ])),
    ],
)


ALTER_SHARE_GROUP_OFFSETS = Api(
    91, "AlterShareGroupOffsets", (0, 0), flexible=0,
    request=[
        Field("group_id", STRING),
        Field("topics", Array([
            Field("topic_name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("start_offset", INT64),
            ])),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("responses", Array([
            Field("topic_name", STRING),
            Field("topic_id", UUID),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
            ])),
        ])),
    ],
)

DELETE_SHARE_GROUP_OFFSETS = Api(
    92, "DeleteShareGroupOffsets", (0, 0), flexible=0,
    request=[
        Field("group_id", STRING),
        Field("topics", Array([Field("topic_name", STRING)])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("responses", Array([
            Field("topic_name", STRING),
            Field("topic_id", UUID),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+", default=None),
        ])),
    ],
)
