"""AlterConfigs (33) and IncrementalAlterConfigs (44): config changes, validated, recorded
in the metadata log and published by the controller (every broker then applies them).

Kafka answers per resource, and so does this:
- TOPIC (2): AlterConfigs replaces the topic's whole set of overrides;
  IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT to single names.
- BROKER (4), a broker id or "" (the cluster-wide default, kafka-configs
  ``--entity-default``): the settings Kafka can change at runtime
  (pybroker.config.DYNAMIC_BROKER_CONFIGS) and, on "" only, the broker synonyms of topic
  configs (``log.retention.ms`` ...), which change the default of every topic that does
  not override it. A setting fixed at start gets INVALID_REQUEST ("Cannot update these
  configs dynamically"), as Kafka answers.
- GROUP (32): Kafka 4's group configs (pybroker.config.GROUP_CONFIGS).
- Any other type (BROKER_LOGGER, CLIENT_METRICS, ...): INVALID_REQUEST, as Kafka answers
  a resource type its config manager does not handle.
- The same resource twice in one request: INVALID_REQUEST for each, as Kafka.

Unlike Kafka, a DELETE naming an unknown topic config is refused (INVALID_CONFIG) rather
than ignored: a typo in a name is reported whatever the operation.
"""
from __future__ import annotations

from collections import Counter

from pybroker.broker.authorization import require_config_access
from pybroker.config import RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC
from pybroker.errors import InvalidRequest, KafkaError
from pybroker.security.acls import ALTER_CONFIGS

_ALTERABLE = (RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP)


def _refusal(broker, request, resource: dict, counts: Counter) -> KafkaError | None:
    """Why a resource is answered here without asking the controller, if it is."""
    key = (resource["resource_type"], resource["resource_name"])
    if counts[key] > 1:
        return InvalidRequest(f"Duplicate resource type {key[0]} and name '{key[1]}' in the request")
    if key[0] not in _ALTERABLE:
        return InvalidRequest(f"Unsupported resource type {key[0]}: only topic, broker and group configs "
                              "can be altered")
    try:
        require_config_access(broker, request, ALTER_CONFIGS, key[0], key[1])
    except KafkaError as exc:
        return exc
    return None


async def _alter(broker, request, incremental: bool) -> dict:
    body = request.body
    resources = body["resources"]
    counts = Counter((r["resource_type"], r["resource_name"]) for r in resources)
    answers: list[dict] = []
    forwarded: list[dict] = []
    for res in resources:
        answer = {"error_code": 0, "error_message": None, "resource_type": res["resource_type"],
                  "resource_name": res["resource_name"]}
        answers.append(answer)
        refusal = _refusal(broker, request, res, counts)
        if refusal is not None:
            answer.update(error_code=refusal.code, error_message=refusal.detail)
            continue
        forwarded.append({"name": res["resource_name"], "resource_type": res["resource_type"], "configs": [
            {"name": c["name"], "op": c.get("config_operation", 0) if incremental else 0, "value": c["value"]}
            for c in res["configs"]]})
    if forwarded:
        pending = [a for a in answers if a["error_code"] == 0]
        try:
            results = await broker.controller.alter_configs(forwarded, incremental, body.get("validate_only", False))
        except KafkaError as exc:
            results = [{"error_code": exc.code, "error_message": exc.detail or exc.message}] * len(pending)
        for answer, result in zip(pending, results):
            answer.update(error_code=result["error_code"], error_message=result["error_message"])
    return {"throttle_time_ms": 0, "responses": answers}


async def handle(broker, request) -> dict:
    """AlterConfigs (33): the given configs become the resource's whole set of overrides."""
    return await _alter(broker, request, incremental=False)


async def handle_incremental(broker, request) -> dict:
    """IncrementalAlterConfigs (44): each config is changed by its own operation."""
    return await _alter(broker, request, incremental=True)
