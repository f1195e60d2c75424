import itertools

import pytest

from pybroker import errors
from pybroker.group.coordinator import CoordinatorSettings, GroupCoordinator, lag
from pybroker.group.offset_store import OffsetStore
from pybroker.group.state_machine import GroupSettings

RETENTION = 60_000


@pytest.fixture
def coord(tmp_path):
    counter = itertools.count()
    store = OffsetStore(tmp_path, fsync=False)
    settings = CoordinatorSettings(group=GroupSettings(initial_rebalance_delay_ms=0),
                                   offsets_retention_ms=RETENTION)
    yield GroupCoordinator(store, settings, new_member_id=lambda p: f"{p}-{next(counter)}")
    store.close()


def join_and_sync(coord, group_id, now=0):
    out = coord.join(group_id, now, member_id="", protocol_type="consumer",
                     protocols=[("range", b"")], session_timeout_ms=10_000, version=3)
    mid, gen = out["member_id"], out["generation_id"]
    assert coord.sync(group_id, now, member_id=mid, generation_id=gen,
                      assignments={mid: b"x"})["error_code"] == 0
    return mid, gen


def test_simple_consumer_commits_without_group(coord):
    assert coord.commit_offsets("g", 5, offsets={("t", 0): (10, "m", 2)}) == {("t", 0): 0}
    got = coord.fetch_offsets("g", [("t", 0), ("t", 1)])
    assert got[("t", 0)].offset == 10 and got[("t", 0)].metadata == "m"
    assert got[("t", 1)].offset == -1
    assert coord.list_groups()["groups"] == [{"group_id": "g", "protocol_type": "",
                                              "group_state": "Empty", "group_type": "classic"}]


def test_member_commit_checks_generation_and_member(coord):
    mid, gen = join_and_sync(coord, "g")
    tp = ("t", 0)
    assert coord.commit_offsets("g", 1, member_id=mid, generation_id=gen,
                                offsets={tp: (3, None, -1)}) == {tp: 0}
    assert coord.commit_offsets("g", 1, member_id=mid, generation_id=gen + 1,
                                offsets={tp: (4, None, -1)}) == {tp: errors.IllegalGeneration.code}
    assert coord.commit_offsets("g", 1, member_id="other", generation_id=gen,
                                offsets={tp: (4, None, -1)}) == {tp: errors.UnknownMemberId.code}
    # A simple commit is refused while the group has members.
    assert coord.commit_offsets("g", 1, offsets={tp: (4, None, -1)}) == \
        {tp: errors.UnknownMemberId.code}
    assert coord.commit_offsets("nogroup", 1, member_id="m", generation_id=3,
                                offsets={tp: (4, None, -1)}) == {tp: errors.IllegalGeneration.code}
    assert coord.fetch_offsets("g")[tp].offset == 3


def test_commit_rejects_oversized_metadata_per_partition(coord):
    out = coord.commit_offsets("g", 1, offsets={("t", 0): (1, "x" * 5000, -1),
                                                ("t", 1): (1, "ok", -1)})
    assert out == {("t", 0): errors.OffsetMetadataTooLarge.code, ("t", 1): 0}
    assert list(coord.fetch_offsets("g")) == [("t", 1)]


def test_commit_during_completing_rebalance_is_refused(coord):
    out = coord.join("g", 0, member_id="", protocol_type="consumer", protocols=[("range", b"")],
                     session_timeout_ms=10_000, version=3)
    res = coord.commit_offsets("g", 1, member_id=out["member_id"], generation_id=1,
                               offsets={("t", 0): (1, None, -1)})
    assert res == {("t", 0): errors.RebalanceInProgress.code}


