"""Online migration between the classic and the consumer group protocols as pure logic:
a classic group with members upgraded by a ConsumerGroupHeartbeat (its members keep what
they own, revoke before anyone else gets it, learn of changes by REBALANCE_IN_PROGRESS and
rejoin), the policy and the malformed-metadata refusals, and the downgrade when the last
consumer-protocol member leaves or is fenced."""
from __future__ import annotations

from dataclasses import replace

from pybroker import errors
from pybroker.group.consumer_group import ConsumerGroupSettings, MemberState
from pybroker.group.consumer_protocol import (Assignment, Subscription, decode_assignment, encode_assignment,
                                             encode_subscription)
from pybroker.group.coordinator import CoordinatorSettings, GroupCoordinator
from pybroker.group.offset_store import OffsetStore
from pybroker.group.state_machine import PENDING, GroupSettings, GroupState

from test_consumer_group import T1, topics

TOPICS = topics(orders=6)


def coordinator(tmp_path, policy="bidirectional"):
    settings = CoordinatorSettings(group=GroupSettings(initial_rebalance_delay_ms=0),
                                   consumer=ConsumerGroupSettings(migration_policy=policy))
    return GroupCoordinator(OffsetStore(str(tmp_path / "offsets")), settings)


def metadata(owned=()):
    return encode_subscription(Subscription(topics=["orders"], owned_partitions=list(owned)))


def join(c, member_id, now, owned=(), protocols=None):
    return c.join("g", now, topics=TOPICS, topics_version=0, member_id=member_id, protocol_type="consumer",
                  protocols=protocols or [("range", metadata(owned))], session_timeout_ms=10_000,
                  rebalance_timeout_ms=20_000, group_instance_id=None, client_id=member_id, client_host="/h",
                  version=5, token=member_id)


def classic_group(c):
    """A Stable classic group: a owns 0-2, b owns 3-5 at generation 1."""
    ids = [join(c, "", 0)["member_id"] for _ in range(2)]
    assert join(c, ids[0], 0) is PENDING
    assert join(c, ids[1], 0)["generation_id"] == 1
    assignments = [(ids[0], encode_assignment(Assignment([("orders", p) for p in (0, 1, 2)]))),
                   (ids[1], encode_assignment(Assignment([("orders", p) for p in (3, 4, 5)])))]
    for m in ids:
        c.sync("g", 1, member_id=m, generation_id=1, assignments=assignments if m == c.groups["g"].leader_id else [],
               token=m)
    c.take_completions()
    assert c.groups["g"].state is GroupState.STABLE
    return ids


def beat(c, member_id, epoch, now, owned=()):
    return c.consumer_heartbeat("g", now, TOPICS, 0, member_id=member_id, member_epoch=epoch,
                                rebalance_timeout_ms=20_000 if epoch == 0 else -1,
                                subscribed_topic_names=["orders"] if epoch == 0 else None,
                                topic_partitions=[[T1, sorted(owned)]])


def synced(c, member_id, generation, now):
    r = c.sync("g", now, member_id=member_id, generation_id=generation, protocol_type="consumer",
               protocol_name="range", token=member_id)
    assert r["error_code"] == 0, r
    return sorted(p for _, p in decode_assignment(r["assignment"]).partitions)


