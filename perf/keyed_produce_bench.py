"""Where keyed produce over many partitions is limited: confluent-kafka producing keyed
records to a 1-partition and a 1,000-partition topic of one 3-broker cluster
(``--no-shm``), with librdkafka's default ``max.in.flight`` and with 5, alternating, and
the CPU of the client process and of each broker over each run.

    python perf/keyed_produce_bench.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import broker_processes  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

RECORDS = 200_000
KEYS = 10_000


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, BrokerCluster(data_dir=tmp, brokers=3, extra_args=["--no-shm"]) as c:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        for name, n in (("one", 1), ("thousand", 1000)):
            admin.create_topics([NewTopic(name, n, 1)])[name].result(60)
        time.sleep(2)
        brokers = broker_processes(c)
        me = psutil.Process()
        payload = os.urandom(100)
        print("| topic | producer | records/s | client CPU % | broker CPU % | load |")
        print("|---|---|---:|---:|---|---:|")
        for topic in ("one", "thousand", "one", "thousand"):
            for extra in ({}, {"max.in.flight": 5}):
                p = Producer({"bootstrap.servers": c.bootstrap, "acks": "1", "linger.ms": 5,
                              "batch.num.messages": 10000, **extra})
                c0 = me.cpu_times()
                b0 = [sum(b.cpu_times()[:2]) for b in brokers]
                t0 = time.perf_counter()
                for i in range(RECORDS):
                    while True:
                        try:
                            p.produce(topic, payload, key=b"k%d" % (i % KEYS))
                            break
                        except BufferError:
                            p.poll(0.001)
                p.flush(60)
                dt = time.perf_counter() - t0
                c1 = me.cpu_times()
                b1 = [sum(b.cpu_times()[:2]) for b in brokers]
                client = (c1.user + c1.system - c0.user - c0.system) / dt * 100
                print(f"| {topic} | {extra or 'default'} | {RECORDS / dt:,.0f} | {client:.0f} | "
                      f"{', '.join(str(round((y - x) / dt * 100)) for x, y in zip(b0, b1))} | "
                      f"{os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
