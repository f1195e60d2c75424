"""KIP-848 consumer groups as pure logic: joining, the server-side assignment, revocation
before assignment (a partition never has two owners), epoch fencing, timeouts, static
members, regex subscriptions, and what the coordinator makes of classic and consumer
groups side by side."""
from __future__ import annotations

from dataclasses import dataclass

from pybroker import errors
from pybroker.group.consumer_group import ConsumerGroup, ConsumerGroupSettings, MemberState
from pybroker.group.coordinator import CoordinatorSettings, GroupCoordinator
from pybroker.group.offset_store import OffsetStore
from pybroker.group.server_assignors import range_, uniform

T1 = "00000000-0000-0000-0000-000000000001"
T2 = "00000000-0000-0000-0000-000000000002"


@dataclass
class Topic:
    topic_id: str
    partitions: int


def topics(**counts):
    ids = {"orders": T1, "payments": T2}
    return {name: Topic(ids[name], n) for name, n in counts.items()}


class Members:
    """Drives a group as clients do: each heartbeat reports what the member owns."""

    def __init__(self, group=None, **settings):
        self.group = group or ConsumerGroup("g", ConsumerGroupSettings(**settings))
        self.topics = topics(orders=6)
        self.version = 0
        self.now = 0
        self.epoch: dict[str, int] = {}
        self.owned: dict[str, dict[str, set[int]]] = {}

    def beat(self, member, subscribe=None, **kw):
        epoch = self.epoch.get(member, 0)
        owned = [[t, sorted(ps)] for t, ps in self.owned.get(member, {}).items()]
        r = self.group.heartbeat(self.now, self.topics, self.version, member_id=member, member_epoch=epoch,
                                 rebalance_timeout_ms=kw.pop("rebalance_timeout_ms", 30_000 if epoch == 0 else -1),
                                 subscribed_topic_names=subscribe if subscribe is not None else (
                                     ["orders"] if epoch == 0 else None),
                                 topic_partitions=owned, **kw)
        if r["error_code"] == 0:
            self.epoch[member] = r["member_epoch"]
            if r["assignment"] is not None:
                self.owned[member] = {t: set(ps) for t, ps in r["assignment"]}
        return r

    def partitions(self, member):
        return sorted(p for ps in self.owned.get(member, {}).values() for p in ps)

    def settle(self, members, rounds=10):
        for _ in range(rounds):
            for m in members:
                self.beat(m)
        return [self.partitions(m) for m in members]


def assert_no_two_owners(m: Members, members):
    seen = [p for x in members for p in m.partitions(x)]
    assert len(seen) == len(set(seen)), {x: m.partitions(x) for x in members}


def test_first_member_gets_every_partition_at_epoch_one():
    m = Members()
    r = m.beat("a")
    assert r["error_code"] == 0 and r["member_epoch"] == 1
    assert m.partitions("a") == [0, 1, 2, 3, 4, 5]
    assert m.group.state.value == "Stable"


def test_three_members_settle_two_each_and_no_partition_ever_has_two_owners():
    m = Members()
    m.beat("a")
    for _ in range(10):
        for member in ("a", "b", "c"):
            m.beat(member)
            assert_no_two_owners(m, ["a", "b", "c"])
    assert [len(m.partitions(x)) for x in ("a", "b", "c")] == [2, 2, 2]
    assert sorted(p for x in "abc" for p in m.partitions(x)) == list(range(6))
    assert m.group.state.value == "Stable"


def test_revocation_comes_before_assignment():
    m = Members()
    m.beat("a")
    joined = m.beat("b")
    # b's partitions are still a's: b gets nothing yet, and waits.
    assert joined["member_epoch"] == m.group.assignment_epoch and m.partitions("b") == []
    assert m.group.members["b"].state is MemberState.UNRELEASED_PARTITIONS
    r = m.beat("a")
    assert m.group.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    assert len(m.partitions("a")) == 3 and r["member_epoch"] == 1     # keeps its epoch until it revokes
    m.beat("a")                                                        # now owns only its half
    assert m.group.members["a"].state is MemberState.STABLE
    m.beat("b")
    assert sorted(m.partitions("a") + m.partitions("b")) == list(range(6)) and len(m.partitions("b")) == 3


def test_a_member_that_does_not_revoke_in_time_is_fenced():
    m = Members()
    m.beat("a")
    m.beat("b")
    # a is asked to revoke but keeps reporting every partition.
    m.group.heartbeat(m.now, m.topics, 0, member_id="a", member_epoch=1, rebalance_timeout_ms=1000,
                      topic_partitions=[[T1, [0, 1, 2, 3, 4, 5]]])
    assert m.group.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    m.now = 999
    assert m.group.tick(m.now) == []
    m.now = 1000
    assert m.group.tick(m.now) == ["a"]
    m.beat("b")
    assert m.partitions("b") == [0, 1, 2, 3, 4, 5]


