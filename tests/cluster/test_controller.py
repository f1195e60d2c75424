import random
from collections import Counter

import pytest

from pybroker import errors
from pybroker.cluster.controller import Controller, assign_replicas
from pybroker.cluster.metadata import NO_LEADER, BrokerInfo


def _controller(n=3):
    c = Controller(rng=random.Random(7))
    for i in range(n):
        c.register_broker(BrokerInfo(i, "127.0.0.1", 9092 + i))
    return c


def test_assignment_spreads_leaders_and_replicas_evenly():
    replicas = assign_replicas([0, 1, 2], 6, 3, rng=random.Random(1))
    assert all(len(set(r)) == 3 for r in replicas)
    assert Counter(r[0] for r in replicas) == {0: 2, 1: 2, 2: 2}


def test_replication_factor_above_live_brokers_is_refused():
    c = _controller(2)
    with pytest.raises(errors.InvalidReplicationFactor):
        c.create_topic("t", 1, 3)


def test_created_topic_has_leader_and_full_isr_and_is_recorded():
    c = _controller()
    topic, delta = c.create_topic("t", 3, 3)
    assert len(delta.partitions) == 3
    for state in delta.partitions:
        assert state.leader == state.replicas[0] and state.isr == state.replicas
    replayed = Controller()
    for record in c.take_records():
        replayed.replay(record)
    assert replayed.partitions == c.partitions and replayed.topics.keys() == {"t"}


def test_leader_death_elects_next_in_sync_replica_and_bumps_epochs():
    c = _controller()
    c.create_topic("t", 1, 3)
    before = c.partitions[("t", 0)]
    delta = c.broker_failed(before.leader)
    after = c.partitions[("t", 0)]
    assert after.leader == before.replicas[1]
    assert before.leader not in after.isr
    assert after.leader_epoch == before.leader_epoch + 1 and after.partition_epoch > before.partition_epoch
    assert after in delta.partitions


def test_no_in_sync_replica_means_offline_until_it_returns():
    c = _controller()
    c.create_topic("t", 1, 3)
    state = c.partitions[("t", 0)]
    c.alter_partition("t", 0, state.leader, state.leader_epoch, state.partition_epoch, [state.leader])
    c.broker_failed(state.leader)
    offline = c.partitions[("t", 0)]
    assert offline.leader == NO_LEADER and offline.isr == (state.leader,)
    c.register_broker(BrokerInfo(state.leader, "127.0.0.1", 1))
    assert c.partitions[("t", 0)].leader == state.leader


def test_unclean_election_picks_a_live_replica_when_the_topic_allows_it():
    c = _controller()
    c.create_topic("t", 1, 3, configs={"unclean.leader.election.enable": "true"})
    state = c.partitions[("t", 0)]
    c.alter_partition("t", 0, state.leader, state.leader_epoch, state.partition_epoch, [state.leader])
    c.broker_failed(state.leader)
    assert c.partitions[("t", 0)].leader == state.replicas[1]


def test_alter_partition_is_fenced_by_epochs_and_eligibility():
    c = _controller()
    c.create_topic("t", 1, 3)
    s = c.partitions[("t", 0)]
    with pytest.raises(errors.InvalidUpdateVersion):
        c.alter_partition("t", 0, s.leader, s.leader_epoch, s.partition_epoch + 1, [s.leader])
    with pytest.raises(errors.FencedLeaderEpoch):
        c.alter_partition("t", 0, s.leader, s.leader_epoch - 1, s.partition_epoch, [s.leader])
    with pytest.raises(errors.IneligibleReplica):
        c.alter_partition("t", 0, s.leader, s.leader_epoch, s.partition_epoch, [s.replicas[1]])
    new, _ = c.alter_partition("t", 0, s.leader, s.leader_epoch, s.partition_epoch, [s.leader, s.replicas[1]])
    assert new.isr == (s.leader, s.replicas[1]) and new.partition_epoch == s.partition_epoch + 1


def test_preferred_leader_returns_after_restart_and_catch_up():
    c = _controller()
    c.create_topic("t", 1, 3)
    s = c.partitions[("t", 0)]
    c.broker_failed(s.leader)
    c.register_broker(BrokerInfo(s.leader, "127.0.0.1", 1))
    mid = c.partitions[("t", 0)]
    assert mid.leader != s.leader
    assert not c.elect_preferred_leaders()  # not in the ISR yet
    c.alter_partition("t", 0, mid.leader, mid.leader_epoch, mid.partition_epoch, list(mid.isr) + [s.leader])
    c.elect_preferred_leaders()
    assert c.partitions[("t", 0)].leader == s.leader


def test_partitions_grow_but_never_shrink():
    c = _controller()
    c.create_topic("t", 2, 2)
    c.create_partitions("t", 4)
    assert c.topics["t"].partitions == 4 and ("t", 3) in c.partitions
    with pytest.raises(errors.InvalidPartitions, match="never be reduced"):
        c.create_partitions("t", 1)


def test_delete_topic_forgets_partitions():
    c = _controller()
    c.create_topic("t", 2, 1)
    c.delete_topic("t")
    assert not c.partitions and not c.topics
    with pytest.raises(errors.UnknownTopicOrPartition):
        c.delete_topic("t")
