"""The classic consumer-group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12),
LeaveGroup (13), SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8),
OffsetFetch (9), DeleteGroups (42), OffsetDelete (47).

The group coordinator lives with the controller (the supervisor); these handlers turn wire
dicts into its requests (``broker.controller.group``) and its answers back. Any broker
forwards, but FindCoordinator names one broker per group, chosen by a hash of the group id
over the live brokers, as Kafka names the leader of the group's __consumer_offsets
partition: every member talks to the same broker, and a client whose coordinator changes
between two answers (librdkafka drops the JoinGroup in flight then) sees it only when
brokers come or go. Transactional ids (key type 1) are placed the same way.

OffsetFetch with ``require_stable`` (read_committed consumers, KIP-447) answers
UNSTABLE_OFFSET_COMMIT for a partition whose offsets wait in an unfinished transaction,
so a consumer taking over does not start from offsets about to be replaced.
"""
from __future__ import annotations

import zlib

from pybroker import errors

GROUP_KEY = 0
TRANSACTION_KEY = 1


def coordinator_for(broker, group_id: str):
    """The live broker that answers for ``group_id``."""
    live = sorted(broker.image.brokers.values(), key=lambda b: b.node_id)
    if not live:
        return None
    return live[zlib.crc32(group_id.encode("utf-8")) % len(live)]


def find_coordinator(broker, request) -> dict:
    body = request.body
    key_type = body.get("key_type", GROUP_KEY)
    keys = body.get("coordinator_keys") or [body.get("key", "")]
    coordinators = []
    for key in keys:
        if key_type not in (GROUP_KEY, TRANSACTION_KEY):
            coordinators.append({"key": key, "node_id": -1, "host": "", "port": -1,
                                 "error_code": errors.InvalidRequest.code,
                                 "error_message": f"unknown coordinator key type {key_type}"})
        else:
            chosen = coordinator_for(broker, key)
            if chosen is None:
                coordinators.append({"key": key, "node_id": -1, "host": "", "port": -1,
                                     "error_code": errors.CoordinatorNotAvailable.code,
                                     "error_message": "no live broker"})
            else:
                host, port = chosen.address_for(request.listener)
                coordinators.append({"key": key, "node_id": chosen.node_id, "host": host,
                                     "port": port, "error_code": 0, "error_message": None})
    first = coordinators[0]
    return {"throttle_time_ms": 0, "coordinators": coordinators,
            **{k: first[k] for k in ("error_code", "error_message", "node_id", "host", "port")}}


async def _group(broker, method: str, group_id: str, args: dict):
    return await broker.controller.group(method, group_id, args)


async def join_group(broker, request) -> dict:
    body = request.body
    peer = request.peer[0] if request.peer else ""
    try:
        response = await _group(broker, "join", body["group_id"], {
            "member_id": body["member_id"],
            "protocol_type": body["protocol_type"],
            "protocols": [[p["name"], bytes(p["metadata"])] for p in body["protocols"]],
            "session_timeout_ms": body["session_timeout_ms"],
            "rebalance_timeout_ms": body.get("rebalance_timeout_ms", -1),
            "group_instance_id": body.get("group_instance_id"),
            "client_id": request.client_id or "",
            "client_host": f"/{peer}" if peer else "",
            "version": request.api_version,
        })
    except errors.KafkaError as exc:
        response = {"error_code": exc.code, "generation_id": -1, "protocol_name": None, "leader": "",
                    "member_id": body["member_id"], "members": []}
    if response.get("protocol_name") is None and request.api_version < 7:
        # Nullable only from v7; before, an error reply carries an empty name.
        response = {**response, "protocol_name": ""}
    return {"throttle_time_ms": 0, **response}


