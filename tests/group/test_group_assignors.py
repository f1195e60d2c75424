import random
from collections import Counter

import pytest

from pybroker.group.assignors import ASSIGNORS, assignor_for, member_order
from pybroker.group.consumer_protocol import Subscription


def subs(members, topics, **kw):
    return {m: Subscription(topics=list(topics), **kw) for m in members}


def tps(spec):
    """'t0p0 t1p2' -> [('t0', 0), ('t1', 2)]"""
    out = []
    for item in spec.split():
        topic, partition = item.rsplit("p", 1)
        out.append((topic, int(partition)))
    return out


def test_range_javadoc_example():
    result = assignor_for("range").assign({"t0": 3, "t1": 3}, subs(["C0", "C1"], ["t0", "t1"]))
    assert result == {"C0": tps("t0p0 t0p1 t1p0 t1p1"), "C1": tps("t0p2 t1p2")}


def test_roundrobin_javadoc_example():
    result = assignor_for("roundrobin").assign({"t0": 3, "t1": 3}, subs(["C0", "C1"], ["t0", "t1"]))
    assert result == {"C0": tps("t0p0 t0p2 t1p1"), "C1": tps("t0p1 t1p0 t1p2")}


def test_roundrobin_skips_members_not_subscribed_to_topic():
    s = {"C0": Subscription(["t0"]), "C1": Subscription(["t0", "t1"]),
         "C2": Subscription(["t0", "t1", "t2"])}
    result = assignor_for("roundrobin").assign({"t0": 1, "t1": 2, "t2": 3}, s)
    assert result == {"C0": tps("t0p0"), "C1": tps("t1p0"), "C2": tps("t1p1 t2p0 t2p1 t2p2")}


def test_sticky_javadoc_example_keeps_ownership_when_member_leaves():
    cluster = {"t0": 2, "t1": 2, "t2": 2, "t3": 2}
    sticky = assignor_for("sticky")
    first = sticky.assign(cluster, subs(["C0", "C1", "C2"], cluster))
    assert first == {"C0": tps("t0p0 t1p1 t3p0"), "C1": tps("t0p1 t2p0 t3p1"),
                     "C2": tps("t1p0 t2p1")}
    again = {m: Subscription(list(cluster), owned_partitions=first[m], generation_id=1)
             for m in ("C0", "C2")}
    assert sticky.assign(cluster, again) == {"C0": tps("t0p0 t1p1 t3p0 t2p0"),
                                             "C2": tps("t1p0 t2p1 t0p1 t3p1")}


def test_sticky_javadoc_example_with_unequal_subscriptions():
    cluster = {"t0": 1, "t1": 2, "t2": 3}
    topics = {"C0": ["t0"], "C1": ["t0", "t1"], "C2": ["t0", "t1", "t2"]}
    sticky = assignor_for("sticky")
    first = sticky.assign(cluster, {m: Subscription(t) for m, t in topics.items()})
    assert first == {"C0": tps("t0p0"), "C1": tps("t1p0 t1p1"), "C2": tps("t2p0 t2p1 t2p2")}
    again = {m: Subscription(topics[m], owned_partitions=first[m], generation_id=1)
             for m in ("C1", "C2")}
    result = sticky.assign(cluster, again)
    assert sorted(result["C1"]) == tps("t0p0 t1p0 t1p1")
    assert result["C2"] == tps("t2p0 t2p1 t2p2")


def _check_complete_and_balanced(cluster, subscriptions, result):
    wanted = Counter((t, p) for t in {t for s in subscriptions.values() for t in s.topics}
                     if t in cluster for p in range(cluster[t]))
    got = Counter(tp for parts in result.values() for tp in parts)
    assert got == wanted, "every subscribed partition assigned exactly once"
    for member, parts in result.items():
        assert all(t in subscriptions[member].topics for t, _ in parts)


@pytest.mark.parametrize("name", ["roundrobin", "sticky", "cooperative-sticky", "range"])
def test_random_equal_subscriptions_are_complete_and_balanced(name):
    rng = random.Random(name)
    for _ in range(60):
        cluster = {f"t{i}": rng.randrange(1, 9) for i in range(rng.randrange(1, 5))}
        members = [f"m{rng.randrange(10**6):06d}" for _ in range(rng.randrange(1, 8))]
        s = subs(members, cluster)
        result = ASSIGNORS[name].assign(cluster, s)
        _check_complete_and_balanced(cluster, s, result)
        counts = [len(p) for p in result.values()]
        if name != "range":  # range balances per topic, not overall
            assert max(counts) - min(counts) <= 1