def test_session_timeout_fences_a_silent_member_and_its_partitions_move():
    m = Members(session_timeout_ms=45_000)
    m.settle(["a", "b"])
    m.now = 44_999
    m.beat("b")
    assert m.group.tick(m.now) == []
    m.now = 45_000
    assert m.group.tick(m.now) == ["a"]
    m.settle(["b"])
    assert m.partitions("b") == list(range(6))


def test_stale_and_future_epochs_are_fenced_previous_epoch_is_tolerated():
    m = Members()
    m.settle(["a"])
    epoch = m.epoch["a"]
    r = m.group.heartbeat(0, m.topics, 0, member_id="a", member_epoch=epoch + 1)
    assert r["error_code"] == errors.FencedMemberEpoch.code
    m.beat("b")
    m.settle(["a", "b"])
    m.beat("c")
    m.settle(["a", "b", "c"])
    a = m.group.members["a"]
    assert a.previous_member_epoch >= 2
    # A lost response: the member still sends its previous epoch with a subset of what it owns.
    r = m.group.heartbeat(0, m.topics, 0, member_id="a", member_epoch=a.previous_member_epoch,
                          topic_partitions=[[T1, sorted(a.assigned[T1])]])
    assert r["error_code"] == 0 and r["member_epoch"] == a.member_epoch
    r = m.group.heartbeat(0, m.topics, 0, member_id="a", member_epoch=a.previous_member_epoch - 1)
    assert r["error_code"] == errors.FencedMemberEpoch.code
    r = m.group.heartbeat(0, m.topics, 0, member_id="nobody", member_epoch=3)
    assert r["error_code"] == errors.UnknownMemberId.code


def test_leaving_member_hands_its_partitions_over():
    m = Members()
    m.settle(["a", "b"])
    r = m.group.heartbeat(0, m.topics, 0, member_id="a", member_epoch=-1)
    assert r["error_code"] == 0 and r["member_epoch"] == -1 and "a" not in m.group.members
    m.settle(["b"])
    assert m.partitions("b") == list(range(6))


def test_static_member_rejoins_with_its_assignment_and_a_duplicate_instance_is_refused():
    m = Members()
    m.beat("a", instance_id="i-a")
    m.beat("b", instance_id="i-b")
    m.settle(["a", "b"])
    before = m.partitions("a")
    epoch_before = m.group.group_epoch
    m.group.heartbeat(0, m.topics, 0, member_id="a", member_epoch=-2, instance_id="i-a")
    dup = m.group.heartbeat(0, m.topics, 0, member_id="x", member_epoch=0, instance_id="i-b",
                            subscribed_topic_names=["orders"])
    assert dup["error_code"] == errors.UnreleasedInstanceId.code
    r = m.group.heartbeat(0, m.topics, 0, member_id="a2", member_epoch=0, instance_id="i-a",
                          subscribed_topic_names=["orders"], rebalance_timeout_ms=30_000, topic_partitions=[])
    assert r["error_code"] == 0 and r["member_id"] == "a2"
    assert sorted(p for _, ps in r["assignment"] for p in ps) == before
    assert m.group.group_epoch == epoch_before      # no rebalance for a static member's bounce


def test_regex_subscription_is_evaluated_on_the_broker_and_follows_new_topics():
    m = Members()
    r = m.group.heartbeat(0, m.topics, 0, member_id="a", member_epoch=0, subscribed_topic_regex="pay.*",
                          rebalance_timeout_ms=30_000, topic_partitions=[])
    assert r["assignment"] == []
    m.topics = topics(orders=6, payments=2)
    r = m.group.heartbeat(0, m.topics, 1, member_id="a", member_epoch=r["member_epoch"])
    assert r["assignment"] == [[T2, [0, 1]]]
    bad = m.group.heartbeat(0, m.topics, 1, member_id="b", member_epoch=0, subscribed_topic_regex="(",
                            rebalance_timeout_ms=30_000, topic_partitions=[])
    assert bad["error_code"] == errors.InvalidRegularExpression.code


def test_added_partitions_bump_the_group_epoch_and_are_assigned():
    m = Members()
    m.settle(["a", "b"])
    epoch = m.group.group_epoch
    m.topics = topics(orders=8)
    m.version = 1
    assert sorted(m.settle(["a", "b"])[0] + m.settle(["a", "b"])[1]) == list(range(8))
    assert m.group.group_epoch == epoch + 1


def test_unknown_assignor_is_refused_and_range_is_chosen_when_asked():
    m = Members()
    r = m.beat("a", server_assignor="cooperative")
    assert r["error_code"] == errors.UnsupportedAssignor.code
    m.beat("a", server_assignor="range")
    m.beat("b", server_assignor="range")
    assert m.settle(["a", "b"]) == [[0, 1, 2], [3, 4, 5]]
    assert m.group.assignor_name() == "range"


