"""KIP-848 and share-group membership made durable: a group restored from its records has
the same members, epochs, assignments (current, pending revocation, target, per-partition
assignment epochs) and owners, members carry on without a rebalance, and every member
gets a fresh session. Through the GroupHost as well: a coordinator host restarted on its
directory answers the members' next heartbeats at their epochs."""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from pybroker import errors
from pybroker.group.consumer_group import ConsumerGroup, ConsumerGroupSettings, MemberState
from pybroker.group.host import GroupHost
from pybroker.group.membership_store import FILE_NAME, MembershipStore

T1 = "00000000-0000-0000-0000-000000000001"


@dataclass
class Topic:
    topic_id: str
    partitions: int


TOPICS = {"orders": Topic(T1, 6)}


def beat(group, now, member, epoch, owned, **kw):
    return group.heartbeat(now, TOPICS, 0, member_id=member, member_epoch=epoch,
                           rebalance_timeout_ms=30_000 if epoch == 0 else -1,
                           subscribed_topic_names=["orders"] if epoch == 0 else None,
                           topic_partitions=[[t, sorted(ps)] for t, ps in owned.items()], **kw)


def drive(group, now, members):
    """Heartbeats every member until nothing moves; returns {member: (epoch, owned)}."""
    state = {m: (0, {}) for m in members}
    for _ in range(10):
        for m in members:
            epoch, owned = state[m]
            r = beat(group, now, m, epoch, owned)
            assert r["error_code"] == 0, r
            if r["assignment"] is not None:
                owned = {t: set(ps) for t, ps in r["assignment"]}
            state[m] = (r["member_epoch"], owned)
    return state


def copy_of(group, now):
    restored = ConsumerGroup(group.group_id, group.settings)
    restored.restore(group.metadata_json(), {m: group.member_json(m) for m in group.members}, now)
    return restored


def test_restored_group_has_the_same_members_epochs_assignments_and_owners():
    group = ConsumerGroup("g", ConsumerGroupSettings(session_timeout_ms=10_000))
    state = drive(group, 1_000, ["a", "b", "c"])
    assert group.state.value == "Stable"
    restored = copy_of(group, 50_000)
    assert restored.describe() == group.describe()
    assert restored.owners == group.owners
    assert {m: x.assignment_epochs for m, x in restored.members.items()} == \
        {m: x.assignment_epochs for m, x in group.members.items()}
    # Fresh sessions: the restored members are not expired by the time that passed.
    assert all(m.session_deadline_ms == 60_000 for m in restored.members.values())
    assert restored.expired(59_999) == []
    # Each member carries on at its epoch: no new group epoch, nothing moves.
    epoch = restored.group_epoch
    for m, (member_epoch, owned) in state.items():
        r = beat(restored, 50_001, m, member_epoch, owned)
        assert r["error_code"] == 0 and r["member_epoch"] == member_epoch
    assert restored.group_epoch == epoch and restored.state.value == "Stable"


def test_a_member_in_the_middle_of_revoking_keeps_waiting_and_gets_a_fresh_rebalance_timeout():
    group = ConsumerGroup("g")
    state = drive(group, 0, ["a", "b"])
    r = beat(group, 10, "c", 0, {})          # a third member: a and b must each give one up
    state["c"] = (r["member_epoch"], {})
    epoch, owned = state["a"]
    r = beat(group, 20, "a", epoch, owned)
    a = group.members["a"]
    assert a.state is MemberState.UNREVOKED_PARTITIONS and a.pending_revocation
    restored = copy_of(group, 1_000)
    ra = restored.members["a"]
    assert ra.pending_revocation == a.pending_revocation and ra.state is MemberState.UNREVOKED_PARTITIONS
    assert ra.revocation_deadline_ms == 1_000 + a.rebalance_timeout_ms
    # The revoked partitions are still a's: c cannot take them until a lets go.
    revoking = {(t, p) for t, ps in a.pending_revocation.items() for p in ps}
    assert all(restored.owners[tp] == "a" for tp in revoking)
    kept = {t: set(ps) for t, ps in r["assignment"]} if r["assignment"] is not None else a.assigned
    r = beat(restored, 1_001, "a", a.member_epoch, kept)
    assert r["error_code"] == 0
    assert all(tp not in restored.owners or restored.owners[tp] != "a" for tp in revoking)


def test_old_epoch_commit_rule_survives_a_restore():
    group = ConsumerGroup("g")
    state = drive(group, 0, ["a"])
    beat(group, 10, "b", 0, {})
    epoch, owned = state["a"]
    beat(group, 20, "a", epoch, owned)
    a = group.members["a"]
    kept = [("orders", p) for t, ps in a.assigned.items() for p in ps]
    restored = copy_of(group, 30)
    assert restored.commit_error("a", a.member_epoch, kept) == group.commit_error("a", a.member_epoch, kept)
    older = a.previous_member_epoch
    assert restored.commit_error("a", older, kept) == group.commit_error("a", older, kept)


def test_store_writes_only_changes_and_replays_them(tmp_path):
    store = MembershipStore(str(tmp_path))
    assert store.write("g", "consumer", {"epoch": 1}, {"a": {"x": 1}, "b": {"x": 2}}) == 3
    assert store.write("g", "consumer", {"epoch": 1}, {"a": {"x": 1}}) == 0
    assert store.write("g", "consumer", {"epoch": 2}, {"a": {"x": 3}}, removed={"b"}) == 3
    store.write("h", "share", {"epoch": 1}, {"m": {}})
    assert store.drop("h") and not store.drop("h")
    store.close()
    again = MembershipStore(str(tmp_path))
    assert list(again.groups) == ["g"]
    assert again.groups["g"].metadata == {"epoch": 2} and again.groups["g"].members == {"a": {"x": 3}}
    again.close()
    # A torn tail (a write cut short by SIGKILL) is dropped; the records before it stay.
    path = os.path.join(str(tmp_path), FILE_NAME)
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x40garbage")
    torn = MembershipStore(str(tmp_path))
    assert torn.dropped_bytes == 11 and torn.groups["g"].members == {"a": {"x": 3}}
    torn.close()


