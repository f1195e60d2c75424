"""`pybroker status --data DIR [--json]`: the supervisor's view of the cluster — brokers
(rack; ``bytes_out``: record bytes the broker process served to consumers since it
started, from its latest report), partitions (leader, replicas, ISR, log start, high
watermark, log end, under-replicated), ranges of partitions quarantined as corrupt (``damaged``: broker, offsets, bytes, file) and
consumer-group lag. The JSON form is stable for scripts: keys ``supervisor``, ``brokers``,
``partitions``, ``groups``."""
from __future__ import annotations

import asyncio
import json
import os
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("status", help="show the cluster running on a data directory")
    p.add_argument("--data", default="./pybroker-data", help="data directory (default ./pybroker-data)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=run)


async def fetch_status(data: str) -> dict:
    from pybroker.cli.common import supervisor_request

    return await supervisor_request(data, {"type": "status"})


def run(args) -> int:
    data = os.path.abspath(args.data)
    try:
        status = asyncio.run(fetch_status(data))
    except (FileNotFoundError, ConnectionError, OSError) as exc:
        print(f"pybroker status: no supervisor answers on {data}: {exc}", file=sys.stderr)
        return 1
    status.pop("reply_to", None)
    status.pop("v", None)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    sup = status["supervisor"]
    print(f"supervisor pid {sup['pid']}  data {sup['data_dir']}  cluster {sup['cluster_id']}")
    tables = [("brokers", ["ID", "PID", "ADDRESS", "RACK", "ALIVE", "RESTARTS", "BYTES-OUT"],
               [[b["id"], b["pid"] or "-", f"{b['host']}:{b['port']}", b.get("rack") or "-",
                 "yes" if b["alive"] else "NO", b["restarts"], b.get("bytes_out")]
                for b in status["brokers"]]),
              ("partitions", ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "HW", "LOG-END",
                              "UNDER-REPLICATED"],
               [[p["topic"], p["partition"], p["leader"], ",".join(map(str, p["replicas"])),
                 ",".join(map(str, p["isr"])), p.get("log_start_offset"), p["high_watermark"], p["log_end_offset"],
                 "yes" if p["under_replicated"] else ""] for p in status["partitions"]])]
    damaged = [(p, d) for p in status["partitions"] for d in p.get("damaged", ())]
    if damaged:
        tables.append(("damaged ranges quarantined (unreadable on that replica; see pybroker verify-log)",
                       ["TOPIC", "PARTITION", "BROKER", "OFFSETS", "BYTES", "FILE"],
                       [[p["topic"], p["partition"], d["broker"], f"{d['first_offset']}..{d['last_offset']}",
                         d["bytes"], d["file"]] for p, d in damaged]))
    if status["groups"]:
        tables.append(("consumer groups", ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"],
                       [[g["group"], g["topic"], g["partition"], g["committed_offset"], g["log_end_offset"], g["lag"]]
                        for g in status["groups"]]))
    print_tables(tables)
    return 0


def print_tables(tables: list[tuple[str, list[str], list[list]]]) -> None:
    """Rich tables on a terminal; piped, plain columns as wide as their cells (a pipe has
    no width to fit, and a truncated header or name breaks scripts)."""
    if not sys.stdout.isatty():
        from pybroker.cli.groups import format_table

        for title, headers, rows in tables:
            print(f"\n{title}:" + format_table(headers, rows).rstrip("\n"))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for title, headers, rows in tables:
        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