def test_server_assignors_balance_and_keep_previous_owners():
    members = {"a": ({T1, T2}, None), "b": ({T1, T2}, None), "c": ({T1}, None)}
    first = uniform(members, {T1: 6, T2: 3}, {})
    counts = sorted(sum(len(ps) for ps in a.values()) for a in first.values())
    assert counts == [3, 3, 3]
    assert all(T2 not in first["c"] for _ in [0])
    # c leaves: a and b keep every partition they had.
    second = uniform({"a": members["a"], "b": members["b"]}, {T1: 6, T2: 3}, first)
    for member in ("a", "b"):
        for t, ps in first[member].items():
            assert ps <= second[member].get(t, set())
    assert range_({"a": ({T1}, None), "b": ({T1}, None)}, {T1: 5}, {}) == {"a": {T1: {0, 1, 2}}, "b": {T1: {3, 4}}}


def test_offset_commits_check_the_member_epoch():
    m = Members()
    m.settle(["a"])
    group = m.group
    assert group.commit_error("a", m.epoch["a"]) == 0
    assert group.commit_error("a", m.epoch["a"] - 1) == errors.StaleMemberEpoch.code
    assert group.commit_error("ghost", 1) == errors.UnknownMemberId.code
    assert group.commit_error("", -1) == errors.UnknownMemberId.code     # admin commits only when empty


def test_a_commit_at_an_older_epoch_is_accepted_for_partitions_still_held_at_that_epoch():
    """KIP-1251 (Kafka 4.4): a commit that crosses the heartbeat moving its member to a new
    epoch keeps working for the partitions the member already had; the Java consumer sends
    such commits from its application thread while its network thread heartbeats."""
    m = Members()
    m.settle(["a"])
    group, old = m.group, m.epoch["a"]
    m.settle(["a", "b"])
    assert m.epoch["a"] > old
    kept, given = m.partitions("a"), m.partitions("b")
    assert len(kept) == len(given) == 3
    stale = errors.StaleMemberEpoch.code
    assert group.commit_error("a", old, [("orders", p) for p in kept]) == 0
    assert group.commit_error("a", old, [("orders", kept[0]), ("orders", given[0])]) == stale
    assert group.commit_error("a", old, [("elsewhere", 0)]) == stale
    assert group.commit_error("a", old) == stale                          # OffsetFetch: current epoch only
    assert group.commit_error("a", m.epoch["a"] + 1, [("orders", kept[0])]) == stale
    # b's partitions were assigned at its first epoch: nothing older than that commits them.
    assert group.commit_error("b", m.epoch["b"] - 1, [("orders", given[0])]) == stale
    assert group.commit_error("b", m.epoch["b"], [("orders", given[0])]) == 0


def _coordinator(tmp_path):
    return GroupCoordinator(OffsetStore(str(tmp_path / "offsets")), CoordinatorSettings())


def test_coordinator_upgrades_an_empty_classic_group_and_lists_both_types(tmp_path):
    c = _coordinator(tmp_path)
    c.commit_offsets("old", 1, offsets={("orders", 0): (5, "", -1)})          # a classic, empty group
    r = c.consumer_heartbeat("old", 2, topics(orders=2), 0, member_id="m", member_epoch=0,
                             subscribed_topic_names=["orders"], rebalance_timeout_ms=1000, topic_partitions=[])
    assert r["error_code"] == 0 and r["assignment"] == [[T1, [0, 1]]]
    assert c.fetch_offsets("old")[("orders", 0)].offset == 5                  # offsets survive the upgrade
    c.join("classic", 3, member_id="", protocol_type="consumer", protocols=[("range", b"")],
           session_timeout_ms=10_000, rebalance_timeout_ms=10_000, group_instance_id=None,
           client_id="c", client_host="/h", version=5)
    listed = {g["group_id"]: g for g in c.list_groups()["groups"]}
    assert listed["old"]["group_type"] == "consumer" and listed["old"]["group_state"] == "Stable"
    assert listed["classic"]["group_type"] == "classic"
    assert [g["group_id"] for g in c.list_groups(types=["Consumer"])["groups"]] == ["old"]
    described = c.consumer_group_describe(["old", "classic", "nope"])
    assert described[0]["error_code"] == 0 and described[0]["members"][0]["member_epoch"] == r["member_epoch"]
    assert [d["error_code"] for d in described[1:]] == [errors.GroupIdNotFound.code] * 2
    # A classic join to a consumer group with members becomes a classic member of it (first
    # a member id, as Kafka); one of another embedded protocol is refused.
    first = c.join("old", 4, member_id="", protocol_type="consumer", protocols=[("range", b"")],
                   session_timeout_ms=10_000, rebalance_timeout_ms=10_000, group_instance_id=None,
                   client_id="c", client_host="/h", version=5)
    assert first["error_code"] == errors.MemberIdRequired.code and first["member_id"]
    refused = c.join("old", 4, member_id="", protocol_type="connect", protocols=[("range", b"")],
                     session_timeout_ms=10_000, rebalance_timeout_ms=10_000, group_instance_id=None,
                     client_id="c", client_host="/h", version=5)
    assert refused["error_code"] == errors.InconsistentGroupProtocol.code
    assert c.delete_groups(["old"], 5)[0]["error_code"] == errors.NonEmptyGroup.code
    assert c.commit_offsets("old", 5, member_id="m", generation_id=r["member_epoch"],
                            offsets={("orders", 1): (7, "", -1)}) == {("orders", 1): 0}
