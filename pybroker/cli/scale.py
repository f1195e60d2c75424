"""`pybroker scale --data DIR --brokers M`: change how many brokers a running cluster has.

More brokers: the supervisor starts the new ids (each on the next port, as ``up`` would
have given it), they register and appear in Metadata and DescribeCluster, and from then on
take new topics' replicas and moves made with ``pybroker reassign-partitions``; partitions
that exist stay where they are, as in Kafka. Fewer: the brokers with the highest ids are
unregistered (Kafka's UnregisterBroker) and stopped, which is refused while any of them
holds a replica. The count is recorded in the metadata log: ``pybroker up`` on the data
dir brings that many back.
"""
from __future__ import annotations

import asyncio
import os

from pybroker.cli.common import fail, supervisor_request

# The supervisor waits up to 30 s for new brokers to register, 15 s for leaving ones to stop.
REQUEST_TIMEOUT_S = 60.0


def register(subparsers) -> None:
    p = subparsers.add_parser("scale", help="add brokers to (or remove empty ones from) a running cluster")
    p.add_argument("--data", default="./pybroker-data", help="data directory (default ./pybroker-data)")
    p.add_argument("--brokers", type=int, required=True, metavar="M", help="how many brokers the cluster runs")
    p.set_defaults(func=run)


def run(args) -> int:
    from pybroker import errors

    data = os.path.abspath(args.data)
    try:
        reply = asyncio.run(supervisor_request(data, {"type": "scale", "brokers": args.brokers},
                                               timeout=REQUEST_TIMEOUT_S))
    except errors.KafkaError as exc:
        return fail(f"pybroker scale: {exc.detail or exc.message}")
    except (FileNotFoundError, ConnectionError, OSError) as exc:
        return fail(f"pybroker scale: no supervisor answers on {data}: {exc}")
    brokers = reply["brokers"]
    print(f"brokers: {len(brokers)} ({','.join(str(b['id']) for b in brokers)})")
    print("bootstrap: " + ",".join(f"{b['host']}:{b['port']}" for b in brokers), flush=True)
    return 0

