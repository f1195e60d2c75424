"""Groups of three real consumers per Kafka client on a 6-partition topic: every partition
owned by exactly one member, every record consumed once, offsets committed (auto commit
on an interval, and manual commits); a mixed roundrobin group of different clients."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from groups_helpers import (ConsumerProcess, committed, create_topic, kafka_python_subscribe, log_ends, produce,
                           unique, wait_until)

pytestmark = pytest.mark.interop
MEMBERS, PARTITIONS, RECORDS = 3, 6, 120
ALL = set(range(PARTITIONS))


def assert_partitioned(assignments: list[set[int]]) -> None:
    """Each partition owned by exactly one member, every member owns some."""
    owned = [p for a in assignments for p in a]
    assert sorted(owned) == sorted(ALL), assignments
    assert all(assignments), assignments


def assert_committed_to_end(bootstrap, group, topic):
    ends = log_ends(bootstrap, topic)
    wait_until(lambda: committed(bootstrap, group) == ends, 10, f"group {group} to commit up to {ends}")


# -- confluent-kafka ------------------------------------------------------------------

@pytest.mark.parametrize("auto_commit", [True, False], ids=["auto-commit", "manual-commit"])
def test_confluent_group_of_three_shares_partitions_and_commits(cluster, auto_commit):
    from confluent_kafka import Consumer

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("ck")
    consumers = [Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "client.id": f"ck-{i}",
        "auto.offset.reset": "earliest", "enable.auto.commit": auto_commit, "auto.commit.interval.ms": 200,
        "heartbeat.interval.ms": 300, "session.timeout.ms": 6000,
    }) for i in range(MEMBERS)]
    got: list[bytes] = []
    try:
        for c in consumers:
            c.subscribe([topic])

        def settled():
            for c in consumers:
                c.poll(0.05)
            return [{tp.partition for tp in c.assignment()} for c in consumers]

        wait_until(lambda: sorted(p for a in settled() for p in a) == sorted(ALL) and all(settled()), 30,
                   "three members to share six partitions")
        assert_partitioned(settled())
        expected = produce(bootstrap, topic, RECORDS)

        def drain():
            for c in consumers:
                m = c.poll(0.05)
                if m is not None and not m.error():
                    got.append(m.value())
                    if not auto_commit:
                        c.commit(message=m, asynchronous=False)
            return len(got) >= RECORDS

        wait_until(drain, 30, "every record", interval=0)
        for c in consumers:  # stragglers would be duplicates
            c.poll(0.3)
        assert sorted(got) == sorted(expected)
        assert_partitioned([{tp.partition for tp in c.assignment()} for c in consumers])
        if auto_commit:
            wait_until(lambda: [c.poll(0.05) for c in consumers] and committed(bootstrap, group) == log_ends(bootstrap, topic),
                       10, "auto commit to reach the log end")
        assert_committed_to_end(bootstrap, group, topic)
    finally:
        for c in consumers:
            c.close()


# -- kafka-python ---------------------------------------------------------------------

def kafka_python_member(bootstrap, topic, group, index, auto_commit, stop, got, assignments, lock):
    from kafka import KafkaConsumer

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=f"kp-{index}",
                      auto_offset_reset="earliest", enable_auto_commit=auto_commit, auto_commit_interval_ms=200,
                      heartbeat_interval_ms=300, session_timeout_ms=6000)
    kafka_python_subscribe(c, topic)
    try:
        while not stop.is_set():
            batches = c.poll(timeout_ms=100)
            with lock:
                for records in batches.values():
                    got.extend(r.value for r in records)
                assignments[index] = {tp.partition for tp in c.assignment()}
            if batches and not auto_commit:
                c.commit()
    finally:
        c.close()  # with auto commit, close commits the final positions


@pytest.mark.parametrize("auto_commit", [True, False], ids=["auto-commit", "manual-commit"])
def test_kafka_python_group_of_three_shares_partitions_and_commits(cluster, auto_commit):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("kp")
    stop, lock = threading.Event(), threading.Lock()
    got: list[bytes] = []
    assignments: dict[int, set[int]] = {}
    threads = [threading.Thread(target=kafka_python_member,
                                args=(bootstrap, topic, group, i, auto_commit, stop, got, assignments, lock))
               for i in range(MEMBERS)]
    for t in threads:
        t.start()
    try:
        def shared():
            with lock:
                current = [set(assignments.get(i, ())) for i in range(MEMBERS)]
            return sorted(p for a in current for p in a) == sorted(ALL) and all(current)

        wait_until(shared, 40, "three members to share six partitions")
        expected = produce(bootstrap, topic, RECORDS)
        wait_until(lambda: len(got) >= RECORDS, 30, "every record")
        time.sleep(0.3)
        with lock:
            assert sorted(got) == sorted(expected)
            assert_partitioned([assignments[i] for i in range(MEMBERS)])
        if not auto_commit:
            assert_committed_to_end(bootstrap, group, topic)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert_committed_to_end(bootstrap, group, topic)


# -- aiokafka -------------------------------------------------------------------------

@pytest.mark.parametrize("auto_commit", [True, False], ids=["auto-commit", "manual-commit"])
def test_aiokafka_group_of_three_shares_partitions_and_commits(cluster, auto_commit):
    from aiokafka import AIOKafkaConsumer

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("aio")

    async def scenario():
        consumers = [AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=f"aio-{i}",
                                      auto_offset_reset="earliest", enable_auto_commit=auto_commit,
                                      auto_commit_interval_ms=200, heartbeat_interval_ms=300,
                                      session_timeout_ms=6000)
                     for i in range(MEMBERS)]
        got: list[bytes] = []
        for c in consumers:
            await c.start()
        try:
            async def settled():
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline:
                    await asyncio.gather(*(c.getmany(timeout_ms=50) for c in consumers))
                    current = [{tp.partition for tp in c.assignment()} for c in consumers]
                    if sorted(p for a in current for p in a) == sorted(ALL) and all(current):
                        return current
                raise AssertionError("three aiokafka members never shared six partitions")

            await settled()
            expected = await asyncio.to_thread(produce, bootstrap, topic, RECORDS)

            async def member(c):
                while len(got) < RECORDS:
                    batches = await c.getmany(timeout_ms=100)
                    for records in batches.values():
                        got.extend(r.value for r in records)
                    if batches and not auto_commit:
                        await c.commit()

            await asyncio.wait_for(asyncio.gather(*(member(c) for c in consumers)), 30)
            await asyncio.gather(*(c.getmany(timeout_ms=300) for c in consumers))
            assert sorted(got) == sorted(expected)
            assert_partitioned([{tp.partition for tp in c.assignment()} for c in consumers])
        finally:
            for c in consumers:
                await c.stop()  # with auto commit, stop commits the final positions

    asyncio.run(scenario())
    assert_committed_to_end(bootstrap, group, topic)


# -- a mixed group --------------------------------------------------------------------

def test_mixed_roundrobin_group_balances_across_clients(cluster):
    """confluent-kafka, kafka-python and aiokafka members (each in its own process) in one
    roundrobin group: two partitions each, every record once."""
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap), unique("mixed")
    members = [ConsumerProcess(bootstrap, topic, group, name, assignor="roundrobin", client=client)
               for name, client in (("ck", "confluent-kafka"), ("kp", "kafka-python"), ("aio", "aiokafka"))]
    try:
        def balanced():
            owned = [m.assignment for m in members]
            return all(len(a) == 2 for a in owned) and set().union(*owned) == ALL

        wait_until(balanced, 60, "a balanced mixed group")
        expected = produce(bootstrap, topic, RECORDS)
        wait_until(lambda: sum(len(m.messages()) for m in members) >= RECORDS, 30, "every record")
        got = [(m.client_id, e["v"].encode()) for m in members for e in m.messages()]
        assert sorted(v for _, v in got) == sorted(expected)
        assert {client for client, _ in got} == {"ck", "kp", "aio"}
        assert balanced()
    finally:
        for m in members:
            m.stop()
