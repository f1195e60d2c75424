"""KIP-848 consumer-group APIs: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe
(69). Like the classic group APIs they are forwarded to the group coordinator (the
supervisor), which computes assignments itself; a heartbeat goes to the broker
FindCoordinator names, as in Kafka.

Authorization (with an authorizer), as Kafka's: a heartbeat needs READ on the group
(GROUP_AUTHORIZATION_FAILED) and DESCRIBE on each subscribed topic
(TOPIC_AUTHORIZATION_FAILED); ConsumerGroupDescribe needs DESCRIBE on each group and
fills ``authorized_operations`` when asked."""
from __future__ import annotations

import uuid

from pybroker import errors
from pybroker.broker.authorization import allowed, operations
from pybroker.security.acls import DESCRIBE, GROUP, READ, TOPIC
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
        refusal = group_heartbeat_refusal(broker, request)
        if refusal is not None:
            raise refusal
        response = await broker.controller.group("consumer_heartbeat", body["group_id"], args)
    except errors.KafkaError as exc:
        response = heartbeat_error(exc.code, str(exc))
    return heartbeat_answer(response)


def group_heartbeat_refusal(broker, request) -> errors.KafkaError | None:
    """Why a consumer or share group heartbeat may not go on: no READ on the group, or
    no DESCRIBE on a topic it subscribes to (by name)."""
    body = request.body
    if not allowed(broker, request, READ, GROUP, body["group_id"]):
        return errors.GroupAuthorizationFailed(f"Not authorized to read group {body['group_id']}")
    denied = sorted(t for t in body.get("subscribed_topic_names") or ()
                    if not allowed(broker, request, DESCRIBE, TOPIC, t))
    if denied:
        return errors.TopicAuthorizationFailed(f"The client is not authorized to subscribe to topics: {', '.join(denied)}")
    return None


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
    names = request.body["group_ids"]
    permitted = [g for g in names if allowed(broker, request, DESCRIBE, GROUP, g)]
    groups = await broker.controller.group("consumer_group_describe", "", {"group_ids": permitted}) if permitted else []
    with_operations = request.body.get("include_authorized_operations", False)
    for group in groups:
        if with_operations:
            group["authorized_operations"] = operations(broker, request, GROUP, group["group_id"])
        for member in group["members"]:
            for key in ("assignment", "target_assignment"):
                for tp in member[key]["topic_partitions"]:
                    tp["topic_id"] = uuid.UUID(tp["topic_id"])
    by_id = {g["group_id"]: g for g in groups}
    return {"throttle_time_ms": 0, "groups": [by_id.get(g) or denied_group(g) for g in names]}


def denied_group(group_id: str) -> dict:
    return {"error_code": errors.GroupAuthorizationFailed.code, "group_id": group_id,
            "error_message": f"Not authorized to describe group {group_id}", "group_state": "",
            "group_epoch": -1, "assignment_epoch": -1, "assignor_name": "", "members": []}
