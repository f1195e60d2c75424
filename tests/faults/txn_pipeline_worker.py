"""A consume-transform-produce worker for the exactly-once fault test (run as a script):
reads ``source`` in group ``group`` (read_committed), writes each value upper-cased to the
same partition of ``sink`` and commits the consumed offsets in the same transaction, one
transaction per batch. Prints ``committed N`` after each commit. The test SIGKILLs it at
random moments and starts it again under the same transactional.id.

    python txn_pipeline_worker.py BOOTSTRAP SOURCE SINK GROUP TRANSACTIONAL_ID BATCH
"""
from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, Producer


def main(bootstrap: str, source: str, sink: str, group: str, txn_id: str, batch: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                         "transaction.timeout.ms": 30000})
    # Before the consumer reads its offsets: the previous incarnation's transaction is
    # aborted (or its commit finished) by the time this returns.
    producer.init_transactions(60)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": txn_id,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "session.timeout.ms": 6000})
    consumer.subscribe([source])
    done = 0
    idle_since = time.monotonic()
    while True:
        msgs = [m for m in consumer.consume(num_messages=batch, timeout=0.5) if m.error() is None]
        if not msgs:
            if time.monotonic() - idle_since > 10:
                # Diagnostics for a stalled run: where the consumer stands.
                idle_since = time.monotonic()
                print("idle", [(tp.partition, tp.offset) for tp in consumer.position(consumer.assignment())],
                      flush=True)
            continue
        idle_since = time.monotonic()
        producer.begin_transaction()
        for m in msgs:
            producer.produce(sink, m.value().upper(), key=m.key(), partition=m.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 60)
        producer.commit_transaction(60)
        done += len(msgs)
        print(f"committed {done}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]))
