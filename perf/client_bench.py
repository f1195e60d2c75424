"""pybroker's Python client against confluent-kafka (librdkafka), same broker, same run.

Produce N records of SIZE bytes (null keys, partition 0, acks=1, no compression) to a
fresh topic of a pybroker cluster started here, then consume them from offset 0; once
with confluent-kafka, once with pybroker's client using its C accelerator, once with
the accelerator disabled (``PYBROKER_NO_NATIVE=1``, the pure-Python twin). Each
measurement runs in a child process of its own so the clients never share a GIL or a
module cache. Prints a markdown table: records/s and the ratio to confluent-kafka.

    python perf/client_bench.py                  # 500,000 x 100 B
    python perf/client_bench.py --records 1000000 --size 100
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(kind: str, bootstrap: str, topic: str, records: int, size: int) -> float:
    """Run one measurement in this process; returns seconds for ``records``."""
    value = b"x" * size
    if kind == "confluent-produce":
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5,
                      "enable.idempotence": False})
        start = time.perf_counter()
        for _ in range(records):
            while True:
                try:
                    p.produce(topic, value, partition=0)
                    break
                except BufferError:
                    p.poll(0.001)
        p.flush(60)
        return time.perf_counter() - start
    if kind == "confluent-consume":
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False})
        c.assign([TopicPartition(topic, 0, 0)])
        got = 0
        start = time.perf_counter()
        while got < records:
            got += len([m for m in c.consume(10000, 1.0) if not m.error()])
        elapsed = time.perf_counter() - start
        c.close()
        return elapsed
    from pybroker.client import Consumer, Producer
    if kind == "pybroker-produce":
        p = Producer(bootstrap, acks=1, linger_ms=5, batch_size=64 * 1024)
        send = p.send
        start = time.perf_counter()
        for _ in range(records):
            send(topic, value, partition=0)
        p.flush()
        elapsed = time.perf_counter() - start
        p.close()
        return elapsed
    if kind == "pybroker-consume":
        c = Consumer(bootstrap, auto_offset_reset="earliest", max_poll_records=10000)
        c.assign([(topic, 0)])
        got = 0
        start = time.perf_counter()
        while got < records:
            got += len(c.poll(1000))
        elapsed = time.perf_counter() - start
        c.close()
        return elapsed
    raise ValueError(kind)


def measure(kind: str, bootstrap: str, topic: str, records: int, size: int, native: bool) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not native:
        env["PYBROKER_NO_NATIVE"] = "1"
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--bootstrap", bootstrap,
                          "--topic", topic, "--records", str(records), "--size", str(size)],
                         env=env, check=True, stdout=subprocess.PIPE, timeout=600)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])["seconds"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--child")
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic")
    args = ap.parse_args()
    if args.child:
        print(json.dumps({"seconds": child(args.child, args.bootstrap, args.topic, args.records, args.size)}))
        return 0

    from pybroker.client import Admin, NewTopic
    from pybroker.client.records import IMPLEMENTATION
    from pybroker.testing import BrokerCluster
    if IMPLEMENTATION != "native":
        print("warning: pybroker._native is not built (pip install -e .); both pybroker rows use Python",
              file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as data, BrokerCluster(data_dir=data) as cluster:
        def fresh_topic() -> str:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            with Admin(cluster.bootstrap) as admin:
                admin.create_topics([NewTopic(name, 1, 1)])
            return name

        runs = [("confluent-kafka", "confluent", True), ("pybroker (C accelerator)", "pybroker", True),
                ("pybroker (pure Python)", "pybroker", False)]
        for label, client, native in runs:
            topic = fresh_topic()
            produce = measure(f"{client}-produce", cluster.bootstrap, topic, args.records, args.size, native)
            consume = measure(f"{client}-consume", cluster.bootstrap, topic, args.records, args.size, native)
            rows.append((label, args.records / produce, args.records / consume))
    base_p, base_c = rows[0][1], rows[0][2]
    print(f"\n{args.records:,} records x {args.size} B, acks=1, one partition, pybroker broker\n")
    print("| client | produce rec/s | vs confluent | consume rec/s | vs confluent |")
    print("|---|---:|---:|---:|---:|")
    for label, p, c in rows:
        print(f"| {label} | {p:,.0f} | {p / base_p:.2f}x | {c:,.0f} | {c / base_c:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
