"""Fetch from follower (KIP-392) under faults, with confluent-kafka: a consumer reading
from the follower of its rack is sent back to the leader when that follower dies (and
leaves the ISR), and follows a leader change, without losing or repeating a record. Who
served the records is read from the brokers' consumer byte counters (``bytes_out`` of
``pybroker status``)."""
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from pybroker.broker.replica_selector import RACK_AWARE_REPLICA_SELECTOR

pytestmark = pytest.mark.timeout(150)

RACKS = {0: "rack-a", 1: "rack-b", 2: "rack-c"}
CLUSTER_ARGS = [arg for node, rack in RACKS.items() for arg in ("--broker-rack", f"{node}={rack}")] + [
    "--broker-config", f"replica.selector.class={RACK_AWARE_REPLICA_SELECTOR}", "--session-timeout-ms", "2000"]
BATCH = 500


class Reader:
    """A consumer of partition 0 in ``rack``, with every offset and value it got."""

    def __init__(self, bootstrap: str, topic: str, rack: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ff-faults", "client.rack": rack,
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.offsets: list[int] = []
        self.values: list[int] = []

    def read_until(self, count: int, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.offsets) < count:
            assert time.monotonic() < deadline, f"consumed {len(self.offsets)} of {count}"
            for msg in self.consumer.consume(1000, 0.2):
                if msg.error() is None:
                    self.offsets.append(msg.offset())
                    self.values.append(int(msg.value()))

    def close(self) -> None:
        self.consumer.close()


def _bytes_out(cluster, faults) -> dict[int, int]:
    status = faults.wait_for(cluster.status, 10, "status")
    return {b["id"]: b["bytes_out"] or 0 for b in status["brokers"]}


def _sent(producer, count: int) -> None:
    producer.send(count, partition=0)
    assert producer.flush() == 0
    assert not producer.ledger.failed, producer.ledger.failed


def test_consumer_leaves_a_dead_follower_and_follows_a_leader_change(fault_cluster, faults):
    wait_for = faults.wait_for
    cluster = fault_cluster(3, CLUSTER_ARGS)
    faults.create_topic(cluster.bootstrap, "fff", 1, 3, {"min.insync.replicas": "2"})
    status = cluster.wait_full_isr("fff", [0])
    leader = cluster.partition("fff", 0, status)["leader"]
    follower = next(r for r in cluster.partition("fff", 0, status)["replicas"] if r != leader)
    producer = faults.SequenceProducer(cluster.bootstrap, "fff")
    reader = Reader(cluster.bootstrap, "fff", RACKS[follower])
    try:
        _sent(producer, BATCH)
        reader.read_until(BATCH)
        served = wait_for(lambda: (lambda b: b if b[follower] > 0 else None)(_bytes_out(cluster, faults)), 10,
                          "the follower's report")
        assert served[leader] == 0, "the leader served records a follower of the consumer's rack holds"

        # The follower dies: it leaves the ISR, and the consumer goes back to the leader.
        cluster.kill_broker(follower)
        wait_for(lambda: follower not in (cluster.partition("fff", 0) or {"isr": [follower]})["isr"], 15,
                 "the dead follower out of the ISR")
        leader_before = _bytes_out(cluster, faults)[leader]
        _sent(producer, BATCH)
        reader.read_until(2 * BATCH)
        wait_for(lambda: _bytes_out(cluster, faults)[leader] > leader_before, 10, "the leader serving the consumer")

        # A leader change: the consumer follows it (or a follower of its rack) on.
        cluster.wait_full_isr("fff", [0], what="the restarted follower back in the ISR")
        cluster.kill_broker(leader)
        wait_for(lambda: (cluster.partition("fff", 0) or {"leader": leader})["leader"] not in (leader, -1), 15,
                 "a new leader")
        _sent(producer, BATCH)
        reader.read_until(3 * BATCH)
        time.sleep(1)
        reader.read_until(3 * BATCH)  # and nothing more comes
        assert reader.offsets == list(range(3 * BATCH))
        assert sorted(reader.values) == list(range(3 * BATCH))
    finally:
        reader.close()
        producer.close()
