"""Fetch (1): consumers and follower replicas read record batches. v4 adds the
isolation level and aborted transactions, v7 fetch sessions, v10 zstd, v11 the rack, v13
topic ids instead of names, v15 the replica id in ``replica_state``, v16 node endpoints
(tagged; left out), v17 a replica's directory id (tagged; ignored).
A response's ``records`` may be a file region the broker sends with sendfile."""
from ..schema import Api, Array, Field, Struct, INT8, INT16, INT32, INT64, RECORDS, STRING, UUID

_leader_and_epoch = [
    Field("leader_id", INT32, default=-1),
    Field("leader_epoch", INT32, default=-1),
]

FETCH = Api(
    1, "Fetch", (4, 17), flexible=12,      # v13: topic ids; v15: replica_state; v16: node_endpoints
    request=[
        Field("cluster_id", STRING, "12+", nullable="12+", default=None, tag=0),
        Field("replica_state", Struct([
            Field("replica_id", INT32, default=-1),
            Field("replica_epoch", INT64, default=-1),
        ]), "15+", tag=1),
        Field("replica_id", INT32, "0-14", default=-1),
        Field("max_wait_ms", INT32),
        Field("min_bytes", INT32),
        Field("max_bytes", INT32, "3+", default=0x7FFFFFFF),
        Field("isolation_level", INT8, "4+", default=0),
        Field("session_id", INT32, "7+", default=0),
        Field("session_epoch", INT32, "7+", default=-1),
        Field("topics", Array([
            Field("topic", STRING, "0-12"),
            Field("topic_id", UUID, "13+"),
            Field("partitions", Array([
                Field("partition", INT32),
                Field("current_leader_epoch", INT32, "9+", default=-1),
                Field("fetch_offset", INT64),
                Field("last_fetched_epoch", INT32, "12+", default=-1),
                Field("log_start_offset", INT64, "5+", default=-1),
                Field("partition_max_bytes", INT32),
                Field("replica_directory_id", UUID, "17+", tag=0),
            ])),
        ])),
        Field("forgotten_topics_data", Array([
            Field("topic", STRING, "7-12"),
            Field("topic_id", UUID, "13+"),
            Field("partitions", Array(INT32), "7+"),
        ]), "7+"),
        Field("rack_id", STRING, "11+", default=""),
    ],
    response=[
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16, "7+"),
        Field("session_id", INT32, "7+", default=0),
        Field("responses", Array([
            Field("topic", STRING, "0-12"),
            Field("topic_id", UUID, "13+"),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("high_watermark", INT64),
                Field("last_stable_offset", INT64, "4+", default=-1),
                Field("log_start_offset", INT64, "5+", default=-1),
                Field("diverging_epoch", Struct([
                    Field("epoch", INT32, default=-1),
                    Field("end_offset", INT64, default=-1),
                ]), "12+", tag=0),
                Field("current_leader", Struct(_leader_and_epoch), "12+", tag=1),
                Field("snapshot_id", Struct([
                    Field("end_offset", INT64, default=-1),
                    Field("epoch", INT32, default=-1),
                ]), "12+", tag=2),
                Field("aborted_transactions", Array([
                    Field("producer_id", INT64),
                    Field("first_offset", INT64),
                ]), "4+", nullable="4+"),
                Field("preferred_read_replica", INT32, "11+", default=-1),
                Field("records", RECORDS, nullable="0+"),
            ])),
        ])),
        Field("node_endpoints", Array([
            Field("node_id", INT32),
            Field("host", STRING),
            Field("port", INT32),
            Field("rack", STRING, nullable="16+", default=None),
        ]), "16+", tag=0),
    ],
)
