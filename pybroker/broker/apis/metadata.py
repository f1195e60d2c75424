"""Metadata (3): brokers, cluster id, controller, and each topic's partitions with leader,
replicas and ISR. Requested topics that don't exist are created when the request allows it
(v4+ ``allow_auto_topic_creation``) and ``auto.create.topics.enable`` is on."""
from __future__ import annotations

from pybroker.errors import KafkaError, UnknownTopicOrPartition


def topic_entry(broker, name: str) -> dict:
    topic = broker.logs.topics[name]
    partitions = []
    for index in range(topic.partitions):
        p = broker.logs.partitions[(name, index)]
        partitions.append(
            {
                "error_code": 0,
                "partition_index": index,
                "leader_id": broker.node_id,
                "leader_epoch": p.leader_epoch,
                "replica_nodes": list(p.replicas),
                "isr_nodes": list(p.isr),
                "offline_replicas": [],
            }
        )
    return {
        "error_code": 0,
        "name": name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": partitions,
    }


def handle(broker, request) -> dict:
    body = request.body
    requested = body.get("topics")
    if requested is None or (request.api_version == 0 and not requested):
        names = sorted(broker.logs.topics)
    else:
        names = [t["name"] for t in requested]
    allow_create = body.get("allow_auto_topic_creation", True) and broker.config.auto_create_topics_enable
    topics = []
    for name in names:
        if name not in broker.logs.topics:
            try:
                if not allow_create:
                    raise UnknownTopicOrPartition()
                broker.logs.create_topic(name)
            except KafkaError as exc:
                topics.append({"error_code": exc.code, "name": name, "partitions": []})
                continue
        topics.append(topic_entry(broker, name))
    return {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": broker.node_id, "host": broker.config.advertised, "port": broker.port, "rack": None}],
        "cluster_id": broker.config.cluster_id,
        "controller_id": broker.node_id,
        "topics": topics,
    }
