"""What partitions cost: a curve over the partition count, pybroker beside Apache Kafka.

For each point of ``--points`` (total partitions, default 1, 1,000 and 20,000) a fresh
3-broker cluster of each target is started (pybroker: ``pybroker up --brokers 3``, by
default ``--no-shm``; Kafka 4.4: 3 combined KRaft nodes from tools/kafka_ref.py), the
partitions are created as topics of at most 1,000 partitions (replication factor
``--replication-factor``), and measured:

- create: seconds to create the last topic (of up to 1,000 partitions) until every
  partition has a leader in Metadata, with all the others already there; and the total;
- metadata: a Metadata request for all topics (confluent-kafka ``list_topics``), median of 5;
- idle CPU: the busiest broker's CPU over ``--idle-s`` seconds with nothing to do (% of one
  core), after a settling pause;
- restart: stop the whole cluster, start it on the same data, seconds until it answers
  (pybroker: its ``bootstrap:`` line; Kafka: every node answers Metadata), and how long
  the stop took;
- produce/consume: ``--records`` keyed records of ``--size`` bytes (``--keys`` distinct keys,
  confluent-kafka, acks=1) to the first topic (1 partition at the first point, else 1,000
  partitions), then all of them consumed back from the start. Over 1,000 partitions
  librdkafka's default ``max.in.flight`` (1,000,000) sends a stream of small requests and
  the rate is set by the client's pacing, brokers and client mostly idle;
  ``--producer-property max.in.flight=5`` shows what the brokers take.

The targets alternate at every point (pybroker, Kafka, pybroker, ...), so machine load
hits both alike. ``--targets pybroker`` skips Kafka (no java/mvn needed).

    python perf/partitions_bench.py                          # the full curve
    python perf/partitions_bench.py --points 6000 --replication-factor 3
    python perf/partitions_bench.py --targets pybroker --points 1,1000

Prints a markdown table for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pybroker.testing import BrokerCluster  # noqa: E402
from tools.kafka_ref import KafkaCluster  # noqa: E402

MIB = 1024 * 1024
TOPIC_PARTITIONS = 1000
QUIET = {"log_level": 0}


@dataclass
class Point:
    target: str
    partitions: int
    rf: int
    create_last_s: float = float("nan")
    create_total_s: float = float("nan")
    metadata_s: float = float("nan")
    idle_cpu_pct: float = float("nan")
    restart_s: float = float("nan")
    stop_s: float = float("nan")
    produce_rate: float = float("nan")
    consume_rate: float = float("nan")
    produce_partitions: int = 0
    notes: list[str] = field(default_factory=list)


# -- targets ------------------------------------------------------------------------------


class PybrokerTarget:
    name = "pybroker"

    def __init__(self, data_dir: str, extra_args: list[str]):
        self.cluster = BrokerCluster(data_dir=data_dir, brokers=3, extra_args=extra_args, start_timeout=300)

    def start(self) -> str:
        return self.cluster.start().bootstrap

    def stop(self) -> None:
        self.cluster.stop(timeout=300)

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    def broker_pids(self) -> list[int]:
        run = Path(self.cluster.data_dir) / "run"
        return [int(p.read_text().strip()) for p in sorted(run.glob("broker-*.pid"))]


class KafkaTarget:
    name = "kafka"

    def __init__(self, data_dir: str):
        self.cluster = KafkaCluster(nodes=3, data_dir=data_dir, start_timeout=600, stop_timeout=300)

    def start(self) -> str:
        return self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    def broker_pids(self) -> list[int]:
        return list(self.cluster.pids)


# -- measurements ---------------------------------------------------------------------------


def wait_for_leaders(admin: AdminClient, topic: str, partitions: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = admin.list_topics(topic, timeout=30).topics.get(topic)
        except Exception:  # noqa: BLE001  (a broker busy creating may time out: ask again)
            found = None
        if found is not None and not found.error and len(found.partitions) == partitions and \
                all(p.leader >= 0 for p in found.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{topic}: not every one of {partitions} partitions has a leader after {timeout}s")


def create_all(bootstrap: str, total: int, rf: int) -> tuple[list[tuple[str, int]], float, float]:
    """Topics of up to 1,000 partitions adding up to ``total``: (topics, last topic's
    seconds, total seconds)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    topics = []
    left = total
    while left > 0:
        n = min(TOPIC_PARTITIONS, left)
        topics.append((f"p{len(topics)}-{uuid.uuid4().hex[:6]}", n))
        left -= n
    began = time.perf_counter()
    last = 0.0
    for name, n in topics:
        t0 = time.perf_counter()
        admin.create_topics([NewTopic(name, n, rf)], request_timeout=600)[name].result(600)
        wait_for_leaders(admin, name, n)
        last = time.perf_counter() - t0
    return topics, last, time.perf_counter() - began


def metadata_seconds(bootstrap: str, expected: int, repeats: int = 5) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    admin.list_topics(timeout=60)  # connections up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        md = admin.list_topics(timeout=60)
        times.append(time.perf_counter() - t0)
        got = sum(len(t.partitions) for name, t in md.topics.items() if not name.startswith("__"))
        if got < expected:
            raise RuntimeError(f"Metadata listed {got} partitions, expected {expected}")
    return statistics.median(times)


