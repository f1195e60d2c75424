"""InitProducerId (22): hands an idempotent or transactional producer its id and epoch
(kafka-python enables idempotence by default, so every producer asks)."""
from ..schema import Api, Field, BOOL, INT16, INT32, INT64, STRING

INIT_PRODUCER_ID = Api(
    22, "InitProducerId", (0, 4), flexible=2,
    request=[
        Field("transactional_id", STRING, nullable="0+"),
        Field("transaction_timeout_ms", INT32),
        Field("producer_id", INT64, "3+", default=-1),
        Field("producer_epoch", INT16, "3+", default=-1),
        Field("enable2_pc", BOOL, "6+", default=False),
        Field("keep_prepared_txn", BOOL, "6+", default=False),
    ],
    response=[
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("producer_id", INT64, default=-1),
        Field("producer_epoch", INT16),
        Field("ongoing_txn_producer_id", INT64, "6+", default=-1),
        Field("ongoing_txn_producer_epoch", INT16, "6+", default=-1),
    ],
)
