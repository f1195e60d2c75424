"""Partition reassignment in the controller (Kafka's AlterPartitionReassignments): the
replica set grows to target + current, shrinks to the target in the AlterPartition that
brings the last target replica into the ISR, the errors Kafka answers, cancel, and the
records that rebuild an unfinished reassignment after a restart."""
from __future__ import annotations

import random

import pytest

from pybroker import errors
from pybroker.cluster import reassignment
from pybroker.cluster.controller import Controller
from pybroker.cluster.metadata import BrokerInfo, PartitionState


def _controller(brokers: int = 4) -> Controller:
    c = Controller(rng=random.Random(3))
    for i in range(brokers):
        c.register_broker(BrokerInfo(i, "127.0.0.1", 9092 + i))
    c.create_topic("t", 2, 1, assignments=[[0], [1]])
    c.create_topic("r3", 1, 3, assignments=[[0, 1, 2]])
    c.take_records()
    return c


def _isr_join(c: Controller, key, *joining: int):
    """The leader's AlterPartition adding ``joining`` to the ISR."""
    s = c.partitions[key]
    return c.alter_partition(key[0], key[1], s.leader, s.leader_epoch, s.partition_epoch, list(s.isr) + list(joining))


def test_start_adds_target_replicas_as_followers_outside_the_isr():
    c = _controller()
    results, delta = c.alter_partition_reassignments([("t", 0, [0, 1, 2])])
    assert results == [None]
    s = c.partitions[("t", 0)]
    assert (s.replicas, s.isr, s.adding_replicas, s.removing_replicas) == ((0, 1, 2), (0,), (1, 2), ())
    assert (s.leader, s.leader_epoch, s.partition_epoch) == (0, 0, 1)
    # Not under-replicated for the replicas still catching up (Kafka counts the original set).
    assert not s.under_replicated
    assert [p.key for p in delta.partitions] == [("t", 0)]
    assert [r["type"] for r in c.take_records()] == ["partition"]


def test_completes_when_the_last_target_replica_joins_the_isr():
    c = _controller()
    c.alter_partition_reassignments([("t", 0, [1, 2])])
    s = c.partitions[("t", 0)]
    assert (s.replicas, s.adding_replicas, s.removing_replicas) == ((1, 2, 0), (1, 2), (0,))
    half, _ = _isr_join(c, ("t", 0), 1)
    assert half.reassigning and set(half.isr) == {0, 1} and half.leader == 0
    done, delta = _isr_join(c, ("t", 0), 2)
    # The leader was removed: the first target replica in the ISR leads, epoch bumped.
    assert (done.replicas, done.isr, done.leader) == ((1, 2), (1, 2), 1)
    assert not done.reassigning and done.leader_epoch == s.leader_epoch + 1
    assert [p.key for p in delta.partitions] == [("t", 0)]
    # Partition 0's replica count is the topic's (new partitions get it, as in Kafka).
    assert c.topics["t"].replication_factor == 2 and delta.topics == [c.topics["t"]]


def test_a_kept_leader_stays_but_removing_a_replica_bumps_the_epoch():
    c = _controller()
    c.alter_partition_reassignments([("r3", 0, [0, 1, 3])])
    s = c.partitions[("r3", 0)]
    assert (s.replicas, s.adding_replicas, s.removing_replicas) == ((0, 1, 3, 2), (3,), (2,))
    done, _ = _isr_join(c, ("r3", 0), 3)
    assert (done.replicas, done.isr, done.leader) == ((0, 1, 3), (0, 1, 3), 0)
    assert done.leader_epoch == s.leader_epoch + 1


def test_pure_removal_and_reordering_complete_at_once():
    c = _controller()
    c.alter_partition_reassignments([("r3", 0, [2, 1])])
    s = c.partitions[("r3", 0)]
    # The removed leader gives way to the first target replica in the ISR.
    assert (s.replicas, s.isr, s.leader, s.leader_epoch) == ((2, 1), (1, 2), 2, 1)
    assert not s.reassigning
    c.alter_partition_reassignments([("r3", 0, [1, 2])])
    s2 = c.partitions[("r3", 0)]
    # A valid leader stays (the preferred-leader check moves it later); same set: no epoch bump.
    assert (s2.replicas, s2.leader, s2.leader_epoch) == ((1, 2), 2, 1)


def test_an_unchanged_target_records_nothing():
    c = _controller()
    results, delta = c.alter_partition_reassignments([("r3", 0, [0, 1, 2])])
    assert results == [None] and not delta and c.take_records() == []


@pytest.mark.parametrize("topic, index, target, error, message", [
    ("nope", 0, [0], errors.UnknownTopicOrPartition, "Unable to find a topic named nope."),
    ("t", 5, [0], errors.UnknownTopicOrPartition, "Unable to find partition t:5."),
    ("t", 0, [], errors.InvalidReplicaAssignment, "empty replica list"),
    ("t", 0, [0, 7], errors.InvalidReplicaAssignment, "includes broker 7, but no such broker is registered"),
    ("t", 0, [1, 0, 1], errors.InvalidReplicaAssignment, "includes the broker 1 more than once"),
    ("t", 0, None, errors.NoReassignmentInProgress, "No partition reassignment is in progress."),
])
def test_refusals_are_kafkas(topic, index, target, error, message):
    c = _controller()
    (result,), delta = c.alter_partition_reassignments([(topic, index, target)])
    assert isinstance(result, error) and message in str(result)
    assert not delta and c.take_records() == []


