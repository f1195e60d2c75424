"""What incremental fetch sessions (KIP-227) save an idle replicated cluster.

A 3-broker cluster (``pybroker up --brokers 3 --no-shm`` by default, so followers fetch
over TCP) gets ``--partitions`` partitions at replication factor 3 (topics of up to 1,000
partitions); once every ISR is full and the cluster has settled, each broker's CPU and the
bytes on the TCP connections to the brokers' ports (requests in, responses out, from the
kernel's per-socket counters, ``ss -ti``: only the followers' fetches use them then) are
measured over ``--idle-s`` seconds. Run once with sessions off (``max.incremental.fetch.session.cache.slots=0``:
every follower Fetch is full, as a broker without sessions does) and once with the default
cache, alternating ``--rounds`` times.

    python perf/fetch_sessions_bench.py --partitions 6000 --idle-s 20 --rounds 2

Prints a markdown table for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "perf"))
from bench import broker_processes  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

TOPIC_PARTITIONS = 1000
MODES = {"sessions off": ["--broker-config", "max.incremental.fetch.session.cache.slots=0"], "sessions on": []}


def create(cluster: BrokerCluster, total: int) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    left, n = total, 0
    while left > 0:
        count = min(TOPIC_PARTITIONS, left)
        name = f"idle-{n}"
        admin.create_topics([NewTopic(name, count, 3)], operation_timeout=120)[name].result(180)
        left -= count
        n += 1
    # Every partition led, every ISR full.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=30)
        parts = [p for t in md.topics.values() if t.topic.startswith("idle-") for p in t.partitions.values()]
        if len(parts) == total and all(p.leader >= 0 and len(p.isrs) == 3 for p in parts):
            return
        time.sleep(1)
    raise SystemExit("the ISRs did not fill")


def socket_bytes(ports: set[int]) -> dict:
    """(local, peer) -> [bytes received, bytes sent] of each established TCP socket whose
    local port is one of ``ports`` (the broker side of each connection)."""
    out = subprocess.run(["ss", "-tinH", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    counts: dict = {}
    key = None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            fields = line.split()
            local, peer = fields[-2], fields[-1]
            key = (local, peer) if int(local.rpartition(":")[2]) in ports else None
        elif key is not None:
            received = re.search(r"bytes_received:(\d+)", line)
            sent = re.search(r"bytes_acked:(\d+)", line)
            counts[key] = [int(received.group(1)) if received else 0, int(sent.group(1)) if sent else 0]
    return counts


def measure(extra: list[str], total: int, idle_s: float, settle_s: float, base_args: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="fsessions-bench-") as tmp:
        with BrokerCluster(data_dir=tmp, brokers=3, extra_args=[*base_args, *extra], start_timeout=120) as cluster:
            create(cluster, total)
            time.sleep(settle_s)
            procs = broker_processes(cluster)
            ports = {port for _, port in cluster.addresses}
            before = [p.cpu_times() for p in procs]
            sockets = socket_bytes(ports)
            started = time.monotonic()
            time.sleep(idle_s)
            elapsed = time.monotonic() - started
            after = socket_bytes(ports)
            received = sum(n[0] - sockets.get(k, [0, 0])[0] for k, n in after.items())
            sent = sum(n[1] - sockets.get(k, [0, 0])[1] for k, n in after.items())
            rows = []
            for p, cpu in zip(procs, before):
                cpu2 = p.cpu_times()
                used = (cpu2.user + cpu2.system) - (cpu.user + cpu.system)
                rows.append({"cpu": 100.0 * used / elapsed})
            return [{**rows[0], "in": received / elapsed, "out": sent / elapsed}] + rows[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=6000)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--settle-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pybroker-arg", action="append", default=None,
                        help="extra `pybroker up` argument (default: --no-shm)")
    args = parser.parse_args(argv)
    base = ["--no-shm"] if args.pybroker_arg is None else args.pybroker_arg
    results: dict[str, list[list[dict]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode, extra in MODES.items():
            rows = measure(extra, args.partitions, args.idle_s, args.settle_s, base)
            results[mode].append(rows)
            print(mode, [f"{r['cpu']:.1f}%" for r in rows],
                  f"requests {rows[0]['in'] / 1024:,.1f} KiB/s, responses {rows[0]['out'] / 1024:,.1f} KiB/s",
                  flush=True)
    print()
    print(f"| {args.partitions:,} partitions, RF 3, idle | CPU per broker % (mean of 3) | busiest broker % "
          f"| Fetch requests in, all brokers KiB/s | responses out KiB/s |")
    print("|---|---:|---:|---:|---:|")
    for mode, runs in results.items():
        mean_cpu = statistics.median(statistics.mean(r["cpu"] for r in rows) for rows in runs)
        busiest = statistics.median(max(r["cpu"] for r in rows) for rows in runs)
        got = statistics.median(rows[0]["in"] for rows in runs)
        sent = statistics.median(rows[0]["out"] for rows in runs)
        print(f"| {mode} | {mean_cpu:.1f} | {busiest:.1f} | {got / 1024:,.1f} | {sent / 1024:,.1f} |")
    print(f"(median of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
