"""What the shared-memory replication path buys: the same workload on a 3-broker cluster
with the shared-memory region (followers read the leader's tail ring) and with
``--no-shm`` (followers fetch record bytes over loopback TCP), in one run.

- replication throughput: ``--records`` records of ``--size`` bytes produced with acks=1
  to an RF 3 topic as fast as the client goes, timed until the leader's high watermark
  (the minimum log end over the ISR) reaches the last record: how fast both followers
  keep up;
- acks=all latency: records paced at ``--latency-rate``/s, produce() to delivery report.

    python perf/shm_replication_bench.py --rounds 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import percentiles, produce_throughput  # noqa: E402
from replication_bench import ack_latency, create  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

MODES = {"shm": [], "socket": ["--no-shm"]}


def replication_seconds(bootstrap: str, topic: str, records: int, size: int) -> tuple[float, float]:
    """(seconds until the leader acknowledged everything, until the ISR held everything)."""
    acked: list[float] = []
    start = time.perf_counter()
    producer = threading.Thread(target=lambda: acked.append(
        produce_throughput({"bootstrap.servers": bootstrap}, topic, records, size, "1", 120)))
    producer.start()
    watcher = Consumer({"bootstrap.servers": bootstrap, "group.id": "shm-bench"})
    part = TopicPartition(topic, 0)
    deadline = start + 120
    try:
        while True:
            _low, high = watcher.get_watermark_offsets(part, timeout=5, cached=False)
            if high >= records:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"high watermark {high} of {records} after 120 s")
            time.sleep(0.002)
        replicated = time.perf_counter() - start
    finally:
        watcher.close()
        producer.join()
    return acked[0], replicated


def run_mode(args, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp, BrokerCluster(data_dir=tmp, brokers=3, extra_args=extra) as cluster:
        bs = cluster.bootstrap
        create(bs, "rf3", 3, 2)
        create(bs, "rf3-latency", 3, 2)
        time.sleep(1.0)
        acked, replicated = replication_seconds(bs, "rf3", args.records, args.size)
        lat = percentiles(ack_latency(bs, "rf3-latency", args.latency_count, args.latency_rate, args.size))
    return {"acked": acked, "replicated": replicated, "p50": lat["p50"], "p99": lat["p99"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--latency-count", type=int, default=1500)
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per mode (medians)")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    for _ in range(args.rounds):
        for mode, extra in MODES.items():
            results[mode].append(run_mode(args, extra))
    mb = args.records * args.size / 1e6
    print(f"{args.records:,} records x {args.size} B, RF 3 min ISR 2, 1 partition, "
          f"medians of {args.rounds} alternating runs\n")
    print("| path | replicated records/s | MB/s | acks=all p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    med = {}
    for mode, runs in results.items():
        rep = statistics.median(r["replicated"] for r in runs)
        med[mode] = rep
        print(f"| {mode} | {args.records / rep:,.0f} | {mb / rep:.1f} | "
              f"{statistics.median(r['p50'] for r in runs):.2f} | {statistics.median(r['p99'] for r in runs):.2f} |")
    print(f"\nshm / socket replication throughput: {med['socket'] / med['shm']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
