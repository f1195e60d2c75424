"""Metadata (3): live brokers, cluster id, controller, and each topic's partitions with
leader, replicas, ISR and offline replicas, from the controller's image. Requested topics
that don't exist are created when the request allows it (v4+
``allow_auto_topic_creation``) and ``auto.create.topics.enable`` is on.

With an authorizer, as Kafka: a listing of every topic shows only those the principal
may DESCRIBE; a topic asked by name it may not DESCRIBE gets TOPIC_AUTHORIZATION_FAILED
(whether or not it exists); auto-creation needs CREATE on the cluster or the topic, else
TOPIC_AUTHORIZATION_FAILED. The authorized-operations fields are filled when asked for.

Each topic's entry is encoded once per Metadata version and kept until the topic, one of
its partitions or the live brokers change (``TopicEntryCache``): a client's Metadata for
every topic of a cluster holding 20,000 partitions then costs a join of cached bytes, not
20,000 structs encoded."""
from __future__ import annotations

from pybroker.broker.authorization import allowed, may_create_topic, operations
from pybroker.broker.topic_ids import TopicNames
from pybroker.cluster.metadata import NO_LEADER
from pybroker.cluster.topics import validate_topic_name
from pybroker.errors import (KafkaError, LeaderNotAvailable, TopicAlreadyExists, TopicAuthorizationFailed,
                             UnknownTopicId, UnknownTopicOrPartition)
from pybroker.protocol import api
from pybroker.protocol.schema import PreEncoded
from pybroker.security.acls import CLUSTER, CLUSTER_NAME, DESCRIBE, TOPIC


class TopicEntryCache:
    """Encoded Metadata topic entries by topic and version. The broker's event loop owns
    it; ``forget(topic)`` on any change to the topic or its partitions, ``clear()`` when
    the live brokers change (entries name offline replicas)."""

    def __init__(self):
        self._entries: dict[str, dict[int, PreEncoded]] = {}
        self._schemas: dict[int, object] = {}

    def forget(self, topic: str) -> None:
        self._entries.pop(topic, None)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, broker, name: str, version: int) -> PreEncoded:
        by_version = self._entries.setdefault(name, {})
        found = by_version.get(version)
        if found is None:
            schema = self._schemas.get(version)
            if schema is None:
                schema = self._schemas[version] = api.response_element_schema(api.METADATA, version, "topics")
            found = by_version[version] = PreEncoded(schema.encode(topic_entry(broker, name)))
        return found


def partition_entry(broker, name: str, index: int) -> dict:
    """A partition's leader, epoch, replicas, ISR and offline replicas, as Metadata and
    DescribeTopicPartitions report them (LEADER_NOT_AVAILABLE while it has no leader)."""
    state = broker.image.partitions.get((name, index))
    if state is None:
        return {"error_code": LeaderNotAvailable.code, "partition_index": index, "leader_id": -1,
                "leader_epoch": -1, "replica_nodes": [], "isr_nodes": [], "offline_replicas": []}
    return {
        "error_code": LeaderNotAvailable.code if state.leader == NO_LEADER else 0,
        "partition_index": index,
        "leader_id": state.leader,
        "leader_epoch": state.leader_epoch,
        "replica_nodes": list(state.replicas),
        "isr_nodes": list(state.isr),
        "offline_replicas": [b for b in state.replicas if b not in broker.image.brokers],
    }


def topic_entry(broker, name: str) -> dict:
    topic = broker.image.topics[name]
    partitions = [partition_entry(broker, name, index) for index in range(topic.partitions)]
    return {"error_code": 0, "name": name, "topic_id": topic.topic_id, "is_internal": False, "partitions": partitions}


async def handle(broker, request) -> dict:
    body = request.body
    requested = body.get("topics")
    listing = requested is None or (request.api_version == 0 and not requested)
    if listing:
        names = sorted(broker.image.topics)
        if broker.authorizer is not None:
            names = [n for n in names if allowed(broker, request, DESCRIBE, TOPIC, n)]
    else:
        names = [t["name"] for t in requested]
    topics = []
    if any(name is None for name in names):
        # v10+ may ask by topic id (a KIP-848 member learns its assignment as ids).
        by_id = TopicNames(broker)
        resolved = []
        for t, name in zip(requested, names):
            if name is None:
                name = by_id.get(t.get("topic_id"))
                if name is None:
                    topics.append({"error_code": UnknownTopicId.code, "name": None, "topic_id": t.get("topic_id"),
                                   "partitions": []})
                    continue
                if not allowed(broker, request, DESCRIBE, TOPIC, name):
                    topics.append({"error_code": TopicAuthorizationFailed.code, "name": None,
                                   "topic_id": t.get("topic_id"), "partitions": []})
                    continue
            resolved.append(name)
        names = resolved
    allow_create = body.get("allow_auto_topic_creation", True) and broker.config.auto_create_topics_enable
    with_operations = body.get("include_topic_authorized_operations", False)
    for name in names:
        if not listing and not allowed(broker, request, DESCRIBE, TOPIC, name):
            # Not a word on whether it exists.
            topics.append({"error_code": TopicAuthorizationFailed.code, "name": name, "partitions": []})
            continue
        if name not in broker.image.topics:
            try:
                validate_topic_name(name)
                if not allow_create:
                    raise UnknownTopicOrPartition()
                if not may_create_topic(broker, request, name):
                    raise TopicAuthorizationFailed()
                result = await broker.create_topic_now(name)
                if result["error_code"] not in (0, TopicAlreadyExists.code) and name not in broker.image.topics:
                    topics.append({"error_code": result["error_code"], "name": name, "partitions": []})
                    continue
            except KafkaError as exc:
                topics.append({"error_code": exc.code, "name": name, "partitions": []})
                continue
            if name not in broker.image.topics:
                # Created (by this request or a racing one) but not yet in this broker's
                # image: retriable, as Kafka answers while a topic is being created. A
                # non-retriable code here makes kafka-python stop refreshing metadata.
                topics.append({"error_code": LeaderNotAvailable.code, "name": name, "partitions": []})
                continue
        if with_operations:
            # Per principal: built for this answer, never cached.
            topics.append({**topic_entry(broker, name),
                           "topic_authorized_operations": operations(broker, request, TOPIC, name)})
        else:
            topics.append(broker.topic_entries.get(broker, name, request.api_version))
    response = {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": b.node_id, "host": host, "port": port, "rack": b.rack}
                    for b in sorted(broker.image.brokers.values(), key=lambda b: b.node_id)
                    for host, port in (b.address_for(request.listener),)],
        "cluster_id": broker.image.cluster_id,
        "controller_id": controller_id(broker),
        "topics": topics,
    }
    if body.get("include_cluster_authorized_operations", False):
        response["cluster_authorized_operations"] = operations(broker, request, CLUSTER, CLUSTER_NAME)
    return response


def controller_id(broker) -> int:
    """The controller is the supervisor, not a broker; clients want a live broker id (as
    a KRaft broker names a live broker in Metadata and DescribeCluster)."""
    return min(broker.image.brokers, default=-1)
