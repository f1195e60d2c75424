"""KIP-848 groups survive the death of the process hosting the group coordinator (the
supervisor): three confluent-kafka members with ``group.protocol=consumer`` keep their
member ids, epochs and assignments across a SIGKILL of the supervisor and its restart
(which adopts the running brokers), nobody's partitions are revoked or lost, and the
records produced around the failover are each read once."""
from __future__ import annotations

import os
import signal
import time

import pytest

from groups_helpers import GROUP_ARGS, committed, create_topic, log_ends, produce, unique, wait_until
from pybroker.client import Admin

pytestmark = pytest.mark.interop
PARTITIONS = 6
ARGS = [*GROUP_ARGS, "--group-consumer-heartbeat-interval-ms", "500"]


def membership(bootstrap, group):
    """(group epoch, {member id: (member epoch, assignment)}) as ConsumerGroupDescribe
    reports it, or None while the coordinator does not answer."""
    admin = Admin(bootstrap, timeout=5)
    try:
        (described,) = admin.describe_groups([group])
    except Exception:   # the coordinator is down or still loading: ask again
        return None
    finally:
        admin.close()
    return described.state, described.group_epoch, {
        m.member_id: (m.member_epoch, tuple(m.assignment)) for m in described.members}


@pytest.mark.timeout(180)
def test_consumer_group_members_keep_epochs_and_assignment_across_a_coordinator_kill(pybroker_cluster_factory):
    from confluent_kafka import Consumer

    cluster = pybroker_cluster_factory(brokers=3, extra_args=ARGS)
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("failover848")
    # Every assignment change a member's client sees after the group settled.
    events: list[tuple[int, str, list[int]]] = []
    settled = [False]

    def callbacks(i):
        def on_assign(_c, parts):
            if settled[0]:
                events.append((i, "assign", sorted(p.partition for p in parts)))

        def on_revoke(_c, parts):
            if settled[0]:
                events.append((i, "revoke", sorted(p.partition for p in parts)))

        def on_lost(_c, parts):
            if settled[0]:
                events.append((i, "lost", sorted(p.partition for p in parts)))
        return {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}

    members = [Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                         "client.id": f"failover-{i}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
               for i in range(3)]
    got: list[bytes] = []

    def poll_all():
        for c in members:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                got.append(msg.value())

    def assignments():
        return [sorted(tp.partition for tp in c.assignment()) for c in members]

    try:
        for i, c in enumerate(members):
            c.subscribe([topic], **callbacks(i))
        wait_until(lambda: poll_all() or [len(a) for a in assignments()] == [2, 2, 2], 60,
                   "three members to hold 2 partitions each")
        first = produce(bootstrap, topic, 90, PARTITIONS)
        wait_until(lambda: poll_all() or len(got) >= 90, 30, "the members to read every record")
        for c in members:
            c.commit(asynchronous=False)
        assert committed(bootstrap, group) == log_ends(bootstrap, topic, PARTITIONS)
        wait_until(lambda: poll_all() or (membership(bootstrap, group) or ("",))[0] == "Stable", 30,
                   "the group to be Stable")
        before = membership(bootstrap, group)
        held = assignments()
        assert len(before[2]) == 3 and sorted(p for a in held for p in a) == list(range(PARTITIONS))
        settled[0] = True

        os.kill(cluster.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        cluster.kill(whole_group=False)   # reap the supervisor; the brokers stay up
        revived = pybroker_cluster_factory(brokers=3, extra_args=ARGS, data_dir=cluster.data_dir,
                                           port=cluster.ports[0])
        # Produced while the members reconnect: read from the committed offsets on.
        second = produce(revived.bootstrap, topic, 60, PARTITIONS, start=1000)
        wait_until(lambda: poll_all() or len(got) >= 150, 60, "the members to read the records produced after")
        recovered_s = time.monotonic() - killed_at
        # Several heartbeats at the old epochs reach the new coordinator.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            poll_all()
        after = membership(revived.bootstrap, group)
        print(f"\nsupervisor kill to records flowing again: {recovered_s:.2f} s")
        assert after == before, (before, after)
        assert assignments() == held
        assert events == [], events          # nothing revoked, lost or newly assigned
        assert sorted(got) == sorted(first | second)      # each record read once
        for c in members:
            c.commit(asynchronous=False)
        assert committed(revived.bootstrap, group) == log_ends(revived.bootstrap, topic, PARTITIONS)
    finally:
        for c in members:
            c.close()
