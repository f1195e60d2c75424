"""What transactions cost, on one 3-broker pybroker cluster (RF 3, min ISR 2), in one run:

- produce: ``--records`` records of ``--size`` bytes to partition 0 with confluent-kafka,
  idempotent (acks=all) against transactional, committing every ``--per-txn`` records;
- consume: the transactional topic read back from the start with read_uncommitted and
  read_committed (the broker answers the latter up to the LSO, with the aborted
  transactions in range; the client skips the markers either way).

Rounds alternate the targets (A B A B ...) on a shared machine; the table gives medians
and ranges over ``--rounds``, and the load average.

    python perf/txn_bench.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import consume_throughput, produce_throughput  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

PRODUCER_CONF = {
    "linger.ms": 5, "batch.size": 1_000_000, "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
}


def create(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 3, config={"min.insync.replicas": "2"})])[name].result(30)


def transactional_produce(bootstrap: str, topic: str, records: int, size: int, per_txn: int, txn_id: str) -> float:
    """Seconds to produce ``records`` in transactions of ``per_txn`` records, all committed."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, **PRODUCER_CONF})
    producer.init_transactions(30)
    payload = os.urandom(size)
    produce = producer.produce
    start = time.perf_counter()
    sent = 0
    while sent < records:
        producer.begin_transaction()
        for _ in range(min(per_txn, records - sent)):
            while True:
                try:
                    produce(topic, payload, partition=0)
                    break
                except BufferError:
                    producer.poll(0.005)
        sent += min(per_txn, records - sent)
        producer.commit_transaction(60)
    return time.perf_counter() - start


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--per-txn", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"idempotent": [], "transactional": [], "read_uncommitted": [],
                                     "read_committed": []}
    with tempfile.TemporaryDirectory() as tmp, BrokerCluster(data_dir=tmp, brokers=3) as cluster:
        bs = cluster.bootstrap
        for n in range(args.rounds):
            idem, txn = f"idem-{n}", f"txn-{n}"
            create(bs, idem)
            create(bs, txn)
            time.sleep(1.0)
            # A B, then B A next round, so neither always runs on a warmer machine.
            order = ["idempotent", "transactional"] if n % 2 == 0 else ["transactional", "idempotent"]
            for kind in order:
                if kind == "idempotent":
                    secs = produce_throughput({"bootstrap.servers": bs, "enable.idempotence": True}, idem,
                                              args.records, args.size, "all", 120)
                else:
                    secs = transactional_produce(bs, txn, args.records, args.size, args.per_txn, f"bench-{n}")
                rates[kind].append(args.records / secs)
            isolations = ["read_uncommitted", "read_committed"] if n % 2 == 0 else ["read_committed", "read_uncommitted"]
            for isolation in isolations:
                got, secs = consume_throughput({"bootstrap.servers": bs}, txn, 120, isolation, args.records)
                rates[isolation].append(got / secs)
    load = os.getloadavg()
    print(f"{args.records:,} records x {args.size} B, 1 partition, RF 3 min ISR 2, 3-broker cluster, "
          f"{args.rounds} rounds (median, range); transactions of {args.per_txn:,} records; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| operation | records/s | ratio |")
    print("|---|---:|---:|")
    base = statistics.median(rates["idempotent"])
    print(f"| produce, idempotent acks=all | {spread(rates['idempotent'])} | 1.00 |")
    print(f"| produce, transactional | {spread(rates['transactional'])} | "
          f"**{statistics.median(rates['transactional']) / base:.2f}** |")
    base = statistics.median(rates["read_uncommitted"])
    print(f"| consume, read_uncommitted | {spread(rates['read_uncommitted'])} | 1.00 |")
    print(f"| consume, read_committed | {spread(rates['read_committed'])} | "
          f"**{statistics.median(rates['read_committed']) / base:.2f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
