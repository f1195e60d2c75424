"""InitProducerId (22): a fresh producer id (epoch 0) for an idempotent producer.
Transactions are not supported: a transactional id is refused."""
from __future__ import annotations


def handle(broker, request) -> dict:
    body = request.body
    if body.get("transactional_id"):
        # Kafka's answer when the transaction coordinator is unavailable.
        return {"throttle_time_ms": 0, "error_code": 15, "producer_id": -1, "producer_epoch": -1}
    return {"throttle_time_ms": 0, "error_code": 0, "producer_id": broker.logs.next_producer_id(), "producer_epoch": 0}
