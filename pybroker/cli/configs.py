"""`pybroker configs`: describe and change topic configs and client quotas, like kafka-configs.

``--topic T`` is short for ``--entity-type topics --entity-name T``. Client quotas are
``--entity-type users|clients|ips`` (pybroker.cli.quota_configs).
Output lines are Kafka's::

    Dynamic configs for topic T are:
      retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000}
    Completed updating config for topic T.

``--add-config`` takes ``k=v,k2=v2``; a list value goes in square brackets, as with
kafka-configs: ``cleanup.policy=[compact,delete]``. ``--delete-config`` takes ``k,k2``
(each reverts to its default). Errors print ``Error while executing config command :
<broker's message>`` on stderr and exit with 1.
"""
from __future__ import annotations

import sys

from pybroker import errors
from pybroker.cli import quota_configs
from pybroker.cli.common import UsageError, add_bootstrap, client_security, add_command_timeout, fail, parse_properties

ENTITY_TYPES = ("topics", "users", "clients", "ips")


def register(subparsers) -> None:
    p = subparsers.add_parser("configs", help="describe and alter topic configs",
                              description="Describe and change topic configs, like kafka-configs.")
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    actions.add_argument("--describe", action="store_true", help="show the topic's configs")
    actions.add_argument("--alter", action="store_true", help="change the topic's configs")
    p.add_argument("--topic", help="the topic (same as --entity-type topics --entity-name TOPIC)")
    p.add_argument("--entity-type", action="append", dest="entity_types", metavar="TYPE",
                   help="the kind of entity: topics, users, clients, ips (users and clients together: "
                        "a user's client-id)")
    p.add_argument("--entity-name", action="append", dest="entity_names", metavar="NAME",
                   help="the entity's name, one per --entity-type")
    p.add_argument("--entity-default", action="append_const", const="", dest="entity_names",
                   help="the default entity of users, clients or ips (in place of an --entity-name)")
    p.add_argument("--add-config", action="append", metavar="K=V[,K2=V2]",
                   help="overrides to set; a list value in brackets: cleanup.policy=[compact,delete]")
    p.add_argument("--delete-config", action="append", metavar="K[,K2]",
                   help="overrides to remove (back to the default)")
    p.add_argument("--all", action="store_true", help="describe: every config, not only the overrides")
    add_command_timeout(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        if _quota_entity(args):
            return _run_quotas(args)
        topic = check_args(args)
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            if args.describe:
                return describe(admin, topic, args.all, sys.stdout)
            return alter(admin, topic, parse_add_config(args.add_config), parse_delete_config(args.delete_config),
                         sys.stdout)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except (errors.KafkaError, ValueError) as exc:
        return fail(f"Error while executing config command : {exc}")


def _quota_entity(args) -> bool:
    types = getattr(args, "entity_types", None) or []
    unknown = [t for t in types if t not in ENTITY_TYPES]
    if unknown:
        raise UsageError(f"--entity-type {unknown[0]} is not supported: topics, users, clients or ips")
    return bool(types) and all(t in quota_configs.QUOTA_ENTITY_TYPES for t in types)


def _run_quotas(args) -> int:
    if args.topic:
        raise UsageError("--topic cannot be combined with another --entity-type or --entity-name")
    parts = quota_configs.entity_parts(args.entity_types, args.entity_names or [])
    _check_alter_options(args)
    ops = quota_configs.check_alter(args.entity_types, parts, parse_add_config(args.add_config),
                                    parse_delete_config(args.delete_config)) if args.alter else None
    from pybroker.client.admin import Admin

    with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
        if args.describe:
            return quota_configs.describe(admin, parts, sys.stdout)
        return quota_configs.alter(admin, args.entity_types, parts, ops, sys.stdout)


def check_args(args) -> str:
    """The topic the command is about; a UsageError for a command kafka-configs refuses."""
    types = getattr(args, "entity_types", None) or []
    names = [n for n in getattr(args, "entity_names", None) or [] if n]
    if len(types) > 1 or len(names) > 1:
        raise UsageError("a topic is one --entity-type topics with one --entity-name")
    entity_type = types[0] if types else None
    entity_name = names[0] if names else None
    if args.topic and (entity_name or entity_type not in (None, "topics")):
        raise UsageError("--topic cannot be combined with another --entity-type or --entity-name")
    topic = args.topic or entity_name
    if not topic:
        raise UsageError("a topic is needed: --topic T, or --entity-type topics --entity-name T")
    _check_alter_options(args)
    return topic


def _check_alter_options(args) -> None:
    if args.alter:
        if not args.add_config and not args.delete_config:
            raise UsageError("--alter needs --add-config or --delete-config")
        added = parse_add_config(args.add_config)
        both = sorted(set(added) & set(parse_delete_config(args.delete_config)))
        if both:
            raise UsageError(f"a config cannot be both added and deleted: {', '.join(both)}")
    elif args.add_config or args.delete_config:
        raise UsageError("--add-config and --delete-config are only valid with --alter")


def parse_add_config(items: list[str] | None) -> dict[str, str]:
    """``["a=1,b=[x,y]", "c=2"]`` -> {"a": "1", "b": "x,y", "c": "2"}: commas inside
    square brackets belong to a list value."""
    pairs = parse_properties([p for item in items or () for p in _split_outside_brackets(item)], "--add-config")
    return {key: _unbracket(value.strip()) for key, value in pairs.items()}


def _unbracket(value: str) -> str:
    return value[1:-1] if value.startswith("[") and value.endswith("]") else value


def parse_delete_config(items: list[str] | None) -> list[str]:
    return [name.strip() for item in items or () for name in item.split(",") if name.strip()]


def _split_outside_brackets(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def describe(admin, topic: str, everything: bool, out) -> int:
    configs = admin.describe_configs(topic)
    # As kafka-configs: without --all only the topic's own overrides, not the broker-wide
    # settings (DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG) it inherits.
    shown = {name: entry for name, entry in sorted(configs.items())
             if everything or entry.source == "DYNAMIC_TOPIC_CONFIG"}
    out.write(f"{'All' if everything else 'Dynamic'} configs for topic {topic} are:\n")
    for name, entry in shown.items():
        value = "null" if entry.is_sensitive or entry.value is None else entry.value
        out.write(f"  {name}={value} sensitive={str(entry.is_sensitive).lower()} "
                  f"synonyms={{{entry.source}:{name}={value}}}\n")
    return 0


def alter(admin, topic: str, add: dict[str, str], delete: list[str], out) -> int:
    admin.alter_topic_configs(topic, set=add, delete=delete)
    out.write(f"Completed updating config for topic {topic}.\n")
    return 0
