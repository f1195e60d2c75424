"""Partition reassignment on real broker processes: RF 1 grown to RF 3 while producing
(every acknowledged record then served by the new replicas with the old leader dead), a
partition moved off its leader's broker with the command-line tool while producing, a stuck move listed, described
and cancelled, and moves that outlive a SIGKILLed supervisor or a crash of the whole
cluster and complete after the restart."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker import errors
from pybroker.client.admin import Admin
from pybroker.protocol import api

pytestmark = pytest.mark.timeout(180)

CLUSTER_ARGS = ["--broker-config", "replica_lag_time_max_ms=3000"]
MOVE_TIMEOUT_S = 30.0


def _create(bootstrap: str, topic: str, assignment: list[list[int]], config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    spec = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment, config=config or {})
    admin.create_topics([spec])[topic].result(15)


def _cluster_with_records(fault_cluster, faults, topic: str, brokers: int, assignment: list[list[int]],
                          records: int, config: dict | None = None):
    """A cluster, ``topic`` with this replica assignment, and ``records`` acknowledged
    records in partition 0 (the producer is returned to send more)."""
    cluster = fault_cluster(brokers, CLUSTER_ARGS)
    _create(cluster.bootstrap, topic, assignment, config)
    producer = faults.SequenceProducer(cluster.bootstrap, topic)
    producer.send(records, partition=0)
    assert producer.flush() == 0
    return cluster, producer


def _wait_moved(faults, admin: Admin, topic: str, index: int, replicas: list[int], what: str) -> None:
    faults.wait_for(lambda: not admin.list_partition_reassignments([(topic, index)]), MOVE_TIMEOUT_S, what)
    part = admin.describe_topics([topic])[0].partitions[index]
    assert list(part.replicas) == replicas
    assert sorted(part.isr) == sorted(replicas)


def _assert_every_ack_read_once(faults, cluster, topic: str, ledger) -> None:
    # A new leader's high watermark moves up once its followers fetch: read when it
    # covers every acknowledged offset (a missing record then shows as lost).
    end = max(offset for _, offset, _ in ledger.acked.values()) + 1

    def covered():
        part = cluster.partition(topic, 0)
        return part is not None and (part["high_watermark"] or 0) >= end
    faults.wait_for(covered, faults.CONVERGE_TIMEOUT, f"the high watermark of {topic}-0 to reach {end}")
    counts = faults.read_back(cluster.bootstrap, topic, [0])
    lost = [seq for seq in ledger.acked if counts[seq] == 0]
    duplicated = [seq for seq, n in counts.items() if n > 1]
    assert not lost, f"{len(lost)} acknowledged records lost, first {lost[:5]}"
    assert not duplicated, f"{len(duplicated)} records read twice, first {duplicated[:5]}"


@contextlib.contextmanager
def _producing(producer):
    """Sends from a thread of its own until the block ends, then flushes: nothing may
    fail. Yields a function counting the acknowledged records so far."""
    stop = threading.Event()

    def keep_producing():
        while not stop.is_set():
            producer.send(200, partition=0)
            producer.producer.poll(0.01)

    writer = threading.Thread(target=keep_producing, daemon=True)
    writer.start()
    try:
        time.sleep(0.3)
        yield lambda: len(producer.ledger.acked)
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join(10)
    assert producer.flush() == 0
    assert not producer.ledger.failed, list(producer.ledger.failed.items())[:3]


def test_growing_rf1_to_rf3_while_producing_keeps_every_acked_record(fault_cluster, faults, topic):
    cluster, producer = _cluster_with_records(fault_cluster, faults, topic, 3, [[0]], 20_000)
    with Admin(cluster.bootstrap) as admin, _producing(producer) as acked:
        acked_at_start = acked()
        assert admin.alter_partition_reassignments({(topic, 0): [0, 1, 2]}) == {(topic, 0): None}
        _wait_moved(faults, admin, topic, 0, [0, 1, 2], "the adding replicas to catch up")
        assert acked() > acked_at_start, "nothing was acknowledged while the replicas were added"
    producer.close()
    # The old (and only original) replica dies: the new ones serve everything acked.
    cluster.kill_broker(0)
    faults.wait_for(lambda: cluster.live_leader(topic, 0) in (1, 2), faults.CONVERGE_TIMEOUT, "a new leader")
    _assert_every_ack_read_once(faults, cluster, topic, producer.ledger)


def _tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "reassign-partitions", *argv,
                           "--bootstrap-server", bootstrap], capture_output=True, text=True, timeout=60)


def test_moving_a_partition_off_a_broker_with_the_tool(fault_cluster, faults, topic, tmp_path):
    cluster, producer = _cluster_with_records(fault_cluster, faults, topic, 4, [[0, 1, 2]], 5_000,
                                              {"min.insync.replicas": "2"})
    cluster.wait_full_isr(topic, [0])
    plan = tmp_path / "move.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [1, 2, 3]}]}))

    def verified():
        out = _tool(cluster.bootstrap, "--verify", "--reassignment-json-file", str(plan))
        return out if f"Reassignment of partition {topic}-0 is completed." in out.stdout else None
    # The leader leaves the replica set while an idempotent acks=all producer writes.
    with _producing(producer):
        started = _tool(cluster.bootstrap, "--execute", "--reassignment-json-file", str(plan))
        assert started.returncode == 0, started.stdout + started.stderr
        # The rollback plan names each current replica's log directory, as Kafka 4.4's tool does.
        assert started.stdout.splitlines()[2] == json.dumps(
            {"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [0, 1, 2],
                                           "log_dirs": [str(cluster.data_dir / f"broker-{b}") for b in (0, 1, 2)]}]},
            separators=(",", ":"))
        assert started.stdout.endswith(f"Successfully started partition reassignment for {topic}-0\n")
        done = faults.wait_for(verified, MOVE_TIMEOUT_S, "--verify to report the move completed")
    assert done.stdout.endswith("Clearing broker-level throttles on brokers 0,1,2,3\n"
                                f"Clearing topic-level throttles on topic {topic}\n")
    # Broker 0 led the partition; the first target replica in the ISR leads now.
    faults.wait_for(lambda: cluster.live_leader(topic, 0) == 1, faults.CONVERGE_TIMEOUT, "broker 1 to lead")
    faults.wait_for(lambda: not (cluster.data_dir / "broker-0" / f"{topic}-0").exists(), faults.CONVERGE_TIMEOUT,
                    "broker 0 to delete its replica")
    # acks=all goes on with the new replica set, and everything is there once.
    producer.send(1_000, partition=0)
    assert producer.flush() == 0 and not producer.ledger.failed
    producer.close()
    _assert_every_ack_read_once(faults, cluster, topic, producer.ledger)


def test_a_stuck_move_is_listed_described_and_cancelled(fault_cluster, faults, topic, tmp_path):
    cluster, producer = _cluster_with_records(fault_cluster, faults, topic, 3, [[0, 1]], 1_000)
    stopped = cluster.stop_broker(2)
    try:
        with Admin(cluster.bootstrap) as admin:
            assert admin.alter_partition_reassignments({(topic, 0): [1, 2]}) == {(topic, 0): None}
            listed = _tool(cluster.bootstrap, "--list")
            assert listed.stdout == ("Current partition reassignments:\n"
                                     f"{topic}-0: replicas: 1,2,0. adding: 2. removing: 0.\n")
            # Metadata and DescribeTopicPartitions show the whole replica set, the ISR without
            # broker 2 (leadership may already have moved to the target's first replica).
            part = admin.describe_topics([topic])[0].partitions[0]
            assert (list(part.replicas), sorted(part.isr)) == ([1, 2, 0], [0, 1]) and part.leader in (0, 1)
            described = admin.client.request_any(api.DESCRIBE_TOPIC_PARTITIONS, {"topics": [{"name": topic}]})
            (row,) = described["topics"][0]["partitions"]
            assert (row["replica_nodes"], sorted(row["isr_nodes"])) == ([1, 2, 0], [0, 1])
            assert row["leader_id"] in (0, 1)
            # Errors over the wire, as Kafka's controller gives them.
            refused = admin.alter_partition_reassignments({(topic, 0): [1, 1], (topic, 5): [0], ("nope", 0): [0]})
            assert isinstance(refused[(topic, 0)], errors.InvalidReplicaAssignment)
            assert isinstance(refused[(topic, 5)], errors.UnknownTopicOrPartition)
            assert isinstance(refused[("nope", 0)], errors.UnknownTopicOrPartition)
            plan = tmp_path / "move.json"
            plan.write_text(json.dumps({"version": 1, "partitions": [
                {"topic": topic, "partition": 0, "replicas": [1, 2]}]}))
            # Throttles stay: clearing them asks every broker, and broker 2 is stopped.
            cancelled = _tool(cluster.bootstrap, "--cancel", "--reassignment-json-file", str(plan),
                              "--preserve-throttles")
            assert (cancelled.returncode, cancelled.stdout) == (
                0, f"Successfully cancelled partition reassignment for: {topic}-0\n"
                   "None of the specified partition moves are active."), cancelled.stderr
            assert admin.list_partition_reassignments() == {}
            # As in Kafka, the replicas left are the set without the adding ones, in its order.
            part = admin.describe_topics([topic])[0].partitions[0]
            assert (list(part.replicas), sorted(part.isr)) == ([1, 0], [0, 1]) and part.leader in (0, 1)
            again = admin.alter_partition_reassignments({(topic, 0): None})
            assert isinstance(again[(topic, 0)], errors.NoReassignmentInProgress)
    finally:
        cluster.continue_broker(stopped)
    # Broker 2 hears of the move and of its cancel when it resumes: no replica stays behind.
    faults.wait_for(lambda: not (cluster.data_dir / "broker-2" / f"{topic}-0").exists()
                    and cluster.broker(2)["alive"], faults.CONVERGE_TIMEOUT, "broker 2 to drop the cancelled replica")
    producer.close()
    _assert_every_ack_read_once(faults, cluster, topic, producer.ledger)


def test_a_move_outlives_a_killed_supervisor_and_completes_under_the_next(fault_cluster, faults, topic):
    cluster, producer = _cluster_with_records(fault_cluster, faults, topic, 3, [[0]], 3_000)
    producer.close()
    stopped = cluster.stop_broker(2)
    resume = threading.Timer(2.0, cluster.continue_broker, (stopped,))
    try:
        with Admin(cluster.bootstrap) as admin:
            assert admin.alter_partition_reassignments({(topic, 0): [2, 0]}) == {(topic, 0): None}
            (ongoing,) = admin.list_partition_reassignments().values()
            assert (ongoing.replicas, ongoing.adding_replicas, ongoing.removing_replicas) == ([2, 0], [2], [])
        cluster.kill_supervisor()
        # The stopped broker resumes while the next supervisor waits to adopt it.
        resume.start()
        cluster.start()
    finally:
        resume.cancel()
        cluster.continue_broker(stopped)
    with Admin(cluster.bootstrap) as admin:
        _wait_moved(faults, admin, topic, 0, [2, 0], "the move to complete under the new supervisor")
    # Broker 2 holds it all: with broker 0 dead it serves every acknowledged record.
    cluster.kill_broker(0)
    faults.wait_for(lambda: cluster.live_leader(topic, 0) == 2, faults.CONVERGE_TIMEOUT, "broker 2 to lead")
    _assert_every_ack_read_once(faults, cluster, topic, producer.ledger)


def test_a_move_outlives_a_whole_cluster_crash(fault_cluster, faults, topic):
    cluster, producer = _cluster_with_records(fault_cluster, faults, topic, 3, [[0, 1]], 3_000)
    producer.close()
    stopped = cluster.stop_broker(2)
    with Admin(cluster.bootstrap) as admin:
        assert admin.alter_partition_reassignments({(topic, 0): [1, 2]}) == {(topic, 0): None}
    # Every process SIGKILLed mid-move (the stopped broker too); the next start resumes it.
    cluster.kill()
    cluster.continue_broker(stopped)
    cluster.start()
    with Admin(cluster.bootstrap) as admin:
        _wait_moved(faults, admin, topic, 0, [1, 2], "the move to complete after the restart")
    faults.wait_for(lambda: not (cluster.data_dir / "broker-0" / f"{topic}-0").exists(), faults.CONVERGE_TIMEOUT,
                    "broker 0 to delete its replica")
    _assert_every_ack_read_once(faults, cluster, topic, producer.ledger)
