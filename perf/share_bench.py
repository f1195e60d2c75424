"""Share-group consume throughput: 4 confluent-kafka ShareConsumers of one share group on
a one-partition topic vs one classic Consumer on that partition, 100 B records.

A single-broker cluster (``pybroker.testing.BrokerCluster``) gets ``--records`` records
of ``--size`` bytes on partition 0 of a fresh topic; each round then times how long the
target takes from ``subscribe`` (joining included) to receive all of them (share: implicit acknowledgement, each
of the four consumers in its own thread, a fresh share group with
``share.auto.offset.reset=earliest``; classic: a fresh group, ``auto.offset.reset=earliest``).
Targets alternate A B A B ... for ``--rounds`` rounds each; medians and ranges printed.

    python perf/share_bench.py                 # 50,000 x 100 B, 3 rounds each
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.testing import BrokerCluster  # noqa: E402


def load(bootstrap: str, topic: str, records: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
    value = b"x" * size
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, value, partition=0)
                break
            except BufferError:
                producer.poll(0.01)
    assert producer.flush(60) == 0


def classic(bootstrap: str, topic: str, records: int) -> float:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"classic-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": True})
    start = time.monotonic()
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 300
    while got < records and time.monotonic() < deadline:
        for m in c.consume(10000, 0.5):
            if m.error() is None:
                got += 1
    elapsed = time.monotonic() - start
    c.close()
    assert got >= records, got
    return elapsed


def share(bootstrap: str, topic: str, records: int, consumers: int) -> float:
    group = f"share-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)
    for f in admin.incremental_alter_configs([ConfigResource("GROUP", group, incremental_configs=[entry])]).values():
        f.result(30)
    lock = threading.Lock()
    state = {"got": 0, "start": time.monotonic(), "per": [0] * consumers}
    done = threading.Event()

    def run(i: int) -> None:
        c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": f"w{i}"})
        c.subscribe([topic])
        deadline = time.monotonic() + 300
        while not done.is_set() and time.monotonic() < deadline:
            msgs = [m for m in (c.poll(0.5) or []) if m.error() is None]
            if msgs:
                with lock:
                    state["got"] += len(msgs)
                    state["per"][i] += len(msgs)
                    if state["got"] >= records:
                        state["end"] = time.monotonic()
                        done.set()
        c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["got"] >= records, state
    print(f"    share round: per consumer {state['per']}", flush=True)
    return state["end"] - state["start"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=50_000)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--consumers", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = BrokerCluster(data_dir=Path(tmp), brokers=1,
                                extra_args=["--group-initial-rebalance-delay-ms", "0"])
        cluster.start()
        try:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
            load(cluster.bootstrap, topic, args.records, args.size)
            results: dict[str, list[float]] = {"classic": [], "share": []}
            for r in range(args.rounds):
                for target in ("classic", "share"):
                    load_avg = os.getloadavg()[0]
                    elapsed = classic(cluster.bootstrap, topic, args.records) if target == "classic" else \
                        share(cluster.bootstrap, topic, args.records, args.consumers)
                    results[target].append(args.records / elapsed)
                    print(f"round {r + 1} {target}: {args.records / elapsed:,.0f} records/s "
                          f"(load {load_avg:.1f})", flush=True)
        finally:
            cluster.stop()
    print(f"\n{args.records:,} x {args.size} B, 1 partition, {args.consumers} share consumers; "
          f"load average now {os.getloadavg()}")
    print("| target | median records/s | range |\n|---|---|---|")
    for target, figures in results.items():
        print(f"| {target} | {statistics.median(figures):,.0f} | {min(figures):,.0f} – {max(figures):,.0f} |")
    ratio = statistics.median(results["share"]) / statistics.median(results["classic"])
    print(f"\nshare / classic (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
