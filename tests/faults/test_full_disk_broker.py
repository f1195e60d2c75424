"""A broker whose data dir fills up (a real 64 MiB tmpfs): produce until the broker
answers KAFKA_STORAGE_ERROR; it stays up, loses nothing acknowledged, frees the space
when the topic filling it is deleted (nothing comes back as -stray after a restart),
and accepts writes again on its own."""
from __future__ import annotations

import os
import sys

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.timeout(240)

VALUE = b"x" * 1000


def produce_until_full(bootstrap: str, topic: str, rounds: int = 200) -> tuple[int, set[str]]:
    from confluent_kafka import Producer

    acked, errors = 0, set()

    def on_delivery(err, _msg):
        nonlocal acked
        if err is None:
            acked += 1
        else:
            errors.add(err.name())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": 5000, "retries": 0})
    for _ in range(rounds):
        for _ in range(2000):
            producer.produce(topic, VALUE, on_delivery=on_delivery)
            producer.poll(0)
        producer.flush(30)
        if errors:
            break
    producer.flush(10)
    return acked, errors


def test_full_disk_delete_frees_space_and_the_broker_recovers(fault_cluster, faults, topic, small_filesystem,
                                                             tmp_path):
    data = tmp_path / "cluster"
    data.mkdir()
    # Only the broker's data dir is on the small disk: the supervisor's metadata is not.
    os.symlink(small_filesystem.path, data / "broker-0")
    cluster = fault_cluster(brokers=1, data_dir=data)
    kept = f"{topic}-kept"
    filler = f"{topic}-filler"
    faults.create_topic(cluster.bootstrap, kept, replication=1)
    faults.create_topic(cluster.bootstrap, filler, replication=1, config={"segment.bytes": str(1 << 20)})
    producer = faults.SequenceProducer(cluster.bootstrap, kept)
    producer.send(2000)
    assert producer.flush(30) == 0 and len(producer.ledger.acked) == 2000
    producer.close()

    acked, errors = produce_until_full(cluster.bootstrap, filler)
    assert errors and errors <= {"KAFKA_STORAGE_ERROR", "_MSG_TIMED_OUT"}, errors
    assert "KAFKA_STORAGE_ERROR" in errors
    left = small_filesystem.free_bytes()
    assert left < 4 << 20
    small_filesystem.fill(".filler")  # the last bytes too: not even a checkpoint fits now
    full = small_filesystem.free_bytes()
    assert cluster.broker(0)["alive"], "the broker must stay up on a full disk"

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.delete_topics([filler], operation_timeout=15)[filler].result(20)

    def freed():
        leftovers = [n for n in os.listdir(small_filesystem.path) if n.startswith(filler)]
        return not leftovers and small_filesystem.free_bytes() > small_filesystem.size // 2
    faults.wait_for(freed, 30, "the deleted topic's files and space to go")

    # Writes work again without a restart, and nothing acknowledged before was lost.
    after = faults.SequenceProducer(cluster.bootstrap, kept)
    after.next_seq = 2000
    after.send(500)
    assert after.flush(30) == 0 and len(after.ledger.acked) == 500 and not after.ledger.failed
    after.close()
    verdict = faults.check(faults.Ledger(acked={**producer.ledger.acked, **after.ledger.acked}),
                           faults.read_back(cluster.bootstrap, kept, [0]))
    assert verdict.lost == [] and verdict.duplicated == [], verdict.as_dict()

    cluster.restart()
    assert not [n for n in os.listdir(small_filesystem.path) if n.startswith(filler)], \
        os.listdir(small_filesystem.path)
    print(f"\nfull disk: {acked} filler records acked before KAFKA_STORAGE_ERROR, {left} bytes free at the first error, "
          f"{small_filesystem.free_bytes()} after the delete; 0 of 2500 acked records lost", file=sys.stderr)
