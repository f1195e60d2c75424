"""DeleteTopics (20)."""
from __future__ import annotations

from pybroker.errors import KafkaError, TopicDeletionDisabled


def handle(broker, request) -> dict:
    body = request.body
    names = list(body.get("topic_names") or []) + [t["name"] for t in body.get("topics") or [] if t.get("name")]
    results = []
    for name in names:
        result = {"name": name, "error_code": 0, "error_message": None}
        try:
            if not broker.config.delete_topic_enable:
                raise TopicDeletionDisabled()
            broker.logs.delete_topic(name)
        except KafkaError as exc:
            result.update(error_code=exc.code, error_message=exc.detail or exc.message)
        results.append(result)
    return {"throttle_time_ms": 0, "responses": results}
