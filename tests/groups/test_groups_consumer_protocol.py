"""KIP-848 consumer groups with a real client: confluent-kafka (librdkafka) members with
``group.protocol=consumer`` get their assignment from the coordinator, share six
partitions 2/2/2, commit, take over a closed member's partitions; an empty classic group
is upgraded and resumes from its committed offsets; the admin client sees the group's
type, epochs and assignments."""
from __future__ import annotations

import time

import pytest

from groups_helpers import (committed, create_topic, group_cluster, groups_tool, log_ends, produce, unique,
                           wait_until)

pytestmark = pytest.mark.interop
PARTITIONS = 6
ALL = list(range(PARTITIONS))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with group_cluster(tmp_path_factory, "--group-consumer-heartbeat-interval-ms", "500") as c:
        yield c


def consumer(bootstrap, group, i, **extra):
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "client.id": f"kip848-{i}", "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     **extra})


def assignments(consumers):
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


def poll_until(consumers, done, timeout, what, sink=None):
    def step():
        for c in consumers:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None and sink is not None:
                sink.append(msg.value())
        return done()
    wait_until(step, timeout, what)


def test_three_members_share_six_partitions_commit_and_take_over(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("kip848")
    members = [consumer(bootstrap, group, i) for i in range(3)]
    got: list[bytes] = []
    try:
        for c in members:
            c.subscribe([topic])
        started = time.monotonic()
        poll_until(members, lambda: [len(a) for a in assignments(members)] == [2, 2, 2], 60,
                   "three members to hold 2 partitions each")
        print(f"\nthree members settled: {time.monotonic() - started:.2f} s")
        assert sorted(p for a in assignments(members) for p in a) == ALL
        expected = produce(bootstrap, topic, 120, PARTITIONS)
        poll_until(members, lambda: len(got) >= 120, 30, "the members to read every record", got)
        assert sorted(got) == sorted(expected)
        for c in members:
            c.commit(asynchronous=False)
        assert committed(bootstrap, group) == log_ends(bootstrap, topic, PARTITIONS)

        members[0].close()
        survivors = members[1:]
        started = time.monotonic()
        poll_until(survivors, lambda: sorted(p for a in assignments(survivors) for p in a) == ALL, 30,
                   "the survivors to take over the closed member's partitions")
        print(f"\ntake-over after close: {time.monotonic() - started:.2f} s")
        more = produce(bootstrap, topic, 60, PARTITIONS, start=1000)
        late: list[bytes] = []
        poll_until(survivors, lambda: len(late) >= 60, 30, "the survivors to read the new records", late)
        assert sorted(late) == sorted(more)       # nothing read twice: they resumed at the commits
    finally:
        for c in members[1:]:
            c.close()


def test_empty_classic_group_is_upgraded_and_resumes_from_its_commits(cluster):
    from confluent_kafka import Consumer

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("upgrade")
    first = produce(bootstrap, topic, 60, PARTITIONS)
    classic = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                        "enable.auto.commit": False})
    got: list[bytes] = []
    classic.subscribe([topic])
    poll_until([classic], lambda: len(got) >= 60, 60, "the classic member to read everything", got)
    classic.commit(asynchronous=False)
    classic.close()
    assert sorted(got) == sorted(first)

    second = produce(bootstrap, topic, 30, PARTITIONS, start=500)
    modern = consumer(bootstrap, group, 9)
    late: list[bytes] = []
    try:
        modern.subscribe([topic])
        poll_until([modern], lambda: len(late) >= 30, 60, "the consumer-protocol member to read the rest", late)
        time.sleep(1.0)
        modern.poll(0.2)
        assert sorted(late) == sorted(second)
    finally:
        modern.close()


def test_admin_client_sees_the_group_type_members_and_assignments(cluster):
    from confluent_kafka import ConsumerGroupType
    from confluent_kafka.admin import AdminClient

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("described")
    members = [consumer(bootstrap, group, i) for i in range(2)]
    try:
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: [len(a) for a in assignments(members)] == [3, 3], 60,
                   "two members to hold 3 partitions each")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=30)
        types = {g.group_id: g.type for g in listed.valid}
        assert types[group] == ConsumerGroupType.CONSUMER
        described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=30)
        assert described.type == ConsumerGroupType.CONSUMER
        assert str(described.state).endswith("STABLE")
        parts = sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions)
        assert parts == ALL and all(tp.topic == topic for m in described.members
                                    for tp in m.assignment.topic_partitions)

        listed = groups_tool(bootstrap, "--list", "--type")
        assert listed.returncode == 0, listed.stderr
        assert [line.split() for line in listed.stdout.splitlines() if line.startswith(group)] == [[group, "Consumer"]]
        only_classic = groups_tool(bootstrap, "--list", "--type", "classic")
        assert group not in only_classic.stdout
        members_view = groups_tool(bootstrap, "--describe", "--group", group, "--members", "--verbose")
        assert members_view.returncode == 0, members_view.stderr
        header, *rows = [line.split() for line in members_view.stdout.splitlines() if line.strip()]
        assert header[-4:] == ["CURRENT-EPOCH", "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT"]
        assert len(rows) == 2 and all(row[-4] == row[-2] and row[-3] == row[-1] for row in rows), rows
        state_view = groups_tool(bootstrap, "--describe", "--group", group, "--state", "--verbose")
        assert "GROUP-EPOCH" in state_view.stdout and "Stable" in state_view.stdout, state_view.stdout
        offsets_view = groups_tool(bootstrap, "--describe", "--group", group)
        assert offsets_view.returncode == 0 and offsets_view.stdout.count(topic) == PARTITIONS, offsets_view.stdout
    finally:
        for c in members:
            c.close()


def test_pybroker_and_confluent_members_share_one_consumer_group(cluster):
    from pybroker.client import Consumer as PyConsumer

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("mixed848")
    ours = [PyConsumer(bootstrap, group_id=group, group_protocol="consumer", auto_offset_reset="earliest",
                       client_id=f"py-{i}", enable_auto_commit=False) for i in range(2)]
    theirs = consumer(bootstrap, group, 7)
    got: list[bytes] = []

    live = list(ours)

    def owned():
        return [sorted(p for _, p in c.assignment()) for c in live] + assignments([theirs])

    def step():
        for c in live:
            got.extend(r.value for r in c.poll(50))
        msg = theirs.poll(0.05)
        if msg is not None and msg.error() is None:
            got.append(msg.value())

    try:
        for c in ours:
            c.subscribe([topic])
        theirs.subscribe([topic])
        wait_until(lambda: step() or [len(a) for a in owned()] == [2, 2, 2], 60,
                   "two pybroker members and one confluent-kafka member to hold 2 partitions each")
        assert sorted(p for a in owned() for p in a) == ALL
        expected = produce(bootstrap, topic, 90, PARTITIONS)
        wait_until(lambda: step() or len(got) >= 90, 30, "the mixed group to read every record")
        assert sorted(got) == sorted(expected)
        for c in ours:
            c.commit_sync()
        theirs.commit(asynchronous=False)
        assert committed(bootstrap, group) == log_ends(bootstrap, topic, PARTITIONS)
        ours[0].close()
        live.remove(ours[0])
        wait_until(lambda: step() or sorted(p for a in owned() for p in a) == ALL, 30,
                   "the remaining members to take over the closed pybroker member's partitions")
    finally:
        for c in ours[1:]:
            c.close()
        theirs.close()
