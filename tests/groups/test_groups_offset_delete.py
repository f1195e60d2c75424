"""OffsetDelete (47): the coordinator's rules without a broker, then `pybroker groups
--delete-offsets`, pybroker's Admin and kafka-python's KafkaAdminClient against a real
cluster, and the deletion surviving a cluster restart."""
from __future__ import annotations

import itertools

import pytest

from groups_helpers import (
    GROUP_ARGS, ConsumerProcess, committed, create_topic, group_state, groups_tool, unique, wait_until,
)
from pybroker import errors
from pybroker.client import Admin
from pybroker.group.consumer_protocol import Subscription, encode_subscription
from pybroker.group.coordinator import CoordinatorSettings, GroupCoordinator
from pybroker.group.offset_store import OffsetStore
from pybroker.group.state_machine import GroupSettings

SUBSCRIBED = errors.GroupSubscribedToTopic.code
NO_DELAY = CoordinatorSettings(group=GroupSettings(initial_rebalance_delay_ms=0))


@pytest.fixture
def coord(tmp_path):
    counter = itertools.count()
    store = OffsetStore(tmp_path, fsync=False)
    yield GroupCoordinator(store, NO_DELAY, new_member_id=lambda p: f"{p}-{next(counter)}")
    store.close()


def join(coord, group_id: str, topics: list[str], protocol_type: str = "consumer") -> str:
    metadata = encode_subscription(Subscription(topics))
    out = coord.join(group_id, 0, member_id="", protocol_type=protocol_type, protocols=[("range", metadata)],
                     session_timeout_ms=10_000, version=3)
    member = out["member_id"]
    assert coord.sync(group_id, 0, member_id=member, generation_id=out["generation_id"],
                      assignments={member: b""})["error_code"] == 0
    assert coord.groups[group_id].state.value == "Stable"
    return member


def commit(coord, group_id: str, *tps) -> None:
    assert set(coord.commit_offsets(group_id, 1, offsets={tp: (5, None, -1) for tp in tps}).values()) == {0}


def test_unknown_or_invalid_group_is_refused(coord):
    assert coord.delete_offsets("nobody", [("t", 0)], 2) == (errors.GroupIdNotFound.code, {})
    assert coord.delete_offsets("", [("t", 0)], 2) == (errors.InvalidGroupId.code, {})


def test_group_without_members_loses_the_partitions_asked_for(coord):
    commit(coord, "g", ("t", 0), ("t", 1), ("u", 0))
    assert coord.delete_offsets("g", [("t", 0), ("u", 0), ("u", 9)], 2) == (0, {("t", 0): 0, ("u", 0): 0, ("u", 9): 0})
    assert set(coord.fetch_offsets("g")) == {("t", 1)}


def test_active_consumer_group_keeps_the_topics_it_subscribes_to(coord):
    commit(coord, "g", ("t", 0), ("u", 0))
    join(coord, "g", ["t"])
    assert coord.delete_offsets("g", [("t", 0), ("u", 0)], 2) == (0, {("t", 0): SUBSCRIBED, ("u", 0): 0})
    assert set(coord.fetch_offsets("g")) == {("t", 0)}


def test_active_group_of_another_protocol_is_not_empty(coord):
    commit(coord, "g", ("t", 0))
    join(coord, "g", ["t"], protocol_type="connect")
    assert coord.delete_offsets("g", [("t", 0)], 2) == (errors.NonEmptyGroup.code, {})
    assert set(coord.fetch_offsets("g")) == {("t", 0)}


def test_empty_group_left_without_offsets_is_gone(coord):
    commit(coord, "g", ("t", 0))
    member = join(coord, "g", ["t"])
    coord.leave("g", 3, [{"member_id": member, "group_instance_id": None}])
    assert coord.groups["g"].state.value == "Empty"
    assert coord.delete_offsets("g", [("t", 0)], 4) == (0, {("t", 0): 0})
    assert coord.list_groups()["groups"] == []
    assert coord.describe_groups(["g"])[0]["group_state"] == "Dead"


def test_deletion_is_durable_in_the_offsets_log(tmp_path):
    with OffsetStore(tmp_path, fsync=False) as store:
        coord = GroupCoordinator(store, NO_DELAY)
        commit(coord, "g", ("t", 0), ("t", 1))
        coord.delete_offsets("g", [("t", 0)], 2)
    with OffsetStore(tmp_path, fsync=False) as reopened:
        assert set(reopened.fetch("g")) == {("t", 1)}


# -- against a cluster -------------------------------------------------------------------

