"""`pybroker reassign-partitions`: move partition replicas between brokers, like
kafka-reassign-partitions (AlterPartitionReassignments, ListPartitionReassignments).

Actions, with Kafka's arguments, JSON and output:

- ``--generate --topics-to-move-json-file F --broker-list 0,1,2``: prints the current
  assignment of the topics in F (``{"topics": [{"topic": "t"}], "version": 1}``), with
  each replica's log directory as Kafka 4.4's tool does, and a
  proposed one spreading them over the brokers listed (Kafka's AdminUtils placement from a
  random start: rack-aware when the brokers have racks, unless ``--disable-rack-aware``;
  some with and some without a rack is refused, as Kafka's tool does), both as
  reassignment JSON. Nothing changes.
- ``--execute --reassignment-json-file F`` (``{"version": 1, "partitions": [{"topic": "t",
  "partition": 0, "replicas": [1, 2], "log_dirs": ["any", "any"]}]}``): prints the current
  assignment of those partitions (to roll back with) and starts the moves. Refused while
  other reassignments run, unless ``--additional``.
- ``--verify --reassignment-json-file F``: whether each move is done; once none runs,
  clears the replication throttle configs, as Kafka's tool does.
- ``--cancel --reassignment-json-file F``: cancels the moves of F that are still running
  (their adding replicas leave again).
- ``--list``: every reassignment in progress, with its adding and removing replicas.

The replicas being added catch up through ordinary replication; the move completes when
all of them are in the ISR. ``log_dirs`` other than "any" are refused: each pybroker
broker has one log directory. ``--throttle`` is not offered: pybroker stores the
replication throttle configs but does not enforce them.
"""
from __future__ import annotations

import json
import sys

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, add_command_timeout, client_security, fail
from pybroker.cli.java_order import hash_order, string_hash

ANY_LOG_DIR = "any"
ACTIONS = ("generate", "execute", "verify", "cancel", "list")
BROKER_THROTTLES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate",
                    "replica.alter.log.dirs.io.max.bytes.per.second")
TOPIC_THROTTLES = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
EXISTING_REASSIGNMENTS = (
    "Cannot execute because there is an existing partition assignment.  Use --additional to override this and "
    "create a new partition assignment in addition to the existing one. The --additional flag can also be used "
    "to change the throttle by resubmitting the current reassignment.")


def register(subparsers) -> None:
    p = subparsers.add_parser("reassign-partitions", help="move partition replicas between brokers",
                              description="Move topic partitions between replicas, like kafka-reassign-partitions.")
    add_bootstrap(p)
    for action, text in (("generate", "propose an assignment of the topics of --topics-to-move-json-file "
                                      "over --broker-list (changes nothing)"),
                         ("execute", "start the reassignment of --reassignment-json-file"),
                         ("verify", "report whether the reassignment of --reassignment-json-file completed"),
                         ("cancel", "cancel the running reassignments of --reassignment-json-file"),
                         ("list", "list every reassignment in progress")):
        p.add_argument(f"--{action}", action="store_true", help=text)
    p.add_argument("--reassignment-json-file", metavar="FILE",
                   help='{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}')
    p.add_argument("--topics-to-move-json-file", metavar="FILE", help='{"version":1,"topics":[{"topic":"t"}]}')
    p.add_argument("--broker-list", metavar="0,1,2", help="the brokers to spread the topics over (--generate)")
    p.add_argument("--additional", action="store_true",
                   help="execute even though other reassignments are in progress")
    p.add_argument("--preserve-throttles", action="store_true",
                   help="do not clear the replication throttle configs (--verify, --cancel)")
    p.add_argument("--disable-rack-aware", action="store_true",
                   help="--generate: propose replicas without regard to the brokers' racks")
    p.add_argument("--timeout", type=int, default=10000, metavar="MS", help="accepted for compatibility")
    add_command_timeout(p)
    p.set_defaults(func=run)


class ToolError(Exception):
    """A failure Kafka's tool prints on stdout before exiting with 1."""


