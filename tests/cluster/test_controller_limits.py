"""CreateTopics / CreatePartitions limits are checked before anything is built, and a
topic change that cannot be made durable leaves nothing behind."""
from __future__ import annotations

import random
import tracemalloc

import pytest

from pybroker import errors
from pybroker.cluster.controller import MAX_PARTITIONS_PER_REQUEST, Controller, ControllerService
from pybroker.cluster.metadata import BrokerInfo


def service(brokers: int = 3, max_partitions: int = 100_000):
    controller = Controller(rng=random.Random(3), max_partitions=max_partitions)
    persisted: list[dict] = []
    published = []
    svc = ControllerService(controller, persist=persisted.extend, publish=published.append)
    for i in range(brokers):
        svc.apply(controller.register_broker, BrokerInfo(i, "127.0.0.1", 9092 + i))
    persisted.clear()
    published.clear()
    return svc, persisted, published


def test_two_billion_partitions_are_refused_before_anything_is_allocated():
    svc, persisted, published = service()
    tracemalloc.start()
    try:
        [result] = svc.create_topics([{"name": "huge", "num_partitions": 2**31 - 1, "replication_factor": 1}])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["error_code"] == errors.PolicyViolation.code
    assert "Excessively large number of partitions per request" in result["error_message"]
    assert str(MAX_PARTITIONS_PER_REQUEST) in result["error_message"]
    assert peak < 1 << 20, f"refusing the request allocated {peak} bytes"
    assert not persisted and not published and "huge" not in svc.controller.topics


def test_the_per_request_cap_counts_all_topics_of_the_request():
    svc, persisted, _ = service()
    half = MAX_PARTITIONS_PER_REQUEST // 2 + 1
    results = svc.create_topics([{"name": "a", "num_partitions": half, "replication_factor": 1},
                                 {"name": "b", "num_partitions": half, "replication_factor": 1}])
    assert [r["error_code"] for r in results] == [errors.PolicyViolation.code] * 2
    assert not persisted and not svc.controller.topics


def test_the_cluster_cap_names_the_limit():
    svc, _, _ = service(max_partitions=10)
    ok, over = svc.create_topics([{"name": "a", "num_partitions": 6, "replication_factor": 1},
                                  {"name": "b", "num_partitions": 6, "replication_factor": 1}])
    assert ok["error_code"] == 0
    assert over["error_code"] == errors.PolicyViolation.code and "max-partitions" in over["error_message"]
    [grow] = svc.create_partitions([{"name": "a", "count": 11}])
    assert grow["error_code"] == errors.PolicyViolation.code
    assert svc.controller.topics["a"].partitions == 6 and len(svc.controller.partitions) == 6


def test_create_partitions_by_two_billion_is_refused_at_once():
    svc, persisted, _ = service()
    svc.create_topics([{"name": "a", "num_partitions": 1, "replication_factor": 1}])
    persisted.clear()
    [result] = svc.create_partitions([{"name": "a", "count": 2**31 - 1}])
    assert result["error_code"] == errors.PolicyViolation.code
    assert not persisted and svc.controller.topics["a"].partitions == 1


@pytest.mark.parametrize("partitions, replication, code", [
    (0, 1, errors.InvalidPartitions.code),
    (-5, 1, errors.InvalidPartitions.code),
    (1, 0, errors.InvalidReplicationFactor.code),
    (1, 4, errors.InvalidReplicationFactor.code),
    (1, 32767, errors.InvalidReplicationFactor.code),
])
def test_kafka_rules_on_partitions_and_replication_factor(partitions, replication, code):
    svc, persisted, _ = service(brokers=3)
    [result] = svc.create_topics([{"name": "t", "num_partitions": partitions, "replication_factor": replication}])
    assert result["error_code"] == code
    assert not persisted and not svc.controller.topics


def test_a_topic_that_cannot_be_persisted_is_not_created():
    def full_disk(records):
        raise OSError(28, "No space left on device")

    svc, _, published = service()
    svc.persist = full_disk
    [result] = svc.create_topics([{"name": "t", "num_partitions": 3, "replication_factor": 1}])
    assert result["error_code"] == errors.UnknownServerError.code
    assert "No space left" in result["error_message"]
    assert not svc.controller.topics and not svc.controller.partitions and not published
    assert not svc.controller.take_records()


def test_a_failed_commit_takes_every_topic_of_the_request_back():
    svc, persisted, published = service()
    real = svc.persist
    svc.persist = lambda records: (_ for _ in ()).throw(OSError(5, "Input/output error"))
    results = svc.create_topics([{"name": "a", "num_partitions": 2, "replication_factor": 1},
                                 {"name": "b", "num_partitions": 2, "replication_factor": 1}])
    assert all(r["error_code"] == errors.UnknownServerError.code and "Input/output" in r["error_message"]
               for r in results)
    assert not persisted and not published and not svc.controller.topics
    # The next request goes through: nothing was left half made.
    svc.persist = real
    [result] = svc.create_topics([{"name": "a", "num_partitions": 2, "replication_factor": 1}])
    assert result["error_code"] == 0 and len(svc.controller.partitions) == 2


def test_failed_growth_keeps_the_partitions_the_topic_had():
    svc, persisted, _ = service()
    svc.create_topics([{"name": "a", "num_partitions": 2, "replication_factor": 1}])
    persisted.clear()
    svc.persist = lambda records: (_ for _ in ()).throw(OSError(5, "Input/output error"))
    [result] = svc.create_partitions([{"name": "a", "count": 5}])
    assert result["error_code"] == errors.UnknownServerError.code
    assert svc.controller.topics["a"].partitions == 2
    assert sorted(svc.controller.partitions) == [("a", 0), ("a", 1)]
    assert not persisted
