import itertools


from pybroker import errors
from pybroker.group.state_machine import PENDING, Group, GroupSettings, GroupState

SESSION = 10_000
REBALANCE = 30_000
PROTOCOLS = [("range", b"meta-range"), ("roundrobin", b"meta-rr")]


def make_group(delay=0, **kw):
    counter = itertools.count()
    return Group("g", GroupSettings(initial_rebalance_delay_ms=delay, **kw),
                 new_member_id=lambda prefix: f"{prefix}-{next(counter)}")


def join(g, now, member_id="", protocols=PROTOCOLS, version=5, token=None, **kw):
    kw.setdefault("client_id", "c")
    return g.join(now, member_id=member_id, protocol_type="consumer", protocols=protocols,
                  session_timeout_ms=SESSION, rebalance_timeout_ms=REBALANCE,
                  version=version, token=token, **kw)


def new_member(g, now, token=None, **kw):
    """v5 join: MEMBER_ID_REQUIRED, then the real join; returns (member_id, outcome)."""
    first = join(g, now, **kw)
    assert first["error_code"] == errors.MemberIdRequired.code and first["member_id"]
    return first["member_id"], join(g, now, member_id=first["member_id"], token=token, **kw)


def completions(g):
    return {(c.token, c.api): c.response for c in g.take_completions()}


def completions_at(g, now):
    return {(c.token, c.api): c.response for c in g.tick(now)}


def stable_group(n, now=0):
    """n members through join and sync; returns (group, member ids, generation)."""
    g = make_group(delay=1000)
    ids = [new_member(g, now, token=f"j{i}")[0] for i in range(n)]
    # Members arrived during the first delay, so the join waits one more delay.
    done = {**completions_at(g, now + 1000), **completions_at(g, now + 2000)}
    assert len(done) == n and all(r["error_code"] == 0 for r in done.values())
    now += 2000
    gen = g.generation_id
    leader_out = sync(g, now, ids[0], gen, {m: m.encode() for m in ids}, token="s0")
    for i, m in enumerate(ids[1:], 1):
        assert sync(g, now, m, gen, token=f"s{i}")["assignment"] == m.encode()
    assert leader_out["assignment"] == ids[0].encode()
    assert g.state is GroupState.STABLE
    return g, ids, gen


def sync(g, now, member_id, gen, assignments=(), token=None, **kw):
    return g.sync(now, member_id=member_id, generation_id=gen, assignments=assignments,
                  token=token, **kw)


def hb(g, now, member_id, gen, **kw):
    return g.heartbeat(now, member_id=member_id, generation_id=gen, **kw)["error_code"]


def test_single_member_join_sync_heartbeat():
    g = make_group()
    mid, out = new_member(g, 0)
    assert out["error_code"] == 0 and out["generation_id"] == 1 and out["leader"] == mid
    assert out["protocol_name"] == "range"
    assert out["members"] == [{"member_id": mid, "group_instance_id": None, "metadata": b"meta-range"}]
    assert g.state is GroupState.COMPLETING_REBALANCE
    assert sync(g, 1, mid, 1, [(mid, b"A")])["assignment"] == b"A"
    assert g.state is GroupState.STABLE
    assert hb(g, 2, mid, 1) == 0


def test_old_join_versions_get_a_member_id_directly():
    g = make_group()
    out = join(g, 0, version=3)
    assert out["error_code"] == 0 and out["member_id"].startswith("c-")


def test_three_members_leader_gets_metadata_and_followers_wait_for_leader_sync():
    g = make_group()
    a, out_a = new_member(g, 0, token="ja")
    assert out_a["error_code"] == 0  # a alone: generation 1
    b, out_b = new_member(g, 1, token="jb")
    assert out_b is PENDING and g.state is GroupState.PREPARING_REBALANCE
    assert hb(g, 1, a, 1) == errors.RebalanceInProgress.code
    c, out_c = new_member(g, 2, token="jc")
    assert out_c is PENDING
    assert join(g, 3, member_id=a, token="ja2") != PENDING  # a rejoins: all in, completes
    done = completions(g)
    assert set(done) == {("jb", "join"), ("jc", "join")}
    assert done[("jb", "join")]["members"] == [] and done[("jb", "join")]["leader"] == a
    assert g.generation_id == 2
    leader_view = g.describe()
    assert leader_view["group_state"] == "CompletingRebalance"
    assert sync(g, 4, b, 2, token="sb") is PENDING
    assert sync(g, 4, c, 2, token="sc") is PENDING
    assert sync(g, 5, a, 2, {a: b"A", b: b"B", c: b"C"}, token="sa")["assignment"] == b"A"
    done = completions(g)
    assert done[("sb", "sync")]["assignment"] == b"B"
    assert done[("sc", "sync")]["assignment"] == b"C"
    assert g.describe()["members"][1]["member_assignment"] == b"B"