def test_store_compacts_to_live_records(tmp_path):
    store = MembershipStore(str(tmp_path))
    for i in range(1_000):
        store.write("g", "consumer", {"epoch": i}, {"a": {"n": i}})
    assert store._records < 4 * 64 + 2
    store.close()
    again = MembershipStore(str(tmp_path))
    assert again.groups["g"].metadata == {"epoch": 999} and again.groups["g"].members == {"a": {"n": 999}}
    again.close()


# -- through the coordinator host ------------------------------------------------------


def host_on(directory):
    host = GroupHost(directory)
    host.watch_topics(TOPICS)
    return host


def heartbeat(host, group_id, member, epoch, owned, method="consumer_heartbeat", **kw):
    args = {"member_id": member, "member_epoch": epoch, **kw}
    if method == "consumer_heartbeat":
        args.update(rebalance_timeout_ms=30_000 if epoch == 0 else -1,
                    topic_partitions=[[t, sorted(ps)] for t, ps in owned.items()])
    if epoch == 0:
        args["subscribed_topic_names"] = ["orders"]
    return asyncio.run(host.handle(method, group_id, args))


def settle(host, group_id, members, method="consumer_heartbeat"):
    state = {m: (0, {}) for m in members}
    for _ in range(8):
        for m in members:
            epoch, owned = state[m]
            r = heartbeat(host, group_id, m, epoch, owned, method)
            assert r["error_code"] == 0, r
            if r["assignment"] is not None:
                owned = {t: set(ps) for t, ps in r["assignment"]}
            state[m] = (r["member_epoch"], owned)
    return state


def describe(host, group_id, method="consumer_group_describe"):
    return asyncio.run(host.handle(method, "", {"group_ids": [group_id]}))[0]


def test_restarted_host_knows_consumer_and_share_members_at_their_epochs(tmp_path):
    host = host_on(str(tmp_path))
    state = settle(host, "cg", ["a", "b", "c"])
    shared = settle(host, "sg", ["s1", "s2"], "share_heartbeat")
    before = describe(host, "cg")
    share_before = describe(host, "sg", "share_group_describe")
    assert before["group_state"] == "Stable" and len(before["members"]) == 3
    host.close()

    revived = host_on(str(tmp_path))
    assert describe(revived, "cg") == before
    assert describe(revived, "sg", "share_group_describe") == share_before
    for m, (epoch, owned) in state.items():
        r = heartbeat(revived, "cg", m, epoch, owned)
        assert r["error_code"] == 0 and r["member_epoch"] == epoch
    for m, (epoch, owned) in shared.items():
        r = heartbeat(revived, "sg", m, epoch, owned, "share_heartbeat")
        assert r["error_code"] == 0 and r["member_epoch"] == epoch
    assert describe(revived, "cg")["group_epoch"] == before["group_epoch"]
    revived.close()


def test_members_that_left_or_were_deleted_stay_gone_after_a_restart(tmp_path):
    host = host_on(str(tmp_path))
    state = settle(host, "cg", ["a", "b"])
    r = heartbeat(host, "cg", "b", -1, {})
    assert r["error_code"] == 0
    settle(host, "gone", ["x"])
    heartbeat(host, "gone", "x", -1, {})
    assert asyncio.run(host.handle("delete_groups", "", {"group_ids": ["gone"]}))[0]["error_code"] == 0
    after_leave = describe(host, "cg")
    host.close()

    revived = host_on(str(tmp_path))
    assert describe(revived, "cg") == after_leave
    assert [m["member_id"] for m in after_leave["members"]] == ["a"]
    assert describe(revived, "gone")["error_code"] == errors.GroupIdNotFound.code
    r = heartbeat(revived, "cg", "b", state["b"][0], state["b"][1])
    assert r["error_code"] == errors.UnknownMemberId.code
    revived.close()


def test_a_heartbeat_that_moves_nothing_writes_nothing(tmp_path):
    host = host_on(str(tmp_path))
    state = settle(host, "cg", ["a", "b"])
    size = host.memberships.file.size
    for m, (epoch, owned) in state.items():
        heartbeat(host, "cg", m, epoch, owned)
    assert host.memberships.file.size == size
    host.close()


def test_an_empty_group_without_offsets_is_forgotten_one_with_offsets_is_kept(tmp_path):
    host = host_on(str(tmp_path))
    settle(host, "bare", ["a"])
    heartbeat(host, "bare", "a", -1, {})
    state = settle(host, "kept", ["b"])
    asyncio.run(host.handle("commit_offsets", "kept", {
        "member_id": "b", "generation_id": state["b"][0], "offsets": [["orders", 0, 5, None, -1]]}))
    heartbeat(host, "kept", "b", -1, {})
    epoch = describe(host, "kept")["group_epoch"]
    host.close()

    revived = host_on(str(tmp_path))
    assert describe(revived, "bare")["error_code"] == errors.GroupIdNotFound.code
    assert "bare" not in revived.memberships.groups
    kept = describe(revived, "kept")
    assert kept["error_code"] == 0 and kept["group_state"] == "Empty" and kept["group_epoch"] == epoch
    # A new member continues the epochs where the group left them.
    r = heartbeat(revived, "kept", "c", 0, {})
    assert r["error_code"] == 0 and r["member_epoch"] == epoch + 1
    revived.close()
