"""`pybroker share-groups`: list, describe and delete share groups (KIP-932), like
kafka-share-groups. It speaks only the Kafka protocol (ListGroups, ShareGroupDescribe,
DescribeShareGroupOffsets, DeleteGroups), so it works against any Kafka 4.x.

Output is Kafka's tool's::

    --list                          one group id a line (--state: GROUP STATE)
    --describe --group g            GROUP TOPIC PARTITION START-OFFSET LAG
    --describe --members            GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS [ASSIGNMENT with --verbose]
    --describe --state              GROUP COORDINATOR (ID) STATE #MEMBERS

START-OFFSET is the share-partition start offset (everything below it is acknowledged
or archived); LAG the records below the high watermark not yet done. A partition whose
share state was never initialised (no member read it) shows ``-``. Exit code 1 on any
error.
"""
from __future__ import annotations

import sys

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, fail
from pybroker.cli.groups import MISSING, delete_reporting, find_coordinator, format_assignment, format_table

ACTIONS = ("list", "describe", "delete")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "share-groups", help="list, describe and delete share groups (KIP-932)",
        description="Manage share groups, like kafka-share-groups.")
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    actions.add_argument("--list", action="store_true", help="list all share groups")
    actions.add_argument("--describe", action="store_true",
                         help="describe groups: start offsets and lag (default), --members or --state")
    actions.add_argument("--delete", action="store_true", help="delete share groups without members")
    p.add_argument("--group", action="append", metavar="GROUP", help="group id (repeatable)")
    p.add_argument("--all-groups", action="store_true", help="describe/delete every share group")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--members", action="store_true", help="describe: one row per member")
    view.add_argument("--state", action="store_true", help="describe: coordinator, state, member count; "
                                                           "list: with states")
    view.add_argument("--offsets", action="store_true", help="describe: start offsets and lag (the default)")
    p.add_argument("--verbose", action="store_true", help="describe --members: add each member's assignment")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the cluster (default 30)")
    p.set_defaults(func=run)


def run(args, out=None, err=None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    action = next(a for a in ACTIONS if getattr(args, a))
    try:
        if action != "list" and not (args.group or args.all_groups):
            raise UsageError(f"--{action} needs --group or --all-groups")
        if args.group and args.all_groups:
            raise UsageError("--group and --all-groups cannot be used together")
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, client_id="pybroker-share-groups", timeout=args.timeout,
                   security=client_security(args)) as admin:
            return {"list": list_, "describe": describe, "delete": delete}[action](admin, args, out, err)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error: Executing share group command failed due to {type(exc).__name__}: {exc}")


def share_groups(admin) -> list:
    return [g for g in admin.list_groups() if g.type == "share" or g.protocol_type == "share"]


def list_(admin, args, out, err) -> int:
    groups = share_groups(admin)
    if args.state:
        out.write(format_table(["GROUP", "STATE"], [[g.group_id, g.state or MISSING] for g in groups]).lstrip("\n"))
    else:
        for g in groups:
            out.write(g.group_id + "\n")
    return 0


def _group_ids(admin, args) -> list[str]:
    if args.all_groups:
        return [g.group_id for g in share_groups(admin)]
    return list(dict.fromkeys(args.group))


def describe_group(admin, group: str) -> dict:
    """The ShareGroupDescribe answer of one group (raises for an error)."""
    from pybroker.protocol import api

    node_id, _, _ = find_coordinator(admin, group)
    response = admin.client.connection(node_id).request(api.SHARE_GROUP_DESCRIBE, {"group_ids": [group]})
    (described,) = response["groups"]
    if described["error_code"]:
        raise errors.for_code(described["error_code"])(described.get("error_message") or None)
    return described


def share_offsets(admin, group: str) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (start offset, lag)} by DescribeShareGroupOffsets. A broker
    may know the lag only for the partitions it leads (pybroker's do): a lag left -1 is
    asked of the partition's leader."""
    from pybroker.protocol import api

    def ask(conn, topics=None) -> dict:
        body = {"groups": [{"group_id": group, "topics": topics}]}
        (answer,) = conn.request(api.DESCRIBE_SHARE_GROUP_OFFSETS, body)["groups"]
        if answer["error_code"]:
            raise errors.for_code(answer["error_code"])(answer.get("error_message") or None)
        return {(t["topic_name"], p["partition_index"]): (p["start_offset"], p.get("lag", -1))
                for t in answer["topics"] for p in t["partitions"] if not p["error_code"]}

    node_id, _, _ = find_coordinator(admin, group)
    found = ask(admin.client.connection(node_id))
    unknown: dict[int, dict[str, list[int]]] = {}
    for (topic, partition), (start, lag) in found.items():
        if start >= 0 and lag < 0:
            leader = admin.client.leader_for(topic, partition, refresh=True)
            if leader >= 0 and leader != node_id:
                unknown.setdefault(leader, {}).setdefault(topic, []).append(partition)
    for leader, topics in unknown.items():
        again = ask(admin.client.connection(leader),
                    [{"topic_name": t, "partitions": ps} for t, ps in sorted(topics.items())])
        found.update({tp: v for tp, v in again.items() if tp in found and v[1] >= 0})
    return found


def describe(admin, args, out, err) -> int:
    code = 0
    for group in _group_ids(admin, args):
        try:
            described = describe_group(admin, group)
        except errors.GroupIdNotFound:
            err.write(f"Error: Share group '{group}' does not exist.\n")
            code = 1
            continue
        members = described["members"]
        if args.state:
            node_id, host, port = find_coordinator(admin, group)
            out.write(format_table(["GROUP", "COORDINATOR (ID)", "STATE", "#MEMBERS"],
                                   [[group, f"{host}:{port} ({node_id})", described["group_state"].title(),
                                     len(members)]], {2: 20}))
            continue
        if not members:
            err.write(f"\nShare group '{group}' has no active members.\n")
        if args.members:
            if members:
                out.write(format_share_members(group, members, args.verbose))
            continue
        offsets = share_offsets(admin, group)
        if offsets:
            out.write(format_table(
                ["GROUP", "TOPIC", "PARTITION", "START-OFFSET", "LAG"],
                [[group, t, p, start if start >= 0 else None, lag if lag >= 0 else None]
                 for (t, p), (start, lag) in sorted(offsets.items())], {2: 10, 3: 15}))
    return code


def format_share_members(group: str, members: list[dict], verbose: bool) -> str:
    headers = ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"] + (["ASSIGNMENT"] if verbose else [])
    rows = []
    for m in sorted(members, key=lambda m: m["member_id"]):
        assignment = [(t["topic_name"], p) for t in m["assignment"]["topic_partitions"] for p in t["partitions"]]
        row = [group, m["member_id"], m["client_host"], m["client_id"], len(assignment)]
        if verbose:
            row.append(format_assignment(assignment))
        rows.append(row)
    return format_table(headers, rows, {4: 15})


def delete(admin, args, out, err) -> int:
    return delete_reporting(admin, _group_ids(admin, args), out, err, "share")