def test_leader_join_response_lists_all_members_metadata():
    g = make_group()
    a, _ = new_member(g, 0, token="a")
    g.take_completions()
    b, _ = new_member(g, 0, token="b", protocols=[("roundrobin", b"b-rr"), ("range", b"b-range")])
    out = join(g, 0, member_id=a, token="a2")
    assert {m["member_id"]: m["metadata"] for m in out["members"]} == {a: b"meta-range", b: b"b-range"}


def test_member_leaves_then_others_see_rebalance_and_rejoin():
    g, (a, b, c), gen = stable_group(3)
    resp = g.leave(10, [{"member_id": c}])
    assert resp["members"][0]["error_code"] == 0
    assert g.state is GroupState.PREPARING_REBALANCE
    assert hb(g, 11, a, gen) == errors.RebalanceInProgress.code
    assert hb(g, 11, b, gen) == errors.RebalanceInProgress.code
    assert join(g, 12, member_id=b, token="b") is PENDING
    out = join(g, 13, member_id=a, token="a")
    assert out["generation_id"] == gen + 1 and len(out["members"]) == 2
    assert completions(g)[("b", "join")]["generation_id"] == gen + 1


def test_session_timeout_evicts_silent_member():
    g, (a, b), gen = stable_group(2)
    t0 = g.members[b].last_heartbeat_ms
    assert g.next_deadline_ms() == t0 + SESSION
    hb(g, t0 + SESSION - 1, a, gen)
    g.tick(t0 + SESSION - 1)
    assert set(g.members) == {a, b}
    g.tick(t0 + SESSION)
    assert set(g.members) == {a}
    assert g.state is GroupState.PREPARING_REBALANCE
    assert hb(g, t0 + SESSION + 1, b, gen) == errors.UnknownMemberId.code


def test_rebalance_timeout_removes_member_that_does_not_rejoin():
    g, (a, b), gen = stable_group(2)
    assert join(g, 100, member_id=a, token="a", protocols=[("range", b"new")]) is PENDING
    # b keeps heartbeating but never rejoins.
    for t in range(1000, REBALANCE, 1000):
        assert hb(g, t, b, gen) == errors.RebalanceInProgress.code
        assert g.tick(t) == []
    done = g.tick(100 + REBALANCE)
    assert [(c.token, c.response["generation_id"]) for c in done] == [("a", gen + 1)]
    assert set(g.members) == {a}
    assert hb(g, 100 + REBALANCE, b, gen) == errors.UnknownMemberId.code


def test_initial_rebalance_delay_waits_and_extends_while_members_join():
    g = make_group(delay=3000)
    a, out = new_member(g, 0, token="a")
    assert out is PENDING and g.next_deadline_ms() == 3000
    assert g.tick(2999) == []
    b, out = new_member(g, 2000, token="b")
    assert out is PENDING
    assert g.tick(3000) == []  # a member arrived during the delay: wait another delay
    assert g.next_deadline_ms() == 6000
    done = g.tick(6000)
    assert {c.token for c in done} == {"a", "b"} and g.generation_id == 1


def test_initial_rebalance_delay_is_capped_by_rebalance_timeout():
    g = make_group(delay=20_000)
    new_member(g, 0, token="a")
    new_member(g, 1, token="b")
    assert g.tick(20_000) == []
    assert g.next_deadline_ms() == 30_000  # only 10 s of the rebalance timeout were left
    new_member(g, 25_000, token="c")
    assert len(g.tick(30_000)) == 3


def test_stale_generation_gets_illegal_generation():
    g, (a,), gen = stable_group(1)
    assert hb(g, 1, a, gen - 1) == errors.IllegalGeneration.code
    assert sync(g, 1, a, gen + 5)["error_code"] == errors.IllegalGeneration.code


def test_unknown_member_gets_unknown_member_id():
    g, _, gen = stable_group(1)
    assert hb(g, 1, "nobody", gen) == errors.UnknownMemberId.code
    assert sync(g, 1, "nobody", gen)["error_code"] == errors.UnknownMemberId.code
    assert join(g, 1, member_id="nobody")["error_code"] == errors.UnknownMemberId.code
    assert g.leave(1, [{"member_id": "nobody"}])["members"][0]["error_code"] == \
        errors.UnknownMemberId.code


def test_follower_rejoin_with_same_metadata_when_stable_does_not_rebalance():
    g, (a, b), gen = stable_group(2)
    out = join(g, 5, member_id=b)
    assert out["error_code"] == 0 and out["generation_id"] == gen
    assert g.state is GroupState.STABLE


def static_group():
    g = make_group()
    out = join(g, 0, group_instance_id="inst-a", token="a")
    assert out["error_code"] == 0
    a = out["member_id"]
    out = sync(g, 0, a, 1, {a: b"A"}, group_instance_id="inst-a")
    assert out["assignment"] == b"A"
    return g, a


