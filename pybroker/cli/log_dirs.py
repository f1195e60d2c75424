"""`pybroker log-dirs --describe`: each broker's log directories and the size of every
partition replica in them, like kafka-log-dirs (DescribeLogDirs).

Output is Kafka's, JSON keys in the order Kafka's tool prints them::

    Querying brokers for log directories information
    Received log directory information from brokers 0,1,2
    {"brokers":[{"broker":0,"logDirs":[{"partitions":[{"partition":"t-0","size":1151,"offsetLag":0,"isFuture":false}],"error":null,"logDir":"/data/broker-0"}]}],"version":1}

A broker named in ``--broker-list`` that the cluster does not have is an error, as Kafka's.
"""
from __future__ import annotations

import json
import sys

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, add_command_timeout, fail
from pybroker.cli.java_order import hash_order, topic_partition_hash


def register(subparsers) -> None:
    p = subparsers.add_parser("log-dirs", help="describe the brokers' log directories",
                              description="Describe the log directories of brokers, like kafka-log-dirs.")
    add_bootstrap(p)
    p.add_argument("--describe", action="store_true", required=True,
                   help="describe the log directories on the brokers")
    p.add_argument("--topic-list", default="", metavar="T1,T2",
                   help="only these topics (default: all)")
    p.add_argument("--broker-list", default="", metavar="0,1,2",
                   help="only these brokers (default: all)")
    add_command_timeout(p)
    p.set_defaults(func=run)


def _ids(text: str) -> list[int]:
    try:
        return sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise UsageError(f"--broker-list expects broker ids like 0,1,2, got {text!r}") from None


def to_json(descriptions: dict, topics: set[str]) -> str:
    """Kafka's JSON for {broker: [LogDirDescription]}."""
    brokers = []
    for broker_id in sorted(descriptions):
        dirs = []
        for d in descriptions[broker_id]:
            replicas = [r for r in d.replicas if not topics or r.topic in topics]
            replicas = hash_order(replicas, lambda r: topic_partition_hash(r.topic, r.partition))
            dirs.append({
                "partitions": [{"partition": f"{r.topic}-{r.partition}", "size": r.size, "offsetLag": r.offset_lag,
                                "isFuture": r.is_future} for r in replicas],
                "error": None if d.error is None else type(d.error).__name__,
                "logDir": d.path,
            })
        brokers.append({"broker": broker_id, "logDirs": dirs})
    return json.dumps({"brokers": brokers, "version": 1}, separators=(",", ":"))


def run(args) -> int:
    from pybroker.client.admin import Admin

    try:
        wanted = _ids(args.broker_list)
        topics = {t.strip() for t in args.topic_list.split(",") if t.strip()}
        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            cluster = sorted(b.node_id for b in admin.describe_cluster().brokers)
            missing = [b for b in wanted if b not in cluster]
            if missing:
                return fail(f"ERROR: The given brokers do not exist from --broker-list: "
                            f"{','.join(map(str, missing))}. Current existent brokers: {','.join(map(str, cluster))}")
            brokers = wanted or cluster
            print("Querying brokers for log directories information")
            descriptions = admin.describe_log_dirs(brokers)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error: {exc}")
    print(f"Received log directory information from brokers {','.join(map(str, brokers))}")
    print(to_json(descriptions, topics))
    sys.stdout.flush()
    return 0
