"""CreatePartitions (37): partitions grow, never shrink."""
from __future__ import annotations

from pybroker.errors import KafkaError


def handle(broker, request) -> dict:
    body = request.body
    results = []
    for spec in body["topics"]:
        result = {"name": spec["name"], "error_code": 0, "error_message": None}
        try:
            broker.logs.create_partitions(spec["name"], spec["count"], validate_only=body.get("validate_only", False))
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=exc.detail or exc.message)
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}