def idle_cpu_pct(pids: list[int], seconds: float) -> float:
    """The busiest process's CPU over ``seconds`` as % of one core."""
    procs = [psutil.Process(pid) for pid in pids]
    before = [sum(p.cpu_times()[:2]) for p in procs]
    time.sleep(seconds)
    after = [sum(p.cpu_times()[:2]) for p in procs]
    return max(100.0 * (a - b) / seconds for a, b in zip(after, before))


def produce_keyed(bootstrap: str, topic: str, records: int, size: int, keys: int,
                  extra: dict | None = None) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5,
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576, "message.timeout.ms": 300_000, **QUIET,
                         **(extra or {})})
    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    payload = os.urandom(size)
    key_list = [f"key-{i}".encode() for i in range(keys)]
    produce = producer.produce
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                produce(topic, payload, key=key_list[i % keys], on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.005)
    left = producer.flush(300)
    elapsed = time.perf_counter() - start
    if left or failures:
        raise RuntimeError(f"produce to {topic}: {left} undelivered, {len(failures)} failed ({failures[:1]})")
    return records / elapsed


def consume_all(bootstrap: str, topic: str, partitions: int, records: int, timeout: float = 300) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.max.bytes": 64 * MIB,
                         "queued.min.messages": 10_000_000, "fetch.queue.backoff.ms": 1, **QUIET})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen = 0
    start = time.perf_counter()
    deadline = start + timeout
    while seen < records:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"consumed {seen}/{records} of {topic} within {timeout}s")
        for msg in consumer.consume(10_000, 0.5):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consume {topic}: {msg.error()}")
                continue
            seen += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return records / elapsed


def progress(point: Point, what: str) -> None:
    print(f"  {point.target} {point.partitions:,}: {what}", file=sys.stderr, flush=True)


def measure(target, total: int, rf: int, args) -> Point:
    point = Point(target.name, total, rf)
    target.start()
    progress(point, "started")
    try:
        topics, point.create_last_s, point.create_total_s = create_all(target.bootstrap, total, rf)
        progress(point, f"created in {point.create_total_s:.1f} s")
        point.metadata_s = metadata_seconds(target.bootstrap, total)
        time.sleep(args.settle_s)
        point.idle_cpu_pct = idle_cpu_pct(target.broker_pids(), args.idle_s)
        first, n = topics[0]
        point.produce_partitions = n
        point.produce_rate = produce_keyed(target.bootstrap, first, args.records, args.size, args.keys,
                                           dict(kv.split("=", 1) for kv in args.producer_property))
        point.consume_rate = consume_all(target.bootstrap, first, n, args.records)
        progress(point, f"produced {point.produce_rate:,.0f}/s, consumed {point.consume_rate:,.0f}/s")
        t0 = time.perf_counter()
        target.stop()
        point.stop_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        target.start()
        point.restart_s = time.perf_counter() - t0
        progress(point, f"stopped in {point.stop_s:.1f} s, restarted in {point.restart_s:.1f} s")
        # Everything is still there and led after the restart.
        admin = AdminClient({"bootstrap.servers": target.bootstrap, **QUIET})
        for name, n in topics:
            wait_for_leaders(admin, name, n)
    finally:
        target.stop()
    return point


def report(points: list[Point], args) -> str:
    load = os.getloadavg()
    lines = [
        f"`python perf/partitions_bench.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"3 brokers, RF {args.replication_factor}, topics of up to {TOPIC_PARTITIONS} partitions; "
        f"{args.records:,} keyed records of {args.size} B ({args.keys:,} keys), acks=1; "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end; {os.cpu_count()} cores.",
        "",
        "| target | partitions | create last topic s | create all s | Metadata all s | idle CPU busiest broker % "
        "| stop s | restart s | produce rec/s (partitions) | consume rec/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p.target} | {p.partitions:,} | {p.create_last_s:.2f} | {p.create_total_s:.1f} | {p.metadata_s:.3f} "
            f"| {p.idle_cpu_pct:.1f} | {p.stop_s:.1f} | {p.restart_s:.1f} "
            f"| {p.produce_rate:,.0f} ({p.produce_partitions:,}) | {p.consume_rate:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="1,1000,20000", help="total partitions per point (comma-separated)")
    parser.add_argument("--targets", default="pybroker,kafka")
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--producer-property", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka setting of the keyed producer (e.g. max.in.flight=5)")
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--pybroker-arg", action="append", default=None,
                        help="extra `pybroker up` argument (default: --no-shm)")
    args = parser.parse_args(argv)
    points = [int(p) for p in args.points.split(",")]
    targets = args.targets.split(",")
    extra = ["--no-shm"] if args.pybroker_arg is None else args.pybroker_arg
    results = []
    for total in points:
        for name in targets:
            tmp = tempfile.mkdtemp(prefix=f"partitions-{name}-")
            try:
                target = PybrokerTarget(tmp, extra) if name == "pybroker" else KafkaTarget(tmp)
                result = measure(target, total, args.replication_factor, args)
                results.append(result)
                print(report([result], args).splitlines()[-1], flush=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
