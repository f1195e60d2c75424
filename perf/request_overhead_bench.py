"""Broker CPU per produce request: one record per request, so per-request costs (request
counters, latency histogram) show instead of hiding behind big batches.

confluent-kafka produces ``--records`` records of ``--size`` bytes with
``batch.num.messages=1`` and ``linger.ms=0`` (one record per ProduceRequest, up to 5 in
flight) to a fresh single-broker cluster; the script reports requests/s and the broker
process's CPU seconds per 10,000 requests.

    python perf/request_overhead_bench.py --records 50000

Compare two trees by running it with each on PYTHONPATH, alternating (A B A B A B).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pybroker.testing import BrokerCluster  # noqa: E402


def broker_cpu(cluster: BrokerCluster) -> float:
    total = 0.0
    for child in psutil.Process(cluster.pid).children(recursive=True):
        if "pybroker.broker.main" in " ".join(child.cmdline()):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pybroker-reqbench-") as data, BrokerCluster(data_dir=data) as cluster:
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": 1, "linger.ms": 0,
                             "batch.num.messages": 1, "enable.idempotence": False})
        producer.produce("warm", b"x")
        producer.flush(30)
        payload = b"x" * args.size
        cpu0, t0 = broker_cpu(cluster), time.perf_counter()
        for _ in range(args.records):
            while True:
                try:
                    producer.produce("bench", payload, partition=0)
                    break
                except BufferError:
                    producer.poll(0.001)
            producer.poll(0)
        producer.flush(120)
        elapsed, cpu = time.perf_counter() - t0, broker_cpu(cluster) - cpu0
    print(f"{args.records} requests of 1 x {args.size} B: {args.records / elapsed:,.0f} requests/s, "
          f"broker CPU {cpu:.2f} s = {cpu / args.records * 10_000:.3f} s per 10,000 requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
