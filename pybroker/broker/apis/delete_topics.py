"""DeleteTopics (20): carried out by the controller."""
from __future__ import annotations

import uuid

from pybroker.broker.apis.mutation_quota import DELETE_TOPICS_STRICT, MutationGate
from pybroker.broker.authorization import allowed, denied_entry
from pybroker.errors import KafkaError, TopicDeletionDisabled, UnknownTopicId
from pybroker.security.acls import DELETE, TOPIC


def _named(broker, body: dict) -> tuple[list[str], list[dict]]:
    """The topics asked for by name (v0-v5, or v6 with a name) or by id (v6): their
    names, and UNKNOWN_TOPIC_ID entries for ids no topic has."""
    names = list(body.get("topic_names") or [])
    unknown = []
    by_id = None
    for t in body.get("topics") or []:
        if t.get("name"):
            names.append(t["name"])
            continue
        if by_id is None:
            by_id = {str(topic.topic_id): name for name, topic in broker.image.topics.items()}
        name = by_id.get(str(t["topic_id"]))
        if name is None:
            unknown.append({"name": None, "topic_id": t["topic_id"], "error_code": UnknownTopicId.code,
                            "error_message": UnknownTopicId.message})
        else:
            names.append(name)
    return names, unknown


def _with_id(broker, entry: dict) -> dict:
    """The entry with its topic's id (v6 answers carry it), for topics the principal may delete."""
    topic = broker.image.topics.get(entry["name"])
    return {**entry, "topic_id": uuid.UUID(str(topic.topic_id))} if topic is not None else entry


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
    ids = {n: _with_id(broker, {"name": n}).get("topic_id") for n in permitted}
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
