"""`pybroker acls`: add, remove and list ACLs, like kafka-acls.

    pybroker acls --add --allow-principal User:alice --operation Read --operation Write --topic orders
    pybroker acls --add --allow-principal User:alice --operation Read --group orders- --resource-pattern-type prefixed
    pybroker acls --list [--topic orders --resource-pattern-type match] [--principal User:alice]
    pybroker acls --remove --force --allow-principal User:alice --operation Write --topic orders

Resources: ``--topic``, ``--group``, ``--transactional-id`` (repeatable; "*" is every
resource of the type) and ``--cluster``. ``--producer`` / ``--consumer`` add the ACLs
those roles need, as kafka-acls does (WRITE, DESCRIBE, CREATE on the topics; READ,
DESCRIBE on the topics and READ on the group). Output is kafka-acls' own::

    Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`:
     	(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)

    Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`:
    	(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)

Errors print ``Error while executing ACL command: <broker's message>`` on stderr and
exit with 1.
"""
from __future__ import annotations

import re
import sys

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, add_command_timeout, client_security, fail
from pybroker.security import acls as a


def register(subparsers) -> None:
    p = subparsers.add_parser("acls", help="add, remove and list ACLs (like kafka-acls)",
                              description="Add, remove and list ACLs, like kafka-acls. The cluster must run "
                                          "with `pybroker up --authorizer acl`.")
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    actions.add_argument("--add", action="store_true", help="add ACLs")
    actions.add_argument("--remove", action="store_true", help="remove ACLs")
    actions.add_argument("--list", action="store_true", help="list ACLs (of the given resources, or all)")
    p.add_argument("--allow-principal", action="append", default=[], metavar="Type:name",
                   help="principal allowed (User:alice; User:* is everyone); repeatable")
    p.add_argument("--deny-principal", action="append", default=[], metavar="Type:name",
                   help="principal denied; deny rules take precedence over allow rules; repeatable")
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                   help="host the allowed principals may connect from (default *)")
    p.add_argument("--deny-host", action="append", default=[], metavar="HOST",
                   help="host the denied principals are denied from (default *)")
    p.add_argument("--operation", action="append", default=[], metavar="OP",
                   help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, "
                        "AlterConfigs, IdempotentWrite, All (default All); repeatable")
    p.add_argument("--topic", action="append", default=[], help="topic resource ('*': every topic)")
    p.add_argument("--group", action="append", default=[], help="consumer group resource ('*': every group)")
    p.add_argument("--transactional-id", action="append", default=[], help="transactional id resource")
    p.add_argument("--cluster", action="store_true", help="the cluster resource")
    p.add_argument("--resource-pattern-type", default="literal", type=str.lower,
                   choices=("literal", "prefixed", "match", "any"),
                   help="literal or prefixed (adding); also match or any when listing or removing (default literal)")
    p.add_argument("--principal", action="append", default=[], help="--list: only the ACLs of this principal")
    p.add_argument("--producer", action="store_true", help="add/remove the ACLs a producer of --topic needs")
    p.add_argument("--consumer", action="store_true",
                   help="add/remove the ACLs a consumer of --topic in --group needs")
    p.add_argument("--idempotent", action="store_true", help="with --producer: IDEMPOTENT_WRITE on the cluster too")
    p.add_argument("--force", action="store_true", help="remove without asking")
    add_command_timeout(p)
    p.set_defaults(func=run)


def enum_name(camel: str) -> str:
    """Kafka's enum spelling of a name: TransactionalId -> TRANSACTIONAL_ID."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def pattern_text(resource_type: int, name: str, pattern_type: int) -> str:
    return (f"ResourcePattern(resourceType={enum_name(a.resource_type_name(resource_type))}, name={name}, "
            f"patternType={a.pattern_type_name(pattern_type)})")


def entry_text(acl: a.AclBinding) -> str:
    return (f"(principal={acl.principal}, host={acl.host}, operation={enum_name(a.operation_name(acl.operation))}, "
            f"permissionType={a.permission_name(acl.permission).upper()})")


def _resources(args) -> list[tuple[int, str]]:
    out = [(a.TOPIC, t) for t in args.topic] + [(a.GROUP, g) for g in args.group]
    out += [(a.TRANSACTIONAL_ID, t) for t in args.transactional_id]
    if args.cluster:
        out.append((a.CLUSTER, a.CLUSTER_NAME))
    return out


def _operations(args, resource_type: int) -> list[int]:
    """The operations asked for one resource type: --operation, or the role's."""
    if args.producer or args.consumer:
        ops = []
        if resource_type == a.TOPIC:
            ops = ([a.WRITE, a.DESCRIBE, a.CREATE] if args.producer else []) + \
                  ([a.READ, a.DESCRIBE] if args.consumer else [])
        elif resource_type == a.GROUP and args.consumer:
            ops = [a.READ]
        elif resource_type == a.CLUSTER and args.producer and args.idempotent:
            ops = [a.IDEMPOTENT_WRITE]
        return list(dict.fromkeys(ops))
    try:
        ops = [a.parse_code(a.OPERATIONS, op, "operation") for op in args.operation or ["All"]]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if a.ANY_OPERATION in ops:
        raise UsageError("Any is a filter, not an operation: name one (Read, Write, ..., All)")
    supported = set(a.SUPPORTED_OPERATIONS[resource_type]) | {a.ALL}
    if not set(ops) <= supported:
        names = ", ".join(enum_name(a.operation_name(op)) for op in sorted(supported))
        raise UsageError(f"ResourceType {enum_name(a.resource_type_name(resource_type))} only supports "
                         f"operations [{names}]")
    return list(dict.fromkeys(ops))


