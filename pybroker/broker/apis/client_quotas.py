"""DescribeClientQuotas (48) and AlterClientQuotas (49).

Describe answers from the broker's copy of the quotas (the controller pushes them);
Alter goes to the controller, which validates it as Kafka's does
(pybroker.cluster.client_quotas), records it in the metadata log and pushes it to every
broker before it answers. With an authorizer, Describe needs DESCRIBE_CONFIGS and Alter
ALTER_CONFIGS on the cluster (CLUSTER_AUTHORIZATION_FAILED), as Kafka's.
"""
from __future__ import annotations

from pybroker import errors
from pybroker.broker.authorization import allowed_on_cluster
from pybroker.cluster import client_quotas
from pybroker.security.acls import ALTER_CONFIGS, DESCRIBE_CONFIGS


def describe(broker, request) -> dict:
    body = request.body
    try:
        if not allowed_on_cluster(broker, request, DESCRIBE_CONFIGS):
            raise errors.ClusterAuthorizationFailed()
        entries = client_quotas.describe(broker.image.client_quotas, body["components"], body["strict"])
    except errors.KafkaError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": exc.detail or exc.message,
                "entries": None}
    # Kafka answers an empty message (its generated default), not null.
    return {"throttle_time_ms": 0, "error_code": 0, "error_message": "", "entries": entries}


def _entity_out(pairs) -> list[dict]:
    return [{"entity_type": t, "entity_name": n} for t, n in pairs]


async def alter(broker, request) -> dict:
    body = request.body
    entries = [{"entity": client_quotas.entity_to_json(client_quotas.make_entity(
                    (e["entity_type"], e["entity_name"]) for e in entry["entity"])),
                "ops": [[op["key"], None if op["remove"] else op["value"]] for op in entry["ops"]]}
               for entry in body["entries"]]
    try:
        if not allowed_on_cluster(broker, request, ALTER_CONFIGS):
            raise errors.ClusterAuthorizationFailed()
        results = await broker.controller.alter_client_quotas(entries, body["validate_only"])
    except errors.KafkaError as exc:
        results = [{"entity": e["entity"], "error_code": exc.code, "error_message": exc.detail or exc.message}
                   for e in entries]
    return {"throttle_time_ms": 0, "entries": [
        {"error_code": r["error_code"], "error_message": r["error_message"], "entity": _entity_out(r["entity"])}
        for r in results]}
