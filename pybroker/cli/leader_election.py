"""`pybroker leader-election --election-type preferred|unclean ...`: elect partition
leaders, like kafka-leader-election (ElectLeaders).

Partitions come from ``--topic T --partition P``, ``--path-to-json-file FILE``
(``{"partitions": [{"topic": "t", "partition": 0}]}``) or ``--all-topic-partitions``.
Output lines are Kafka's (partitions in the order Kafka's tool prints them)::

    Successfully completed leader election (PREFERRED) for partitions t-0, t-1
    Valid replica already elected for partitions t-2
    Error completing leader election (PREFERRED) for partition: t-3: org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: <message>

Any failed partition makes the exit code 1, with ``N replica(s) could not be elected``
on stderr.
"""
from __future__ import annotations

import json

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, add_command_timeout, fail
from pybroker.cli.java_order import hash_order, topic_partition_hash


def register(subparsers) -> None:
    p = subparsers.add_parser("leader-election", help="elect preferred or unclean partition leaders",
                              description="Elect partition leaders, like kafka-leader-election.")
    add_bootstrap(p)
    p.add_argument("--election-type", required=True, type=str.upper, choices=["PREFERRED", "UNCLEAN"],
                   help="preferred: move leadership to the first replica; unclean: give leaderless "
                        "partitions a leader even outside the ISR")
    p.add_argument("--topic", help="the topic of one partition to elect")
    p.add_argument("--partition", type=int, help="the partition (with --topic)")
    p.add_argument("--path-to-json-file", metavar="FILE",
                   help='JSON: {"partitions": [{"topic": "t", "partition": 0}]}')
    p.add_argument("--all-topic-partitions", action="store_true", help="every partition")
    add_command_timeout(p)
    p.set_defaults(func=run)


def _partitions(args) -> list[tuple[str, int]] | None:
    chosen = [bool(args.topic), bool(args.path_to_json_file), args.all_topic_partitions]
    if sum(chosen) != 1:
        raise UsageError("One and only one of the following options is required: "
                         "--all-topic-partitions, --topic, --path-to-json-file")
    if args.all_topic_partitions:
        return None
    if args.topic:
        if args.partition is None:
            raise UsageError("Missing required option(s): partition")
        return [(args.topic, args.partition)]
    try:
        with open(args.path_to_json_file, encoding="utf-8") as f:
            doc = json.load(f)
        items = doc["partitions"]
        out = [(str(i["topic"]), int(i["partition"])) for i in items]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read the partitions of {args.path_to_json_file}: {exc}") from None
    if not out:
        raise UsageError("Replica election data is empty")
    if len(set(out)) != len(out):
        raise UsageError("Replica election data contains duplicate partitions")
    return out


def _names(partitions) -> str:
    ordered = hash_order(sorted(partitions), lambda tp: topic_partition_hash(*tp))
    return ", ".join(f"{t}-{p}" for t, p in ordered)


def run(args) -> int:
    from pybroker.client.admin import Admin

    try:
        wanted = _partitions(args)
        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            results = admin.elect_leaders(args.election_type == "UNCLEAN", wanted)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error: {exc}")
    done = [tp for tp, exc in results.items() if exc is None]
    noop = [tp for tp, exc in results.items() if isinstance(exc, errors.ElectionNotNeeded)]
    failed = {tp: exc for tp, exc in results.items() if exc is not None and not isinstance(exc, errors.ElectionNotNeeded)}
    if done:
        print(f"Successfully completed leader election ({args.election_type}) for partitions {_names(done)}")
    if noop:
        print(f"Valid replica already elected for partitions {_names(noop)}")
    if failed:
        for tp in hash_order(sorted(failed), lambda tp: topic_partition_hash(*tp)):
            exc = failed[tp]
            # Kafka's tool prints the Java exception: its class, then the message.
            print(f"Error completing leader election ({args.election_type}) for partition: {tp[0]}-{tp[1]}: "
                  f"org.apache.kafka.common.errors.{type(exc).__name__}Exception: {exc.detail or exc.message}")
        return fail(f"{len(failed)} replica(s) could not be elected")
    return 0