def test_random_unequal_subscriptions_sticky_is_complete_and_cannot_improve_by_a_move():
    rng = random.Random(11)
    sticky = assignor_for("sticky")
    for _ in range(80):
        cluster = {f"t{i}": rng.randrange(1, 6) for i in range(5)}
        s = {f"m{i}": Subscription(rng.sample(sorted(cluster), rng.randrange(1, 5)))
             for i in range(rng.randrange(1, 6))}
        result = sticky.assign(cluster, s)
        _check_complete_and_balanced(cluster, s, result)
        for a, pa in result.items():
            for b, pb in result.items():
                if len(pa) - len(pb) >= 2:
                    assert not any(t in s[b].topics for t, _ in pa)


@pytest.mark.parametrize("change", ["join", "leave"])
def test_sticky_moves_only_the_surplus_when_membership_changes(change):
    rng = random.Random(change)
    sticky = assignor_for("sticky")
    for _ in range(30):
        cluster = {f"t{i}": rng.randrange(1, 10) for i in range(3)}
        members = [f"m{i}" for i in range(rng.randrange(2, 7))]
        first = sticky.assign(cluster, subs(members, cluster))
        if change == "join":
            survivors, members2 = members, members + ["zz-new"]
        else:
            survivors = members2 = members[1:]
        s = {m: Subscription(list(cluster), owned_partitions=first.get(m, []), generation_id=1)
             for m in members2}
        second = sticky.assign(cluster, s)
        moved = sum(len(set(first[m]) - set(second[m])) for m in survivors)
        total = sum(cluster.values())
        if change == "join":
            # The newcomer's fair share is the least any balanced assignment must move.
            assert moved == len(second["zz-new"]) == total // len(members2)
        else:
            assert moved == 0
        counts = [len(p) for p in second.values()]
        assert max(counts) - min(counts) <= 1


def test_cooperative_sticky_revokes_only_partitions_that_move():
    cluster = {"t": 6}
    coop = assignor_for("cooperative-sticky")
    first = coop.assign(cluster, subs(["a", "b"], cluster))
    assert sorted(len(p) for p in first.values()) == [3, 3]
    s = {m: Subscription(["t"], owned_partitions=first[m], generation_id=1) for m in ("a", "b")}
    s["c"] = Subscription(["t"], generation_id=-1)
    second = coop.assign(cluster, s)
    # Nothing is handed to the newcomer while its old owner still holds it...
    assert second["c"] == []
    # ...and the owners keep everything except the two partitions that will move.
    kept = set(second["a"]) | set(second["b"])
    assert kept <= set(first["a"]) | set(first["b"]) and len(kept) == 4
    # Next round, once revoked, the moved partitions reach the newcomer.
    s = {m: Subscription(["t"], owned_partitions=second[m], generation_id=2) for m in second}
    third = coop.assign(cluster, s)
    assert sorted(len(p) for p in third.values()) == [2, 2, 2]
    assert set(third["a"]) == set(second["a"]) and set(third["b"]) == set(second["b"])


def test_sticky_contested_claim_goes_to_higher_generation():
    s = {"a": Subscription(["t"], owned_partitions=[("t", 0)], generation_id=3),
         "b": Subscription(["t"], owned_partitions=[("t", 0)], generation_id=2)}
    assert assignor_for("sticky").assign({"t": 2}, s) == {"a": [("t", 0)], "b": [("t", 1)]}


def test_static_members_order_first_by_instance_id():
    s = {"a-dyn": Subscription(["t"]), "z-1": Subscription(["t"], group_instance_id="i1"),
         "b-0": Subscription(["t"], group_instance_id="i2")}
    assert member_order(s) == ["z-1", "b-0", "a-dyn"]
    assert assignor_for("range").assign({"t": 3}, s) == {
        "z-1": [("t", 0)], "b-0": [("t", 1)], "a-dyn": [("t", 2)]}


def test_topics_missing_from_cluster_are_skipped_and_every_member_listed():
    result = assignor_for("range").assign({"t": 1}, subs(["a", "b"], ["t", "gone"]))
    assert result == {"a": [("t", 0)], "b": []}
    with pytest.raises(KeyError, match="known"):
        assignor_for("nope")
