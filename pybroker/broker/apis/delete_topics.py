"""DeleteTopics (20): carried out by the controller."""
from __future__ import annotations

from pybroker.errors import KafkaError, TopicDeletionDisabled


async def handle(broker, request) -> dict:
    body = request.body
    names = list(body.get("topic_names") or []) + [t["name"] for t in body.get("topics") or [] if t.get("name")]
    try:
        if not broker.config.delete_topic_enable:
            raise TopicDeletionDisabled()
        results = await broker.controller.delete_topics(names)
    except KafkaError as exc:
        results = [{"name": n, "error_code": exc.code, "error_message": exc.detail or exc.message} for n in names]
    return {"throttle_time_ms": 0, "responses": results}
