"""Rack-aware replica placement (Kafka's StripedReplicaPlacer) and the controller's use of it."""
import random
from collections import Counter

import pytest

from pybroker import errors
from pybroker.cluster.controller import Controller
from pybroker.cluster.metadata import BrokerInfo
from pybroker.cluster.placement import place_replicas

SIX_ON_THREE_RACKS = {0: "a", 1: "a", 2: "b", 3: "b", 4: "c", 5: "c"}


@pytest.mark.parametrize("seed", range(20))
def test_every_partition_spreads_over_every_rack(seed):
    placed = place_replicas(SIX_ON_THREE_RACKS, 60, 3, random.Random(seed))
    for replicas in placed:
        assert len(set(replicas)) == 3
        assert {SIX_ON_THREE_RACKS[b] for b in replicas} == {"a", "b", "c"}


def test_leaders_and_replicas_spread_evenly_over_brokers():
    placed = place_replicas(SIX_ON_THREE_RACKS, 60, 3, random.Random(7))
    leaders = Counter(replicas[0] for replicas in placed)
    replicas = Counter(b for r in placed for b in r)
    assert set(leaders) == set(SIX_ON_THREE_RACKS) and max(leaders.values()) - min(leaders.values()) <= 2
    assert max(replicas.values()) - min(replicas.values()) <= 2
    leader_racks = Counter(SIX_ON_THREE_RACKS[b] for b in leaders.elements())
    assert sorted(leader_racks.values()) == [20, 20, 20]


def test_striped_pattern_moves_the_first_rack_each_partition():
    racks = {0: "a", 1: "b", 2: "c"}
    placed = place_replicas(racks, 6, 3, random.Random(1))
    first_racks = [racks[r[0]] for r in placed]
    # Consecutive partitions start one rack further (a, b, c, a, ... from a random start).
    order = ["a", "b", "c"]
    start = order.index(first_racks[0])
    assert first_racks[:3] == [order[(start + i) % 3] for i in range(3)]


def test_more_replicas_than_racks_wraps_around_racks_on_distinct_brokers():
    racks = {0: "a", 1: "a", 2: "b", 3: "b"}
    for replicas in place_replicas(racks, 20, 3, random.Random(3)):
        assert len(set(replicas)) == 3
        assert set(Counter(racks[b] for b in replicas).values()) == {1, 2}


def test_brokers_without_a_rack_form_one_rack():
    racks = {0: "a", 1: None, 2: None}
    for replicas in place_replicas(racks, 10, 2, random.Random(5)):
        assert {racks[b] for b in replicas} == {"a", None}


def test_replication_factor_beyond_the_brokers_is_refused():
    with pytest.raises(errors.InvalidReplicationFactor):
        place_replicas({0: "a", 1: "b"}, 1, 3)


def _controller(racks: dict[int, str | None]) -> Controller:
    controller = Controller(rng=random.Random(11))
    for node, rack in racks.items():
        controller.register_broker(BrokerInfo(node, "127.0.0.1", 9092 + node, rack=rack))
    return controller


def test_create_topics_and_partitions_place_by_rack():
    racks = {0: "a", 1: "b", 2: "c", 3: "a", 4: "b", 5: "c"}
    controller = _controller(racks)
    controller.create_topic("t", 12, 3)
    controller.create_partitions("t", 24)
    states = [controller.partitions[("t", i)] for i in range(24)]
    for state in states:
        assert {racks[b] for b in state.replicas} == {"a", "b", "c"}
    assert Counter(racks[s.leader] for s in states) == {"a": 8, "b": 8, "c": 8}


def test_without_racks_the_rack_unaware_assignment_stays():
    controller = _controller({0: None, 1: None, 2: None})
    controller.create_topic("t", 3, 2)
    # Kafka's rack-unaware rule: leaders are consecutive brokers.
    leaders = [controller.partitions[("t", i)].leader for i in range(3)]
    assert sorted(leaders) == [0, 1, 2] and all((b - a) % 3 == 1 for a, b in zip(leaders, leaders[1:]))


def test_racks_survive_a_replay_of_the_metadata_records():
    controller = _controller({0: "a", 1: "b"})
    records = controller.take_records()
    replayed = Controller()
    for record in records:
        replayed.replay(record)
    assert replayed.racks == {0: "a", 1: "b"}
    # A broker registering without its rack any more is recorded so.
    controller.register_broker(BrokerInfo(1, "127.0.0.1", 9093))
    for record in controller.take_records():
        replayed.replay(record)
    assert replayed.racks == {0: "a"}


def test_rack_alternated_broker_list_is_kafkas():
    from pybroker.cluster.placement import rack_alternated

    # AdminUtils' own example.
    assert rack_alternated({0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}) == [0, 3, 1, 5, 4, 2]


@pytest.mark.parametrize("seed", range(10))
def test_admin_utils_rack_aware_assignment_spreads_racks_and_brokers(seed):
    from pybroker.cluster.placement import assign_replicas_rack_aware

    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    placed = assign_replicas_rack_aware(racks, 12, 3, random.Random(seed))
    for replicas in placed:
        assert len(set(replicas)) == 3 and {racks[b] for b in replicas} == {"rack1", "rack2", "rack3"}
    assert Counter(r[0] for r in placed) == {b: 2 for b in racks}
    # Two racks, three replicas: every rack gets one, then round-robin.
    two = {0: "a", 1: "a", 2: "b", 3: "b"}
    for replicas in assign_replicas_rack_aware(two, 8, 3, random.Random(seed)):
        assert len(set(replicas)) == 3 and {two[b] for b in replicas} == {"a", "b"}


class _Zero(random.Random):
    def randrange(self, *args):
        return 0


def test_admin_utils_documented_example():
    from pybroker.cluster.placement import assign_replicas_rack_aware

    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert assign_replicas_rack_aware(racks, 7, 3, _Zero()) == [
        [0, 3, 1], [3, 1, 5], [1, 5, 4], [5, 4, 2], [4, 2, 0], [2, 0, 3], [0, 4, 2]]
