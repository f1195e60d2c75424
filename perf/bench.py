"""Produce/consume throughput and latency of pybroker against librdkafka's mock cluster.

One client (confluent-kafka) drives both targets, so the ratio pybroker/mock says how
much of the client's ceiling the broker delivers:

- mock: librdkafka's in-process mock broker (``test.mock.num.brokers=1``). It stores
  nothing durable and costs the client's own process CPU, so it is the client-bound
  ceiling, not a fair broker peer.
- pybroker: a single-broker cluster started here in a temporary data dir
  (``pybroker.testing.BrokerCluster``), produced to with acks=1 and acks=all.

Throughput runs produce ``--records`` records of ``--size`` bytes to partition 0 of a
fresh topic, then consume them back from offset 0. Latency runs send records paced at
``--latency-rate`` per second and measure produce->consume time in a consumer thread.

    python perf/bench.py                       # 1,000,000 x 100 B: well under 2 minutes
    python perf/bench.py --records 1000000 --size 1000 --skip-mock

Prints markdown tables ready for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka import libversion, version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.testing import BrokerCluster  # noqa: E402  (runnable from a checkout)

MIB = 1024 * 1024
# Latency records carry their send time (perf_counter_ns) in the first 8 bytes.
SENT_AT = struct.Struct(">q")


@dataclass
class Result:
    target: str
    operation: str
    records: int
    seconds: float
    size: int
    server_cpu: float | None = None  # CPU seconds the broker's processes spent meanwhile

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.rate * self.size / MIB


def produce_throughput(bootstrap_conf: dict, topic: str, records: int, size: int,
                       acks: str, timeout: float, payload: bytes | None = None) -> float:
    """Seconds to produce and have acknowledged ``records`` records of ``size`` bytes
    (``payload``, or random bytes)."""
    producer = Producer({
        **bootstrap_conf,
        "acks": acks,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "message.timeout.ms": int(timeout * 1000),
    })
    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    payload = os.urandom(size) if payload is None else payload
    produce = producer.produce
    start = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                produce(topic, payload, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.005)  # local queue full: let deliveries drain
    left = producer.flush(timeout)
    elapsed = time.perf_counter() - start
    if left or failures:
        raise RuntimeError(f"produce to {topic}: {left} undelivered, {len(failures)} failed "
                           f"(first: {failures[:1]})")
    return elapsed


def consume_throughput(bootstrap_conf: dict, topic: str, timeout: float, isolation: str = "read_uncommitted",
                       expect: int | None = None) -> tuple[int, float]:
    """(records, seconds) to consume partition 0 from its low to its high watermark (or
    ``expect`` records: a transactional topic holds markers between them).

    The mock cluster keeps only the last few MB of a partition, so its low watermark may
    be above 0; a broker's is 0 here (nothing deleted).
    """
    consumer = Consumer({
        **bootstrap_conf,
        "group.id": f"bench-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 64 * MIB,
        "max.partition.fetch.bytes": 16 * MIB,
        "queued.max.messages.kbytes": 262_144,
        # Past queued.min.messages prefetched (default 100,000) librdkafka pauses fetching
        # for fetch.queue.backoff.ms (default 1 s): at 100 B records that pause, not the
        # broker, would set the rate.
        "queued.min.messages": 10_000_000,
        "fetch.queue.backoff.ms": 1,
        "isolation.level": isolation,
    })
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout)
    records = high - low if expect is None else expect
    consumer.assign([TopicPartition(topic, 0, low)])
    # The clock starts at the first record, so connection set-up and the offset lookup
    # (a fixed cost, large next to the mock's small retained log) are not counted.
    seen = 0
    start = None
    deadline = time.perf_counter() + timeout
    while seen < records:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"consumed {seen}/{records} of {topic} within {timeout}s")
        for msg in consumer.consume(min(10_000, records - seen), 0.5):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consume {topic}: {msg.error()}")
                continue
            if start is None:
                start = time.perf_counter()
            seen += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    # The first record only started the clock.
    records -= 1
    return records, elapsed


def paced(count: int, rate: float):
    """Yield ``count`` times, ``rate`` times a second. Sleeps, never spins: a spinning
    sender holds the GIL a consumer thread in the same process needs."""
    interval = 1.0 / rate
    next_send = time.perf_counter()
    for i in range(count):
        pause = next_send - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        yield i
        next_send += interval


def end_to_end_latency(bootstrap_conf: dict, topic: str, count: int, rate: float, size: int,
                       timeout: float) -> list[float]:
    """Milliseconds from produce() to the consumer seeing the record, paced at ``rate``/s."""
    latencies: list[float] = []
    consumer = Consumer({**bootstrap_conf, "group.id": f"bench-lat-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 5,
                         "isolation.level": "read_uncommitted"})
    # Create the topic and learn its end before the consumer starts, so it only sees ours.
    producer = Producer({**bootstrap_conf, "acks": "1", "linger.ms": 0})
    producer.produce(topic, b"warm-up", partition=0)
    producer.flush(timeout)
    consumer.assign([TopicPartition(topic, 0, 1)])
    ready = threading.Event()

    def consume():
        deadline = time.monotonic() + timeout
        while len(latencies) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.05)
            ready.set()
            if msg is None or msg.error():
                continue
            latencies.append((time.perf_counter_ns() - SENT_AT.unpack_from(msg.value())[0]) / 1e6)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    ready.wait(timeout)
    time.sleep(0.5)  # let the consumer finish its first fetch round
    padding = b"\x00" * max(0, size - SENT_AT.size)
    for _ in paced(count, rate):
        producer.produce(topic, SENT_AT.pack(time.perf_counter_ns()) + padding, partition=0)
        producer.poll(0)
    producer.flush(timeout)
    reader.join(timeout)
    consumer.close()
    return latencies


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {}
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return {"p50": cuts[499], "p99": cuts[989], "p99.9": cuts[998], "max": max(values)}


def mock_bootstrap(timeout: float) -> tuple[Producer, dict]:
    """A producer that hosts librdkafka's mock cluster, and a config reaching that cluster.

    The mock lives inside its owning client; other clients reach it through the broker
    address that client's metadata reports, so the owner must stay alive meanwhile.
    """
    owner = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": ""})
    brokers = owner.list_topics(timeout=timeout).brokers
    address = ",".join(f"{b.host}:{b.port}" for b in brokers.values())
    return owner, {"bootstrap.servers": address}


def measure_target(target: str, conf: dict, args, server_cpu=None
                   ) -> tuple[list[Result], list[float] | None]:
    """Produce (acks=1, acks=all), consume and latency runs against one target.

    ``server_cpu``, if given, returns the target's cumulative CPU seconds; each result
    then says how much CPU the server spent on it (what limits it: CPU or waiting).
    """
    n, size, timeout = args.records, args.size, args.timeout

    def topic(tag: str) -> str:
        return f"bench-{target}-{tag}-{uuid.uuid4().hex[:8]}"

    def timed(result_args: tuple, run) -> Result:
        before = server_cpu() if server_cpu else None
        result = Result(target, *result_args, *run())
        if server_cpu:
            result.server_cpu = server_cpu() - before
        return result

    results = []
    names = {acks: topic(f"acks{acks}") for acks in ("1", "all")}
    for acks, name in names.items():
        results.append(timed((f"produce acks={acks}", n), lambda: (
            produce_throughput(conf, name, n, size, acks, timeout), size)))
    results.append(timed(("consume",), lambda: (
        *consume_throughput(conf, names["1"], timeout), size)))
    latencies = None
    if args.latency_count:
        latencies = end_to_end_latency(conf, topic("latency"), args.latency_count,
                                       args.latency_rate, size, timeout)
    return results, latencies


def broker_processes(cluster) -> list:
    """The broker processes of a running BrokerCluster (children of its ``up`` process)."""
    root = psutil.Process(cluster.pid)
    return [p for p in root.children(recursive=True) if "pybroker.broker.main" in " ".join(p.cmdline())]


def cluster_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its live children."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run(args) -> tuple[list[Result], dict[str, list[float]]]:
    results: list[Result] = []
    latencies: dict[str, list[float]] = {}

    def record(target: str, conf: dict, server_cpu=None) -> None:
        target_results, target_latencies = measure_target(target, conf, args, server_cpu)
        results.extend(target_results)
        if target_latencies is not None:
            latencies[target] = target_latencies

    if not args.skip_mock:
        owner, conf = mock_bootstrap(args.timeout)
        record("mock", conf)
        del owner  # the mock cluster lives as long as its owning client
    if not args.skip_pybroker:
        with tempfile.TemporaryDirectory(prefix="pybroker-bench-") as data:
            with BrokerCluster(data_dir=data, extra_args=args.broker_arg) as cluster:
                record("pybroker", {"bootstrap.servers": cluster.bootstrap},
                       lambda: cluster_cpu_seconds(cluster.pid))
    return results, latencies


def _version_text(value) -> str:
    # confluent_kafka.version() is a (str, int) tuple in some releases, a str in others.
    return value[0] if isinstance(value, tuple) else str(value)


def report(args, results: list[Result], latencies: dict[str, list[float]]) -> str:
    mock = {r.operation: r for r in results if r.target == "mock"}
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"confluent-kafka {_version_text(version())} / librdkafka {libversion()[0]}; "
        f"{args.records:,} records x {args.size} B, 1 partition.",
        "",
        "| target | operation | records | records/s | MB/s | seconds | vs mock | broker CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        peer = mock.get(r.operation)
        ratio = f"{r.rate / peer.rate:.2f}" if peer and r.target != "mock" else ""
        lines.append(f"| {r.target} | {r.operation} | {r.records:,} | {r.rate:,.0f} | {r.mb_per_s:,.1f} | "
                     f"{r.seconds:.2f} | {ratio} | {'' if r.server_cpu is None else f'{r.server_cpu:.2f}'} |")
    if latencies:
        lines += [
            "",
            f"End-to-end latency (produce -> consume), {args.latency_count} records "
            f"at {args.latency_rate:.0f}/s, acks=1, linger.ms=0:",
            "",
            "| target | received | p50 ms | p99 ms | p99.9 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for target, values in latencies.items():
            p = percentiles(values)
            cells = " | ".join(f"{p[k]:.2f}" if p else "n/a" for k in ("p50", "p99", "p99.9", "max"))
            lines.append(f"| {target} | {len(values)}/{args.latency_count} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per throughput run")
    parser.add_argument("--size", type=int, default=100, help="record value size in bytes")
    parser.add_argument("--latency-count", type=int, default=2_000,
                        help="records in the latency run (0: skip)")
    parser.add_argument("--latency-rate", type=float, default=1_000.0,
                        help="records per second in the latency run")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per run")
    parser.add_argument("--skip-mock", action="store_true", help="measure pybroker only")
    parser.add_argument("--skip-pybroker", action="store_true", help="measure the mock only")
    parser.add_argument("--broker-arg", action="append", default=[],
                        help="extra argument for `pybroker up` (repeatable)")
    args = parser.parse_args(argv)
    if args.size < SENT_AT.size:
        parser.error(f"--size must be at least {SENT_AT.size}")
    results, latencies = run(args)
    print(report(args, results, latencies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
