"""ElectLeaders in the controller (KIP-460): preferred and unclean elections, the answers
Kafka gives when none is needed or possible, and the published partition states."""
from __future__ import annotations

import random

from pybroker import errors
from pybroker.cluster.controller import Controller
from pybroker.cluster.metadata import NO_LEADER, BrokerInfo


def _controller() -> Controller:
    c = Controller(rng=random.Random(3))
    for i in range(3):
        c.register_broker(BrokerInfo(i, "127.0.0.1", 9092 + i))
    c.create_topic("t", 2, 3)
    return c


def test_preferred_election_moves_leadership_back_to_the_first_replica():
    c = _controller()
    state = c.partitions[("t", 0)]
    preferred = state.replicas[0]
    c.broker_failed(preferred)
    c.register_broker(BrokerInfo(preferred, "127.0.0.1", 9092 + preferred))
    moved = c.partitions[("t", 0)]
    assert moved.leader != preferred
    # Back in the ISR (as a follower that caught up would be).
    c.partitions[("t", 0)] = moved.__class__(**{**moved.__dict__, "isr": moved.isr + (preferred,)})
    results, delta = c.elect_leaders(False, [("t", 0), ("t", 1), ("t", 7)])
    assert results[("t", 0)] is None and c.partitions[("t", 0)].leader == preferred
    assert c.partitions[("t", 0)].leader_epoch == moved.leader_epoch + 1
    assert [s.key for s in delta.partitions] == [("t", 0)]
    assert isinstance(results[("t", 1)], errors.ElectionNotNeeded)
    assert isinstance(results[("t", 7)], errors.UnknownTopicOrPartition)


def test_preferred_election_needs_the_preferred_replica_in_sync():
    c = _controller()
    preferred = c.partitions[("t", 1)].replicas[0]
    c.broker_failed(preferred)
    results, _ = c.elect_leaders(False, [("t", 1)])
    assert isinstance(results[("t", 1)], errors.PreferredLeaderNotAvailable)


def test_every_partition_answers_only_what_was_elected_or_failed():
    c = _controller()
    results, delta = c.elect_leaders(False, None)
    assert results == {} and not delta


def test_unclean_election_picks_a_live_replica_outside_the_isr():
    c = _controller()
    state = c.partitions[("t", 0)]
    for b in state.replicas:
        c.broker_failed(b)
    assert c.partitions[("t", 0)].leader == NO_LEADER
    last = c.partitions[("t", 0)].isr
    outsider = next(b for b in state.replicas if b not in last)
    c.register_broker(BrokerInfo(outsider, "127.0.0.1", 9092 + outsider))
    assert c.partitions[("t", 0)].leader == NO_LEADER  # clean election waits for the ISR
    results, delta = c.elect_leaders(True, [("t", 0)])
    assert results[("t", 0)] is None and [s.key for s in delta.partitions] == [("t", 0)]
    assert c.partitions[("t", 0)].leader == outsider and c.partitions[("t", 0)].isr == (outsider,)
    results, _ = c.elect_leaders(True, [("t", 0)])
    assert isinstance(results[("t", 0)], errors.ElectionNotNeeded)
