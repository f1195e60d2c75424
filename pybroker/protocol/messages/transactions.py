"""Transactions (KIP-98): AddPartitionsToTxn (24) and AddOffsetsToTxn (25) enlist partitions
and a group's offsets in a producer's transaction, TxnOffsetCommit (28) stores offsets that
the group sees only once the transaction commits, EndTxn (26) commits or aborts it; the
admin side DescribeProducers (61), DescribeTransactions (65), ListTransactions (66).
WriteTxnMarkers (27) writes COMMIT/ABORT markers on a partition leader: the coordinator
sends its markers over the control channel instead, but tools abort a hanging
transaction with it (kafka-transactions abort). (InitProducerId is in producer_id.py.)

AddPartitionsToTxn v0-v3 are the clients' versions; v4+ (KIP-890) batch several
transactions and can only verify (``verify_only``) that partitions are in them."""
from ..schema import Api, Array, Field, BOOL, INT16, INT32, INT64, STRING

_TOPICS = Array([
    Field("name", STRING),
    Field("partitions", Array(INT32)),
])
_TOPIC_RESULTS = Array([
    Field("name", STRING),
    Field("results_by_partition", Array([
        Field("partition_index", INT32),
        Field("partition_error_code", INT16),
    ])),
])

ADD_PARTITIONS_TO_TXN = Api(
    24, "AddPartitionsToTxn", (0, 5), flexible=3,
    request=[
        Field("transactions", Array([
            Field("transactional_id", STRING),
            Field("producer_id", INT64),
            Field("producer_epoch", INT16),
            Field("verify_only", BOOL, default=False),
            Field("topics", _TOPICS),
        ]), "4+"),
        Field("v3_and_below_transactional_id", STRING, "0-3"),
        Field("v3_and_below_producer_id", INT64, "0-3"),
        Field("v3_and_below_producer_epoch", INT16, "0-3"),
        Field("v3_and_below_topics", _TOPICS, "0-3"),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16, "4+"),
        Field("results_by_transaction", Array([
            Field("transactional_id", STRING),
            Field("topic_results", _TOPIC_RESULTS),
        ]), "4+"),
        Field("results_by_topic_v3_and_below", _TOPIC_RESULTS, "0-3"),
    ],
)

# Who is asking: the fields opening AddOffsetsToTxn and EndTxn.
_PRODUCER = [
    Field("transactional_id", STRING),
    Field("producer_id", INT64),
    Field("producer_epoch", INT16),
]
_ERROR_ONLY = [
    Field("throttle_time_ms", INT32),
    Field("error_code", INT16),
]

ADD_OFFSETS_TO_TXN = Api(
    25, "AddOffsetsToTxn", (0, 4), flexible=3,
    request=[*_PRODUCER, Field("group_id", STRING)],
    response=_ERROR_ONLY,
)

END_TXN = Api(
    26, "EndTxn", (0, 4), flexible=3,
    request=[*_PRODUCER, Field("committed", BOOL)],
    response=_ERROR_ONLY,
)

WRITE_TXN_MARKERS = Api(
    27, "WriteTxnMarkers", (0, 1), flexible=1,
    request=[
        Field("markers", Array([
            Field("producer_id", INT64),
            Field("producer_epoch", INT16),
            Field("transaction_result", BOOL),
            Field("topics", Array([
                Field("name", STRING),
                Field("partition_indexes", Array(INT32)),
            ])),
            Field("coordinator_epoch", INT32),
        ])),
    ],
    response=[
        Field("markers", Array([
            Field("producer_id", INT64),
            Field("topics", Array([
                Field("name", STRING),
                Field("partitions", Array([
                    Field("partition_index", INT32),
                    Field("error_code", INT16),
                ])),
            ])),
        ])),
    ],
)

TXN_OFFSET_COMMIT = Api(
    28, "TxnOffsetCommit", (0, 4), flexible=3,
    request=[
        Field("transactional_id", STRING),
        Field("group_id", STRING),
        Field("producer_id", INT64),
        Field("producer_epoch", INT16),
        Field("generation_id", INT32, "3+", default=-1),
        Field("member_id", STRING, "3+", default=""),
        Field("group_instance_id", STRING, "3+", nullable="3+", default=None),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("committed_offset", INT64),
                Field("committed_leader_epoch", INT32, "2+", default=-1),
                Field("committed_metadata", STRING, nullable="0+"),
            ])),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
            ])),
        ])),
    ],
)

DESCRIBE_PRODUCERS = Api(
    61, "DescribeProducers", (0, 0), flexible=0,
    request=[
        Field("topics", Array([
            Field("name", STRING),
            Field("partition_indexes", Array(INT32)),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+", default=None),
                Field("active_producers", Array([
                    Field("producer_id", INT64),
                    Field("producer_epoch", INT32),
                    Field("last_sequence", INT32, default=-1),
                    Field("last_timestamp", INT64, default=-1),
                    Field("coordinator_epoch", INT32),
                    Field("current_txn_start_offset", INT64, default=-1),
                ])),
            ])),
        ])),
    ],
)

DESCRIBE_TRANSACTIONS = Api(
    65, "DescribeTransactions", (0, 0), flexible=0,
    request=[
        Field("transactional_ids", Array(STRING)),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("transaction_states", Array([
            Field("error_code", INT16),
            Field("transactional_id", STRING),
            Field("transaction_state", STRING),
            Field("transaction_timeout_ms", INT32),
            Field("transaction_start_time_ms", INT64),
            Field("producer_id", INT64),
            Field("producer_epoch", INT16),
            Field("topics", Array([
                Field("topic", STRING),
                Field("partitions", Array(INT32)),
            ])),
        ])),
    ],
)

LIST_TRANSACTIONS = Api(
    66, "ListTransactions", (0, 1), flexible=0,
    request=[
        Field("state_filters", Array(STRING)),
        Field("producer_id_filters", Array(INT64)),
        Field("duration_filter", INT64, "1+", default=-1),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("unknown_state_filters", Array(STRING)),
        Field("transaction_states", Array([
            Field("transactional_id", STRING),
            Field("producer_id", INT64),
            Field("transaction_state", STRING),
        ])),
    ],
)
