"""Offset lookups and log truncation: ListOffsets (2) by timestamp (-1 latest,
-2 earliest, -3 max timestamp from v7, -4 earliest local from v8, -5 latest tiered from v9;
v10 adds a timeout for remote lookups), OffsetForLeaderEpoch (23) for follower truncation and consumer
divergence checks, DeleteRecords (21) to move the log start offset forward."""
from ..schema import Api, Array, Field, INT8, INT16, INT32, INT64, STRING

LIST_OFFSETS = Api(
    2, "ListOffsets", (0, 10), flexible=6,
    request=[
        Field("replica_id", INT32),
        Field("isolation_level", INT8, "2+"),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("current_leader_epoch", INT32, "4+", default=-1),
                Field("timestamp", INT64),
                Field("max_num_offsets", INT32, "0", default=1),
            ])),
        ])),
        Field("timeout_ms", INT32, "10+"),
    ],
    response=[
        Field("throttle_time_ms", INT32, "2+"),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("old_style_offsets", Array(INT64), "0"),
                Field("timestamp", INT64, "1+", default=-1),
                Field("offset", INT64, "1+", default=-1),
                Field("leader_epoch", INT32, "4+", default=-1),
            ])),
        ])),
    ],
)

OFFSET_FOR_LEADER_EPOCH = Api(
    23, "OffsetForLeaderEpoch", (0, 4), flexible=4,
    request=[
        # -2 marks a consumer (debug) request, otherwise the follower's broker id.
        Field("replica_id", INT32, "3+", default=-2),
        Field("topics", Array([
            Field("topic", STRING),
            Field("partitions", Array([
                Field("partition", INT32),
                Field("current_leader_epoch", INT32, "2+", default=-1),
                Field("leader_epoch", INT32),
            ])),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32, "2+"),
        Field("topics", Array([
            Field("topic", STRING),
            Field("partitions", Array([
                Field("error_code", INT16),
                Field("partition", INT32),
                Field("leader_epoch", INT32, "1+", default=-1),
                Field("end_offset", INT64, default=-1),
            ])),
        ])),
    ],
)

DELETE_RECORDS = Api(
    21, "DeleteRecords", (0, 2), flexible=2,
    request=[
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("offset", INT64),
            ])),
        ])),
        Field("timeout_ms", INT32),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("low_watermark", INT64),
                Field("error_code", INT16),
            ])),
        ])),
    ],
)
