"""CreatePartitions (37): partitions grow, never shrink (the controller's rule)."""
from __future__ import annotations

from pybroker.broker.apis.mutation_quota import CREATE_PARTITIONS_STRICT, MutationGate
from pybroker.broker.authorization import allowed, denied_entry
from pybroker.errors import KafkaError
from pybroker.security.acls import ALTER, TOPIC


async def handle(broker, request) -> dict:
    body = request.body
    specs = [
        {"name": t["name"], "count": t["count"],
         "assignments": [list(a["broker_ids"]) for a in t["assignments"]] if t.get("assignments") else None}
        for t in body["topics"]
    ]
    by_name = {s["name"]: denied_entry(s["name"], "alter topic") for s in specs}
    gate = MutationGate(broker, request, CREATE_PARTITIONS_STRICT, body.get("validate_only", False))
    permitted = []
    for s in specs:
        if allowed(broker, request, ALTER, TOPIC, s["name"]):
            topic = broker.image.topics.get(s["name"])
            refused = gate.admit(s["name"], max(0, s["count"] - (topic.partitions if topic is not None else 0)))
            if refused is not None:
                by_name[s["name"]] = refused
            else:
                permitted.append(s)
    if permitted:
        try:
            results = await broker.controller.create_partitions(permitted, body.get("validate_only", False))
        except KafkaError as exc:
            results = [{"name": s["name"], "error_code": exc.code, "error_message": exc.detail or exc.message}
                       for s in permitted]
        by_name.update({r["name"]: r for r in results})
    return {"throttle_time_ms": gate.finish(list(by_name.values())), "results": [by_name[s["name"]] for s in specs]}