def _entries(args, resource_type: int) -> list[tuple[str, str, int, int]]:
    """(principal, host, operation, permission) for one resource."""
    out = []
    for principals, hosts, permission in ((args.allow_principal, args.allow_host, a.ALLOW),
                                          (args.deny_principal, args.deny_host, a.DENY)):
        for principal in principals:
            if not a.valid_principal(principal):
                raise UsageError(f"Could not parse principal from `{principal}` (no colon is present separating "
                                 "the principal type from name)")
            for host in hosts or ["*"]:
                for op in _operations(args, resource_type):
                    out.append((principal, host, op, permission))
    return out


def _resources_for_role(args) -> list[tuple[int, str]]:
    resources = _resources(args)
    if args.producer or args.consumer:
        if not args.topic:
            raise UsageError("With --producer or --consumer you must specify a --topic")
        if args.consumer and not args.group:
            raise UsageError("With --consumer you must specify a --group")
        if args.producer and args.idempotent and not args.cluster:
            resources.append((a.CLUSTER, a.CLUSTER_NAME))
    return resources


def check_args(args) -> None:
    if (args.producer or args.consumer) and args.operation:
        raise UsageError("--operation cannot be used with --producer or --consumer")
    if args.idempotent and not args.producer:
        raise UsageError("--idempotent goes with --producer")
    if args.list and (args.allow_principal or args.deny_principal or args.producer or args.consumer):
        raise UsageError("--list takes --principal, not --allow-principal, --deny-principal, --producer or --consumer")
    if args.add:
        if not (args.allow_principal or args.deny_principal):
            raise UsageError("You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.")
        if args.resource_pattern_type in ("match", "any"):
            raise UsageError(f"A '--resource-pattern-type' value of '{args.resource_pattern_type.upper()}' is not "
                             "valid when adding acls.")
        if not _resources_for_role(args):
            raise UsageError("You must provide at least one resource: --topic <topic> or --cluster or "
                             "--group <group> or --transactional-id <id>")
    if args.remove and not _resources_for_role(args):
        raise UsageError("You must provide at least one resource: --topic <topic> or --cluster or "
                         "--group <group> or --transactional-id <id>")


def run(args) -> int:
    try:
        check_args(args)
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            if args.add:
                return add(admin, args, sys.stdout)
            if args.remove:
                return remove(admin, args, sys.stdout)
            return list_acls(admin, args, sys.stdout)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except (errors.KafkaError, ValueError) as exc:
        return fail(f"Error while executing ACL command: {exc}")


def _pattern_type(args) -> int:
    return a.PATTERN_TYPES[args.resource_pattern_type.upper()]


def add(admin, args, out) -> int:
    pattern_type = _pattern_type(args)
    # Every resource's ACLs are checked before any is added, as kafka-acls does.
    planned = [(resource_type, name, [a.AclBinding(resource_type, name, pattern_type, principal, host, op, permission)
                                      for principal, host, op, permission in _entries(args, resource_type)])
               for resource_type, name in _resources_for_role(args)]
    for resource_type, name, bindings in planned:
        if not bindings:
            continue
        out.write(f"Adding ACLs for resource `{pattern_text(resource_type, name, pattern_type)}`: \n "
                  + "\n".join("\t" + entry_text(b) for b in bindings) + "\n\n")
        admin.create_acls(bindings)
    return 0


def remove(admin, args, out) -> int:
    pattern_type = _pattern_type(args)
    for resource_type, name in _resources_for_role(args):
        entries = _entries(args, resource_type)
        if entries:
            filters = [a.AclFilter(resource_type, name, pattern_type, principal, host, op, permission)
                       for principal, host, op, permission in entries]
            what = "\n".join("\t" + entry_text(a.AclBinding(resource_type, name, pattern_type, *e)) for e in entries)
            question = (f"Are you sure you want to remove ACLs: \n {what} \n from resource filter "
                        f"`{pattern_text(resource_type, name, pattern_type)}`? (y/n)")
        else:
            filters = [a.AclFilter(resource_type, name, pattern_type)]
            question = (f"Are you sure you want to delete all ACLs for resource filter "
                        f"`{pattern_text(resource_type, name, pattern_type)}`? (y/n)")
        if not args.force and not _confirm(question, out):
            continue
        admin.delete_acls(filters)
    return 0


def _confirm(question: str, out) -> bool:
    out.write(question + "\n")
    out.flush()
    return sys.stdin.readline().strip().lower() == "y"


def list_acls(admin, args, out) -> int:
    pattern_type = _pattern_type(args)
    resources = _resources(args)
    found: list[a.AclBinding] = []
    if resources:
        for resource_type, name in resources:
            found += admin.describe_acls(a.AclFilter(resource_type, name, pattern_type))
    else:
        found = admin.describe_acls(a.AclFilter(pattern_type=pattern_type if args.resource_pattern_type
                                                != "literal" else a.ANY_PATTERN))
    for principal in args.principal or [None]:
        shown = [b for b in dict.fromkeys(found) if principal is None or b.principal == principal]
        if principal is not None:
            out.write(f"ACLs for principal `{principal}`\n")
        by_pattern: dict[tuple, list] = {}
        for b in shown:
            by_pattern.setdefault((b.resource_type, b.name, b.pattern_type), []).append(b)
        for (resource_type, name, pt), bindings in sorted(by_pattern.items()):
            out.write(f"Current ACLs for resource `{pattern_text(resource_type, name, pt)}`:\n"
                      + "\n".join("\t" + entry_text(b) for b in bindings) + "\n\n")
    return 0
