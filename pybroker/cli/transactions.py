"""`pybroker transactions list | describe | describe-producers | find-hanging | abort`, like
kafka-transactions, with its tables (columns padded to their widest value, each followed
by a tab)::

    pybroker transactions list [--duration-filter MS]
    pybroker transactions describe --transactional-id ID
    pybroker transactions describe-producers --topic T --partition P [--broker-id N]
    pybroker transactions find-hanging (--topic T [--partition P] | --broker-id N) [--max-transaction-timeout MIN]
    pybroker transactions abort --topic T --partition P (--start-offset O |
                                --producer-id I --producer-epoch E --coordinator-epoch C)

Errors print ``Error: <reason>`` on stderr and exit with 1.
"""
from __future__ import annotations

import sys
import time

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, add_command_timeout, fail


def register(subparsers) -> None:
    p = subparsers.add_parser("transactions", help="list, describe and abort transactions",
                              description="Inspect transactions and abort hanging ones, like kafka-transactions.")
    add_bootstrap(p)
    add_command_timeout(p)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list transactions")
    listing.add_argument("--duration-filter", type=int, default=-1, metavar="MS",
                         help="only transactions running longer than this (ms); < 0: all")
    describe = sub.add_parser("describe", help="describe the state of an active transactional-id")
    describe.add_argument("--transactional-id", required=True)
    producers = sub.add_parser("describe-producers", help="describe the active producers of a partition")
    producers.add_argument("--topic", required=True)
    producers.add_argument("--partition", type=int, required=True)
    producers.add_argument("--broker-id", type=int, help="a replica to ask instead of the leader")
    hanging = sub.add_parser("find-hanging", help="find hanging transactions")
    hanging.add_argument("--topic")
    hanging.add_argument("--partition", type=int)
    hanging.add_argument("--broker-id", type=int, help="search the partitions this broker leads")
    hanging.add_argument("--max-transaction-timeout", type=int, default=15, metavar="MINUTES",
                         help="maximum transaction timeout in minutes (default 15)")
    abort = sub.add_parser("abort", help="abort a hanging transaction")
    abort.add_argument("--topic", required=True)
    abort.add_argument("--partition", type=int, required=True)
    abort.add_argument("--start-offset", type=int)
    abort.add_argument("--producer-id", type=int)
    abort.add_argument("--producer-epoch", type=int)
    abort.add_argument("--coordinator-epoch", type=int)
    p.set_defaults(func=run)


def print_table(headers: list[str], rows: list[list], out=None) -> None:
    """Kafka's ToolsUtils.prettyPrintTable."""
    out = out or sys.stdout
    rows = [[str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        out.write("".join(v.ljust(w) + "\t" for v, w in zip(row, widths)) + "\n")


def _none(value: int) -> str | int:
    return "None" if value < 0 else value


def run(args) -> int:
    from pybroker.client import transactions_admin as ta
    from pybroker.client.admin import Admin

    try:
        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            return ACTIONS[args.action](admin, ta, args)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error: {type(exc).__name__}: {exc}")


def _list(admin, ta, args) -> int:
    rows = [[t.transactional_id, t.coordinator_id, t.producer_id, t.state]
            for t in ta.list_transactions(admin, duration_ms=args.duration_filter)]
    print_table(["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], rows)
    return 0


def _describe(admin, ta, args) -> int:
    d = ta.describe_transactions(admin, [args.transactional_id])[args.transactional_id]
    started = d.start_time_ms >= 0
    duration = int(time.time() * 1000) - d.start_time_ms if started else -1
    print_table(["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                 "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                 "TopicPartitions"],
                [[d.coordinator_id, d.transactional_id, d.producer_id, d.producer_epoch, d.state, d.timeout_ms,
                  _none(d.start_time_ms), _none(duration), ",".join(f"{t}-{p}" for t, p in d.partitions)]])
    return 0


def _describe_producers(admin, ta, args) -> int:
    rows = [[s.producer_id, s.producer_epoch, s.coordinator_epoch, s.last_sequence, s.last_timestamp,
             _none(s.current_txn_start_offset)]
            for s in ta.describe_producers(admin, args.topic, args.partition, args.broker_id)]
    print_table(["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                 "CurrentTransactionStartOffset"], rows)
    return 0


def _find_hanging(admin, ta, args) -> int:
    if args.topic is None and args.broker_id is None:
        raise UsageError("The `find-hanging` command requires either --topic or --broker-id "
                         "to limit the scope of the search")
    if args.partition is not None and args.topic is None:
        raise UsageError("The --partition argument requires --topic to be provided")
    meta = admin.client.refresh([args.topic] if args.topic else None)
    partitions = []
    for name, info in sorted(meta.topics.items()):
        if args.topic is not None and name != args.topic:
            continue
        for index, part in sorted(info.partitions.items()):
            if args.partition is not None and index != args.partition:
                continue
            if args.broker_id is not None and part.leader != args.broker_id:
                continue
            partitions.append((name, index))
    now = int(time.time() * 1000)
    found = ta.find_hanging(admin, partitions, args.max_transaction_timeout * 60_000, now)
    print_table(["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                 "LastTimestamp", "Duration(min)"],
                [[t, p, s.producer_id, s.producer_epoch, s.coordinator_epoch, s.current_txn_start_offset,
                  s.last_timestamp, (now - s.last_timestamp) // 60_000] for t, p, s in found])
    return 0


def _abort(admin, ta, args) -> int:
    if args.start_offset is not None:
        states = ta.describe_producers(admin, args.topic, args.partition)
        match = [s for s in states if s.current_txn_start_offset == args.start_offset]
        if not match:
            raise UsageError(f"Could not find any open transactions starting at offset {args.start_offset} "
                             f"on partition {args.topic}-{args.partition}")
        s = match[0]
        pid, epoch, coordinator_epoch = s.producer_id, s.producer_epoch, max(s.coordinator_epoch, 0)
    elif None not in (args.producer_id, args.producer_epoch, args.coordinator_epoch):
        pid, epoch, coordinator_epoch = args.producer_id, args.producer_epoch, args.coordinator_epoch
    else:
        raise UsageError("The transaction to abort must be identified either with --start-offset or with "
                         "--producer-id, --producer-epoch, and --coordinator-epoch")
    ta.abort_transaction(admin, args.topic, args.partition, pid, epoch, coordinator_epoch)
    return 0


ACTIONS = {"list": _list, "describe": _describe, "describe-producers": _describe_producers,
           "find-hanging": _find_hanging, "abort": _abort}
