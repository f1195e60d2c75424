"""CreatePartitions (37): partitions grow, never shrink (the controller's rule)."""
from __future__ import annotations

from pybroker.errors import KafkaError


async def handle(broker, request) -> dict:
    body = request.body
    specs = [
        {"name": t["name"], "count": t["count"],
         "assignments": [list(a["broker_ids"]) for a in t["assignments"]] if t.get("assignments") else None}
        for t in body["topics"]
    ]
    try:
        results = await broker.controller.create_partitions(specs, body.get("validate_only", False))
    except KafkaError as exc:
        results = [{"name": s["name"], "error_code": exc.code, "error_message": exc.detail or exc.message} for s in specs]
    return {"throttle_time_ms": 0, "results": results}