async def sync_group(broker, request) -> dict:
    body = request.body
    try:
        response = await _group(broker, "sync", body["group_id"], {
            "member_id": body["member_id"],
            "generation_id": body["generation_id"],
            "assignments": [[a["member_id"], bytes(a["assignment"])] for a in body.get("assignments") or []],
            "group_instance_id": body.get("group_instance_id"),
            "protocol_type": body.get("protocol_type"),
            "protocol_name": body.get("protocol_name"),
        })
    except errors.KafkaError as exc:
        response = {"error_code": exc.code, "assignment": b""}
    return {"throttle_time_ms": 0, **response}


async def heartbeat(broker, request) -> dict:
    body = request.body
    try:
        response = await _group(broker, "heartbeat", body["group_id"], {
            "member_id": body["member_id"], "generation_id": body["generation_id"],
            "group_instance_id": body.get("group_instance_id"),
        })
    except errors.KafkaError as exc:
        response = {"error_code": exc.code}
    return {"throttle_time_ms": 0, **response}


async def leave_group(broker, request) -> dict:
    body = request.body
    members = body.get("members") or [{"member_id": body.get("member_id", ""), "group_instance_id": None}]
    try:
        response = await _group(broker, "leave", body["group_id"], {"members": members})
    except errors.KafkaError as exc:
        response = {"error_code": exc.code, "members": []}
    if request.api_version < 3 and response.get("error_code", 0) == 0:
        # v0-v2 carry one member and no per-member list: its error is the answer.
        member_errors = [m.get("error_code", 0) for m in response.get("members", [])]
        if member_errors and member_errors[0]:
            response = {**response, "error_code": member_errors[0]}
    return {"throttle_time_ms": 0, **response}


def _unknown_partitions(broker, topics) -> dict[tuple[str, int], int]:
    """UNKNOWN_TOPIC_OR_PARTITION for each requested partition this broker's metadata
    does not hold: Kafka's broker answers those itself, before asking its coordinator."""
    codes = {}
    for topic in topics:
        info = broker.image.topics.get(topic["name"])
        for p in topic["partitions"]:
            if info is None or not 0 <= p["partition_index"] < info.partitions:
                codes[(topic["name"], p["partition_index"])] = errors.UnknownTopicOrPartition.code
    return codes


def _per_partition(topics, codes) -> list[dict]:
    return [
        {"name": topic["name"], "partitions": [
            {"partition_index": p["partition_index"], "error_code": codes[(topic["name"], p["partition_index"])]}
            for p in topic["partitions"]
        ]}
        for topic in topics
    ]


async def offset_commit(broker, request) -> dict:
    body = request.body
    codes = _unknown_partitions(broker, body["topics"])
    rows = [
        [topic["name"], p["partition_index"], p["committed_offset"], p.get("committed_metadata"),
         p.get("committed_leader_epoch", -1)]
        for topic in body["topics"] for p in topic["partitions"]
        if (topic["name"], p["partition_index"]) not in codes
    ]
    if rows:
        try:
            codes.update({(t, p): code for t, p, code in await _group(broker, "commit_offsets", body["group_id"], {
                "member_id": body.get("member_id", ""),
                "generation_id": body.get("generation_id_or_member_epoch", -1),
                "group_instance_id": body.get("group_instance_id"),
                "offsets": rows,
            })})
        except errors.KafkaError as exc:
            codes.update({(t, p): exc.code for t, p, *_ in rows})
    return {"throttle_time_ms": 0, "topics": _per_partition(body["topics"], codes)}


async def _unstable(broker, group_id: str) -> set:
    try:
        rows = await broker.controller.txn("pending_offsets", {"group_id": group_id})
    except (errors.CoordinatorNotAvailable, errors.NotController):
        return set()
    return {tuple(tp) for tp in rows}


