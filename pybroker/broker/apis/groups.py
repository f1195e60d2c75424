"""The classic consumer-group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12),
LeaveGroup (13), SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8),
OffsetFetch (9), DeleteGroups (42).

Thin translations between wire dicts and the group coordinator (``broker.groups``, a
GroupHost); the rules live in pybroker.group.
"""
from __future__ import annotations

import time

from pybroker import errors

GROUP_KEY = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def find_coordinator(broker, request) -> dict:
    body = request.body
    key_type = body.get("key_type", GROUP_KEY)
    keys = body.get("coordinator_keys") or [body.get("key", "")]
    coordinators = []
    for key in keys:
        if key_type != GROUP_KEY:
            # Transactions are not supported: no transaction coordinator exists.
            code, message = errors.CoordinatorNotAvailable.code, "pybroker has no transaction coordinator"
        else:
            code, message = 0, None
        coordinators.append({
            "key": key, "node_id": broker.node_id if not code else -1,
            "host": broker.config.advertised if not code else "", "port": broker.port if not code else -1,
            "error_code": code, "error_message": message,
        })
    first = coordinators[0]
    return {"throttle_time_ms": 0, "coordinators": coordinators, **{k: first[k] for k in ("error_code", "error_message", "node_id", "host", "port")}}


async def join_group(broker, request) -> dict:
    body = request.body
    peer = request.peer[0] if getattr(request, "peer", None) else ""
    response = await broker.groups.call(
        "join", body["group_id"],
        member_id=body["member_id"],
        protocol_type=body["protocol_type"],
        protocols=[(p["name"], bytes(p["metadata"])) for p in body["protocols"]],
        session_timeout_ms=body["session_timeout_ms"],
        rebalance_timeout_ms=body.get("rebalance_timeout_ms", -1),
        group_instance_id=body.get("group_instance_id"),
        client_id=request.client_id or "",
        client_host=f"/{peer}" if peer else "",
        version=request.api_version,
    )
    if response.get("protocol_name") is None and request.api_version < 7:
        # Nullable only from v7; before, an error reply carries an empty name.
        response = {**response, "protocol_name": ""}
    return {"throttle_time_ms": 0, **response}


async def sync_group(broker, request) -> dict:
    body = request.body
    response = await broker.groups.call(
        "sync", body["group_id"],
        member_id=body["member_id"],
        generation_id=body["generation_id"],
        assignments=[(a["member_id"], bytes(a["assignment"])) for a in body.get("assignments") or []],
        group_instance_id=body.get("group_instance_id"),
        protocol_type=body.get("protocol_type"),
        protocol_name=body.get("protocol_name"),
    )
    return {"throttle_time_ms": 0, **response}


def heartbeat(broker, request) -> dict:
    body = request.body
    response = broker.groups.run(
        "heartbeat", body["group_id"], _now_ms(),
        member_id=body["member_id"], generation_id=body["generation_id"],
        group_instance_id=body.get("group_instance_id"),
    )
    return {"throttle_time_ms": 0, **response}


def leave_group(broker, request) -> dict:
    body = request.body
    members = body.get("members") or [{"member_id": body.get("member_id", ""), "group_instance_id": None}]
    response = broker.groups.run("leave", body["group_id"], _now_ms(), members)
    if request.api_version < 3 and response.get("error_code", 0) == 0:
        # v0-v2 carry one member and no per-member list: its error is the answer.
        member_errors = [m.get("error_code", 0) for m in response.get("members", [])]
        if member_errors and member_errors[0]:
            response = {**response, "error_code": member_errors[0]}
    return {"throttle_time_ms": 0, **response}


def offset_commit(broker, request) -> dict:
    body = request.body
    offsets = {}
    for topic in body["topics"]:
        for p in topic["partitions"]:
            offsets[(topic["name"], p["partition_index"])] = (
                p["committed_offset"], p.get("committed_metadata"), p.get("committed_leader_epoch", -1)
            )
    codes = broker.groups.run(
        "commit_offsets", body["group_id"], _now_ms(),
        member_id=body.get("member_id", ""),
        generation_id=body.get("generation_id_or_member_epoch", -1),
        group_instance_id=body.get("group_instance_id"),
        offsets=offsets,
    )
    topics = []
    for topic in body["topics"]:
        topics.append({
            "name": topic["name"],
            "partitions": [
                {"partition_index": p["partition_index"], "error_code": codes[(topic["name"], p["partition_index"])]}
                for p in topic["partitions"]
            ],
        })
    return {"throttle_time_ms": 0, "topics": topics}


def _fetch_group(broker, group_id: str, topics) -> list:
    wanted = None
    if topics is not None:
        wanted = [(t["name"], i) for t in topics for i in t["partition_indexes"]]
    committed = broker.groups.run("fetch_offsets", group_id, wanted)
    by_topic: dict[str, list] = {}
    for (name, index), c in sorted(committed.items()):
        by_topic.setdefault(name, []).append({
            "partition_index": index,
            "committed_offset": c.offset,
            "committed_leader_epoch": c.leader_epoch,
            "metadata": c.metadata if c.offset >= 0 else "",
            "error_code": 0,
        })
    return [{"name": name, "partitions": parts} for name, parts in by_topic.items()]


def offset_fetch(broker, request) -> dict:
    body = request.body
    if request.api_version >= 8:
        groups = [
            {"group_id": g["group_id"], "topics": _fetch_group(broker, g["group_id"], g.get("topics")), "error_code": 0}
            for g in body["groups"]
        ]
        return {"throttle_time_ms": 0, "groups": groups}
    return {"throttle_time_ms": 0, "topics": _fetch_group(broker, body["group_id"], body.get("topics")), "error_code": 0}


def describe_groups(broker, request) -> dict:
    groups = broker.groups.run("describe_groups", request.body["groups"])
    return {"throttle_time_ms": 0, "groups": groups}


def list_groups(broker, request) -> dict:
    response = broker.groups.run("list_groups", request.body.get("states_filter") or None)
    return {"throttle_time_ms": 0, **response}


def delete_groups(broker, request) -> dict:
    results = broker.groups.run("delete_groups", request.body["groups_names"], _now_ms())
    return {"throttle_time_ms": 0, "results": results}