def test_describe_list_and_delete_groups(coord):
    mid, gen = join_and_sync(coord, "active")
    coord.commit_offsets("idle", 0, offsets={("t", 0): (1, None, -1)})
    listed = {g["group_id"]: g["group_state"] for g in coord.list_groups()["groups"]}
    assert listed == {"active": "Stable", "idle": "Empty"}
    assert [g["group_id"] for g in coord.list_groups(["Stable"])["groups"]] == ["active"]
    active, idle, unknown = coord.describe_groups(["active", "idle", "nope"])
    assert active["group_state"] == "Stable" and active["protocol_data"] == "range"
    assert active["members"][0]["member_assignment"] == b"x"
    assert idle["group_state"] == "Empty" and unknown["group_state"] == "Dead"
    assert coord.delete_groups(["active", "idle", "nope"], 1) == [
        {"group_id": "active", "error_code": errors.NonEmptyGroup.code},
        {"group_id": "idle", "error_code": 0},
        {"group_id": "nope", "error_code": errors.GroupIdNotFound.code}]
    assert coord.fetch_offsets("idle") == {}


def test_group_that_empties_keeps_its_protocol_type(coord):
    mid, _ = join_and_sync(coord, "g")
    coord.leave("g", 1, [{"member_id": mid}])
    assert coord.list_groups()["groups"] == [{"group_id": "g", "protocol_type": "consumer",
                                              "group_state": "Empty", "group_type": "classic"}]
    described, = coord.describe_groups(["g"])
    assert (described["group_state"], described["protocol_type"]) == ("Empty", "consumer")


def test_deleted_group_can_be_joined_again(coord):
    mid, gen = join_and_sync(coord, "g")
    coord.leave("g", 1, [{"member_id": mid}])
    assert coord.delete_groups(["g"], 2)[0]["error_code"] == 0
    mid2, gen2 = join_and_sync(coord, "g", now=3)
    assert gen2 == 1


def test_offsets_of_group_empty_past_retention_expire(coord):
    mid, gen = join_and_sync(coord, "g")
    coord.commit_offsets("g", 10, member_id=mid, generation_id=gen, offsets={("t", 0): (5, None, -1)})
    assert coord.expire_offsets(10 + 10 * RETENTION) == 0  # members present: kept
    coord.leave("g", 100, [{"member_id": mid}])
    assert coord.expire_offsets(100 + RETENTION - 1) == 0
    assert coord.expire_offsets(100 + RETENTION) == 1
    assert coord.fetch_offsets("g") == {} and "g" not in coord.groups


def test_simple_consumer_offsets_expire_one_by_one(coord):
    coord.commit_offsets("s", 0, offsets={("t", 0): (1, None, -1)})
    coord.commit_offsets("s", 500, offsets={("t", 1): (1, None, -1)})
    assert coord.expire_offsets(RETENTION) == 1
    assert list(coord.fetch_offsets("s")) == [("t", 1)]
    assert coord.expire_offsets(RETENTION + 500) == 1
    assert coord.list_groups()["groups"] == []


def test_unknown_group_requests_get_kafka_errors(coord):
    assert coord.heartbeat("g", 0, member_id="m", generation_id=1)["error_code"] == \
        errors.UnknownMemberId.code
    assert coord.sync("g", 0, member_id="m", generation_id=1)["error_code"] == \
        errors.UnknownMemberId.code
    assert coord.leave("g", 0, [{"member_id": "m"}])["members"][0]["error_code"] == \
        errors.UnknownMemberId.code
    assert coord.join("", 0, member_id="", protocol_type="consumer", protocols=[("r", b"")],
                      session_timeout_ms=10_000)["error_code"] == errors.InvalidGroupId.code


def test_completions_carry_their_group(coord):
    for member in ("a", "b"):
        coord.join("g", 0, member_id="", protocol_type="consumer", protocols=[("range", b"")],
                   session_timeout_ms=10_000, version=3, token=member)
    assert coord.take_completions() == []  # b's join put a back into a rebalance
    mid_a = next(iter(coord.groups["g"].members))
    coord.join("g", 1, member_id=mid_a, protocol_type="consumer", protocols=[("range", b"")],
               session_timeout_ms=10_000, version=3, token="a2")
    done = coord.take_completions()
    assert [(gid, c.token) for gid, c in done] == [("g", "b")]
    assert coord.next_deadline_ms() is not None


def test_lag():
    assert lag(5, 12) == 7
    assert lag(12, 12) == 0
    assert lag(20, 12) == 0
    assert lag(None, 12) == 12 and lag(-1, 12, log_start=4) == 8
    assert lag(2, 12, log_start=4) == 8