async def _fetch_group(broker, group_id: str, topics, require_stable: bool = False, member_id=None,
                       member_epoch=-1) -> tuple[list, int]:
    wanted = None if topics is None else [[t["name"], i] for t in topics for i in t["partition_indexes"]]
    try:
        rows = await _group(broker, "fetch_offsets", group_id, {"partitions": wanted, "member_id": member_id,
                                                               "member_epoch": member_epoch})
        unstable = await _unstable(broker, group_id) if require_stable else set()
    except errors.KafkaError as exc:
        return [], exc.code
    by_topic: dict[str, list] = {}
    for name, index, offset, metadata, epoch in rows:
        code = errors.UnstableOffsetCommit.code if (name, index) in unstable else 0
        by_topic.setdefault(name, []).append({
            "partition_index": index, "committed_offset": -1 if code else offset,
            "committed_leader_epoch": epoch, "metadata": metadata if offset >= 0 else "", "error_code": code,
        })
    return [{"name": name, "partitions": parts} for name, parts in by_topic.items()], 0


async def offset_fetch(broker, request) -> dict:
    body = request.body
    if request.api_version >= 8:
        groups = []
        for g in body["groups"]:
            topics, code = await _fetch_group(broker, g["group_id"], g.get("topics"), body.get("require_stable", False),
                                              g.get("member_id"), g.get("member_epoch", -1))
            groups.append({"group_id": g["group_id"], "topics": topics, "error_code": code})
        return {"throttle_time_ms": 0, "groups": groups}
    topics, code = await _fetch_group(broker, body["group_id"], body.get("topics"), body.get("require_stable", False))
    return {"throttle_time_ms": 0, "topics": topics, "error_code": code}


async def describe_groups(broker, request) -> dict:
    try:
        groups = await _group(broker, "describe_groups", "", {"group_ids": request.body["groups"]})
    except errors.KafkaError as exc:
        groups = [{"error_code": exc.code, "group_id": g, "group_state": "", "protocol_type": "",
                   "protocol_data": "", "members": []} for g in request.body["groups"]]
    return {"throttle_time_ms": 0, "groups": groups}


async def list_groups(broker, request) -> dict:
    """Only the groups this broker coordinates, as each Kafka broker lists the groups of
    the __consumer_offsets partitions it leads: a client that asks every broker (as
    librdkafka and the Java AdminClient do) sees each group once."""
    try:
        response = await _group(broker, "list_groups", "", {"states": request.body.get("states_filter") or None,
                                                           "types": request.body.get("types_filter") or None})
    except errors.KafkaError as exc:
        response = {"error_code": exc.code, "groups": []}
    mine = [g for g in response["groups"]
            if getattr(coordinator_for(broker, g["group_id"]), "node_id", None) == broker.node_id]
    return {"throttle_time_ms": 0, **response, "groups": mine}


async def delete_groups(broker, request) -> dict:
    try:
        results = await _group(broker, "delete_groups", "", {"group_ids": request.body["groups_names"]})
    except errors.KafkaError as exc:
        results = [{"group_id": g, "error_code": exc.code} for g in request.body["groups_names"]]
    return {"throttle_time_ms": 0, "results": results}


async def offset_delete(broker, request) -> dict:
    """Partitions of topics this broker does not know get UNKNOWN_TOPIC_OR_PARTITION here,
    as Kafka's broker answers before asking its coordinator; the rest go to the group."""
    body = request.body
    codes = _unknown_partitions(broker, body["topics"])
    known = [(topic["name"], p["partition_index"]) for topic in body["topics"] for p in topic["partitions"]
             if (topic["name"], p["partition_index"]) not in codes]
    try:
        response = await _group(broker, "delete_offsets", body["group_id"], {"partitions": [list(tp) for tp in known]})
    except errors.KafkaError as exc:
        response = {"error_code": exc.code, "partitions": []}
    if response["error_code"]:
        return {"error_code": response["error_code"], "throttle_time_ms": 0, "topics": []}
    codes.update({(t, p): code for t, p, code in response["partitions"]})
    return {"error_code": 0, "throttle_time_ms": 0, "topics": _per_partition(body["topics"], codes)}