def _action(args) -> str:
    chosen = [a for a in ACTIONS if getattr(args, a)]
    if len(chosen) != 1:
        raise UsageError("Command must include exactly one action: " + ", ".join(f"--{a}" for a in ACTIONS))
    action = chosen[0]
    needs = {"generate": ("topics_to_move_json_file", "broker_list"), "execute": ("reassignment_json_file",),
             "verify": ("reassignment_json_file",), "cancel": ("reassignment_json_file",), "list": ()}[action]
    missing = [n for n in needs if not getattr(args, n)]
    if missing:
        raise UsageError("Missing required argument " + ", ".join(f'"{n.replace("_", "-")}"' for n in missing))
    return action


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ToolError("Error: The input string is not a valid JSON") from None
    if not isinstance(doc, dict):
        raise ToolError("Error: The input string is not a valid JSON")
    version = doc.get("version", 1)
    if version != 1:
        raise ToolError(f"Error: Not supported version field value {version}")
    return doc


def parse_reassignment(doc: dict) -> list[tuple[tuple[str, int], list[int]]]:
    """The (partition, replicas) entries of reassignment JSON, duplicates kept (they are
    refused by ``check_execute``)."""
    out = []
    try:
        for item in doc.get("partitions") or ():
            key = (str(item["topic"]), int(item["partition"]))
            replicas = [int(r) for r in item["replicas"]]
            log_dirs = item.get("log_dirs", [ANY_LOG_DIR] * len(replicas))
            if len(log_dirs) != len(replicas):
                raise ToolError(f"Error: Size of replicas list {_java_list(replicas)} is different from size of "
                                f"log dirs list {_java_list(log_dirs)} for partition {key[0]}-{key[1]}")
            if any(d != ANY_LOG_DIR for d in log_dirs):
                raise ToolError("Error: log_dirs other than \"any\" are not supported: a pybroker broker has "
                                "one log directory")
            out.append((key, replicas))
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolError(f"Error: the reassignment JSON is malformed: {exc}") from None
    return out


def check_execute(entries) -> dict[tuple[str, int], list[int]]:
    """Kafka's parseExecuteAssignmentArgs checks, with its messages."""
    if not entries:
        raise ToolError("Error: Partition reassignment list cannot be empty")
    if any(not replicas for _, replicas in entries):
        raise ToolError("Error: Partition replica list cannot be empty")
    keys = [key for key, _ in entries]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ToolError("Error: Partition reassignment contains duplicate topic partitions: "
                        + ",".join(_name(k) for k in repeated))
    twice = [(key, sorted({r for r in replicas if replicas.count(r) > 1})) for key, replicas in entries]
    twice = [(key, dups) for key, dups in twice if dups]
    if twice:
        raise ToolError("Error: Partition replica lists may not contain duplicate entries: " + ". ".join(
            f"{_name(key)} contains multiple entries for {','.join(map(str, dups))}" for key, dups in twice))
    return dict(entries)


def reassignment_json(assignment: dict[tuple[str, int], list[int]],
                      log_dirs: dict[tuple[str, int, int], str] | None = None) -> str:
    """Kafka's formatAsReassignmentJson: partitions sorted, each replica's log dir
    ((topic, partition, broker) -> path) or "any"."""
    log_dirs = log_dirs or {}
    return json.dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": list(assignment[(t, p)]),
         "log_dirs": [log_dirs.get((t, p, r), ANY_LOG_DIR) for r in assignment[(t, p)]]}
        for t, p in sorted(assignment)]}, separators=(",", ":"))


def replica_log_dirs(admin, assignment: dict[tuple[str, int], list[int]]) -> dict[tuple[str, int, int], str]:
    """Where each replica of ``assignment`` lives on the live brokers (DescribeLogDirs),
    as Kafka 4.4's tool prints the current assignment."""
    live = {b.node_id for b in admin.describe_cluster().brokers}
    brokers = sorted({r for replicas in assignment.values() for r in replicas} & live)
    if not brokers:
        return {}
    out = {}
    for broker, dirs in admin.describe_log_dirs(brokers).items():
        for log_dir in dirs:
            for replica in log_dir.replicas:
                if (replica.topic, replica.partition) in assignment:
                    out[(replica.topic, replica.partition, broker)] = log_dir.path
    return out


def _name(key: tuple[str, int]) -> str:
    return f"{key[0]}-{key[1]}"


def _java_list(items) -> str:
    return "[" + ", ".join(map(str, items)) + "]"


def _java_error(exc: errors.KafkaError) -> str:
    return f"org.apache.kafka.common.errors.{type(exc).__name__}Exception: {exc.detail or exc.message}"


