"""Cluster administration: DescribeCluster (60), DescribeTopicPartitions (75, KIP-966:
cursor paging, eligible leader replicas), DescribeLogDirs (35), ElectLeaders (43),
AlterPartitionReassignments (45; v1 is KIP-860's AllowReplicationFactorChange) and
ListPartitionReassignments (46)."""
from ..schema import Api, Array, Field, BOOL, INT8, INT16, INT32, INT64, STRING, UUID

# Kafka's "authorized operations not requested" bitfield value.
_UNKNOWN_OPERATIONS = -2147483648

DESCRIBE_CLUSTER = Api(
    60, "DescribeCluster", (0, 2), flexible=0,
    request=[
        Field("include_cluster_authorized_operations", BOOL),
        Field("endpoint_type", INT8, "1+", default=1),  # 1 brokers, 2 controllers
        Field("include_fenced_brokers", BOOL, "2+"),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("endpoint_type", INT8, "1+", default=1),
        Field("cluster_id", STRING),
        Field("controller_id", INT32, default=-1),
        Field("brokers", Array([
            Field("broker_id", INT32),
            Field("host", STRING),
            Field("port", INT32),
            Field("rack", STRING, nullable="0+", default=None),
            Field("is_fenced", BOOL, "2+"),
        ])),
        Field("cluster_authorized_operations", INT32, default=_UNKNOWN_OPERATIONS),
    ],
)

_CURSOR = [
    Field("topic_name", STRING),
    Field("partition_index", INT32),
]

DESCRIBE_TOPIC_PARTITIONS = Api(
    75, "DescribeTopicPartitions", (0, 0), flexible=0,
    request=[
        Field("topics", Array([Field("name", STRING)])),  # empty: every topic
        Field("response_partition_limit", INT32, default=2000),
        Field("cursor", _CURSOR, nullable="0+", default=None),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("topics", Array([
            Field("error_code", INT16),
            Field("name", STRING, nullable="0+"),
            Field("topic_id", UUID),
            Field("is_internal", BOOL),
            Field("partitions", Array([
                Field("error_code", INT16),
                Field("partition_index", INT32),
                Field("leader_id", INT32),
                Field("leader_epoch", INT32, default=-1),
                Field("replica_nodes", Array(INT32)),
                Field("isr_nodes", Array(INT32)),
                Field("eligible_leader_replicas", Array(INT32), nullable="0+", default=None),
                Field("last_known_elr", Array(INT32), nullable="0+", default=None),
                Field("offline_replicas", Array(INT32)),
            ])),
            Field("topic_authorized_operations", INT32, default=_UNKNOWN_OPERATIONS),
        ])),
        Field("next_cursor", _CURSOR, nullable="0+", default=None),
    ],
)

DESCRIBE_LOG_DIRS = Api(
    35, "DescribeLogDirs", (1, 4), flexible=2,
    request=[
        Field("topics", Array([  # null: every partition
            Field("topic", STRING),
            Field("partitions", Array(INT32)),
        ]), nullable="0+"),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16, "3+"),
        Field("results", Array([
            Field("error_code", INT16),
            Field("log_dir", STRING),
            Field("topics", Array([
                Field("name", STRING),
                Field("partitions", Array([
                    Field("partition_index", INT32),
                    Field("partition_size", INT64),
                    Field("offset_lag", INT64),
                    Field("is_future_key", BOOL),
                ])),
            ])),
            Field("total_bytes", INT64, "4+", default=-1),
            Field("usable_bytes", INT64, "4+", default=-1),
        ])),
    ],
)

ELECT_LEADERS = Api(
    43, "ElectLeaders", (0, 2), flexible=2,
    request=[
        Field("election_type", INT8, "1+"),  # 0 preferred, 1 unclean
        Field("topic_partitions", Array([  # null: every partition
            Field("topic", STRING),
            Field("partitions", Array(INT32)),
        ]), nullable="0+"),
        Field("timeout_ms", INT32, default=60000),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16, "1+"),
        Field("replica_election_results", Array([
            Field("topic", STRING),
            Field("partition_result", Array([
                Field("partition_id", INT32),
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
            ])),
        ])),
    ],
)

ALTER_PARTITION_REASSIGNMENTS = Api(
    45, "AlterPartitionReassignments", (0, 1), flexible=0,
    request=[
        Field("timeout_ms", INT32, default=60000),
        Field("allow_replication_factor_change", BOOL, "1+", default=True),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("replicas", Array(INT32), nullable="0+", default=None),  # null: cancel
            ])),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("allow_replication_factor_change", BOOL, "1+", default=True),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("responses", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
            ])),
        ])),
    ],
)

LIST_PARTITION_REASSIGNMENTS = Api(
    46, "ListPartitionReassignments", (0, 0), flexible=0,
    request=[
        Field("timeout_ms", INT32, default=60000),
        Field("topics", Array([  # null: every reassignment in progress
            Field("name", STRING),
            Field("partition_indexes", Array(INT32)),
        ]), nullable="0+", default=None),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+", default=None),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("replicas", Array(INT32)),
                Field("adding_replicas", Array(INT32)),
                Field("removing_replicas", Array(INT32)),
            ])),
        ])),
    ],
)
