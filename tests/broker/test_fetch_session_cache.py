"""FetchSessionCache eviction (Kafka's FetchSessionCache rules) and the response filter."""
from __future__ import annotations

import random

from pybroker.broker.fetch_session import FINAL_EPOCH, FetchSessionCache, next_epoch

EVICTION_MS = 1000


def full_answer(topic: str, count: int, hw: int = 0) -> tuple[list, dict]:
    entries = [{"partition_index": i, "error_code": 0, "high_watermark": hw, "log_start_offset": 0,
                "records": b"", "preferred_read_replica": -1} for i in range(count)]
    requests = {(topic, i): {"partition": i, "fetch_offset": 0, "partition_max_bytes": 1} for i in range(count)}
    return [{"topic": topic, "partitions": entries}], requests


def create(cache, privileged: bool, size: int, now: int) -> int:
    responses, requests = full_answer("t", size)
    return cache.maybe_create(privileged, responses, requests, now)


def test_epochs_wrap_to_one():
    assert next_epoch(0) == 1
    assert next_epoch(0x7FFFFFFF) == 1
    assert next_epoch(-1) == FINAL_EPOCH


def test_young_sessions_keep_their_slots_against_consumers():
    cache = FetchSessionCache(2, EVICTION_MS, random.Random(1))
    a = create(cache, False, 5, now=0)
    b = create(cache, False, 5, now=0)
    assert a and b and a != b
    assert create(cache, False, 100, now=10) == 0
    assert set(cache.sessions) == {a, b}


def test_a_follower_displaces_the_smallest_consumer_session():
    cache = FetchSessionCache(2, EVICTION_MS, random.Random(2))
    small = create(cache, False, 2, now=0)
    large = create(cache, False, 9, now=0)
    follower = create(cache, True, 1, now=10)
    assert follower and set(cache.sessions) == {large, follower}
    # The next follower takes the consumer's slot; a young follower session keeps its own.
    second = create(cache, True, 50, now=20)
    assert second and set(cache.sessions) == {follower, second}
    assert create(cache, True, 500, now=30) == 0


def test_stale_sessions_go_first_and_old_ones_by_value():
    cache = FetchSessionCache(2, EVICTION_MS, random.Random(3))
    a = create(cache, False, 10, now=0)
    b = create(cache, False, 3, now=0)
    cache.touch(cache.get(a), 1500)
    cache.touch(cache.get(b), 1500)
    # Both older than the eviction time but recently used: the larger new one evicts the smaller.
    assert create(cache, False, 2, now=1600) == 0
    c = create(cache, False, 4, now=1600)
    assert c and set(cache.sessions) == {a, c}
    # Unused for longer than the eviction time: evicted whatever its size.
    cache.touch(cache.get(c), 1600)
    d = create(cache, False, 1, now=2600)
    assert d and set(cache.sessions) == {c, d}
    assert cache.evictions == 2


def test_incremental_filter_and_order():
    cache = FetchSessionCache(1, EVICTION_MS)
    responses, requests = full_answer("t", 3, hw=5)
    session = cache.get(cache.maybe_create(False, responses, requests, 0))
    same, _ = full_answer("t", 3, hw=5)
    assert session.filter_response(same) == []
    changed, _ = full_answer("t", 3, hw=5)
    parts = changed[0]["partitions"]
    parts[0]["records"] = b"x" * 10
    parts[2]["error_code"] = 6
    kept = session.filter_response(changed)
    assert [p["partition_index"] for p in kept[0]["partitions"]] == [0, 2]
    # The partition that returned records moves to the end of the session's order.
    assert list(session.partitions) == [("t", 1), ("t", 2), ("t", 0)]
    # The error cleared: sent again, once.
    again, _ = full_answer("t", 3, hw=5)
    assert [p["partition_index"] for p in session.filter_response(again)[0]["partitions"]] == [2]
    assert session.filter_response(full_answer("t", 3, hw=5)[0]) == []
