"""ElectLeaders (43, KIP-460): preferred (0) or unclean (1) leader election, run by the
controller for the named partitions or, with none named, for every partition
(``kafka-leader-election`` and AdminClient.electLeaders)."""
from __future__ import annotations

from pybroker.broker.authorization import allowed_on_cluster
from pybroker.errors import InvalidRequest, KafkaError
from pybroker.errors import ClusterAuthorizationFailed
from pybroker.security.acls import ALTER

PREFERRED, UNCLEAN = 0, 1


async def handle(broker, request) -> dict:
    body = request.body
    election = body.get("election_type", PREFERRED) if request.api_version >= 1 else PREFERRED
    wanted = body.get("topic_partitions")
    partitions = None if wanted is None else [[t["topic"], p] for t in wanted for p in t["partitions"]]
    if not allowed_on_cluster(broker, request, ALTER):
        denied = ClusterAuthorizationFailed.code
        return {"throttle_time_ms": 0, "error_code": denied, "replica_election_results": [
            {"topic": t["topic"], "partition_result": [
                {"partition_id": p, "error_code": denied, "error_message": ClusterAuthorizationFailed.message}
                for p in t["partitions"]]} for t in wanted or ()]}
    if election not in (PREFERRED, UNCLEAN):
        return {"throttle_time_ms": 0, "error_code": InvalidRequest.code, "replica_election_results": []}
    try:
        rows = await broker.controller.elect_leaders(election == UNCLEAN, partitions)
    except KafkaError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "replica_election_results": []}
    by_topic: dict[str, list] = {}
    for topic, partition, code, message in rows:
        by_topic.setdefault(topic, []).append({"partition_id": partition, "error_code": code, "error_message": message})
    return {"throttle_time_ms": 0, "error_code": 0, "replica_election_results": [
        {"topic": topic, "partition_result": results} for topic, results in by_topic.items()]}