def test_static_member_rejoin_replaces_member_id_without_rebalance():
    g, old = static_group()
    out = join(g, 50, group_instance_id="inst-a")
    assert out["error_code"] == 0 and out["member_id"] != old
    assert out["generation_id"] == 1 and g.state is GroupState.STABLE
    new = out["member_id"]
    assert sync(g, 51, new, 1, group_instance_id="inst-a")["assignment"] == b"A"
    # The old incarnation is fenced everywhere.
    assert hb(g, 52, old, 1, group_instance_id="inst-a") == errors.FencedInstanceId.code
    assert join(g, 52, member_id=old, group_instance_id="inst-a")["error_code"] == \
        errors.FencedInstanceId.code
    assert g.leave(52, [{"member_id": old, "group_instance_id": "inst-a"}])["members"][0][
        "error_code"] == errors.FencedInstanceId.code


def test_static_leader_rejoin_v9_is_told_to_skip_assignment():
    g, old = static_group()
    out = join(g, 50, group_instance_id="inst-a", version=9)
    assert out["skip_assignment"] is True and out["members"][0]["member_id"] == out["member_id"]


def test_static_member_rejoin_with_changed_protocol_triggers_rebalance():
    g, old = static_group()
    out = join(g, 50, group_instance_id="inst-a", protocols=[("roundrobin", b"x")], token="n")
    assert out["generation_id"] == 2 and out["protocol_name"] == "roundrobin"


def test_static_member_leave_by_instance_id():
    g, a = static_group()
    out = g.leave(5, [{"member_id": "", "group_instance_id": "inst-a"}])
    assert out["members"][0]["error_code"] == 0
    assert g.is_empty()


def test_inconsistent_protocol_is_rejected():
    g, (a,), gen = stable_group(1)
    out = join(g, 1, protocols=[("sticky", b"")])
    assert out["error_code"] == errors.InconsistentGroupProtocol.code
    out = g.join(1, member_id="", protocol_type="connect", protocols=PROTOCOLS,
                 session_timeout_ms=SESSION)
    assert out["error_code"] == errors.InconsistentGroupProtocol.code
    empty = make_group()
    assert empty.join(0, member_id="", protocol_type="consumer", protocols=[],
                      session_timeout_ms=SESSION)["error_code"] == errors.InconsistentGroupProtocol.code
    assert sync(g, 1, a, gen, protocol_name="sticky")["error_code"] == \
        errors.InconsistentGroupProtocol.code


def test_protocol_vote_picks_what_most_members_prefer():
    g = make_group()
    prefs = [[("range", b""), ("roundrobin", b"")], [("roundrobin", b""), ("range", b"")],
             [("roundrobin", b""), ("range", b""), ("sticky", b"")]]
    tokens = []
    for i, p in enumerate(prefs):
        mid, _ = new_member(g, 0, token=i, protocols=p)
        tokens.append(mid)
    out = join(g, 0, member_id=tokens[0], protocols=prefs[0], token="x")
    assert out["protocol_name"] == "roundrobin"


def test_session_timeout_outside_broker_bounds_is_rejected():
    g = make_group()
    out = g.join(0, member_id="", protocol_type="consumer", protocols=PROTOCOLS,
                 session_timeout_ms=10)
    assert out["error_code"] == errors.InvalidSessionTimeout.code


def test_join_during_completing_rebalance_aborts_pending_syncs():
    g = make_group()
    a, _ = new_member(g, 0, token="a")
    assert sync(g, 1, a, 1, token="sa") is not PENDING  # a is leader: completes at once
    b, _ = new_member(g, 2, token="b")
    join(g, 3, member_id=a, token="a2")
    g.take_completions()
    assert g.state is GroupState.COMPLETING_REBALANCE
    assert sync(g, 4, b, 2, token="sb") is PENDING
    c, _ = new_member(g, 5, token="c")  # new member: rebalance again before the leader syncs
    done = completions(g)
    assert done[("sb", "sync")]["error_code"] == errors.RebalanceInProgress.code


def test_unanswered_member_id_required_expires():
    g = make_group()
    first = join(g, 0)
    assert g.pending_members
    g.tick(SESSION)
    assert not g.pending_members
    assert join(g, SESSION + 1, member_id=first["member_id"])["error_code"] == \
        errors.UnknownMemberId.code


def test_parked_requests_of_removed_members_are_answered():
    g, (a, b), gen = stable_group(2)
    join(g, 1, member_id=a, token="ja")  # a (leader) rejoins; b silent
    g.leave(2, [{"member_id": a}])
    done = completions(g)
    assert done[("ja", "join")]["error_code"] == errors.UnknownMemberId.code


def test_dead_group_sends_clients_back_to_find_coordinator():
    g = make_group()
    g.mark_dead(0)
    assert join(g, 0)["error_code"] == errors.CoordinatorNotAvailable.code
    assert hb(g, 0, "m", 0) == errors.CoordinatorNotAvailable.code


def test_group_max_size_is_enforced():
    g = make_group(max_size=1)
    new_member(g, 0)
    assert join(g, 0)["error_code"] == errors.GroupMaxSizeReached.code
