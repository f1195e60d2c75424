"""Rebalance time after a member joins: KIP-848 (``group.protocol=consumer``, the broker
assigns, heartbeat interval 500 ms via ``--group-consumer-heartbeat-interval-ms 500``)
vs the classic protocol (JoinGroup/SyncGroup, librdkafka's default eager assignors,
``heartbeat.interval.ms=500``), both with confluent-kafka.

A single-broker cluster with a 6-partition topic; one member is subscribed and owns all
six; a second member subscribes at t0; the figure is the time until the assignment has
settled: the newcomer owns 3 partitions and the first member the other 3. Both members
poll in their own threads every 50 ms. Targets alternate A B A B ... for ``--rounds``
rounds each, each round a fresh group; medians and ranges printed.

    python perf/rebalance_848_bench.py          # 3 rounds each
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

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.testing import BrokerCluster  # noqa: E402


class Member:
    def __init__(self, bootstrap: str, group: str, topic: str, protocol: str):
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
        if protocol == "consumer":
            conf["group.protocol"] = "consumer"
        else:
            conf.update({"heartbeat.interval.ms": 500, "session.timeout.ms": 10000})
        self.consumer = Consumer(conf)
        self.topic = topic
        self.owned = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.consumer.subscribe([self.topic])
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.consumer.poll(0.05)
            self.owned = len(self.consumer.assignment())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.consumer.close()


def wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("the group did not settle")
        time.sleep(0.005)
    return time.monotonic() - start


def one_round(bootstrap: str, topic: str, protocol: str) -> float:
    group = f"rb-{protocol}-{uuid.uuid4().hex[:8]}"
    first = Member(bootstrap, group, topic, protocol)
    first.start()
    second = None
    try:
        wait(lambda: first.owned == 6, 60)
        time.sleep(1.0)             # stable
        second = Member(bootstrap, group, topic, protocol)
        t0 = time.monotonic()
        second.start()
        wait(lambda: first.owned == 3 and second.owned == 3, 60)
        return time.monotonic() - t0
    finally:
        for m in (second, first):
            if m is not None:
                m.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    results: dict[str, list[float]] = {"consumer": [], "classic": []}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = BrokerCluster(data_dir=Path(tmp), brokers=1, extra_args=[
            "--group-initial-rebalance-delay-ms", "0", "--group-consumer-heartbeat-interval-ms", "500"])
        cluster.start()
        try:
            topic = f"rb-{uuid.uuid4().hex[:8]}"
            admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
            admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)
            for r in range(args.rounds):
                for protocol in ("consumer", "classic"):
                    load_avg = os.getloadavg()[0]
                    took = one_round(cluster.bootstrap, topic, protocol)
                    results[protocol].append(took)
                    print(f"round {r + 1} {protocol}: {took:.2f} s (load {load_avg:.1f})", flush=True)
        finally:
            cluster.stop()
    print(f"\nload average now {os.getloadavg()}")
    print("| protocol | median s | range s |\n|---|---|---|")
    for protocol, figures in results.items():
        print(f"| {protocol} | {statistics.median(figures):.2f} | {min(figures):.2f} – {max(figures):.2f} |")


if __name__ == "__main__":
    main()