def test_a_consumer_heartbeat_upgrades_a_classic_group_with_members_and_revocation_comes_first(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    r = beat(c, "m", 0, 10)
    assert r["error_code"] == 0 and r["assignment"] == []         # everything is still owned
    assert "g" not in c.groups and c.list_groups()["groups"][0]["group_type"] == "consumer"
    group = c.consumer_groups["g"]
    assert {m: group.members[m].member_epoch for m in (a, b)} == {a: 1, b: 1}
    assert {d["member_id"]: d["member_type"] for d in c.consumer_group_describe(["g"])[0]["members"]} == \
        {a: 0, b: 0, "m": 1}
    assert c.commit_offsets("g", 11, member_id=a, generation_id=1, offsets={("orders", 0): (3, "", -1)}) == \
        {("orders", 0): 0}
    assert c.commit_offsets("g", 11, member_id=a, generation_id=0, offsets={("orders", 0): (3, "", -1)}) == \
        {("orders", 0): errors.IllegalGeneration.code}
    # The classic members learn of the new epoch by heartbeat and rejoin, cooperatively
    # still owning their partitions: each keeps two and must revoke one.
    owned = {a: {0, 1, 2}, b: {3, 4, 5}}
    for m in (a, b):
        assert c.heartbeat("g", 12, member_id=m, generation_id=1)["error_code"] == errors.RebalanceInProgress.code
        joined = join(c, m, 13, owned=[("orders", p) for p in sorted(owned[m])])
        assert joined["error_code"] == 0 and joined["generation_id"] == 1 and joined["leader"] == ""
        assert group.members[m].state is MemberState.UNREVOKED_PARTITIONS
        owned[m] = set(synced(c, m, 1, 14))
        assert len(owned[m]) == 2
    assert beat(c, "m", r["member_epoch"], 15)["assignment"] is None        # nothing released yet
    for m in (a, b):
        assert c.heartbeat("g", 16, member_id=m, generation_id=1)["error_code"] == errors.RebalanceInProgress.code
        joined = join(c, m, 17, owned=[("orders", p) for p in sorted(owned[m])])
        assert joined["generation_id"] == group.assignment_epoch
        assert synced(c, m, joined["generation_id"], 18) == sorted(owned[m])
        assert c.heartbeat("g", 19, member_id=m, generation_id=joined["generation_id"])["error_code"] == 0
    r = beat(c, "m", r["member_epoch"], 20)
    got = set(r["assignment"][0][1])
    assert len(got) == 2 and not got & (owned[a] | owned[b]) and got | owned[a] | owned[b] == set(range(6))
    assert c.list_groups()["groups"][0]["group_state"] == "Stable"
    # Classic members leave by LeaveGroup; the group stays a consumer group.
    left = c.leave("g", 21, [{"member_id": a}, {"member_id": b}])
    assert [m["error_code"] for m in left["members"]] == [0, 0]
    r = beat(c, "m", r["member_epoch"], 22, owned=got)
    assert "g" in c.consumer_groups and sorted(r["assignment"][0][1]) == list(range(6))


def test_an_eager_classic_member_that_revoked_everything_rejoins_at_the_new_epoch(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    beat(c, "m", 0, 10)
    joined = join(c, a, 11, owned=())                                # eager: revoked before rejoining
    assert joined["generation_id"] == c.consumer_groups["g"].assignment_epoch
    assert len(synced(c, a, joined["generation_id"], 12)) == 2


def test_the_policy_and_malformed_metadata_keep_a_classic_group_classic(tmp_path):
    for policy in ("disabled", "downgrade"):
        c = coordinator(tmp_path / policy, policy)
        classic_group(c)
        r = beat(c, "m", 0, 10)
        assert r["error_code"] == errors.GroupIdNotFound.code and c.groups["g"].state is GroupState.STABLE
    c = coordinator(tmp_path / "bad")
    a, b = classic_group(c)
    c.groups["g"].members[a].assignment = b"\x00"
    r = beat(c, "m", 0, 10)
    assert r["error_code"] == errors.GroupIdNotFound.code and "g" in c.groups and "g" not in c.consumer_groups


def test_parked_requests_of_a_rebalancing_classic_group_learn_of_the_upgrade(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    assert join(c, a, 5, protocols=[("range", metadata()), ("roundrobin", metadata())]) is PENDING
    beat(c, "m", 0, 10)
    answered = c.take_completions()
    assert [(gid, x.token, x.response["error_code"]) for gid, x in answered] == \
        [("g", a, errors.RebalanceInProgress.code)]


def test_the_last_consumer_member_leaving_downgrades_and_the_group_rebalances(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    r = beat(c, "m", 0, 10)
    epoch = c.consumer_groups["g"].group_epoch
    left = beat(c, "m", -1, 11)
    assert left["error_code"] == 0 and left["member_epoch"] == -1
    group = c.groups["g"]
    assert "g" not in c.consumer_groups and group.state is GroupState.PREPARING_REBALANCE
    assert group.generation_id == epoch and set(group.members) == {a, b}
    assert c.list_groups()["groups"][0]["group_type"] == "classic"
    assert c.heartbeat("g", 12, member_id=a, generation_id=1)["error_code"] == errors.IllegalGeneration.code
    assert join(c, a, 13) is PENDING
    done = join(c, b, 13)
    assert done["error_code"] == 0 and done["generation_id"] == epoch + 1
    assert r["error_code"] == 0


def test_a_fenced_consumer_member_downgrades_too_unless_the_policy_forbids(tmp_path):
    for policy, classic in (("bidirectional", True), ("upgrade", False)):
        c = coordinator(tmp_path / policy, policy)
        a, b = classic_group(c)
        beat(c, "m", 0, 10)
        for m in (a, b):
            c.heartbeat("g", 40_000, member_id=m, generation_id=1)
        c.tick(46_000)                                    # m's 45 s session is over, a's and b's not
        assert ("g" in c.groups) is classic and ("g" in c.consumer_groups) is not classic


def test_a_classic_member_silent_past_its_own_session_timeout_is_fenced(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    r = beat(c, "m", 0, 10)
    c.heartbeat("g", 5_000, member_id=b, generation_id=1)
    beat(c, "m", r["member_epoch"], 12_000)
    c.tick(12_000)                                        # a's 10 s session ran out
    assert set(c.consumer_groups["g"].members) == {b, "m"}
    assert c.heartbeat("g", 12_001, member_id=a, generation_id=1)["error_code"] == errors.UnknownMemberId.code


def test_group_consumer_max_size_bounds_the_upgrade(tmp_path):
    c = coordinator(tmp_path)
    c.settings = replace(c.settings, consumer=replace(c.settings.consumer, max_size=1))
    classic_group(c)
    assert beat(c, "m", 0, 10)["error_code"] == errors.GroupIdNotFound.code


def test_transactional_commits_of_a_classic_member_in_a_consumer_group_check_its_generation(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    beat(c, "m", 0, 10)
    assert c.txn_commit_error("g", a, 1) == 0
    assert c.txn_commit_error("g", a, 0) == errors.IllegalGeneration.code
    assert c.txn_commit_error("g", "nobody", 1) == errors.UnknownMemberId.code


def test_a_classic_static_member_replacing_the_last_consumer_member_downgrades_without_a_rebalance(tmp_path):
    c = coordinator(tmp_path)
    a, b = classic_group(c)
    r = c.consumer_heartbeat("g", 10, TOPICS, 0, member_id="m", member_epoch=0, instance_id="i",
                             rebalance_timeout_ms=20_000, subscribed_topic_names=["orders"], topic_partitions=[])
    assert r["error_code"] == 0
    target = c.consumer_groups["g"].target["m"]
    joined = c.join("g", 11, topics=TOPICS, topics_version=0, member_id="", protocol_type="consumer",
                    protocols=[("range", metadata())], session_timeout_ms=10_000, rebalance_timeout_ms=20_000,
                    group_instance_id="i", client_id="i", client_host="/h", version=5, token="i")
    assert joined["error_code"] == 0
    group = c.groups["g"]
    assert "g" not in c.consumer_groups and group.state is GroupState.STABLE
    assert set(group.members) == {a, b, joined["member_id"]}
    r = c.sync("g", 12, member_id=joined["member_id"], generation_id=group.generation_id, token="i")
    assert r["error_code"] == 0
    assert {p for _, p in decode_assignment(r["assignment"]).partitions} == target.get(T1, set())
