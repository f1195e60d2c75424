"""CreateTopics (19)."""
from __future__ import annotations

from pybroker.errors import InvalidConfig, InvalidReplicaAssignment, InvalidRequest, KafkaError


def handle(broker, request) -> dict:
    body = request.body
    results = []
    for spec in body["topics"]:
        name = spec["name"]
        result = {"name": name, "error_code": 0, "error_message": None, "num_partitions": -1, "replication_factor": -1, "configs": None}
        try:
            partitions = spec["num_partitions"]
            replication = spec["replication_factor"]
            if spec.get("assignments"):
                if partitions != -1 or replication != -1:
                    raise InvalidRequest("Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
                partitions, replication = _check_assignments(broker, spec["assignments"])
            configs = {}
            for c in spec.get("configs") or []:
                if c["value"] is None:
                    raise InvalidConfig(f"Null value not supported for topic config {c['name']}")
                configs[c["name"]] = c["value"]
            topic = broker.logs.create_topic(
                name, partitions, replication, configs,
                validate_only=body.get("validate_only", False), live_brokers=broker.live_broker_count,
            )
            result.update(num_partitions=topic.partitions, replication_factor=topic.replication_factor)
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=exc.detail or exc.message)
        results.append(result)
    return {"throttle_time_ms": 0, "topics": results}


def _check_assignments(broker, assignments: list) -> tuple[int, int]:
    indexes = sorted(a["partition_index"] for a in assignments)
    if indexes != list(range(len(indexes))):
        raise InvalidReplicaAssignment("Partitions should be a consecutive 0-based integer sequence")
    sizes = {len(a["broker_ids"]) for a in assignments}
    if len(sizes) != 1:
        raise InvalidReplicaAssignment("All partitions should have the same number of replicas")
    for a in assignments:
        ids = a["broker_ids"]
        if len(set(ids)) != len(ids) or any(b not in broker.live_broker_ids for b in ids):
            raise InvalidReplicaAssignment(f"Invalid replica assignment {ids}")
    return len(indexes), sizes.pop()

