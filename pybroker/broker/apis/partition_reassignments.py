"""AlterPartitionReassignments (45) and ListPartitionReassignments (46)
(``kafka-reassign-partitions``, AdminClient.alterPartitionReassignments /
listPartitionReassignments).

Alter is the controller's (pybroker.cluster.reassignment); ALTER on the cluster. List is
answered from this broker's cluster image, whose partition states carry the adding and
removing replicas; DESCRIBE on the cluster. Either denied: CLUSTER_AUTHORIZATION_FAILED
at the top and, for Alter, on every partition (Kafka's error response)."""
from __future__ import annotations

from pybroker.broker.authorization import allowed_on_cluster
from pybroker.errors import ClusterAuthorizationFailed, KafkaError
from pybroker.security.acls import ALTER, DESCRIBE


def _alter_failed(body: dict, exc: KafkaError) -> dict:
    message = exc.detail or exc.message
    return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": message, "responses": [
        {"name": t["name"], "partitions": [
            {"partition_index": p["partition_index"], "error_code": exc.code, "error_message": message}
            for p in t["partitions"]]} for t in body["topics"]]}


async def alter(broker, request) -> dict:
    body = request.body
    if not allowed_on_cluster(broker, request, ALTER):
        return _alter_failed(body, ClusterAuthorizationFailed())
    wanted = [[t["name"], p["partition_index"], p["replicas"]] for t in body["topics"] for p in t["partitions"]]
    allow = body.get("allow_replication_factor_change", True) if request.api_version >= 1 else True
    try:
        rows = await broker.controller.alter_reassignments(wanted, allow)
    except KafkaError as exc:
        return _alter_failed(body, exc)
    by_topic: dict[str, list] = {}
    for topic, partition, code, message in rows:
        by_topic.setdefault(topic, []).append({"partition_index": partition, "error_code": code,
                                               "error_message": message})
    return {"throttle_time_ms": 0, "allow_replication_factor_change": allow, "error_code": 0, "error_message": None,
            "responses": [{"name": topic, "partitions": results} for topic, results in by_topic.items()]}


async def list_ongoing(broker, request) -> dict:
    if not allowed_on_cluster(broker, request, DESCRIBE):
        denied = ClusterAuthorizationFailed()
        return {"throttle_time_ms": 0, "error_code": denied.code, "error_message": denied.message, "topics": []}
    wanted = request.body.get("topics")
    partitions = broker.image.partitions
    if wanted is None:
        keys = sorted(key for key, state in partitions.items() if state.reassigning)
    else:
        # Named topics Kafka does not know are left out, as are partitions not moving.
        keys = [(t["name"], index) for t in wanted for index in t["partition_indexes"]]
    by_topic: dict[str, list] = {}
    for key in keys:
        state = partitions.get(key)
        if state is None or not state.reassigning:
            continue
        by_topic.setdefault(state.topic, []).append({
            "partition_index": state.partition, "replicas": list(state.replicas),
            "adding_replicas": list(state.adding_replicas), "removing_replicas": list(state.removing_replicas)})
    return {"throttle_time_ms": 0, "error_code": 0, "error_message": None,
            "topics": [{"name": topic, "partitions": rows} for topic, rows in by_topic.items()]}
