"""KIP-848 consumer-group APIs: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe
(69). Like the classic group APIs they are forwarded to the group coordinator (the
supervisor), which computes assignments itself; a heartbeat goes to the broker
FindCoordinator names, as in Kafka."""
from __future__ import annotations

import uuid

from pybroker import errors
from pybroker.group.consumer_group import heartbeat_error


def _uuid(value) -> str:
    return str(value)


async def heartbeat(broker, request) -> dict:
    body = request.body
    peer = request.peer[0] if request.peer else ""
    owned = body.get("topic_partitions")
    args = {
        "member_id": body["member_id"],
        "member_epoch": body["member_epoch"],
        "instance_id": body.get("instance_id"),
        "rack_id": body.get("rack_id"),
        "rebalance_timeout_ms": body.get("rebalance_timeout_ms", -1),
        "subscribed_topic_names": body.get("subscribed_topic_names"),
        "subscribed_topic_regex": body.get("subscribed_topic_regex"),
        "server_assignor": body.get("server_assignor"),
        "topic_partitions": None if owned is None else [[_uuid(t["topic_id"]), list(t["partitions"])] for t in owned],
        "client_id": request.client_id or "",
        "client_host": f"/{peer}" if peer else "",
    }
    try:
        response = await broker.controller.group("consumer_heartbeat", body["group_id"], args)
    except errors.KafkaError as exc:
        response = heartbeat_error(exc.code, str(exc))
    return heartbeat_answer(response)


def heartbeat_answer(response: dict) -> dict:
    """A heartbeat response (consumer and share groups) from the coordinator's answer,
    whose assignment is [[topic id, [partitions]]] or None."""
    assignment = response.get("assignment")
    return {
        "throttle_time_ms": 0,
        **{k: response[k] for k in ("error_code", "error_message", "member_id", "member_epoch",
                                    "heartbeat_interval_ms")},
        "assignment": None if assignment is None else {"topic_partitions": [
            {"topic_id": uuid.UUID(t), "partitions": ps} for t, ps in assignment]},
    }


async def describe(broker, request) -> dict:
    groups = await broker.controller.group("consumer_group_describe", "", {"group_ids": request.body["group_ids"]})
    for group in groups:
        for member in group["members"]:
            for key in ("assignment", "target_assignment"):
                for tp in member[key]["topic_partitions"]:
                    tp["topic_id"] = uuid.UUID(tp["topic_id"])
    return {"throttle_time_ms": 0, "groups": groups}
