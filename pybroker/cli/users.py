"""`pybroker users`: SCRAM users (Kafka's ``kafka-configs --entity-type users`` with
``SCRAM-SHA-256=[password=...]``).

    pybroker users --create alice --password s3cret [--mechanism SCRAM-SHA-512]
    pybroker users --delete alice
    pybroker users --list

Over the Kafka protocol (``--bootstrap-server``, with ``--command-config`` on a secured
listener: AlterUserScramCredentials / DescribeUserScramCredentials, so it works against any
Kafka too), or with ``--data DIR`` through the local supervisor's control socket, which
needs no credentials (the first user of a SASL-only cluster is made that way, or with
``pybroker up --super-user``). A user's credentials serve SCRAM and, checked against them,
PLAIN.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

from pybroker.cli.common import UsageError, add_bootstrap, client_security, fail, supervisor_request

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def register(subparsers) -> None:
    p = subparsers.add_parser("users", help="create, delete and list SCRAM users (kafka-configs --entity-type users)")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", metavar="NAME", help="create the user, or set a new password")
    action.add_argument("--delete", metavar="NAME", help="remove the user's credentials")
    action.add_argument("--list", action="store_true", help="list users and their mechanisms")
    p.add_argument("--password", help="the password of --create")
    p.add_argument("--mechanism", action="append", choices=MECHANISMS, default=None,
                   help="SCRAM mechanism of --create/--delete (repeatable; default both)")
    p.add_argument("--iterations", type=int, default=4096, help="PBKDF2 iterations, 4096..16384 (default 4096)")
    p.add_argument("--data", help="the cluster's data dir: use the local supervisor instead of a listener")
    add_bootstrap(p)
    p.add_argument("--json", action="store_true", help="--list as JSON")
    p.set_defaults(func=run)


def _print(users: dict[str, dict[str, int]], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"name": u, "mechanisms": m} for u, m in sorted(users.items())]))
        return
    for user, mechanisms in sorted(users.items()):
        print(f"{user}\t" + ",".join(f"{m}(iterations={i})" for m, i in sorted(mechanisms.items())))


def run(args) -> int:
    from pybroker import errors

    mechanisms = args.mechanism or list(MECHANISMS)
    try:
        if args.create and not args.password:
            raise UsageError("pybroker users: --create needs --password")
        if args.data:
            doc = {"create": [{"name": args.create, "password": args.password, "mechanisms": mechanisms,
                               "iterations": args.iterations}] if args.create else [],
                   "delete": [args.delete] if args.delete else []}
            try:
                reply = asyncio.run(supervisor_request(os.path.abspath(args.data), {"type": "users", **doc}))
            except (FileNotFoundError, ConnectionError, OSError) as exc:
                return fail(f"pybroker users: no supervisor answers on {args.data}: {exc}")
            users = {u["name"]: u["mechanisms"] for u in reply["users"]}
        else:
            from pybroker.client.admin import Admin

            with Admin(args.bootstrap_server, client_id="pybroker-users", security=client_security(args)) as admin:
                if args.create:
                    admin.alter_user_scram_credentials([(args.create, m, args.password) for m in mechanisms],
                                                       iterations=args.iterations)
                elif args.delete:
                    present = admin.describe_user_scram_credentials([args.delete])[args.delete]
                    admin.alter_user_scram_credentials(delete=[(args.delete, m) for m in mechanisms if m in present])
                users = admin.describe_user_scram_credentials() if args.list else {}
    except UsageError as exc:
        return fail(str(exc))
    except errors.KafkaError as exc:
        return fail(f"pybroker users: {exc}")
    if args.list:
        _print(users, args.json)
    elif args.create:
        print(f"user {args.create}: {', '.join(mechanisms)} credentials set")
    else:
        print(f"user {args.delete}: deleted")
    return 0
