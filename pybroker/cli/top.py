"""`pybroker top --data DIR | --bootstrap-server HOST:PORT`: a live view of the cluster in
the terminal — brokers, topics with their throughput, partitions with leader and ISR, and
consumer-group lag — redrawn in place every ``--interval`` seconds; ``q`` quits.

With ``--data`` it asks the supervisor (``status`` over the control socket: brokers'
restarts and liveness, partition sizes); with ``--bootstrap-server`` it speaks only the
Kafka protocol (Metadata, ListOffsets, ListGroups, OffsetFetch), so it also watches an
Apache Kafka cluster. Throughput is the growth of the high watermarks (messages/s) and,
with ``--data``, of the partitions' sizes (bytes/s) between two refreshes.

``--once`` prints one frame and exits (for scripts, or a terminal without keys).
"""
from __future__ import annotations

import asyncio
import os
import select
import sys
import time

from pybroker import errors
from pybroker.cli.common import add_bootstrap, client_security, fail

MAX_PARTITION_ROWS = 40


def register(subparsers) -> None:
    p = subparsers.add_parser("top", help="live view of brokers, partitions, throughput and group lag (q quits)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="data directory of a local cluster (asks its supervisor)")
    add_bootstrap(source)
    p.set_defaults(bootstrap_server=None)
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.set_defaults(func=run)


# -- sources: both give a status-shaped snapshot ----------------------------------------

def supervisor_snapshot(data: str) -> dict:
    from pybroker.cli.status import fetch_status

    status = asyncio.run(fetch_status(data))
    return {"source": data, "brokers": status["brokers"], "partitions": status["partitions"],
            "groups": status["groups"]}


class KafkaSource:
    """The same snapshot from any Kafka cluster, over the Kafka protocol."""

    def __init__(self, bootstrap: str, security=None):
        from pybroker.client.admin import Admin

        self.bootstrap = bootstrap
        self.admin = Admin(bootstrap, client_id="pybroker-top", timeout=10.0, security=security)

    def close(self) -> None:
        self.admin.close()

    def __call__(self) -> dict:
        admin = self.admin
        cluster = admin.describe_cluster()
        infos = admin.describe_topics()
        keys = [(t.name, p) for t in infos for p in t.partitions]
        ends = {tp: o for tp, (o, _) in admin.list_offsets({tp: -1 for tp in keys}).items()} if keys else {}
        starts = {tp: o for tp, (o, _) in admin.list_offsets({tp: -2 for tp in keys}).items()} if keys else {}
        partitions = []
        for t in infos:
            for index, p in sorted(t.partitions.items()):
                partitions.append({"topic": t.name, "partition": index, "leader": p.leader,
                                   "replicas": list(p.replicas), "isr": list(p.isr),
                                   "high_watermark": ends.get((t.name, index)),
                                   "log_start_offset": starts.get((t.name, index)),
                                   "under_replicated": len(p.isr) < len(p.replicas), "size_bytes": None})
        groups = []
        for listing in admin.list_groups():
            for (topic, index), committed in sorted(admin.list_group_offsets(listing.group_id).items()):
                end = ends.get((topic, index))
                groups.append({"group": listing.group_id, "topic": topic, "partition": index,
                               "committed_offset": committed, "log_end_offset": end,
                               "lag": None if end is None else max(0, end - committed)})
        brokers = [{"id": b.node_id, "host": b.host, "port": b.port, "alive": True, "restarts": None}
                   for b in cluster.brokers]
        return {"source": self.bootstrap, "brokers": brokers, "partitions": partitions, "groups": groups}


# -- rates and rendering (pure) ------------------------------------------------------------

class Rates:
    """Messages/s and bytes/s per topic between the last two snapshots."""

    def __init__(self) -> None:
        self._last: tuple[float, dict[str, tuple[int, int | None]]] | None = None
        self.topics: dict[str, tuple[float | None, float | None]] = {}

    @staticmethod
    def totals(snapshot: dict) -> dict[str, tuple[int, int | None]]:
        out: dict[str, list] = {}
        for p in snapshot["partitions"]:
            row = out.setdefault(p["topic"], [0, 0])
            row[0] += p.get("high_watermark") or 0
            size = p.get("size_bytes")
            row[1] = None if size is None or row[1] is None else row[1] + size
        return {t: (m, b) for t, (m, b) in out.items()}

    def update(self, snapshot: dict, now: float) -> None:
        totals = self.totals(snapshot)
        if self._last is not None and now > self._last[0]:
            then, before = self._last
            dt = now - then
            self.topics = {}
            for topic, (messages, size) in totals.items():
                old = before.get(topic)
                if old is None:
                    continue
                msg_rate = max(0.0, (messages - old[0]) / dt)
                byte_rate = None if size is None or old[1] is None else max(0.0, (size - old[1]) / dt)
                self.topics[topic] = (msg_rate, byte_rate)
        self._last = (now, totals)


def _n(value) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _bytes(value) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def render(snapshot: dict, rates: Rates, error: str | None = None, interval: float = 2.0):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def table(*headers, title):
        return Table(*headers, title=title, title_justify="left", box=box.SIMPLE_HEAD, title_style="bold")

    parts = [Text.assemble(("pybroker top", "bold"), f"  {snapshot['source']}  ",
                           (time.strftime("%H:%M:%S"), "dim"), f"  every {interval:g}s  ", ("q quits", "bold"))]
    if error:
        parts.append(Text(f"refresh failed: {error}", style="bold red"))
    leaders: dict[int, int] = {}
    for p in snapshot["partitions"]:
        leaders[p["leader"]] = leaders.get(p["leader"], 0) + 1
    brokers = table("ID", "ADDRESS", "STATE", "RESTARTS", "LEADERS", title="brokers")
    for b in snapshot["brokers"]:
        brokers.add_row(str(b["id"]), f"{b['host']}:{b['port']}",
                        "[green]up[/]" if b["alive"] else "[bold red]DOWN[/]", _n(b.get("restarts")),
                        str(leaders.get(b["id"], 0)))
    parts.append(brokers)

    by_topic: dict[str, list] = {}
    for p in snapshot["partitions"]:
        by_topic.setdefault(p["topic"], []).append(p)
    topics = table("TOPIC", "PARTITIONS", "UNDER-REPL", "MESSAGES", "MSG/S", "SIZE", "BYTES/S", title="topics")
    for name, rows in sorted(by_topic.items()):
        msg_rate, byte_rate = rates.topics.get(name, (None, None))
        under = sum(1 for p in rows if p["under_replicated"])
        sizes = [p.get("size_bytes") for p in rows]
        topics.add_row(name, str(len(rows)), f"[bold red]{under}[/]" if under else "0",
                       _n(sum((p.get("high_watermark") or 0) - (p.get("log_start_offset") or 0) for p in rows)),
                       _rate(msg_rate), _bytes(None if None in sizes else sum(sizes)), _rate(byte_rate))
    parts.append(topics)

    partitions = table("TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "HW", "", title="partitions")
    rows = sorted(snapshot["partitions"], key=lambda p: (not p["under_replicated"], p["topic"], p["partition"]))
    for p in rows[:MAX_PARTITION_ROWS]:
        flag = "[bold red]offline[/]" if p["leader"] < 0 else "[yellow]under-replicated[/]" if p["under_replicated"] else ""
        partitions.add_row(p["topic"], str(p["partition"]), str(p["leader"]), ",".join(map(str, p["replicas"])),
                           ",".join(map(str, p["isr"])), _n(p.get("high_watermark")), flag)
    if len(rows) > MAX_PARTITION_ROWS:
        partitions.caption = f"{len(rows) - MAX_PARTITION_ROWS} more partitions not shown (under-replicated first)"
    parts.append(partitions)

    if snapshot["groups"]:
        groups = table("GROUP", "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", title="consumer groups")
        for g in snapshot["groups"]:
            groups.add_row(g["group"], g["topic"], str(g["partition"]), _n(g["committed_offset"]),
                           _n(g["log_end_offset"]), _n(g["lag"]))
        parts.append(groups)
    else:
        parts.append(Text("no consumer groups", style="dim"))
    return Group(*parts)


# -- the live loop ---------------------------------------------------------------------

def _source(args):
    if args.data:
        data = os.path.abspath(args.data)
        return (lambda: supervisor_snapshot(data)), None
    source = KafkaSource(args.bootstrap_server or "127.0.0.1:9092", client_security(args))
    return source, source.close


def run(args) -> int:
    if args.interval <= 0:
        return fail("pybroker top: --interval must be positive")
    try:
        snapshot_of, close = _source(args)
        snapshot = snapshot_of()
    except (OSError, ConnectionError) as exc:
        where = args.data or args.bootstrap_server
        return fail(f"pybroker top: no {'supervisor' if args.data else 'broker'} answers on {where}: {exc}")
    except errors.KafkaError as exc:
        return fail(f"pybroker top: {exc}")
    try:
        return _live(args, snapshot_of, snapshot)
    finally:
        if close is not None:
            close()


def _live(args, snapshot_of, snapshot) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    rates = Rates()
    rates.update(snapshot, time.monotonic())
    if args.once:
        console.print(render(snapshot, rates, interval=args.interval))
        return 0
    keys = _Keys()
    try:
        with Live(render(snapshot, rates, interval=args.interval), console=console, auto_refresh=False,
                  vertical_overflow="crop") as live:
            while True:
                if keys.wait_for_quit(args.interval):
                    return 0
                error = None
                try:
                    snapshot = snapshot_of()
                    rates.update(snapshot, time.monotonic())
                except (OSError, ConnectionError, errors.KafkaError) as exc:
                    error = str(exc) or type(exc).__name__
                live.update(render(snapshot, rates, error, args.interval), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        keys.restore()


class _Keys:
    """Single keys from a terminal (cbreak mode, restored on exit); without a terminal,
    only the wait."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
        self._saved = None
        if self.fd is not None:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def wait_for_quit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.fd is None:
                time.sleep(left)
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            key = os.read(self.fd, 1)
            if key.lower() == b"q":
                return True
            if not key:  # the terminal went away: keep refreshing until a signal
                self.fd = None

    def restore(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
