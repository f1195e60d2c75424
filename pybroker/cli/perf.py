"""`pybroker perf produce|consume`: load generators like kafka-producer-perf-test and
kafka-consumer-perf-test, driving any Kafka cluster with pybroker's own client, and
printing their result lines.

``perf produce`` prints Kafka's window line every ``--reporting-interval`` ms (5 s, as
Kafka) while it runs — records handed to the producer in the window, and the latency of
the sampled records acknowledged in it — and the summary line at the end; on a terminal
a progress bar runs below the lines. An unreachable cluster or a missing topic is one
``ERROR`` line and exit code 1.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from datetime import datetime

from pybroker import errors
from pybroker.cli.common import check_reachable, client_security, fail, security_options


def register(subparsers) -> None:
    p = subparsers.add_parser("perf", help="producer and consumer load tests (like kafka-*-perf-test)")
    sub = p.add_subparsers(dest="perf_command", metavar="produce|consume", required=True)
    prod = sub.add_parser("produce", help="like kafka-producer-perf-test")
    prod.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    prod.add_argument("--command-config", metavar="FILE", help="Kafka client properties (security.protocol, sasl.*, ssl.*)")
    prod.add_argument("--topic", required=True)
    prod.add_argument("--num-records", type=int, required=True)
    prod.add_argument("--record-size", type=int, default=100)
    prod.add_argument("--throughput", type=float, default=-1, help="records/s to aim at; -1 = as fast as possible")
    prod.add_argument("--producer-props", nargs="*", default=[], metavar="KEY=VALUE",
                      help="producer settings, e.g. acks=all linger.ms=5 compression.type=lz4")
    prod.add_argument("--reporting-interval", type=int, default=5000, metavar="MS",
                      help="print a window line this often (default 5000, as Kafka)")
    prod.set_defaults(func=run_produce)
    cons = sub.add_parser("consume", help="like kafka-consumer-perf-test")
    cons.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    cons.add_argument("--command-config", metavar="FILE", help="Kafka client properties (security.protocol, sasl.*, ssl.*)")
    cons.add_argument("--topic", required=True)
    cons.add_argument("--messages", type=int, required=True, help="records to consume")
    cons.add_argument("--group", default=None, help="consumer group (default: none, assign every partition)")
    cons.add_argument("--timeout", type=int, default=10_000, help="ms without records before giving up")
    cons.set_defaults(func=run_consume)


def _props(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"pybroker perf: property {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _progress(total: int):
    """A rich progress bar on a terminal; nothing when the output goes elsewhere."""
    if not sys.stdout.isatty():
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), transient=True)


class Window:
    """Kafka's reporting window: records handed to the producer and latencies acked
    since the last window line."""

    def __init__(self, record_size: int):
        self.record_size = record_size
        self.start = time.perf_counter()
        self.count = 0
        self.latencies: list[float] = []

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        lat = self.latencies
        return (f"{self.count} records sent, {rate:.1f} records/sec ({rate * self.record_size / 1024 / 1024:.2f} MB/sec), "
                f"{sum(lat) / len(lat) if lat else 0:.1f} ms avg latency, {max(lat) if lat else 0:.1f} ms max latency.")


def run_produce(args) -> int:
    from pybroker.client import Producer

    config = {"bootstrap.servers": args.bootstrap_server, **security_options(args), **_props(args.producer_props)}
    try:
        producer = Producer(config)
    except ValueError as exc:
        print(f"pybroker perf: {exc}", file=sys.stderr)
        return 2
    status = None
    try:
        check_reachable(args.bootstrap_server, "producer-performance", args.topic, auto_create=True,
                        security=client_security(args))
        status = _produce(args, producer)
        return status
    except errors.KafkaError as exc:
        return fail(f"ERROR {errors.name_of(exc.code)}: {exc}")
    finally:
        # After a failure, records still queued get a short grace, not delivery.timeout.ms.
        producer.close(timeout=None if status is not None else 5)


def _produce(args, producer) -> int:
    payload = os.urandom(args.record_size)
    latencies: list[float] = []
    failures: list[BaseException] = []
    window = Window(args.record_size)
    # One record in 100 carries a timer: a callback on every record would measure the
    # callbacks, not the cluster.
    sample_every = 100

    def sampled(sent: float):
        def done(_meta, exc):
            if exc is not None:
                failures.append(exc)
            else:
                latency = (time.perf_counter() - sent) * 1000
                latencies.append(latency)
                window.latencies.append(latency)
        return done

    interval = 1.0 / args.throughput if args.throughput > 0 else 0.0
    report_every = args.reporting_interval / 1000.0
    start = time.perf_counter()
    next_send = start
    send = producer.send
    with _progress(args.num_records) as progress:
        task = progress.add_task("producing", total=args.num_records) if progress is not None else None
        for i in range(args.num_records):
            if interval:
                pause = next_send - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                next_send += interval
            if i % sample_every == 0:
                now = time.perf_counter()
                send(args.topic, payload, callback=sampled(now))
                if now - window.start >= report_every:
                    print(window.line(now), flush=True)
                    window = Window(args.record_size)
                if progress is not None:
                    progress.update(task, completed=i)
            else:
                send(args.topic, payload)
            window.count += 1
        producer.flush()
    elapsed = time.perf_counter() - start
    if failures:
        print(f"pybroker perf: {len(failures)} sampled records failed, first: {failures[0]}", file=sys.stderr)
    lat = sorted(latencies)
    rate = args.num_records / elapsed
    print(f"{args.num_records} records sent, {rate:.1f} records/sec ({rate * args.record_size / 1024 / 1024:.2f} MB/sec), "
          f"{sum(lat) / len(lat) if lat else 0:.2f} ms avg latency, {lat[-1] if lat else 0:.2f} ms max latency, "
          f"{_percentile(lat, 0.5):.0f} ms 50th, {_percentile(lat, 0.95):.0f} ms 95th, "
          f"{_percentile(lat, 0.99):.0f} ms 99th, {_percentile(lat, 0.999):.0f} ms 99.9th.")
    return 1 if failures else 0


def run_consume(args) -> int:
    from pybroker.client import Consumer

    config = {"bootstrap.servers": args.bootstrap_server, **security_options(args), "auto.offset.reset": "earliest",
              "enable.auto.commit": False}
    if args.group:
        config["group.id"] = args.group
    try:
        check_reachable(args.bootstrap_server, "consumer-performance", args.topic, security=client_security(args))
        consumer = Consumer(config)
        try:
            return _consume(args, consumer)
        finally:
            consumer.close()
    except errors.KafkaError as exc:
        return fail(f"ERROR {errors.name_of(exc.code)}: {exc}")


def _consume(args, consumer) -> int:
    from pybroker.client import Admin

    start_wall = datetime.now()
    start = time.perf_counter()
    if args.group:
        consumer.subscribe([args.topic])
    else:
        with Admin(args.bootstrap_server, security=client_security(args)) as admin:
            (info,) = admin.describe_topics([args.topic])
        consumer.assign([(args.topic, p) for p in sorted(info.partitions)])
    records = nbytes = 0
    first_fetch = None
    last_record = time.perf_counter()
    while records < args.messages:
        batch = consumer.poll(timeout_ms=100)
        now = time.perf_counter()
        if not batch:
            if (now - last_record) * 1000 > args.timeout:
                print(f"WARNING: Exiting before consuming the expected number of messages: timeout "
                      f"({args.timeout} ms) exceeded.", file=sys.stderr)
                break
            continue
        if first_fetch is None:
            first_fetch = now
        last_record = now
        records += len(batch)
        nbytes += sum(len(r.value or b"") + len(r.key or b"") for r in batch)
    end = time.perf_counter()
    elapsed = max(end - start, 1e-9)
    fetch_elapsed = max(end - (first_fetch or start), 1e-9)
    mb = nbytes / 1024 / 1024
    print("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
          "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    fmt = "%Y-%m-%d %H:%M:%S:%f"
    print(f"{start_wall.strftime(fmt)[:-3]}, {datetime.now().strftime(fmt)[:-3]}, {mb:.4f}, {mb / elapsed:.4f}, "
          f"{records}, {records / elapsed:.4f}, {((first_fetch or start) - start) * 1000:.0f}, "
          f"{fetch_elapsed * 1000:.0f}, {mb / fetch_elapsed:.4f}, {records / fetch_elapsed:.4f}")
    return 0 if records >= args.messages else 1
