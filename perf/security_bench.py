"""What security costs: produce and consume throughput over PLAINTEXT, SASL_PLAINTEXT
(SCRAM-SHA-512), SSL and SASL_SSL listeners of one pybroker cluster, and the broker CPU
seconds per million records on each.

One single-broker cluster serves the four listeners (``--tls-self-signed``), so every
target runs against the same broker, log and page cache; rounds alternate the targets
(P, SP, S, SS, P, SP, ...) so load on the shared machine falls on all of them alike, and
the table gives each target's median over the rounds and its ratio to PLAINTEXT's median.
SASL costs one handshake per connection and a clock comparison per request; TLS costs
encryption of every byte and Fetch's pread instead of sendfile.

    python perf/security_bench.py                     # 500,000 x 100 B, 3 rounds
    python perf/security_bench.py --records 1000000 --rounds 5

Prints a markdown table for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cluster_cpu_seconds, consume_throughput, produce_throughput  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

TARGETS = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL")
USER = ("bench", "bench-secret")


def client_conf(cluster: BrokerCluster, target: str) -> dict:
    conf = {"bootstrap.servers": cluster.listeners[target], "security.protocol": target}
    if target.startswith("SASL"):
        conf.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER[0], "sasl.password": USER[1]})
    if target.endswith("SSL"):
        conf["ssl.ca.location"] = cluster.ssl_cafile
    return conf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="pybroker-security-bench-")
    cluster = BrokerCluster(data_dir=data, brokers=1, start_timeout=120, extra_args=[
        "--listener", "PLAINTEXT", *[a for t in TARGETS[1:] for a in ("--listener", t)], "--tls-self-signed",
        "--super-user", f"{USER[0]}:{USER[1]}"])
    cluster.start()
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    payload = os.urandom(args.size)
    try:
        for round_no in range(args.rounds):
            for target in TARGETS:
                conf = client_conf(cluster, target)
                topic = f"bench-{target.lower()}-{round_no}-{uuid.uuid4().hex[:6]}"
                before = cluster_cpu_seconds(cluster.pid)
                seconds = produce_throughput(conf, topic, args.records, args.size, "1", args.timeout, payload)
                middle = cluster_cpu_seconds(cluster.pid)
                runs.setdefault((target, "produce"), []).append((args.records / seconds, middle - before))
                time.sleep(0.5)
                middle = cluster_cpu_seconds(cluster.pid)
                records, seconds = consume_throughput(conf, topic, args.timeout)
                after = cluster_cpu_seconds(cluster.pid)
                runs.setdefault((target, "consume"), []).append((records / seconds, after - middle))
                (p_rate, p_cpu), (c_rate, c_cpu) = runs[(target, "produce")][-1], runs[(target, "consume")][-1]
                print(f"round {round_no + 1} {target}: produce {p_rate:,.0f}/s ({p_cpu:.2f} CPU-s) "
                      f"consume {c_rate:,.0f}/s ({c_cpu:.2f} CPU-s); load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr, flush=True)
    finally:
        cluster.stop()
    load = os.getloadavg()
    print(f"\n{args.records:,} records x {args.size} B per run, acks=1, {args.rounds} rounds alternating "
          f"targets; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    print("| listener | operation | records/s (median) | vs PLAINTEXT | broker CPU-s per M records |")
    print("|---|---|---:|---:|---:|")
    for operation in ("produce", "consume"):
        base = statistics.median(rate for rate, _ in runs[("PLAINTEXT", operation)])
        for target in TARGETS:
            rates = [rate for rate, _ in runs[(target, operation)]]
            cpu = statistics.median(cpu * 1e6 / args.records for _, cpu in runs[(target, operation)])
            rate = statistics.median(rates)
            print(f"| {target} | {operation} | {rate:,.0f} | {rate / base:.2f}x | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
