"""`pybroker scale` on real broker processes: a 3-broker cluster grows to 5, the new
brokers appear in Metadata and DescribeCluster, a partition moves onto them with
`pybroker reassign-partitions`, they serve every acknowledged record with the old
replicas out of the way, and a restart with the old `--brokers 3` brings all 5 back."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.timeout(180)

CLUSTER_ARGS = ["--broker-config", "replica_lag_time_max_ms=3000"]
RECORDS = 5_000


def pybroker(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", *argv],
                          capture_output=True, text=True, timeout=90)


def _broker_ids(bootstrap: str) -> tuple[list[int], list[int]]:
    """Broker ids as Metadata and as DescribeCluster give them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = sorted(admin.list_topics(timeout=15).brokers)
    described = sorted(node.id for node in admin.describe_cluster(request_timeout=15).result(15).nodes)
    return metadata, described


def _assert_every_ack_read_once(faults, cluster, bootstrap: str, topic: str, ledger) -> None:
    end = max(offset for _, offset, _ in ledger.acked.values()) + 1

    def covered():
        part = cluster.partition(topic, 0)
        return part is not None and cluster.live_leader(topic, 0) is not None and (part["high_watermark"] or 0) >= end
    faults.wait_for(covered, faults.CONVERGE_TIMEOUT, f"the high watermark of {topic}-0 to reach {end}")
    counts = faults.read_back(bootstrap, topic, [0])
    lost = [seq for seq in ledger.acked if counts[seq] == 0]
    assert not lost, f"{len(lost)} acknowledged records lost, first {lost[:5]}"
    assert all(n == 1 for n in counts.values())


def test_scaled_up_brokers_take_a_moved_partition_and_survive_a_restart(fault_cluster, faults, topic, tmp_path):
    cluster = fault_cluster(3, CLUSTER_ARGS)
    faults.create_topic(cluster.bootstrap, topic, partitions=1, replication=3)
    producer = faults.SequenceProducer(cluster.bootstrap, topic)
    producer.send(RECORDS, partition=0)
    assert producer.flush() == 0 and not producer.ledger.failed
    producer.close()
    cluster.wait_full_isr(topic, [0])

    scaled = pybroker("scale", "--data", str(cluster.data_dir), "--brokers", "5")
    assert scaled.returncode == 0, scaled.stderr
    assert scaled.stdout.splitlines()[0] == "brokers: 5 (0,1,2,3,4)"
    assert _broker_ids(cluster.bootstrap) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    # Existing partitions stay where they are, as in Kafka.
    assert sorted(cluster.partition(topic, 0)["replicas"]) == [0, 1, 2]
    new_addresses = [f"{b['host']}:{b['port']}" for b in cluster.status()["brokers"] if b["id"] in (3, 4)]
    # New topics may use every broker.
    wide = f"{topic}-wide"
    faults.create_topic(cluster.bootstrap, wide, partitions=1, replication=5)

    plan = tmp_path / "move.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [3, 4]}]}))
    started = pybroker("reassign-partitions", "--bootstrap-server", cluster.bootstrap, "--execute",
                       "--reassignment-json-file", str(plan))
    assert started.returncode == 0, started.stdout + started.stderr

    def moved():
        out = pybroker("reassign-partitions", "--bootstrap-server", cluster.bootstrap, "--verify",
                       "--reassignment-json-file", str(plan))
        return f"Reassignment of partition {topic}-0 is completed." in out.stdout
    faults.wait_for(moved, 60, "the move onto brokers 3 and 4")
    cluster.wait_full_isr(topic, [0])
    assert cluster.partition(topic, 0)["replicas"] == [3, 4]
    # The old leader is gone, and so is the new one: broker 4 alone serves everything.
    cluster.kill_broker(0)
    cluster.kill_broker(3)
    faults.wait_for(lambda: cluster.live_leader(topic, 0) == 4, faults.CONVERGE_TIMEOUT, "broker 4 to lead")
    _assert_every_ack_read_once(faults, cluster, new_addresses[1], topic, producer.ledger)

    # `up --brokers 3` (the old count) on the data dir brings all five back, and says so.
    cluster.restart()
    assert "brokers: 5, as the data dir has (--brokers 3 removes none" in cluster.log_text()
    # The restarted brokers register one by one after `bootstrap:`.
    faults.wait_for(lambda: _broker_ids(cluster.bootstrap) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]), 30,
                    "all five brokers registered again")
    assert sorted(cluster.partition(wide, 0)["replicas"]) == [0, 1, 2, 3, 4]
    cluster.wait_full_isr(topic, [0])
    _assert_every_ack_read_once(faults, cluster, cluster.bootstrap, topic, producer.ledger)
