"""The cluster as the console and ``/metrics`` show it, read from the supervisor's own
state: the controller (brokers, topics, partitions, ISR, configs), the brokers' latest
reports and shared memory (offsets, sizes), the group coordinator (states, members,
assignments, committed offsets). Nothing here asks a broker anything.

Runs on the supervisor's event loop thread.
"""
from __future__ import annotations

from pybroker.errors import KafkaError
from pybroker.group.consumer_protocol import decode_assignment
from pybroker.group.coordinator import lag


def brokers(supervisor) -> list[dict]:
    leaders: dict[int, int] = {}
    replicas: dict[int, int] = {}
    for state in supervisor.controller.partitions.values():
        leaders[state.leader] = leaders.get(state.leader, 0) + 1
        for r in state.replicas:
            replicas[r] = replicas.get(r, 0) + 1
    out = []
    for p in sorted(supervisor.brokers.values(), key=lambda p: p.node_id):
        state = "up" if p.registered and not p.fenced else "fenced" if p.fenced else "down"
        out.append({"id": p.node_id, "pid": p.pid, "host": supervisor.host, "port": p.port, "rack": p.current_rack,
                    "state": state, "restarts": p.restarts, "leaders": leaders.get(p.node_id, 0),
                    "replicas": replicas.get(p.node_id, 0)})
    return out


def topics(supervisor, positions: dict | None = None) -> list[dict]:
    positions = supervisor.positions() if positions is None else positions
    sizes = supervisor.partition_sizes()
    by_topic: dict[str, list] = {}
    for key, state in sorted(supervisor.controller.partitions.items()):
        pos = positions.get(key, {})
        by_topic.setdefault(state.topic, []).append({
            "partition": state.partition, "leader": state.leader, "leader_epoch": state.leader_epoch,
            "replicas": list(state.replicas), "isr": list(state.isr),
            "under_replicated": state.under_replicated, "offline": state.leader < 0,
            "log_start_offset": pos.get("log_start_offset"), "high_watermark": pos.get("high_watermark"),
            "log_end_offset": pos.get("log_end_offset"), "size_bytes": sizes.get(key),
        })
    out = []
    for name, topic in sorted(supervisor.controller.topics.items()):
        parts = by_topic.get(name, [])
        out.append({
            "name": name, "partitions": parts, "replication_factor": topic.replication_factor,
            "under_replicated": sum(1 for p in parts if p["under_replicated"]),
            "size_bytes": sum(p["size_bytes"] or 0 for p in parts),
            "messages": sum((p["high_watermark"] or 0) - (p["log_start_offset"] or 0) for p in parts),
            "configs": topic.config.overridden(),
        })
    return out


def groups(supervisor, positions: dict | None = None) -> list[dict]:
    """Every known group: state, members with their assignment, committed offset and lag
    per partition (lag against the high watermark, as kafka-consumer-groups shows it)."""
    positions = supervisor.positions() if positions is None else positions
    coordinator = supervisor.groups.coordinator
    listed = coordinator.list_groups()["groups"]
    classic = [g["group_id"] for g in listed if g.get("group_type", "classic") == "classic"]
    described = {d["group_id"]: d for d in coordinator.describe_groups(classic)}
    modern = {d["group_id"]: d for d in coordinator.consumer_group_describe(
        [g["group_id"] for g in listed if g.get("group_type") == "consumer"])}
    out = []
    for entry in listed:
        group_id = entry["group_id"]
        if group_id in modern:
            members, protocol = _consumer_group_members(modern[group_id]), modern[group_id]["assignor_name"]
        else:
            members, protocol = _classic_members(described[group_id]), described[group_id]["protocol_data"]
        owner = {tuple(tp): m["member_id"] for m in members for tp in m["assignment"]}
        offsets = []
        committed = coordinator.store.fetch(group_id)
        for tp in sorted(set(committed) | set(owner)):
            pos = positions.get(tp, {})
            end = pos.get("high_watermark")
            current = committed[tp].offset if tp in committed else None
            offsets.append({"topic": tp[0], "partition": tp[1], "current_offset": current, "log_end_offset": end,
                            "lag": None if end is None or current is None else lag(current, end, pos.get("log_start_offset", 0)),
                            "member_id": owner.get(tp)})
        out.append({"group": group_id, "state": entry["group_state"], "type": entry.get("group_type", "classic"),
                    "protocol_type": entry["protocol_type"], "protocol": protocol, "members": members,
                    "offsets": offsets, "lag": sum(o["lag"] or 0 for o in offsets)})
    return out


def _classic_members(described: dict) -> list[dict]:
    """Members of a classic group; assignments decoded when it speaks the consumer protocol."""
    members = []
    for m in described["members"]:
        assignment: list[tuple[str, int]] = []
        if m["member_assignment"] and described["protocol_type"] == "consumer":
            try:
                assignment = sorted(decode_assignment(m["member_assignment"]).partitions)
            except KafkaError:
                assignment = []
        members.append({"member_id": m["member_id"], "client_id": m["client_id"], "host": m["client_host"],
                        "assignment": [list(tp) for tp in assignment]})
    return members


def _consumer_group_members(described: dict) -> list[dict]:
    """Members of a KIP-848 consumer group, with the partitions the coordinator gave them."""
    return [{"member_id": m["member_id"], "client_id": m["client_id"], "host": m["client_host"],
             "assignment": sorted([t["topic_name"], p] for t in m["assignment"]["topic_partitions"]
                                  for p in t["partitions"])}
            for m in described["members"]]


def cluster(supervisor, metrics) -> dict:
    positions = supervisor.positions()
    return {
        "cluster_id": supervisor.controller.cluster_id,
        "bootstrap": supervisor.bootstrap() if supervisor.brokers else "",
        "brokers": brokers(supervisor),
        "topics": topics(supervisor, positions),
        "groups": groups(supervisor, positions),
        "rates": metrics.latest_rates(),
    }