def commit_offsets(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    with Admin(bootstrap, timeout=10) as admin:
        admin.alter_group_offsets(group, offsets)


def rows(stdout: str) -> list[list[str]]:
    return [line.split(maxsplit=2) for line in stdout.strip().splitlines()]


@pytest.mark.interop
def test_delete_offsets_tool_reports_each_partition_in_kafkas_words(cluster):
    bootstrap = cluster.bootstrap
    topic, other = create_topic(bootstrap, 3), create_topic(bootstrap, 2)
    group = unique("deloff")
    commit_offsets(bootstrap, group, {**{(topic, p): 4 for p in range(3)}, **{(other, p): 7 for p in range(2)}})

    done = groups_tool(bootstrap, "--delete-offsets", "--group", group, "--topic", f"{topic}:0,2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"Request succeeded for deleting offsets from group {group}.", ""]
    assert rows("\n".join(lines[2:])) == [["TOPIC", "PARTITION", "STATUS"], [topic, "0", "Successful"],
                                          [topic, "2", "Successful"]]
    assert committed(bootstrap, group) == {(topic, 1): 4, (other, 0): 7, (other, 1): 7}

    # A whole topic, a topic that does not exist and a partition that does not.
    mixed = groups_tool(bootstrap, "--delete-offsets", "--group", group, "--topic", other, "--topic", "no-such-topic",
                        "--topic", f"{topic}:9")
    assert mixed.returncode == 1
    assert mixed.stderr.strip() == "Error: Encountered some partition-level error, see the follow-up details."
    assert rows(mixed.stdout) == [["TOPIC", "PARTITION", "STATUS"]] + sorted([
        ["no-such-topic", "-", "Error: topic 'no-such-topic': This server does not host this topic-partition."],
        [other, "0", "Successful"], [other, "1", "Successful"],
        [topic, "9", "Error: This server does not host this topic-partition."]])
    assert committed(bootstrap, group) == {(topic, 1): 4}

    unknown = groups_tool(bootstrap, "--delete-offsets", "--group", unique("nobody"), "--topic", f"{topic}:1")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "Error: The group id does not exist."
    assert rows(unknown.stdout)[1] == [topic, "1", "Error: The group id does not exist."]

    assert group in groups_tool(bootstrap, "--list").stdout.split()
    last = groups_tool(bootstrap, "--delete-offsets", "--group", group, "--topic", topic)
    assert last.returncode == 0, last.stderr
    assert committed(bootstrap, group) == {}
    assert group not in groups_tool(bootstrap, "--list").stdout.split()  # nothing left of it

    usage = groups_tool(bootstrap, "--delete-offsets", "--group", group, "--group", "other", "--topic", topic)
    assert (usage.returncode, usage.stderr.strip()) == (1, "Error: --delete-offsets needs one --group and --topic")


@pytest.mark.interop
def test_an_active_group_keeps_the_offsets_of_topics_it_consumes(cluster):
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupSubscribedToTopicError, NoError

    bootstrap = cluster.bootstrap
    consumed, idle = create_topic(bootstrap, 2), create_topic(bootstrap, 2)
    group = unique("active")
    commit_offsets(bootstrap, group, {(consumed, 0): 1, (consumed, 1): 1, (idle, 0): 3, (idle, 1): 3})
    member = ConsumerProcess(bootstrap, consumed, group, "c0")
    try:
        wait_until(lambda: member.assignment == {0, 1} and group_state(bootstrap, group).state == "Stable", 30,
                   "the member to own the topic")
        tool = groups_tool(bootstrap, "--delete-offsets", "--group", group, "--topic", consumed,
                           "--topic", f"{idle}:0")
        assert tool.returncode == 1
        assert tool.stderr.strip() == "Error: Encountered some partition-level error, see the follow-up details."
        refusal = "Error: Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it."
        assert rows(tool.stdout)[1:] == sorted([[consumed, "0", refusal], [consumed, "1", refusal],
                                                [idle, "0", "Successful"]])

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            result = admin.delete_group_offsets(group, [TopicPartition(consumed, 0), TopicPartition(idle, 1)])
        finally:
            admin.close()
        assert result == {TopicPartition(consumed, 0): GroupSubscribedToTopicError, TopicPartition(idle, 1): NoError}
        assert set(committed(bootstrap, group)) == {(consumed, 0), (consumed, 1)}
    finally:
        member.stop()
    wait_until(lambda: group_state(bootstrap, group).state == "Empty", 20, "the group to empty")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        result = admin.delete_group_offsets(group, [TopicPartition(consumed, 0)])
    finally:
        admin.close()
    assert result == {TopicPartition(consumed, 0): NoError}
    assert set(committed(bootstrap, group)) == {(consumed, 1)}


def test_deleted_offsets_stay_deleted_after_a_cluster_restart(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=1, extra_args=GROUP_ARGS)
    topic, group = create_topic(cluster.bootstrap, 3), unique("durable")
    commit_offsets(cluster.bootstrap, group, {(topic, p): 5 for p in range(3)})
    with Admin(cluster.bootstrap, timeout=10) as admin:
        assert admin.delete_group_offsets(group, [(topic, 0), (topic, 2)]) == {(topic, 0): None, (topic, 2): None}
    cluster.restart()
    assert committed(cluster.bootstrap, group) == {(topic, 1): 5}
    with Admin(cluster.bootstrap, timeout=10) as admin:
        with pytest.raises(errors.GroupIdNotFound):
            admin.delete_group_offsets(unique("nobody"), [(topic, 0)])
