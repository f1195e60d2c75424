"""Consumer groups under faults, with real processes: a SIGKILLed member, a whole-cluster
restart, a SIGKILLed supervisor during a rebalance. Rebalance times are measured here
(printed, and appended to $PYBROKER_REBALANCE_TIMES when set)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from groups_helpers import (
    GROUP_ARGS, ConsumerProcess, committed, create_topic, group_state, groups_tool, log_ends, produce,
    record_times, unique, wait_until,
)

pytestmark = pytest.mark.interop
ALL = set(range(6))


def owners_cover(members, partitions=ALL) -> bool:
    owned = [p for m in members for p in m.assignment]
    return sorted(owned) == sorted(partitions) and all(m.assignment for m in members)


def last_assigned_at(member) -> float:
    return member.of("assigned")[-1]["t"]


def test_killed_member_partitions_move_to_survivors_from_its_last_commit(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("kill")
    survivors = [ConsumerProcess(bootstrap, topic, group, f"s{i}", commit_every=1) for i in range(2)]
    members = list(survivors)
    try:
        wait_until(lambda: owners_cover(survivors), 30, "two members to share the topic")
        # A third member joins: time until all three hold their new assignment.
        victim = ConsumerProcess(bootstrap, topic, group, "victim", commit_every=4)
        members.append(victim)
        wait_until(lambda: owners_cover(members), 30, "three members to share the topic")
        joined = victim.of("subscribed")[0]["t"]
        join_s = max(last_assigned_at(m) for m in members) - joined
        victim_partitions = victim.assignment

        first = produce(bootstrap, topic, 66)
        wait_until(lambda: sum(len(m.messages()) for m in members) >= 66, 30, "the first records")
        time.sleep(0.5)  # let the victim finish its last commit before it dies
        consumed_before = {(e["p"], e["o"]) for e in victim.messages()}
        victim_commits = victim.last_commits()
        killed_at = victim.kill()
        wait_until(lambda: owners_cover(survivors), 30, "survivors to take over the victim's partitions")
        death_s = max(last_assigned_at(m) for m in survivors) - killed_at
        second = produce(bootstrap, topic, 30, start=66)
        wait_until(lambda: {e["v"].encode() for m in members for e in m.messages()} >= first | second, 30,
                   "every record")
        time.sleep(0.5)

        seen: dict[tuple[int, int], int] = {}
        for m in members:
            for e in m.messages():
                seen[(e["p"], e["o"])] = seen.get((e["p"], e["o"]), 0) + 1
        redelivered = {tp for tp, n in seen.items() if n > 1}
        expected_redelivered = {(p, o) for p, o in consumed_before if o >= victim_commits.get(p, 0)}
        assert redelivered == expected_redelivered
        assert all(p in victim_partitions for p, _ in redelivered)
        assert len(seen) == 96  # nothing lost
        record_times("member join and death", {"join_s": round(join_s, 3), "death_s": round(death_s, 3),
                                                "session_timeout_ms": 6000})
        assert death_s < 6 + 10  # session timeout plus a rebalance
    finally:
        for m in members:
            m.stop()


def test_offsets_survive_a_full_cluster_restart_and_reset_moves_them(pybroker_cluster_factory):
    from confluent_kafka import Consumer

    cluster = pybroker_cluster_factory(brokers=3, extra_args=GROUP_ARGS)
    topic, group = create_topic(cluster.bootstrap, 3), unique("restart")
    produce(cluster.bootstrap, topic, 30, partitions=3)

    def consume(count):
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 500})
        c.subscribe([topic])
        got = []
        try:
            def step():
                m = c.poll(0.1)
                if m is not None and not m.error():
                    got.append((m.partition(), m.offset()))
                    c.commit(message=m, asynchronous=False)
                return len(got) >= count
            wait_until(step, 30, f"{count} records", interval=0)
        finally:
            c.close()
        return got

    first = consume(12)
    before = committed(cluster.bootstrap, group)
    assert before == {(topic, p): max(o for q, o in first if q == p) + 1 for p in {q for q, _ in first}}
    cluster.restart()
    assert committed(cluster.bootstrap, group) == before
    resumed = consume(30 - 12)
    assert sorted(first + resumed) == sorted((p, o) for p in range(3) for o in range(10))

    dry = groups_tool(cluster.bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest")
    assert dry.returncode == 0, dry.stderr
    assert committed(cluster.bootstrap, group) == {(topic, p): 10 for p in range(3)}
    done = groups_tool(cluster.bootstrap, "--reset-offsets", "--group", group, "--topic", f"{topic}:1",
                       "--to-offset", "4", "--execute")
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.strip().splitlines()][1] == [group, topic, "1", "4"]
    assert committed(cluster.bootstrap, group) == {(topic, 0): 10, (topic, 1): 4, (topic, 2): 10}
    again = consume(6)
    assert sorted(again) == [(1, o) for o in range(4, 10)]


def test_groups_tool_describes_an_active_group_and_refuses_to_reset_it(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("tool")
    members = [ConsumerProcess(bootstrap, topic, group, f"c{i}") for i in range(2)]
    try:
        wait_until(lambda: owners_cover(members), 30, "two members to share the topic")
        produce(bootstrap, topic, 12)
        wait_until(lambda: committed(bootstrap, group) == log_ends(bootstrap, topic), 20, "commits")
        described = groups_tool(bootstrap, "--describe", "--group", group)
        assert described.returncode == 0, described.stderr
        rows = [line.split() for line in described.stdout.strip().splitlines()]
        assert rows[0] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                           "CONSUMER-ID", "HOST", "CLIENT-ID"]
        assert sorted(int(r[2]) for r in rows[1:]) == sorted(ALL)
        assert {r[8] for r in rows[1:]} == {"c0", "c1"} and {r[5] for r in rows[1:]} == {"0"}
        state = groups_tool(bootstrap, "--describe", "--group", group, "--state")
        assert state.stdout.strip().splitlines()[1].split()[-2:] == ["Stable", "2"]
        members_out = groups_tool(bootstrap, "--describe", "--group", group, "--members")
        assert sorted(line.split()[-1] for line in members_out.stdout.strip().splitlines()[1:]) == ["3", "3"]
        refused = groups_tool(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-earliest",
                              "--execute")
        assert refused.returncode == 1
        assert refused.stderr.strip() == (f"Error: Assignments can only be reset if the group '{group}' is "
                                          "inactive, but the current state is Stable.")
        not_empty = groups_tool(bootstrap, "--delete", "--group", group)
        assert not_empty.returncode == 1 and f"* Group '{group}' could not be deleted" in not_empty.stderr
    finally:
        for m in members:
            m.stop()
    empty = groups_tool(bootstrap, "--describe", "--group", group)
    assert f"Consumer group '{group}' has no active members." in empty.stderr
    assert group in groups_tool(bootstrap, "--list").stdout.split()
    deleted = groups_tool(bootstrap, "--delete", "--group", group)
    assert deleted.stdout.strip() == f"Deletion of requested consumer groups ('{group}') was successful."
    assert group not in groups_tool(bootstrap, "--list").stdout.split()


def test_group_recovers_after_supervisor_is_killed_during_a_rebalance(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=3, extra_args=GROUP_ARGS)
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("failover")
    members = [ConsumerProcess(bootstrap, topic, group, f"c{i}") for i in range(2)]
    try:
        wait_until(lambda: owners_cover(members), 30, "two members to share the topic")
        produce(bootstrap, topic, 60)
        wait_until(lambda: committed(bootstrap, group) == log_ends(bootstrap, topic), 20, "commits")
        before = committed(bootstrap, group)
        members.append(ConsumerProcess(bootstrap, topic, group, "c2"))
        wait_until(lambda: members[2].of("subscribed"), 20, "the third member to subscribe")
        time.sleep(0.2)  # its JoinGroup reaches the coordinator: a rebalance is under way
        os.kill(cluster.pid, signal.SIGKILL)
        killed_at = time.time()
        cluster.kill(whole_group=False)  # reap the supervisor; the brokers stay up
        revived = pybroker_cluster_factory(brokers=3, extra_args=GROUP_ARGS, data_dir=cluster.data_dir,
                                           port=cluster.ports[0])
        wait_until(lambda: owners_cover(members) and group_state(revived.bootstrap, group).state == "Stable",
                   60, "the group to stabilise with three members")
        recovered_s = max(last_assigned_at(m) for m in members) - killed_at
        assert committed(revived.bootstrap, group) == before
        more = produce(revived.bootstrap, topic, 30, start=60)
        wait_until(lambda: {e["v"].encode() for m in members for e in m.messages()} >= more, 30, "new records")
        record_times("supervisor failover", {"kill_to_stable_s": round(recovered_s, 3)})
    finally:
        for m in members:
            m.stop()
