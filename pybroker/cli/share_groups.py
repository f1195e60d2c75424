"""`pybroker share-groups`: list, describe, reset offsets of, delete offsets of and delete
share groups (KIP-932), like kafka-share-groups. It speaks only the Kafka protocol
(ListGroups, ShareGroupDescribe, Describe/Alter/DeleteShareGroupOffsets, ListOffsets,
DeleteGroups), so it works against any Kafka 4.x.

Output is Kafka's tool's::

    --list                          one group id a line (--state: GROUP STATE)
    --describe --group g            GROUP TOPIC PARTITION START-OFFSET LAG
    --describe --members            GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS [ASSIGNMENT with --verbose]
    --describe --state              GROUP COORDINATOR (ID) STATE #MEMBERS
    --reset-offsets --dry-run|--execute   GROUP TOPIC PARTITION NEW-OFFSET (--export: topic,partition,offset)
    --delete-offsets --topic t      TOPIC STATUS (Successful or Error: <why>)

START-OFFSET is the share-partition start offset (everything below it is acknowledged
or archived); LAG the records below the high watermark not yet done. A partition whose
share state was never initialised (no member read it) shows ``-``. Resetting and
deleting offsets need a group without members ("Share group 'g' is not empty."); a reset
of a group that does not exist yet creates it, as Kafka does. Exit code 1 on any error.
"""
from __future__ import annotations

import sys

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, fail
from pybroker.cli.groups import (EARLIEST, LATEST, MISSING, add_reset_arguments, delete_reporting, find_coordinator, format_assignment,
                                 format_export, format_table, parse_datetime, parse_reset_file,
                                 parse_topic_partitions, plan_reset)
from pybroker.cli.groups import reset_spec as groups_reset_spec

ACTIONS = ("list", "describe", "reset_offsets", "delete_offsets", "delete")
RESET_SPECS = ("to_earliest", "to_latest", "to_offset", "to_current", "to_datetime", "from_file")


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
    actions.add_argument("--reset-offsets", action="store_true",
                         help="reset the start offsets of a share group without members (--dry-run or --execute)")
    actions.add_argument("--delete-offsets", action="store_true",
                         help="delete a share group's offsets (its state) for whole topics")
    p.add_argument("--group", action="append", metavar="GROUP", help="group id (repeatable)")
    p.add_argument("--all-groups", action="store_true", help="describe/delete every share group")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--members", action="store_true", help="describe: one row per member")
    view.add_argument("--state", action="store_true", help="describe: coordinator, state, member count; "
                                                           "list: with states")
    view.add_argument("--offsets", action="store_true", help="describe: start offsets and lag (the default)")
    p.add_argument("--verbose", action="store_true", help="describe --members: add each member's assignment")
    add_reset_arguments(p, "start", shift=False, dry_run_default=False)
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the cluster (default 30)")
    p.set_defaults(func=run)


def run(args, out=None, err=None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    action = next(a for a in ACTIONS if getattr(args, a))
    try:
        check_args(args, action)
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, client_id="pybroker-share-groups", timeout=args.timeout,
                   security=client_security(args)) as admin:
            return {"list": list_, "describe": describe, "delete": delete, "reset_offsets": reset_offsets,
                    "delete_offsets": delete_offsets}[action](admin, args, out, err)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error: Executing share group command failed due to {type(exc).__name__}: {exc}")


def check_args(args, action: str) -> None:
    option = "--" + action.replace("_", "-")
    if action != "list" and not (args.group or args.all_groups):
        raise UsageError(f"{option} needs --group or --all-groups")
    if args.group and args.all_groups:
        raise UsageError("--group and --all-groups cannot be used together")
    spec = reset_spec(args)
    if action in ("reset_offsets", "delete_offsets"):
        # Kafka's tool acts on one share group at a time here.
        if args.all_groups or len(set(args.group)) != 1:
            raise UsageError(f"{option} supports one share group at a time: give one --group")
    if action == "delete_offsets" and not args.topic:
        raise UsageError("--delete-offsets needs --topic")
    if action == "reset_offsets":
        if not (args.dry_run or args.execute):
            raise UsageError("Option [reset-offsets] takes the option: [execute] or [dry-run]")
        if spec is None:
            raise UsageError("--reset-offsets needs one of --to-earliest, --to-latest, --to-current, --to-offset, "
                             "--to-datetime, --from-file")
        if spec[0] == "from_file":
            if args.topic or args.all_topics:
                raise UsageError("--from-file takes the partitions from the file: "
                                 "--topic and --all-topics are not valid with it")
            read_plan(args)
        elif bool(args.topic) == bool(args.all_topics):
            raise UsageError("--reset-offsets needs one of --topic and --all-topics")
        for item in args.topic or ():
            parse_topic_partitions(item)
        if args.to_datetime is not None:
            parse_datetime(args.to_datetime)
        if args.to_offset is not None and args.to_offset < 0:
            raise UsageError("--to-offset must not be negative")
    elif spec is not None or args.dry_run or args.execute or args.export or args.all_topics or \
            (args.topic and action != "delete_offsets"):
        raise UsageError("--topic, --all-topics, --to-*, --from-file, --dry-run, --execute and --export "
                         "need --reset-offsets (--topic also --delete-offsets)")