def run(args) -> int:
    from pybroker.client.admin import Admin

    try:
        action = _action(args)
        security = client_security(args)
        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=security) as admin:
            return {"generate": generate, "execute": execute, "verify": verify, "cancel": cancel,
                    "list": list_reassignments}[action](admin, args)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except ToolError as exc:
        print(exc)
        return 1
    except errors.KafkaError as exc:
        print(f"Error: {_java_error(exc)}")
        return 1
    finally:
        sys.stdout.flush()


def _assignment_of(admin, topics, missing_ok: bool = False) -> dict[tuple[str, int], list[int]]:
    """Current replicas of every partition of ``topics``; a topic the cluster lacks is
    an error, or with ``missing_ok`` has no partitions."""
    out = {}
    for topic in sorted(set(topics)):
        try:
            (info,) = admin.describe_topics([topic])
        except errors.UnknownTopicOrPartition:
            if missing_ok:
                continue
            raise ToolError("Error: " + _java_error(errors.UnknownTopicOrPartition(f"Topic {topic} not found."))) \
                from None
        for index, part in info.partitions.items():
            out[(topic, index)] = list(part.replicas)
    return out


def generate(admin, args) -> int:
    from pybroker.cluster.controller import assign_replicas
    from pybroker.cluster.placement import assign_replicas_rack_aware

    try:
        brokers = [int(b) for b in args.broker_list.split(",")]
    except ValueError:
        raise UsageError(f"--broker-list expects broker ids like 0,1,2, got {args.broker_list!r}") from None
    repeated = sorted({b for b in brokers if brokers.count(b) > 1})
    if repeated:
        raise ToolError(f"Error: Broker list contains duplicate entries: {_java_list(repeated)}")
    doc = _read_json(args.topics_to_move_json_file)
    try:
        topics = [str(item["topic"]) for item in doc.get("topics") or ()]
    except (KeyError, TypeError) as exc:
        raise ToolError(f"Error: the topics JSON is malformed: {exc}") from None
    repeated_topics = sorted({t for t in topics if topics.count(t) > 1})
    if repeated_topics:
        raise ToolError(f"Error: List of topics to reassign contains duplicate entries: {_java_list(repeated_topics)}")
    current = _assignment_of(admin, topics)
    # Brokers of the list the cluster does not have are left out, as Kafka's tool does.
    known = {b.node_id: b.rack for b in admin.describe_cluster().brokers}
    usable = [b for b in brokers if b in known]
    racks = {} if args.disable_rack_aware else {b: known[b] for b in usable if known[b] is not None}
    if racks and len(racks) != len(usable):
        raise ToolError("Error: Not all brokers have rack information. Add --disable-rack-aware in command line "
                        "to make replica assignment without rack information.")
    proposed = {}
    for topic in dict.fromkeys(t for t, _ in sorted(current)):
        count = sum(1 for t, _ in current if t == topic)
        try:
            rf = len(current[(topic, 0)])
            placed = assign_replicas_rack_aware(racks, count, rf) if racks else assign_replicas(usable, count, rf)
        except errors.KafkaError as exc:
            raise ToolError(f"Error: {_java_error(exc)}") from None
        proposed.update({(topic, p): replicas for p, replicas in enumerate(placed)})
    print(f"Current partition replica assignment\n{reassignment_json(current, replica_log_dirs(admin, current))}\n")
    print(f"Proposed partition reassignment configuration\n{reassignment_json(proposed)}")
    return 0


def execute(admin, args) -> int:
    targets = check_execute(parse_reassignment(_read_json(args.reassignment_json_file)))
    if not args.additional and admin.list_partition_reassignments():
        raise ToolError(EXISTING_REASSIGNMENTS)
    known = {b.node_id for b in admin.describe_cluster().brokers}
    unknown = next((b for replicas in targets.values() for b in replicas if b not in known), None)
    if unknown is not None:
        raise ToolError(f"Error: Unknown broker id {unknown}")
    current = _assignment_of(admin, {t for t, _ in targets})
    missing = [k for k in targets if k not in current]
    if missing:
        raise ToolError("Error: " + _java_error(errors.UnknownTopicOrPartition(
            "Unable to find partition: " + ", ".join(_name(k) for k in missing))))
    moving = {k: current[k] for k in targets}
    print("Current partition replica assignment\n\n"
          f"{reassignment_json(moving, replica_log_dirs(admin, moving))}\n\n"
          "Save this to use as the --reassignment-json-file option during rollback")
    results = admin.alter_partition_reassignments(targets)
    failed = {k: exc for k, exc in results.items() if exc is not None}
    if failed:
        raise ToolError("Error reassigning partition(s):\n" + "\n".join(
            f"{_name(k)}: {failed[k].detail or failed[k].message}" for k in sorted(failed)))
    print(f"Successfully started partition reassignment{'' if len(targets) == 1 else 's'} for "
          + ",".join(_name(k) for k in sorted(targets)))
    return 0


