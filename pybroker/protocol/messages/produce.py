"""Produce (0): record batches for partitions. v3 is the first with magic v2 batches;
v7 allows zstd. ``records`` decodes to a memoryview of the request frame."""
from ..schema import Api, Array, Field, Struct, INT16, INT32, INT64, RECORDS, STRING

PRODUCE = Api(
    0, "Produce", (3, 9), flexible=9,
    request=[
        Field("transactional_id", STRING, "3+", nullable="3+", default=None),
        Field("acks", INT16),
        Field("timeout_ms", INT32),
        Field("topic_data", Array([
            Field("name", STRING),
            Field("partition_data", Array([
                Field("index", INT32),
                Field("records", RECORDS, nullable="0+"),
            ])),
        ])),
    ],
    response=[
        Field("responses", Array([
            Field("name", STRING),
            Field("partition_responses", Array([
                Field("index", INT32),
                Field("error_code", INT16),
                Field("base_offset", INT64),
                Field("log_append_time_ms", INT64, "2+", default=-1),
                Field("log_start_offset", INT64, "5+", default=-1),
                Field("record_errors", Array([
                    Field("batch_index", INT32, "8+"),
                    Field("batch_index_error_message", STRING, "8+", nullable="8+", default=None),
                ]), "8+"),
                Field("error_message", STRING, "8+", nullable="8+", default=None),
                Field("current_leader", Struct([
                    Field("leader_id", INT32, "10+", default=-1),
                    Field("leader_epoch", INT32, "10+", default=-1),
                ]), "10+", tag=0),
            ])),
        ])),
        Field("throttle_time_ms", INT32, "1+"),
    ],
)
