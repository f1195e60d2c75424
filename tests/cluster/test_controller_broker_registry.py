"""The controller's broker registry: the broker count a restart brings back, and
unregistering (Kafka's UnregisterBroker) only brokers that hold no replica."""
from __future__ import annotations

import random

import pytest

from pybroker import errors
from pybroker.cluster import metadata_log
from pybroker.cluster.controller import Controller
from pybroker.cluster.metadata import BrokerInfo
from pybroker.cluster.metadata_log import MetadataLog


def _controller(n: int) -> Controller:
    c = Controller(rng=random.Random(3))
    for i in range(n):
        c.register_broker(BrokerInfo(i, "127.0.0.1", 9092 + i))
    c.set_broker_count(n)
    return c


def _replayed(c: Controller) -> Controller:
    replayed = Controller()
    for record in c.take_records():
        replayed.replay(record)
    return replayed


def test_broker_count_is_recorded_once_per_change_and_replayed():
    c = _controller(3)
    c.set_broker_count(3)
    c.set_broker_count(5)
    records = c.take_records()
    assert [r for r in records if r["type"] == "broker_count"] == [
        {"type": "broker_count", "brokers": 3}, {"type": "broker_count", "brokers": 5}]
    replayed = Controller()
    for record in records:
        replayed.replay(record)
    assert replayed.broker_count == 5 and set(replayed.ports) == {0, 1, 2}


def test_holdings_name_current_adding_and_removing_replicas():
    c = _controller(5)
    c.create_topic("t", -1, -1, assignments=[[0], [1]])
    assert c.alter_partition_reassignments([("t", 1, [4])], True)[0] == [None]
    assert c.partitions[("t", 1)].adding_replicas == (4,)
    assert c.holdings([3, 4]) == {("t", 1): (4,)}
    assert c.holdings([1]) == {("t", 1): (1,)}
    assert c.holdings([2, 3]) == {}


def test_a_broker_holding_a_replica_is_not_unregistered():
    c = _controller(3)
    c.create_topic("t", -1, -1, assignments=[[2]])
    c.take_records()
    with pytest.raises(errors.InvalidRequest, match=r"still hold replicas of 1 partitions"):
        c.unregister_brokers([2], 2)
    assert 2 in c.live and 2 in c.ports and c.broker_count == 3 and not c.take_records()


def test_unregistered_brokers_leave_the_registry_and_stay_gone_after_replay():
    c = _controller(3)
    c.create_topic("t", -1, -1, assignments=[[0]])
    delta = c.unregister_brokers([1, 2], 1)
    assert delta.brokers_changed
    assert set(c.live) == set(c.ports) == {0} and c.broker_count == 1
    # A reassignment or a new topic may no longer name them.
    (error,), _ = c.alter_partition_reassignments([("t", 0, [0, 2])], True)
    assert isinstance(error, errors.InvalidReplicaAssignment), error
    with pytest.raises(errors.InvalidReplicationFactor):
        c.create_topic("u", 1, 2)
    replayed = _replayed(c)
    assert set(replayed.ports) == {0} and replayed.broker_count == 1


def test_a_snapshot_keeps_the_broker_count(tmp_path, monkeypatch):
    monkeypatch.setattr(metadata_log, "SNAPSHOT_BYTES", 0)
    log = MetadataLog(str(tmp_path))
    log.load_into(Controller())
    c = _controller(4)
    log.append(c.take_records())
    c.unregister_brokers([3], 3)
    log.append(c.take_records())
    assert log.maybe_snapshot(c)
    log.close()
    replayed = Controller()
    MetadataLog(str(tmp_path)).load_into(replayed)
    assert replayed.broker_count == 3 and set(replayed.ports) == {0, 1, 2}
