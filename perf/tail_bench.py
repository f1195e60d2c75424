"""What shared-memory tail reads buy pybroker's own consumer: the same single-broker
cluster, one consumer reading the leader's tail ring (``pybroker.shm.data.dir``) and one
fetching over loopback TCP, in one run, rounds interleaved.

- consume throughput: ``--records`` records of ``--size`` bytes already committed (sized
  to fit the 16 MiB ring, as a consumer at the tail sees it), read from offset 0 to the
  end; records/s and MB/s of record values;
- end-to-end latency: a producer in another process sends one record every
  ``--interval-ms`` (acks=1, linger 0) stamped with the wall clock; the consumer notes
  when ``poll`` hands it out. Both run on this machine, so one clock serves both.

    python perf/tail_bench.py --rounds 3
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import paced  # noqa: E402
from pybroker.client.admin import Admin, NewTopic  # noqa: E402
from pybroker.client.consumer import Consumer  # noqa: E402
from pybroker.client.producer import Producer  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

STAMP = struct.Struct(">q")  # send time, ns since the epoch
MODES = ("shm", "socket")


def consumer_config(cluster: BrokerCluster, mode: str) -> dict:
    config = {"bootstrap.servers": cluster.bootstrap, "auto.offset.reset": "earliest"}
    if mode == "shm":
        config["pybroker.shm.data.dir"] = str(cluster.data_dir)
    return config


def fill(bootstrap: str, topic: str, records: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5,
                         "batch.size": 256 * 1024})
    value = b"x" * size
    for _ in range(records):
        producer.send(topic, value, partition=0)
    if producer.flush(120):
        raise RuntimeError("fill: records left unacknowledged")
    producer.close(10)


def consume_seconds(cluster: BrokerCluster, mode: str, topic: str, records: int) -> tuple[float, dict]:
    with Consumer(consumer_config(cluster, mode)) as consumer:
        consumer.assign([(topic, 0)])
        consumer.position((topic, 0))  # connect and resolve the start outside the timing
        seen = 0
        start = time.perf_counter()
        deadline = start + 120
        while seen < records:
            seen += len(consumer.poll(200, max_records=10_000))
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{mode}: {seen} of {records} records after 120 s")
        return time.perf_counter() - start, consumer.metrics()


def paced_producer(bootstrap: str, topic: str, count: int, interval_s: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 0})
    for _ in paced(count, 1.0 / interval_s):
        producer.send(topic, STAMP.pack(time.time_ns()), partition=0)
    producer.flush(30)
    producer.close(10)


def latencies_ms(cluster: BrokerCluster, mode: str, topic: str, count: int, interval_s: float) -> tuple[list[float], dict]:
    with Admin(cluster.bootstrap) as admin:
        admin.create_topics([NewTopic(topic, 1, 1)])
    with Consumer(consumer_config(cluster, mode)) as consumer:
        consumer.assign([(topic, 0)])
        consumer.seek_to_end()
        consumer.position((topic, 0))
        sender = multiprocessing.get_context("spawn").Process(
            target=paced_producer, args=(cluster.bootstrap, topic, count, interval_s))
        sender.start()
        out: list[float] = []
        deadline = time.monotonic() + count * interval_s + 60
        try:
            while len(out) < count and time.monotonic() < deadline:
                for record in consumer.poll(100):
                    out.append((time.time_ns() - STAMP.unpack(record.value)[0]) / 1e6)
        finally:
            sender.join(30)
            if sender.is_alive():
                sender.kill()
        if len(out) < count:
            raise TimeoutError(f"{mode}: {len(out)} of {count} records arrived")
        return out, consumer.metrics()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--latency-records", type=int, default=500)
    parser.add_argument("--interval-ms", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.records * (args.size + 30) > 12 << 20:
        print("warning: the records may not fit the 16 MiB ring; the shm consumer then "
              "fetches the start over the socket", file=sys.stderr)

    throughput = {mode: [] for mode in MODES}
    latency = {mode: [] for mode in MODES}
    served = {}
    with tempfile.TemporaryDirectory() as tmp, BrokerCluster(data_dir=tmp, brokers=1) as cluster:
        for rnd in range(args.rounds):
            topic = f"tail-bench-{rnd}"
            fill(cluster.bootstrap, topic, args.records, args.size)
            for mode in MODES if rnd % 2 == 0 else reversed(MODES):
                seconds, metrics = consume_seconds(cluster, mode, topic, args.records)
                throughput[mode].append(args.records / seconds)
                served[mode] = metrics
            for mode in MODES if rnd % 2 == 0 else reversed(MODES):
                values, metrics = latencies_ms(cluster, mode, f"tail-latency-{rnd}-{mode}",
                                               args.latency_records, args.interval_ms / 1000)
                latency[mode].extend(values)
                served[mode + " latency"] = metrics

    print(f"single broker, 1 partition; throughput: {args.records:,} records x {args.size} B "
          f"read from offset 0, median of {args.rounds} rounds; latency: "
          f"{args.latency_records} records/round every {args.interval_ms} ms, all rounds pooled\n")
    print("| consumer path | records/s | MB/s | latency p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    med = {}
    for mode in MODES:
        med[mode] = statistics.median(throughput[mode])
        lat = latency[mode]
        print(f"| {mode} | {med[mode]:,.0f} | {med[mode] * args.size / 1e6:.1f} | "
              f"{pct(lat, 50):.2f} | {pct(lat, 90):.2f} | {pct(lat, 99):.2f} | {max(lat):.2f} |")
    print(f"\nshm / socket consume throughput: {med['shm'] / med['socket']:.2f}x; "
          f"p50 latency: {pct(latency['shm'], 50) / pct(latency['socket'], 50):.2f}x")
    for mode, metrics in served.items():
        print(f"- {mode}: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
