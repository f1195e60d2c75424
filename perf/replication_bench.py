"""What replication costs: acks=all on a replication-factor-3 topic against acks=1 on a
replication-factor-1 topic, on one 3-broker pybroker cluster, in one run.

- throughput: ``--records`` records of ``--size`` bytes to partition 0 (confluent-kafka,
  the same settings as perf/bench.py), RF 1 acks=1 vs RF 3 (min.insync.replicas 2) acks=all;
- acks=all latency: records paced at ``--latency-rate``/s, each timed from produce() to its
  delivery report (the leader answers once the ISR has it), p50/p99.

Extra ``--broker-arg`` values go to ``pybroker up`` (e.g. to switch the shared-memory
replication path on or off and compare two runs).

    python perf/replication_bench.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import paced, percentiles, produce_throughput  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402


def create(bootstrap: str, name: str, rf: int, min_isr: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, rf, config={"min.insync.replicas": str(min_isr)})])[name].result(30)


def ack_latency(bootstrap: str, topic: str, count: int, rate: float, size: int) -> list[float]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    latencies: list[float] = []
    def report(err, msg, sent=None):
        if err is None:
            latencies.append((time.perf_counter() - sent) * 1000)

    payload = b"x" * size
    for _ in paced(count, rate):
        sent = time.perf_counter()
        producer.produce(topic, payload, partition=0, on_delivery=lambda e, m, s=sent: report(e, m, s))
        producer.poll(0)
    producer.flush(30)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--latency-count", type=int, default=2000)
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--broker-arg", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, BrokerCluster(data_dir=tmp, brokers=3,
                                                             extra_args=args.broker_arg) as cluster:
        bs = cluster.bootstrap
        conf = {"bootstrap.servers": bs}
        create(bs, "rf1", 1, 1)
        create(bs, "rf3", 3, 2)
        create(bs, "rf3-latency", 3, 2)
        time.sleep(1.0)
        rf1 = produce_throughput(conf, "rf1", args.records, args.size, "1", 120)
        rf3 = produce_throughput(conf, "rf3", args.records, args.size, "all", 120)
        lat = percentiles(ack_latency(bs, "rf3-latency", args.latency_count, args.latency_rate, args.size))
    rate1, rate3 = args.records / rf1, args.records / rf3
    print(f"{args.records:,} records x {args.size} B, 1 partition, 3-broker cluster "
          f"{' '.join(args.broker_arg) or '(defaults)'}\n")
    print("| topic | acks | records/s | MB/s | vs RF 1 acks=1 |")
    print("|---|---|---:|---:|---:|")
    print(f"| RF 1 | 1 | {rate1:,.0f} | {rate1 * args.size / 1e6:.1f} | 1.00 |")
    print(f"| RF 3, min ISR 2 | all | {rate3:,.0f} | {rate3 * args.size / 1e6:.1f} | {rate3 / rate1:.2f} |")
    print(f"\nacks=all RF 3 produce->ack latency, {args.latency_count} records at {args.latency_rate:.0f}/s: "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in lat.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
