"""KIP-392's RackAwareReplicaSelector and the candidates a leader offers it."""
import pytest

from pybroker.broker.partition import FollowerState
from pybroker.broker.replica_selector import (NO_PREFERRED_REPLICA, RACK_AWARE_REPLICA_SELECTOR, ReplicaView,
                                              preferred_read_replica, rack_aware_select, selector_for)
from pybroker.cluster.metadata import BrokerInfo

LEADER = ReplicaView(0, "a", 100, 0)


def test_no_client_rack_or_no_replica_in_it_reads_from_the_leader():
    replicas = [LEADER, ReplicaView(1, "b", 100, 0)]
    assert rack_aware_select(None, LEADER, replicas) is LEADER
    assert rack_aware_select("", LEADER, replicas) is LEADER
    assert rack_aware_select("z", LEADER, replicas) is LEADER


def test_leader_in_the_client_rack_wins():
    replicas = [LEADER, ReplicaView(1, "a", 100, 0)]
    assert rack_aware_select("a", LEADER, replicas) is LEADER


def test_most_caught_up_replica_of_the_rack_then_freshest_then_highest_id():
    behind, ahead = ReplicaView(1, "b", 90, 0), ReplicaView(2, "b", 100, 50)
    assert rack_aware_select("b", LEADER, [LEADER, behind, ahead]) is ahead
    fresher = ReplicaView(3, "b", 100, 10)
    assert rack_aware_select("b", LEADER, [LEADER, ahead, fresher]) is fresher
    twin = ReplicaView(4, "b", 100, 10)
    assert rack_aware_select("b", LEADER, [LEADER, fresher, twin]) is twin


def test_selector_names():
    assert selector_for("") is None
    assert selector_for(RACK_AWARE_REPLICA_SELECTOR) is rack_aware_select
    with pytest.raises(ValueError, match="not available"):
        selector_for("com.example.MySelector")


class _Partition:
    def __init__(self, isr, followers):
        self.node_id = 0
        self.log_end_offset = 100
        self.isr = isr
        self.followers = followers


def _follower(log_start, log_end, caught_up_ms=1000):
    state = FollowerState(caught_up_ms)
    state.log_start_offset, state.log_end_offset = log_start, log_end
    return state


BROKERS = {0: BrokerInfo(0, "h", 1, rack="a"), 1: BrokerInfo(1, "h", 2, rack="b"), 2: BrokerInfo(2, "h", 3, rack="c")}


def test_leader_offers_in_sync_live_followers_holding_the_offset():
    partition = _Partition([0, 1, 2], {1: _follower(0, 100), 2: _follower(0, 100)})
    pick = lambda rack, offset=50, brokers=BROKERS: preferred_read_replica(  # noqa: E731
        rack_aware_select, partition, brokers, rack, offset, 2000)
    assert pick("b") == 1 and pick("c") == 2
    assert pick("a") == NO_PREFERRED_REPLICA and pick(None) == NO_PREFERRED_REPLICA
    # Not offered: a follower whose log does not hold the offset ...
    partition.followers[1] = _follower(60, 100)
    assert pick("b") == NO_PREFERRED_REPLICA
    partition.followers[1] = _follower(0, 40)
    assert pick("b") == NO_PREFERRED_REPLICA
    # ... one out of the ISR, or on a broker that is not live.
    partition.followers[1] = _follower(0, 100)
    partition.isr = [0, 2]
    assert pick("b") == NO_PREFERRED_REPLICA
    partition.isr = [0, 1, 2]
    assert pick("b", brokers={0: BROKERS[0], 2: BROKERS[2]}) == NO_PREFERRED_REPLICA
    # No selector configured: always the leader.
    assert preferred_read_replica(None, partition, BROKERS, "b", 50, 2000) == NO_PREFERRED_REPLICA
