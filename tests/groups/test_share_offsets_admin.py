"""Share-group offsets admin (AlterShareGroupOffsets 91, DeleteShareGroupOffsets 92) with
real clients against real broker processes: `pybroker share-groups --reset-offsets` and
`--delete-offsets` move where confluent-kafka's ShareConsumer reads next, a group with
members is refused, and a reset (and a deleted group's state) survives a restart."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from groups_helpers import GROUP_ARGS, create_topic, unique, wait_until
from pybroker import errors
from pybroker.client import Admin
from pybroker.testing import BrokerCluster
from test_groups_share import cluster, group_configs, poll_messages, produce, share_consumer  # noqa: F401

pytestmark = pytest.mark.interop


def tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "share-groups", "--bootstrap-server",
                           bootstrap, *argv], capture_output=True, text=True, timeout=60)


def read_all(bootstrap: str, group: str, topic: str, expected: int, idle: float = 1.5) -> list:
    """(value, delivery count) of what one ShareConsumer gets: ``expected`` records, then
    nothing more for ``idle`` seconds; it accepts them (implicitly) and leaves."""
    c = share_consumer(bootstrap, group, "reader")
    got: list = []
    try:
        c.subscribe([topic])
        wait_until(lambda: got.extend((m.value(), m.delivery_count()) for m in poll_messages(c)) or
                   len(got) >= expected, 30, f"{expected} records")
        deadline = time.monotonic() + idle
        while time.monotonic() < deadline:
            got.extend((m.value(), m.delivery_count()) for m in poll_messages(c))
    finally:
        c.close()
    return got


def test_reset_offsets_moves_where_a_share_consumer_reads(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("reset")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    values = [b"v-%d" % i for i in range(10)]
    produce(bootstrap, topic, values)
    assert sorted(v for v, _ in read_all(bootstrap, group, topic, 10)) == sorted(values)

    dry = tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-offset", "4", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split("\n")[2].split() == [group, topic, "0", "4"]
    assert tool(bootstrap, "--describe", "--group", group).stdout.split("\n")[2].split() == [group, topic, "0", "10",
                                                                                              "0"]
    done = tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-offset", "4", "--execute")
    assert done.returncode == 0, done.stderr
    assert tool(bootstrap, "--describe", "--group", group).stdout.split("\n")[2].split() == [group, topic, "0", "4",
                                                                                              "6"]
    # Records 4..9 again, as first deliveries (the reset forgot their history), and no more.
    assert sorted(read_all(bootstrap, group, topic, 6)) == sorted((v, 1) for v in values[4:])

    earliest = tool(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-earliest", "--execute")
    assert earliest.returncode == 0, earliest.stderr
    assert sorted(v for v, _ in read_all(bootstrap, group, topic, 10)) == sorted(values)

    latest = tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-latest", "--execute")
    assert latest.returncode == 0, latest.stderr
    produce(bootstrap, topic, [b"new"])
    assert [v for v, _ in read_all(bootstrap, group, topic, 1)] == [b"new"]


def test_delete_offsets_starts_the_topic_again_at_the_auto_offset_reset(cluster):
    bootstrap = cluster.bootstrap
    topic, other, group = create_topic(bootstrap, 2), create_topic(bootstrap, 1), unique("delete")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    produce(bootstrap, topic, [b"a-%d" % i for i in range(3)], partition=0)
    produce(bootstrap, topic, [b"b-%d" % i for i in range(3)], partition=1)
    assert len(read_all(bootstrap, group, topic, 6)) == 6
    with Admin(bootstrap) as admin:
        assert admin.list_share_group_offsets(group) == {(topic, 0): 3, (topic, 1): 3}
    deleted = tool(bootstrap, "--delete-offsets", "--group", group, "--topic", topic, "--topic", other)
    assert deleted.returncode == 1          # `other` has no state in the group
    assert [line.split(None, 1) for line in deleted.stdout.strip().splitlines()[1:]] == sorted(
        [[topic, "Successful"], [other, "Error: There is no offset information to delete."]])
    with Admin(bootstrap) as admin:
        assert admin.list_share_group_offsets(group) == {}
        assert group in [g.group_id for g in admin.list_groups()]       # the group itself stays
    assert len(read_all(bootstrap, group, topic, 6)) == 6              # earliest again: all six
    missing = tool(bootstrap, "--delete-offsets", "--group", unique("missing"), "--topic", topic)
    assert missing.returncode == 1 and "not found" in missing.stdout


def test_a_group_with_members_is_refused(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("busy")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    produce(bootstrap, topic, [b"x"])
    c = share_consumer(bootstrap, group, "busy")
    try:
        c.subscribe([topic])
        wait_until(lambda: poll_messages(c), 30, "the member to read")
        reset = tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
        assert reset.returncode == 1 and f"Share group '{group}' is not empty." in reset.stderr
        deleted = tool(bootstrap, "--delete-offsets", "--group", group, "--topic", topic)
        assert deleted.returncode == 1 and "Error: The group is not empty." in deleted.stdout
        with Admin(bootstrap) as admin:
            with pytest.raises(errors.NonEmptyGroup):
                admin.alter_share_group_offsets(group, {(topic, 0): 0})
            with pytest.raises(errors.NonEmptyGroup):
                admin.delete_share_group_offsets(group, [topic])
            assert admin.list_share_group_offsets(group) == {(topic, 0): 0}   # untouched (still held)
    finally:
        c.close()
    # A group of another type with that id is not a share group.
    with Admin(bootstrap) as admin:
        classic = unique("classic")
        admin.alter_group_offsets(classic, {(topic, 0): 1})
        with pytest.raises(errors.GroupIdNotFound, match="is not a share group"):
            admin.alter_share_group_offsets(classic, {(topic, 0): 0})
        # Unknown partitions are refused one by one; the rest applies.
        fresh = unique("fresh")
        result = admin.alter_share_group_offsets(fresh, {(topic, 0): 1, (topic, 5): 0, ("no-such-topic", 0): 0})
        assert result[(topic, 0)] is None
        assert isinstance(result[(topic, 5)], errors.UnknownTopicOrPartition)
        assert isinstance(result[("no-such-topic", 0)], errors.UnknownTopicOrPartition)
        assert admin.list_share_group_offsets(fresh) == {(topic, 0): 1}


def test_a_reset_survives_a_restart_and_deleting_the_group_deletes_its_state(tmp_path):
    cluster = BrokerCluster(data_dir=tmp_path, brokers=1, extra_args=[*GROUP_ARGS]).start()
    try:
        bootstrap = cluster.bootstrap
        topic, group = create_topic(bootstrap, 1), unique("durable")
        produce(bootstrap, topic, [b"r-%d" % i for i in range(8)])
        with Admin(bootstrap) as admin:
            assert admin.alter_share_group_offsets(group, {(topic, 0): 5}) == {(topic, 0): None}
        cluster.restart()
        bootstrap = cluster.bootstrap
        with Admin(bootstrap) as admin:
            assert admin.list_share_group_offsets(group) == {(topic, 0): 5}
            assert group in [g.group_id for g in admin.list_groups()]
        assert sorted(v for v, _ in read_all(bootstrap, group, topic, 3)) == [b"r-5", b"r-6", b"r-7"]
        deleted = tool(bootstrap, "--delete", "--group", group)
        assert deleted.returncode == 0, deleted.stderr
        cluster.restart()
        bootstrap = cluster.bootstrap
        with Admin(bootstrap) as admin:
            assert group not in [g.group_id for g in admin.list_groups()]
            assert admin.list_share_group_offsets(group) == {}
        # A new group of that id starts from nothing (share.auto.offset.reset latest).
        produce(bootstrap, topic, [b"after"])
        group_configs(bootstrap, group, share_auto_offset_reset="earliest")
        assert len(read_all(bootstrap, group, topic, 9)) == 9
    finally:
        cluster.stop()
