"""`pybroker topics`: create, list, describe, alter and delete topics, like kafka-topics.

Output lines are Kafka's, so scripts written against kafka-topics keep working::

    Created topic T.
    Topic: T\tTopicId: ...\tPartitionCount: N\tReplicationFactor: R\tConfigs: k=v,...
    \tTopic: T\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: \tLastKnownElr: 

Errors print ``Error while executing topic command : <broker's message>`` on stderr and
exit with 1.
"""
from __future__ import annotations

import base64
import sys
import uuid

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, add_command_timeout, fail, parse_properties

ACTIONS = ("create", "list", "describe", "alter", "delete")


def register(subparsers) -> None:
    p = subparsers.add_parser("topics", help="create, list, describe, alter and delete topics",
                              description="Manage topics, like kafka-topics.")
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    actions.add_argument("--create", action="store_true", help="create a topic")
    actions.add_argument("--list", action="store_true", help="list topic names")
    actions.add_argument("--describe", action="store_true", help="describe topics and their partitions")
    actions.add_argument("--alter", action="store_true", help="add partitions to a topic")
    actions.add_argument("--delete", action="store_true", help="delete a topic")
    p.add_argument("--topic", help="topic name")
    p.add_argument("--partitions", type=int, help="partition count (create) or new total (alter)")
    p.add_argument("--replication-factor", type=int, help="replicas per partition (create)")
    p.add_argument("--config", action="append", metavar="KEY=VALUE", help="topic setting (create; repeatable)")
    p.add_argument("--if-not-exists", action="store_true", help="create: no error if the topic exists")
    p.add_argument("--if-exists", action="store_true", help="alter/delete/describe: no error if the topic is missing")
    p.add_argument("--exclude-internal", action="store_true", help="list/describe: leave out internal topics")
    add_command_timeout(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        check_args(args)
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            return ACTION_HANDLERS[action_of(args)](admin, args, sys.stdout)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error while executing topic command : {exc}")
    except ValueError as exc:
        return fail(f"Error while executing topic command : {exc}")


def action_of(args) -> str:
    return next(a for a in ACTIONS if getattr(args, a))


def check_args(args) -> None:
    action = action_of(args)
    if action in ("create", "alter", "delete") and not args.topic:
        raise UsageError(f"--{action} needs --topic")
    if action == "alter" and args.partitions is None:
        raise UsageError("--alter needs --partitions")
    if args.partitions is not None and args.partitions < 1:
        raise UsageError("--partitions must be at least 1")
    if args.replication_factor is not None and args.replication_factor < 1:
        raise UsageError("--replication-factor must be at least 1")
    if args.config and action != "create":
        raise UsageError("--config is only valid with --create")
    parse_properties(args.config, "--config")


def create(admin, args, out) -> int:
    from pybroker.client.admin import NewTopic

    topic = NewTopic(
        args.topic,
        -1 if args.partitions is None else args.partitions,
        -1 if args.replication_factor is None else args.replication_factor,
        parse_properties(args.config, "--config"),
    )
    try:
        admin.create_topics([topic])
    except errors.TopicAlreadyExists:
        if args.if_not_exists:
            return 0
        raise errors.TopicAlreadyExists(f"Topic '{args.topic}' already exists.") from None
    out.write(f"Created topic {args.topic}.\n")
    return 0


def list_(admin, args, out) -> int:
    for name in admin.list_topics(include_internal=not args.exclude_internal):
        if args.topic is None or name == args.topic:
            out.write(name + "\n")
    return 0


def describe(admin, args, out) -> int:
    if args.topic:
        try:
            topics = admin.describe_topics([args.topic])
        except errors.UnknownTopicOrPartition:
            if args.if_exists:
                return 0
            raise errors.UnknownTopicOrPartition(f"Topic '{args.topic}' does not exist as expected") from None
    else:
        topics = [t for t in admin.describe_topics() if not (args.exclude_internal and t.is_internal)]
    for info in topics:
        configs = {k: v.value for k, v in admin.describe_configs(info.name).items()
                   if not v.is_default and not v.is_sensitive}
        out.write(format_topic(info, configs))
    return 0


def alter(admin, args, out) -> int:
    if args.if_exists and not _exists(admin, args.topic):
        return 0
    admin.create_partitions({args.topic: args.partitions})
    return 0


def delete(admin, args, out) -> int:
    if not _exists(admin, args.topic):
        if args.if_exists:
            return 0
        raise errors.UnknownTopicOrPartition(f"Topic '{args.topic}' does not exist as expected")
    admin.delete_topics([args.topic])
    return 0


def _exists(admin, topic: str) -> bool:
    return topic in admin.list_topics()


ACTION_HANDLERS = {"create": create, "list": list_, "describe": describe, "alter": alter, "delete": delete}


def format_topic_id(topic_id) -> str:
    """Kafka prints a topic id as URL-safe base64 of its 16 bytes, without padding."""
    if topic_id is None:
        raw = bytes(16)
    elif isinstance(topic_id, uuid.UUID):
        raw = topic_id.bytes
    elif isinstance(topic_id, (bytes, bytearray, memoryview)):
        raw = bytes(topic_id)
    else:
        return str(topic_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def format_topic(info, configs: dict[str, str]) -> str:
    """The --describe block of one topic: a header line, then a line per partition."""
    parts = [info.partitions[p] for p in sorted(info.partitions)]
    rf = len(parts[0].replicas) if parts else 0
    lines = [
        f"Topic: {info.name}\tTopicId: {format_topic_id(info.topic_id)}\tPartitionCount: {len(parts)}\t"
        f"ReplicationFactor: {rf}\tConfigs: {','.join(f'{k}={v}' for k, v in sorted(configs.items()))}\n"
    ]
    for p in parts:
        leader = "none" if p.leader < 0 else str(p.leader)
        lines.append(
            f"\tTopic: {info.name}\tPartition: {p.partition}\tLeader: {leader}\t"
            f"Replicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isr))}\t"
            # Kafka 4's eligible leader replicas (KIP-966): pybroker elects from the ISR
            # only, so both lists are always empty.
            f"Elr: \tLastKnownElr: \n"
        )
    return "".join(lines)