def reset_spec(args) -> tuple[str, object] | None:
    return groups_reset_spec(args, RESET_SPECS)


def read_plan(args) -> dict[tuple[str, int], int]:
    try:
        with open(args.from_file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --from-file {args.from_file}: {exc}") from None
    (group,) = set(args.group)
    return parse_reset_file(text, group).get(group, {})


def share_groups(admin) -> list:
    return [g for g in admin.list_groups() if g.type == "share" or g.protocol_type == "share"]


def list_(admin, args, out, err) -> int:
    groups = share_groups(admin)
    if args.state:
        out.write(format_table(["GROUP", "STATE"], [[g.group_id, g.state or MISSING] for g in groups],
                               {0: 15}).lstrip("\n"))
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
    """{(topic, partition): (start offset, lag)} by DescribeShareGroupOffsets to the
    group's coordinator (which knows the lag of partitions other brokers lead too)."""
    from pybroker.protocol import api

    node_id, _, _ = find_coordinator(admin, group)
    body = {"groups": [{"group_id": group, "topics": None}]}
    (answer,) = admin.client.connection(node_id).request(api.DESCRIBE_SHARE_GROUP_OFFSETS, body)["groups"]
    if answer["error_code"]:
        raise errors.for_code(answer["error_code"])(answer.get("error_message") or None)
    return {(t["topic_name"], p["partition_index"]): (p["start_offset"], p.get("lag", -1))
            for t in answer["topics"] for p in t["partitions"] if not p["error_code"]}


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
                 for (t, p), (start, lag) in sorted(offsets.items())], {0: 15, 1: 15, 2: 10, 3: 13}))
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


def _reset_partitions(admin, args, current: dict[tuple[str, int], int]) -> list[tuple[str, int]]:
    if args.all_topics:
        return sorted(current)
    out = set()
    existing = set(admin.list_topics())
    for item in args.topic:
        topic, partitions = parse_topic_partitions(item)
        if topic not in existing:
            raise errors.UnknownTopicOrPartition()
        (info,) = admin.describe_topics([topic])
        missing = set(partitions or ()) - set(info.partitions)
        if missing:
            names = ", ".join(f"{topic}-{p}" for p in sorted(missing))
            raise errors.UnknownTopicOrPartition(f'The partitions "{names}" do not exist')
        out.update((topic, p) for p in (partitions if partitions is not None else info.partitions))
    return sorted(out)


def reset_offsets(admin, args, out, err) -> int:
    """Kafka's ShareGroupCommand.resetOffsets: only a group without members (one that
    does not exist yet is created by the reset); new start offsets are clamped to the
    partitions' earliest and latest offsets."""
    (group,) = set(args.group)
    try:
        state = describe_group(admin, group)["group_state"]
    except errors.GroupIdNotFound as exc:
        if "not a share group" in str(exc):
            raise
        state = "Dead"
    if state not in ("Empty", "Dead"):
        err.write(f"Share group '{group}' is not empty.\n")
        return 1
    spec = reset_spec(args)
    current = admin.list_share_group_offsets(group)
    if spec[0] == "from_file":
        plan_from = read_plan(args)
        spec, partitions = ("from_file", plan_from), sorted(plan_from)
    else:
        partitions = _reset_partitions(admin, args, current)
    earliest = {tp: o for tp, (o, _) in admin.list_offsets({tp: EARLIEST for tp in partitions}).items()}
    latest = {tp: o for tp, (o, _) in admin.list_offsets({tp: LATEST for tp in partitions}).items()}
    by_time = None
    if spec[0] == "to_datetime":
        stamp = parse_datetime(spec[1])
        by_time = {tp: o for tp, (o, _) in admin.list_offsets({tp: stamp for tp in partitions}).items()}
    plan = plan_reset(spec, partitions, current, earliest, latest, by_time)
    if args.execute and plan:
        failed = [tp for tp, exc in admin.alter_share_group_offsets(group, plan).items() if exc is not None]
        if failed:
            raise errors.UnknownTopicOrPartition(
                "Failed altering group offsets for the following partitions: "
                f"[{', '.join(f'{t}-{p}' for t, p in failed)}]")
    if args.export:
        out.write(format_export(group, plan, with_group=False) + "\n")
    else:
        out.write(format_table(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                               [[group, t, p, o] for (t, p), o in sorted(plan.items())], {0: 15, 1: 15, 2: 10}))
    return 0


def delete_offsets(admin, args, out, err) -> int:
    """Kafka's wording: the group's error (if any) above a TOPIC STATUS table, one row
    per topic asked for, Successful or the error."""
    (group,) = set(args.group)
    topics = list(dict.fromkeys(args.topic))
    try:
        results = {t: (f"Error: {exc}" if exc is not None else "Successful")
                   for t, exc in admin.delete_share_group_offsets(group, topics).items()}
        code = 1 if any(r != "Successful" for r in results.values()) else 0
    except errors.KafkaError as exc:
        out.write(f"\nError: {exc}\n")
        results, code = {t: f"Error: {exc}" for t in topics}, 1
    out.write(format_table(["TOPIC", "STATUS"], [[t, results.get(t, MISSING)] for t in sorted(topics)], {0: 15}))
    return code
