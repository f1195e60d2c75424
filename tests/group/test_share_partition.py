"""A share-partition's records as ranges: acquisition, acknowledgement, locks, delivery
counts and the start offset, as pure logic."""
from __future__ import annotations

from pybroker.group.share_group import simple_assignment
from pybroker.group.share_partition import (ACCEPT, ACKNOWLEDGED, ACQUIRED, ARCHIVED, AVAILABLE, REJECT, RELEASE,
                                            RENEW, SharePartition)


def states(sp):
    return [(r.first, r.last, r.state, r.count) for r in sp.ranges]


def test_acquire_hands_out_new_records_up_to_the_high_watermark_and_max_records():
    sp = SharePartition(0)
    assert sp.acquire("a", 0, 0, 10, 4, 1000) == [(0, 3, 1)]
    assert sp.acquire("b", 0, 0, 10, 100, 1000) == [(4, 9, 1)]
    assert sp.acquire("c", 0, 0, 10, 100, 1000) == []          # nothing left below the watermark
    assert sp.end == 10 and sp.in_flight() == 10


def test_batch_alignment_acquires_to_the_batch_end_only_from_the_expected_end():
    sp = SharePartition(0)
    assert sp.acquire("a", 0, 0, 100, 4, 1000, align=(0, 9)) == [(0, 9, 1)]       # past max_records
    assert sp.acquire("b", 0, 0, 100, 4, 1000, align=(5, 49)) == [(10, 13, 1)]     # a stale end: the limit
    assert sp.acquire("c", 0, 0, 20, 4, 1000, align=(14, 49)) == [(14, 19, 1)]     # never past the watermark
    assert sp.acquire("a", 0, 0, 100, 4, 1000, align=(20, 21)) == [(20, 23, 1)]    # nor short of max_records


def test_accept_moves_the_start_reject_archives_release_redelivers_with_a_higher_count():
    sp = SharePartition(0, delivery_limit=3)
    sp.acquire("a", 0, 0, 6, 10, 1000)
    assert sp.acknowledge("a", 0, 5, [ACCEPT, ACCEPT, RELEASE, REJECT, ACCEPT, RELEASE], 1, 1000)
    assert sp.start == 2                                       # 0 and 1 done
    assert states(sp) == [(2, 2, AVAILABLE, 1), (3, 3, ARCHIVED, 1), (4, 4, ACKNOWLEDGED, 1), (5, 5, AVAILABLE, 1)]
    assert sp.acquire("b", 2, 0, 6, 10, 1000) == [(2, 2, 2), (5, 5, 2)]
    assert sp.acknowledge("b", 2, 2, [ACCEPT], 3, 1000) and sp.acknowledge("b", 5, 5, [ACCEPT], 3, 1000)
    assert sp.start == 6 and sp.ranges == []


def test_only_the_holder_may_acknowledge_and_only_what_it_holds():
    sp = SharePartition(0)
    sp.acquire("a", 0, 0, 5, 10, 1000)
    assert not sp.acknowledge("b", 0, 4, [ACCEPT], 1, 1000)
    assert not sp.acknowledge("a", 0, 7, [ACCEPT], 1, 1000)     # past what was handed out
    assert not sp.acknowledge("a", 0, 4, [ACCEPT, ACCEPT], 1, 1000)   # neither one type nor one per offset
    assert states(sp) == [(0, 4, ACQUIRED, 1)]


def test_expired_locks_release_renew_extends_them_and_the_limit_archives():
    sp = SharePartition(0, delivery_limit=2)
    sp.acquire("a", 0, 0, 2, 10, 1000)
    assert sp.next_deadline() == 1000
    assert sp.acknowledge("a", 1, 1, [RENEW], 500, 1000)
    assert sp.expire(1000)
    assert states(sp) == [(0, 0, AVAILABLE, 1), (1, 1, ACQUIRED, 1)]
    assert sp.acquire("b", 1000, 0, 2, 10, 1000) == [(0, 0, 2)]
    assert sp.expire(5000)                                    # both locks gone; 0 hit the limit: archived
    assert sp.start == 1 and states(sp) == [(1, 1, AVAILABLE, 1)]


def test_released_member_records_log_start_and_state_round_trip():
    sp = SharePartition(0)
    sp.acquire("a", 0, 0, 10, 10, 1000)
    assert sp.release_member("a") and states(sp) == [(0, 9, AVAILABLE, 1)]
    sp.acquire("b", 0, 0, 10, 3, 1000)
    sp.move_start(5)                                          # retention took 0..4
    assert sp.start == 5 and states(sp) == [(5, 9, AVAILABLE, 1)]
    copy = SharePartition.from_json(sp.to_json())
    assert states(copy) == states(sp) and copy.start == 5 and copy.end == 10
    sp.acquire("c", 0, 5, 10, 2, 1000)
    assert SharePartition.from_json(sp.to_json()).ranges[0].state == AVAILABLE   # acquisitions not kept
    sp.unacquire("c", 5, 6)
    assert states(sp) == [(5, 9, AVAILABLE, 1)]


def test_reject_of_a_range_and_ranges_not_records():
    sp = SharePartition(0)
    sp.acquire("a", 0, 0, 100_000, 100_000, 1000)
    assert sp.acknowledge("a", 0, 49_999, [ACCEPT], 1, 1000)
    assert sp.acknowledge("a", 50_000, 99_999, [REJECT], 1, 1000)
    assert sp.start == 100_000 and sp.ranges == []


def test_simple_assignment_shares_partitions_when_members_outnumber_them():
    members = {f"m{i}": {"t"} for i in range(4)}
    one = simple_assignment(members, {"t": 1})
    assert all(a == {"t": {0}} for a in one.values())
    few = simple_assignment({"a": {"t"}, "b": {"t"}}, {"t": 4})
    assert few == {"a": {"t": {0, 2}}, "b": {"t": {1, 3}}}
