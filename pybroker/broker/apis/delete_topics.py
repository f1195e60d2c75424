"""DeleteTopics (20): carried out by the controller."""
from __future__ import annotations

from pybroker.broker.authorization import allowed, denied_entry
from pybroker.errors import KafkaError, TopicDeletionDisabled
from pybroker.security.acls import DELETE, TOPIC


async def handle(broker, request) -> dict:
    body = request.body
    names = list(body.get("topic_names") or []) + [t["name"] for t in body.get("topics") or [] if t.get("name")]
    by_name = {n: denied_entry(n, "delete topic") for n in names}
    permitted = [n for n in names if allowed(broker, request, DELETE, TOPIC, n)]
    if permitted:
        try:
            if not broker.config.delete_topic_enable:
                raise TopicDeletionDisabled()
            results = await broker.controller.delete_topics(permitted)
        except KafkaError as exc:
            results = [{"name": n, "error_code": exc.code, "error_message": exc.detail or exc.message} for n in permitted]
        by_name.update({r["name"]: r for r in results})
    return {"throttle_time_ms": 0, "responses": [by_name[n] for n in names]}
