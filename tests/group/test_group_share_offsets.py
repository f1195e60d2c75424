"""The coordinator's share-group offsets admin (AlterShareGroupOffsets and
DeleteShareGroupOffsets), pure logic: Kafka 4.4's answers for each case, the state a
reset leaves, and its reload after a restart."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from pybroker import errors
from pybroker.group.coordinator import GroupCoordinator
from pybroker.group.offset_store import OffsetStore
from pybroker.group.share_partition import ACQUIRED

COUNTS = {"t": 2, "u": 1}
UNKNOWN = errors.UnknownTopicOrPartition


@dataclass
class Topic:
    topic_id: str
    partitions: int


TOPICS = {"t": Topic("00000000-0000-0000-0000-000000000001", 2)}


@pytest.fixture
def coord(tmp_path):
    return GroupCoordinator(OffsetStore(tmp_path, fsync=False))


def join(coord, group="g", now=0):
    answer = coord.share_heartbeat(group, now, TOPICS, 1, member_id="m1", member_epoch=0,
                                   subscribed_topic_names=["t"])
    assert answer["error_code"] == 0
    return answer


def test_alter_creates_the_group_and_resets_each_partition(coord):
    code, message, rows = coord.alter_share_offsets("g", [("t", [(0, 3), (1, 0), (7, 0)]), ("nope", [(0, 1)])], COUNTS)
    assert (code, message) == (0, None)
    assert rows == [["t", [[0, 0, None], [1, 0, None], [7, UNKNOWN.code, UNKNOWN.message]]],
                    ["nope", [[0, UNKNOWN.code, UNKNOWN.message]]]]
    assert coord.share_offsets("g", None) == [["t", 0, 3, 0], ["t", 1, 0, 0]]
    assert coord.list_groups()["groups"] == [{"group_id": "g", "protocol_type": "share", "group_state": "Empty",
                                              "group_type": "share"}]
    # Each change is handed to the durable store.
    assert set(coord.share_changes) == {("g", "t", 0), ("g", "t", 1)}


def test_alter_forgets_in_flight_records_and_a_negative_offset_drops_the_state(coord):
    coord.alter_share_offsets("g", [("t", [(0, 0)])], COUNTS)
    join(coord)
    sp_answer = coord.share_acquire("g", "m1", 0, [("t", 0, 0, 10)], 5)
    assert sp_answer["acquired"][("t", 0)] == [(0, 4, 1)]
    coord.share_heartbeat("g", 1, TOPICS, 1, member_id="m1", member_epoch=-1)
    assert coord.alter_share_offsets("g", [("t", [(0, 2)])], COUNTS)[0] == 0
    sp = coord.share_groups["g"].partitions[("t", 0)]
    assert (sp.start, sp.end, sp.ranges) == (2, 2, [])
    assert not any(r.state == ACQUIRED for r in sp.ranges)
    coord.alter_share_offsets("g", [("t", [(0, -1)])], COUNTS)
    assert ("t", 0) not in coord.share_groups["g"].partitions
    assert coord.share_changes[("g", "t", 0)] is None


def test_group_errors_as_kafka_answers_them(coord):
    assert coord.alter_share_offsets("", [("t", [(0, 1)])], COUNTS)[:2] == (24, "The group id is invalid.")
    assert coord.delete_share_offsets("", ["t"], COUNTS)[:2] == (24, "The group id is invalid.")
    assert coord.delete_share_offsets("missing", ["t"], COUNTS) == (69, "Group missing not found.", [])
    # Nothing to alter: no group is created.
    assert coord.alter_share_offsets("empty-request", [], COUNTS) == (0, None, [])
    assert "empty-request" not in coord.share_groups
    coord.commit_offsets("classic", 0, offsets={("t", 0): (1, "", -1)})
    for call in (lambda: coord.alter_share_offsets("classic", [("t", [(0, 1)])], COUNTS),
                 lambda: coord.delete_share_offsets("classic", ["t"], COUNTS)):
        assert call() == (69, "Group classic is not a share group.", [])
    join(coord)
    assert coord.alter_share_offsets("g", [("t", [(0, 1)])], COUNTS) == (68, "The group is not empty.", [])
    assert coord.delete_share_offsets("g", ["t"], COUNTS) == (68, "The group is not empty.", [])


def test_delete_drops_whole_topics(coord):
    coord.alter_share_offsets("g", [("t", [(0, 3), (1, 4)]), ("u", [(0, 1)])], COUNTS)
    assert coord.delete_share_offsets("g", ["t", "nope", "t"], COUNTS) == (0, None, [
        ["t", 0, None], ["nope", UNKNOWN.code, UNKNOWN.message],
        ["t", UNKNOWN.code, "There is no offset information to delete."]])
    assert coord.share_offsets("g", None) == [["u", 0, 1, 0]]
    assert coord.share_changes[("g", "t", 1)] is None
    # Describe of a group that is not a share group: nothing, without an error (Kafka).
    assert coord.share_offsets("missing", None) == []


def test_groups_with_state_are_known_again_after_a_restart(tmp_path, coord):
    coord.alter_share_offsets("g", [("t", [(1, 4)])], COUNTS)
    again = GroupCoordinator(OffsetStore(tmp_path / "again", fsync=False))
    again.load_share_states(dict(coord.share_states))
    assert again.share_offsets("g", None) == [["t", 1, 4, 0]]
    assert [g["group_id"] for g in again.list_groups(types=["share"])["groups"]] == ["g"]
    assert again.delete_groups(["g"], 0) == [{"group_id": "g", "error_code": 0}]
    assert again.share_changes == {("g", "t", 1): None}
