"""InitProducerId (22): a fresh producer id (epoch 0) for an idempotent producer, handed out
by this broker; a transactional producer's id and epoch come from the transaction
coordinator (pybroker.broker.apis.transactions)."""
from __future__ import annotations

from pybroker.broker.apis import transactions
from pybroker.broker.authorization import allowed, allowed_on_any, allowed_on_cluster
from pybroker.errors import ClusterAuthorizationFailed, TransactionalIdAuthorizationFailed
from pybroker.security.acls import IDEMPOTENT_WRITE, TOPIC, TRANSACTIONAL_ID, WRITE


async def handle(broker, request) -> dict:
    body = request.body
    if body.get("transactional_id") is not None:
        if not allowed(broker, request, WRITE, TRANSACTIONAL_ID, body["transactional_id"]):
            return _refused(TransactionalIdAuthorizationFailed)
        return await transactions.init_producer_id(broker, request)
    if not (allowed_on_cluster(broker, request, IDEMPOTENT_WRITE) or allowed_on_any(broker, request, WRITE, TOPIC)):
        # Kafka's rule for an idempotent producer: IDEMPOTENT_WRITE on the cluster, or
        # WRITE on some topic.
        return _refused(ClusterAuthorizationFailed)
    return {"throttle_time_ms": 0, "error_code": 0, "producer_id": broker.logs.next_producer_id(), "producer_epoch": 0}


def _refused(error) -> dict:
    return {"throttle_time_ms": 0, "error_code": error.code, "producer_id": -1, "producer_epoch": -1}
