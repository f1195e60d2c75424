"""`pybroker status --data DIR [--json]`: the supervisor's view of the cluster — brokers,
partitions (leader, replicas, ISR, log start, high watermark, log end, under-replicated),
ranges of partitions quarantined as corrupt (``damaged``: broker, offsets, bytes, file) and
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
    from pybroker.control.channel import Channel
    from pybroker.supervisor.arbiter import socket_path

    channel = await Channel.connect(socket_path(data), name="status")
    task = asyncio.get_running_loop().create_task(channel.serve(lambda doc: None))
    try:
        return await channel.request({"type": "status"}, timeout=10.0)
    finally:
        channel.close()
        task.cancel()


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
    from rich.console import Console
    from rich.table import Table

    console = Console()
    sup = status["supervisor"]
    console.print(f"supervisor pid {sup['pid']}  data {sup['data_dir']}  cluster {sup['cluster_id']}")
    brokers = Table("ID", "PID", "ADDRESS", "ALIVE", "RESTARTS", title="brokers")
    for b in status["brokers"]:
        brokers.add_row(str(b["id"]), str(b["pid"] or "-"), f"{b['host']}:{b['port']}",
                        "yes" if b["alive"] else "NO", str(b["restarts"]))
    console.print(brokers)
    parts = Table("TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "HW", "LOG-END",
                  "UNDER-REPLICATED", title="partitions")
    for p in status["partitions"]:
        parts.add_row(p["topic"], str(p["partition"]), str(p["leader"]), ",".join(map(str, p["replicas"])),
                      ",".join(map(str, p["isr"])), str(p.get("log_start_offset")),
                      str(p["high_watermark"]), str(p["log_end_offset"]),
                      "yes" if p["under_replicated"] else "")
    console.print(parts)
    damaged = [(p, d) for p in status["partitions"] for d in p.get("damaged", ())]
    if damaged:
        table = Table("TOPIC", "PARTITION", "BROKER", "OFFSETS", "BYTES", "FILE",
                      title="damaged ranges quarantined (unreadable on that replica; see pybroker verify-log)")
        for p, d in damaged:
            table.add_row(p["topic"], str(p["partition"]), str(d["broker"]),
                          f"{d['first_offset']}..{d['last_offset']}", str(d["bytes"]), d["file"])
        console.print(table)
    if status["groups"]:
        groups = Table("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", title="consumer groups")
        for g in status["groups"]:
            groups.add_row(g["group"], g["topic"], str(g["partition"]), str(g["committed_offset"]),
                           str(g["log_end_offset"]), str(g["lag"]))
        console.print(groups)
    return 0
