"""DeleteTopics (20): carried out by the controller."""
from __future__ import annotations

import uuid

from pybroker.broker.apis.mutation_quota import DELETE_TOPICS_STRICT, MutationGate
from pybroker.broker.authorization import allowed, denied_entry
from pybroker.broker.topic_ids import TopicNames
from pybroker.errors import KafkaError, TopicDeletionDisabled, UnknownTopicId
from pybroker.security.acls import DELETE, TOPIC


def _named(broker, body: dict) -> tuple[list[str], list[dict]]:
    """The topics asked for by name (v0-v5, or v6 with a name) or by id (v6): their
    names, and UNKNOWN_TOPIC_ID entries for ids no topic has."""
    names = list(body.get("topic_names") or [])
    unknown = []
    by_id = TopicNames(broker)
    for t in body.get("topics") or []:
        if t.get("name"):
            names.append(t["name"])
            continue
        name = by_id.get(t["topic_id"])
        if name is None:
            unknown.append({"name": None, "topic_id": t["topic_id"], "error_code": UnknownTopicId.code,
                            "error_message": UnknownTopicId.message})
        else:
            names.append(name)
    return names, unknown


async def handle(broker, request) -> dict:
    body = request.body
    names, unknown = _named(broker, body)
    by_name = {n: denied_entry(n, "delete topic") for n in names}
    gate = MutationGate(broker, request, DELETE_TOPICS_STRICT)
    permitted = []
    for n in names:
        if allowed(broker, request, DELETE, TOPIC, n):
            topic = broker.image.topics.get(n)
            refused = gate.admit(n, topic.partitions if topic is not None else 0)
            if refused is not None:
                by_name[n] = refused
            else:
                permitted.append(n)
    # v6 answers carry the ids, taken before the topics go (only of those it may delete).
    ids = {n: uuid.UUID(str(broker.image.topics[n].topic_id)) for n in permitted if n in broker.image.topics}
    if permitted:
        try:
            if not broker.config.delete_topic_enable:
                raise TopicDeletionDisabled()
            results = await broker.controller.delete_topics(permitted)
        except KafkaError as exc:
            results = [{"name": n, "error_code": exc.code, "error_message": exc.detail or exc.message} for n in permitted]
        by_name.update({r["name"]: {**r, "topic_id": ids[r["name"]]} if ids.get(r["name"]) else r for r in results})
    throttle = gate.finish(list(by_name.values()))
    return {"throttle_time_ms": throttle, "responses": [by_name[n] for n in names] + unknown}
