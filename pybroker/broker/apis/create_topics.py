"""CreateTopics (19): validated and carried out by the controller.

Authorization (with an authorizer), as Kafka's: CREATE on the cluster or on the topic,
else TOPIC_AUTHORIZATION_FAILED; the new topic's configs are returned only with
DESCRIBE_CONFIGS on it (else ``topic_config_error_code`` TOPIC_AUTHORIZATION_FAILED)."""
from __future__ import annotations

import uuid

from pybroker.config import TopicConfig
from pybroker.broker.apis.mutation_quota import CREATE_TOPICS_STRICT, MutationGate
from pybroker.broker.authorization import allowed, denied_entry, may_create_topic
from pybroker.errors import InvalidConfig, InvalidRequest, InvalidReplicaAssignment, KafkaError, TopicAuthorizationFailed
from pybroker.security.acls import DESCRIBE_CONFIGS, TOPIC

# ConfigSource values, as DescribeConfigs reports them.
DYNAMIC_TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5


def _created_configs(broker, spec: dict) -> list[dict]:
    """The new topic's settings (v5+ answers carry them; the Java admin client reads
    them on success)."""
    topic = broker.image.topics.get(spec["name"])
    config = topic.config if topic is not None else TopicConfig.parse(spec["configs"], broker.topic_defaults)
    overridden = set(config.overrides)
    return [
        {"name": key, "value": value, "read_only": False,
         "config_source": DYNAMIC_TOPIC_CONFIG if key in overridden else DEFAULT_CONFIG, "is_sensitive": False}
        for key, value in config.to_kafka().items()
    ]


def _spec(spec: dict) -> dict:
    partitions, replication = spec["num_partitions"], spec["replication_factor"]
    assignments = None
    if spec.get("assignments"):
        if partitions != -1 or replication != -1:
            raise InvalidRequest("Both numPartitions or replicationFactor and replicasAssignments were set. "
                                 "Both cannot be used at the same time.")
        by_index = {a["partition_index"]: list(a["broker_ids"]) for a in spec["assignments"]}
        if sorted(by_index) != list(range(len(by_index))):
            raise InvalidReplicaAssignment("Partitions should be a consecutive 0-based integer sequence")
        assignments = [by_index[i] for i in range(len(by_index))]
    configs = {}
    for c in spec.get("configs") or []:
        if c["value"] is None:
            raise InvalidConfig(f"Null value not supported for topic config {c['name']}")
        configs[c["name"]] = c["value"]
    return {"name": spec["name"], "num_partitions": partitions, "replication_factor": replication,
            "assignments": assignments, "configs": configs}


def _partition_count(broker, spec: dict) -> int:
    """The partitions a topic would add (-1: the broker's num.partitions)."""
    if spec["assignments"] is not None:
        return len(spec["assignments"])
    return spec["num_partitions"] if spec["num_partitions"] > 0 else broker.config.num_partitions


async def handle(broker, request) -> dict:
    body = request.body
    results, specs = {}, []
    gate = MutationGate(broker, request, CREATE_TOPICS_STRICT, body.get("validate_only", False))
    for spec in body["topics"]:
        if not may_create_topic(broker, request, spec["name"]):
            results[spec["name"]] = denied_entry(spec["name"], "create topic")
            continue
        try:
            parsed = _spec(spec)
        except KafkaError as exc:
            results[spec["name"]] = {"name": spec["name"], "error_code": exc.code, "error_message": exc.detail}
            continue
        refused = gate.admit(parsed["name"], _partition_count(broker, parsed))
        if refused is not None:
            results[parsed["name"]] = refused
        else:
            specs.append(parsed)
    if specs:
        try:
            by_name = {spec["name"]: spec for spec in specs}
            for result in await broker.controller.create_topics(specs, body.get("validate_only", False)):
                if result.get("topic_id"):
                    result = {**result, "topic_id": uuid.UUID(str(result["topic_id"]))}
                if result["error_code"] == 0:
                    if allowed(broker, request, DESCRIBE_CONFIGS, TOPIC, result["name"]):
                        result = {**result, "configs": _created_configs(broker, by_name[result["name"]])}
                    else:
                        result = {**result, "topic_config_error_code": TopicAuthorizationFailed.code}
                results[result["name"]] = result
        except KafkaError as exc:
            for spec in specs:
                results[spec["name"]] = {"name": spec["name"], "error_code": exc.code, "error_message": exc.detail}
    return {
        "throttle_time_ms": gate.finish(list(results.values())),
        "topics": [{"num_partitions": -1, "replication_factor": -1, "configs": None, **results[s["name"]]}
                   for s in body["topics"]],
    }
