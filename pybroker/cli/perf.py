"""`pybroker perf produce|consume`: load generators like kafka-producer-perf-test and
kafka-consumer-perf-test, driving any Kafka cluster with pybroker's own client, and
printing their result lines."""
from __future__ import annotations

import os
import sys
import time
from datetime import datetime


def register(subparsers) -> None:
    p = subparsers.add_parser("perf", help="producer and consumer load tests (like kafka-*-perf-test)")
    sub = p.add_subparsers(dest="perf_command", metavar="produce|consume", required=True)
    prod = sub.add_parser("produce", help="like kafka-producer-perf-test")
    prod.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    prod.add_argument("--topic", required=True)
    prod.add_argument("--num-records", type=int, required=True)
    prod.add_argument("--record-size", type=int, default=100)
    prod.add_argument("--throughput", type=float, default=-1, help="records/s to aim at; -1 = as fast as possible")
    prod.add_argument("--producer-props", nargs="*", default=[], metavar="KEY=VALUE",
                      help="producer settings, e.g. acks=all linger.ms=5 compression.type=lz4")
    prod.set_defaults(func=run_produce)
    cons = sub.add_parser("consume", help="like kafka-consumer-perf-test")
    cons.add_argument("--bootstrap-server", default="127.0.0.1:9092")
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


def run_produce(args) -> int:
    from pybroker.client import Producer

    config = {"bootstrap.servers": args.bootstrap_server, **_props(args.producer_props)}
    try:
        producer = Producer(config)
    except ValueError as exc:
        print(f"pybroker perf: {exc}", file=sys.stderr)
        return 2
    payload = os.urandom(args.record_size)
    latencies: list[float] = []
    failures: list[BaseException] = []
    # One record in 100 carries a timer: a callback on every record would measure the
    # callbacks, not the cluster.
    sample_every = 100

    def sampled(sent: float):
        def done(_meta, exc):
            if exc is not None:
                failures.append(exc)
            else:
                latencies.append((time.perf_counter() - sent) * 1000)
        return done

    interval = 1.0 / args.throughput if args.throughput > 0 else 0.0
    start = time.perf_counter()
    next_send = start
    send = producer.send
    for i in range(args.num_records):
        if interval:
            pause = next_send - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            next_send += interval
        if i % sample_every == 0:
            send(args.topic, payload, callback=sampled(time.perf_counter()))
        else:
            send(args.topic, payload)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
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
    from pybroker.client import Admin, Consumer

    config = {"bootstrap.servers": args.bootstrap_server, "auto.offset.reset": "earliest",
              "enable.auto.commit": False}
    if args.group:
        config["group.id"] = args.group
    consumer = Consumer(config)
    start_wall = datetime.now()
    start = time.perf_counter()
    if args.group:
        consumer.subscribe([args.topic])
    else:
        with Admin(args.bootstrap_server) as admin:
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
    consumer.close()
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