def test_replication_factor_change_can_be_refused():
    c = _controller()
    (refused, moved), _ = c.alter_partition_reassignments([("t", 0, [1, 2]), ("t", 1, [2])],
                                                          allow_replication_factor_change=False)
    assert isinstance(refused, errors.InvalidReplicationFactor)
    assert "changed from 1 to 2" in str(refused)
    assert moved is None and c.partitions[("t", 1)].adding_replicas == (2,)


def test_a_dead_broker_may_be_a_target_and_catches_up_when_back():
    c = _controller()
    c.broker_failed(3)
    (result,), _ = c.alter_partition_reassignments([("t", 0, [0, 3])])
    assert result is None and c.partitions[("t", 0)].adding_replicas == (3,)
    with pytest.raises(errors.IneligibleReplica):
        _isr_join(c, ("t", 0), 3)


def test_cancel_takes_the_adding_replicas_back_out():
    c = _controller()
    c.alter_partition_reassignments([("r3", 0, [3, 1, 2])])
    s = c.partitions[("r3", 0)]
    (result,), delta = c.alter_partition_reassignments([("r3", 0, None)])
    back = c.partitions[("r3", 0)]
    assert result is None
    assert (back.replicas, back.isr, back.leader, back.reassigning) == ((1, 2, 0), (0, 1, 2), 0, False)
    assert back.leader_epoch == s.leader_epoch + 1  # broker 3 left the replica set


def test_cancel_needing_an_unclean_election_is_refused_unless_the_topic_allows_it():
    c = _controller()
    c.alter_partition_reassignments([("t", 0, [0, 2])])
    _isr_join(c, ("t", 0), 2)  # completes: [0, 2]
    c.alter_partition_reassignments([("t", 0, [3])])
    s = c.partitions[("t", 0)]
    assert (s.replicas, s.adding_replicas, s.removing_replicas) == ((3, 0, 2), (3,), (0, 2))
    # As if 3 had joined the ISR and then 0 and 2 had fallen out of it.
    c.partitions[("t", 0)] = PartitionState(s.topic, s.partition, 3, s.leader_epoch + 1, s.partition_epoch + 1,
                                            s.replicas, (3,), s.adding_replicas, s.removing_replicas)
    (refused,), _ = c.alter_partition_reassignments([("t", 0, None)])
    assert isinstance(refused, errors.InvalidReplicaAssignment) and "unclean leader election" in str(refused)
    c.alter_topic_config("t", [("unclean.leader.election.enable", 0, "true")], incremental=True)
    (result,), _ = c.alter_partition_reassignments([("t", 0, None)])
    back = c.partitions[("t", 0)]
    assert result is None and (back.replicas, back.isr, back.leader) == ((0, 2), (0,), 0)


def test_a_new_target_during_a_reassignment_starts_from_the_whole_replica_set():
    c = _controller()
    c.alter_partition_reassignments([("t", 0, [1, 2])])
    c.alter_partition_reassignments([("t", 0, [3])])
    s = c.partitions[("t", 0)]
    assert (s.replicas, s.adding_replicas, s.removing_replicas) == ((3, 0, 1, 2), (3,), (0, 1, 2))


def test_replay_rebuilds_an_unfinished_reassignment():
    c = _controller()
    records = []
    c.alter_partition_reassignments([("t", 0, [1, 2, 3])])
    records += c.take_records()
    _isr_join(c, ("t", 0), 2)
    records += c.take_records()
    fresh = Controller()
    for record in records:
        fresh.replay(record)
    assert fresh.partitions[("t", 0)] == c.partitions[("t", 0)]
    assert fresh.partitions[("t", 0)].adding_replicas == (1, 2, 3)


def test_pure_steps():
    change = reassignment.start([0, 1, 2], [2, 3], [0, 1, 2])
    assert change == reassignment.ReplicaChange((2, 3, 0, 1), (0, 1, 2), (3,), (0, 1))
    assert reassignment.complete(change) is None
    done = reassignment.complete(reassignment.ReplicaChange(change.replicas, (0, 1, 2, 3), (3,), (0, 1)))
    assert done == reassignment.ReplicaChange((2, 3), (2, 3))
    assert reassignment.revert((2, 3, 0, 1), (3,), (3, 0)) == (reassignment.ReplicaChange((2, 0, 1), (0,)), False)
    assert reassignment.revert((2, 3, 0, 1), (2, 3), (3,)) == (reassignment.ReplicaChange((0, 1), (0,)), True)
    assert reassignment.replication_factor((2, 3, 0, 1), (3,), (0, 1)) == 2