def verify(admin, args) -> int:
    entries = parse_reassignment(_read_json(args.reassignment_json_file))
    ongoing = admin.list_partition_reassignments()
    settled = [k for k, _ in entries if k not in ongoing]
    current = _assignment_of(admin, {t for t, _ in settled}, missing_ok=True) if settled else {}
    lines = ["Status of partition reassignment:"]
    for key, target in sorted(dict(entries).items()):
        if key in ongoing:
            lines.append(f"Reassignment of partition {_name(key)} is still in progress.")
        elif current.get(key, []) == target:
            lines.append(f"Reassignment of partition {_name(key)} is completed.")
        else:
            lines.append(f"There is no active reassignment of partition {_name(key)}, but replica set is "
                         f"{','.join(map(str, current.get(key, [])))} rather than {','.join(map(str, target))}.")
    print("\n".join(lines))
    print()  # Kafka's tool prints its (empty) list of log directory moves
    if not ongoing and not args.preserve_throttles:
        clear_throttles(admin, entries)
    return 0


def cancel(admin, args) -> int:
    entries = parse_reassignment(_read_json(args.reassignment_json_file))
    wanted = [k for k, _ in entries]
    running = sorted(admin.list_partition_reassignments(wanted))
    if running:
        results = admin.alter_partition_reassignments({k: None for k in running})
        failed = {k: exc for k, exc in results.items() if exc is not None}
        if failed:
            raise ToolError(f"Error cancelling partition reassignment{'' if len(failed) == 1 else 's'} for:\n"
                            + "\n".join(f"{_name(k)}: {failed[k].detail or failed[k].message}" for k in sorted(failed)))
        print(f"Successfully cancelled partition reassignment{'' if len(running) == 1 else 's'} for: "
              + ",".join(_name(k) for k in running))
    else:
        print("None of the specified partition reassignments are active.")
    # No newline: Kafka's tool prints the next line straight after this one.
    print("None of the specified partition moves are active.", end="")
    if not args.preserve_throttles:
        clear_throttles(admin, entries)
    return 0


def clear_throttles(admin, entries) -> None:
    """Kafka's clearAllThrottles: delete the replication throttle configs of every
    broker (of the cluster and named in the JSON) and of the JSON's topics."""
    from pybroker.client.admin import RESOURCE_BROKER

    # Both are Java HashSets in Kafka's tool, printed in their iteration order.
    brokers = list(dict.fromkeys([b.node_id for b in admin.describe_cluster().brokers]
                                 + [b for _, replicas in entries for b in replicas]))
    brokers = hash_order(brokers, lambda b: b & 0xFFFFFFFF)
    print(f"Clearing broker-level throttles on broker{'' if len(brokers) == 1 else 's'} "
          + ",".join(map(str, brokers)))
    for broker in brokers:
        admin.alter_resource_configs(RESOURCE_BROKER, str(broker), delete=list(BROKER_THROTTLES))
    topics = hash_order(dict.fromkeys(t for (t, _), _ in entries), string_hash)
    print(f"Clearing topic-level throttles on topic{'' if len(topics) == 1 else 's'} {','.join(topics)}")
    for topic in topics:
        admin.alter_topic_configs(topic, delete=list(TOPIC_THROTTLES))


def list_reassignments(admin, args) -> int:
    ongoing = admin.list_partition_reassignments()
    if not ongoing:
        print("No partition reassignments found.")
        return 0
    print("Current partition reassignments:")
    for key in sorted(ongoing):
        r = ongoing[key]
        print(f"{_name(key)}: replicas: {','.join(map(str, r.replicas))}."
              + (f" adding: {','.join(map(str, r.adding_replicas))}." if r.adding_replicas else "")
              + (f" removing: {','.join(map(str, r.removing_replicas))}." if r.removing_replicas else ""))
    return 0
