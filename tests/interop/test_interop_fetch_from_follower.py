"""Racks and fetch from follower (KIP-392) with confluent-kafka and the Java client
(tests/interop/java/RackConsumer.java): three brokers on three racks, a topic of
replication factor 3, a consumer whose ``client.rack`` is a follower's rack. The leader answers it with that follower as preferred read replica, and the
follower serves the records: the brokers' own consumer byte counters (``pybroker status``
``bytes_out``) show who served them."""
import asyncio
import json
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from pybroker.broker.replica_selector import RACK_AWARE_REPLICA_SELECTOR
from pybroker.cli.status import fetch_status
from pybroker.testing import wait_until

RACKS = {0: "rack-a", 1: "rack-b", 2: "rack-c"}
RACK_ARGS = [arg for node, rack in RACKS.items() for arg in ("--broker-rack", f"{node}={rack}")]
SELECTOR_ARGS = ["--broker-config", f"replica.selector.class={RACK_AWARE_REPLICA_SELECTOR}"]
RECORDS = 3000

pytestmark = pytest.mark.timeout(90)


def _racks(bootstrap: str) -> dict[int, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return {node.id: node.rack for node in admin.describe_cluster().result(15).nodes}


def _status(cluster) -> dict:
    return asyncio.run(fetch_status(str(cluster.data_dir.resolve())))


def _create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3)], operation_timeout=15)[topic].result(15)


def _produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for n in range(first, first + count):
        producer.produce(topic, str(n).encode().ljust(100, b"."), partition=0)
    assert producer.flush(30) == 0


def _leader_and_follower(cluster, topic: str) -> tuple[int, int]:
    def settled():
        part = next((p for p in _status(cluster)["partitions"] if p["topic"] == topic), None)
        return part if part and part["leader"] >= 0 and sorted(part["isr"]) == [0, 1, 2] else None
    part = wait_until(settled, 20, f"{topic} with its full ISR")
    return part["leader"], next(r for r in part["replicas"] if r != part["leader"])


def _bytes_out(cluster) -> dict[int, int]:
    return {b["id"]: b["bytes_out"] or 0 for b in _status(cluster)["brokers"]}


def _assert_served_by(cluster, follower: int, leader: int, before: dict[int, int]) -> None:
    """The follower served the records (at least their bytes, in whole batches); the
    leader none of them."""
    def counted():
        now = _bytes_out(cluster)
        return now if now[follower] - before[follower] >= RECORDS * 100 else None
    served = wait_until(counted, 10, "the follower's bytes out in its report")
    assert served[leader] == before[leader]


def test_racks_are_reported_and_persisted(pybroker_cluster_factory, tmp_path):
    cluster = pybroker_cluster_factory(brokers=3, extra_args=RACK_ARGS)
    assert _racks(cluster.bootstrap) == RACKS
    assert {b["id"]: b["rack"] for b in _status(cluster)["brokers"]} == RACKS
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    (configs,) = admin.describe_configs([ConfigResource("broker", "1")]).values()
    assert configs.result(15)["broker.rack"].value == "rack-b"
    # Rack-aware placement: with three racks every partition has a replica in each.
    _create(cluster.bootstrap, "placed", partitions=6)
    placed = [p for p in _status(cluster)["partitions"] if p["topic"] == "placed"]
    assert len(placed) == 6 and all({RACKS[r] for r in p["replicas"]} == set(RACKS.values()) for p in placed)
    assert len({p["leader"] for p in placed}) == 3
    # kafka-reassign-partitions --generate proposes a rack-aware assignment too.
    moving = tmp_path / "topics.json"
    moving.write_text(json.dumps({"topics": [{"topic": "placed"}], "version": 1}))
    generated = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "reassign-partitions", "--bootstrap-server",
                                cluster.bootstrap, "--generate", "--topics-to-move-json-file", str(moving),
                                "--broker-list", "0,1,2"], capture_output=True, text=True, timeout=30)
    assert generated.returncode == 0, generated.stderr
    proposed = json.loads(generated.stdout.split("Proposed partition reassignment configuration\n")[1])
    assert len(proposed["partitions"]) == 6
    assert all({RACKS[r] for r in p["replicas"]} == set(RACKS.values()) for p in proposed["partitions"])
    cluster.stop()
    # A start without --broker-rack keeps the racks; one naming a broker changes it.
    cluster.extra_args = [a for a in cluster.extra_args if a not in RACK_ARGS] + ["--broker-rack", "2=rack-z"]
    cluster.start()
    assert _racks(cluster.bootstrap) == {**RACKS, 2: "rack-z"}
    cli = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "status", "--data", str(cluster.data_dir)],
                         capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0 and "rack-z" in cli.stdout and "RACK" in cli.stdout


def test_consumer_reads_every_record_once_from_the_follower_in_its_rack(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=3, extra_args=RACK_ARGS + SELECTOR_ARGS)
    _create(cluster.bootstrap, "ff")
    leader, follower = _leader_and_follower(cluster, "ff")
    _produce(cluster.bootstrap, "ff", 0, RECORDS)
    before = _bytes_out(cluster)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "ff", "client.rack": RACKS[follower],
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition("ff", 0, 0)])
        offsets = []
        while len(offsets) < RECORDS:
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(offsets)} of {RECORDS} records consumed"
            assert msg.error() is None, msg.error()
            offsets.append(msg.offset())
            assert msg.value().rstrip(b".") == str(msg.offset()).encode()
        assert offsets == list(range(RECORDS))
        assert consumer.poll(1) is None
    finally:
        consumer.close()
    _assert_served_by(cluster, follower, leader, before)


@pytest.mark.timeout(300)
def test_java_consumer_with_client_rack_reads_from_the_follower(java_program, pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=3, extra_args=RACK_ARGS + SELECTOR_ARGS)
    _create(cluster.bootstrap, "ffj")
    leader, follower = _leader_and_follower(cluster, "ffj")
    _produce(cluster.bootstrap, "ffj", 0, RECORDS)
    before = _bytes_out(cluster)
    run = subprocess.run([*java_program, "RackConsumer", cluster.bootstrap, "ffj", RACKS[follower], str(RECORDS)],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert f"consumed {RECORDS} distinct {RECORDS}" in run.stdout
    _assert_served_by(cluster, follower, leader, before)
