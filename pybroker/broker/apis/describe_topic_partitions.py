"""DescribeTopicPartitions (75, KIP-966): what Kafka 4's ``kafka-topics --describe`` asks
instead of Metadata. Topics in name order from the cursor, at most
``response_partition_limit`` partitions (and never more than Kafka's
max.request.partition.size.limit, 2000) per answer; ``next_cursor`` names where the next
page starts. Eligible leader replicas (KIP-966's ELR) are not kept here: both ELR lists
are empty, as Kafka reports them with ELR disabled."""
from __future__ import annotations

from pybroker import errors
from pybroker.broker.apis.metadata import partition_entry
from pybroker.broker.authorization import allowed, operations
from pybroker.cluster.topics import validate_topic_name
from pybroker.protocol.primitives import ZERO_UUID
from pybroker.security.acls import DESCRIBE, TOPIC

MAX_PARTITIONS = 2000


def _unknown(name: str) -> dict:
    try:
        validate_topic_name(name)
        code = errors.UnknownTopicOrPartition.code
    except errors.InvalidTopicException:
        code = errors.InvalidTopicException.code
    return {"error_code": code, "name": name, "topic_id": ZERO_UUID, "is_internal": False, "partitions": []}


def handle(broker, request) -> dict:
    body = request.body
    cursor = body.get("cursor")
    start_topic = cursor["topic_name"] if cursor else ""
    every_topic = not body["topics"]
    names = sorted(broker.image.topics) if every_topic else sorted({t["name"] for t in body["topics"]})
    names = [n for n in names if n >= start_topic]
    bad = None
    if cursor is not None and not every_topic and start_topic not in names:
        bad = f"DescribeTopicPartitionsRequest topic list should contain the cursor topic: {start_topic}"
    elif cursor is not None and cursor["partition_index"] < 0:
        bad = f"DescribeTopicPartitionsRequest cursor partition must be valid: {cursor}"
    if bad is not None:
        return {"throttle_time_ms": 0, "next_cursor": None, "topics": [
            {**_unknown(t["name"]), "error_code": errors.InvalidRequest.code} for t in body["topics"]]}
    remaining = max(min(MAX_PARTITIONS, body.get("response_partition_limit", MAX_PARTITIONS)), 1)
    topics, next_cursor = [], None
    for name in names:
        if remaining == 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        if not allowed(broker, request, DESCRIBE, TOPIC, name):
            if not every_topic:
                topics.append({**_unknown(name), "error_code": errors.TopicAuthorizationFailed.code})
            continue
        topic = broker.image.topics.get(name)
        if topic is None:
            if not every_topic:
                topics.append(_unknown(name))
            continue
        first = cursor["partition_index"] if cursor and name == start_topic else 0
        last = min(topic.partitions, first + remaining)
        partitions = []
        for index in range(first, last):
            # Kafka reports a leaderless partition with leader -1 and no error here.
            partitions.append({**partition_entry(broker, name, index), "error_code": 0,
                               "eligible_leader_replicas": [], "last_known_elr": []})
        topics.append({"error_code": 0, "name": name, "topic_id": topic.topic_id, "is_internal": False,
                       "partitions": partitions, "topic_authorized_operations": operations(broker, request, TOPIC, name)})
        if last < topic.partitions:
            next_cursor = {"topic_name": name, "partition_index": last}
            break
        remaining -= len(partitions)
    return {"throttle_time_ms": 0, "topics": topics, "next_cursor": next_cursor}
