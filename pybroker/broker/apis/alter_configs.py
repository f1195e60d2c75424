"""AlterConfigs (33) and IncrementalAlterConfigs (44): topic config changes, validated,
recorded and published by the controller (every broker then applies them to its logs).

Kafka answers per resource, and so does this:
- TOPIC (2): forwarded to the controller. AlterConfigs replaces the topic's whole set of
  overrides; IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT to single
  names.
- BROKER (4): INVALID_REQUEST. A pybroker broker's settings are fixed at start (``pybroker
  up --broker-config``), which is what Kafka answers for a broker config it cannot update
  dynamically ("Cannot update these configs dynamically", INVALID_REQUEST); UNSUPPORTED_VERSION
  would tell the client to downgrade the API, which would not help.
- Any other type (BROKER_LOGGER, CLIENT_METRICS, ...): INVALID_REQUEST, as Kafka answers
  a resource type its config manager does not handle.
- The same resource twice in one request: INVALID_REQUEST for each, as Kafka.

Unlike Kafka, a DELETE naming an unknown topic config is refused (INVALID_CONFIG) rather
than ignored: a typo in a name is reported whatever the operation.
"""
from __future__ import annotations

from collections import Counter

from pybroker.errors import InvalidRequest, KafkaError

TOPIC = 2
BROKER = 4


def _refusal(resource: dict, counts: Counter) -> KafkaError | None:
    """Why a resource is answered here without asking the controller, if it is."""
    key = (resource["resource_type"], resource["resource_name"])
    if counts[key] > 1:
        return InvalidRequest(f"Duplicate resource type {key[0]} and name '{key[1]}' in the request")
    if key[0] == BROKER:
        return InvalidRequest("Broker configs cannot be altered: a pybroker broker's settings are fixed "
                              "when it starts; only topic configs (resource type 2) can be changed")
    if key[0] != TOPIC:
        return InvalidRequest(f"Unsupported resource type {key[0]}: only topic configs can be altered")
    return None


async def _alter(broker, request, incremental: bool) -> dict:
    body = request.body
    resources = body["resources"]
    counts = Counter((r["resource_type"], r["resource_name"]) for r in resources)
    answers: list[dict] = []
    topics: list[dict] = []
    for res in resources:
        answer = {"error_code": 0, "error_message": None, "resource_type": res["resource_type"],
                  "resource_name": res["resource_name"]}
        answers.append(answer)
        refusal = _refusal(res, counts)
        if refusal is not None:
            answer.update(error_code=refusal.code, error_message=refusal.detail)
            continue
        topics.append({"name": res["resource_name"], "configs": [
            {"name": c["name"], "op": c.get("config_operation", 0) if incremental else 0, "value": c["value"]}
            for c in res["configs"]]})
    if topics:
        pending = [a for a in answers if a["resource_type"] == TOPIC and a["error_code"] == 0]
        try:
            results = await broker.controller.alter_configs(topics, incremental, body.get("validate_only", False))
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
