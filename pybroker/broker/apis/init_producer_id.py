"""InitProducerId (22): a fresh producer id (epoch 0) for an idempotent producer, handed out
by this broker; a transactional producer's id and epoch come from the transaction
coordinator (pybroker.broker.apis.transactions)."""
from __future__ import annotations

from pybroker.broker.apis import transactions


async def handle(broker, request) -> dict:
    body = request.body
    if body.get("transactional_id") is not None:
        return await transactions.init_producer_id(broker, request)
    return {"throttle_time_ms": 0, "error_code": 0, "producer_id": broker.logs.next_producer_id(), "producer_epoch": 0}
