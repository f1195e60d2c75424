"""pybroker's own ShareConsumer against real broker processes: it shares one partition
with confluent-kafka's ShareConsumer in one share group, RELEASE redelivers with delivery
count 2, REJECT never again, and records held at close go to someone else at once."""
from __future__ import annotations

import threading
import time

import pytest

from groups_helpers import create_topic, unique, wait_until
from pybroker.client import AcknowledgeType, ShareConsumer
from test_groups_share import cluster, group_configs, poll_messages, produce, share_consumer  # noqa: F401

pytestmark = pytest.mark.interop


def queue(cluster, partitions=1, prefix="share"):
    topic, group = create_topic(cluster.bootstrap, partitions), unique(prefix)
    group_configs(cluster.bootstrap, group, share_auto_offset_reset="earliest")
    return topic, group


def test_pybroker_and_confluent_share_one_partition(cluster):
    bootstrap = cluster.bootstrap
    topic, group = queue(cluster)
    ours = ShareConsumer(bootstrap, group_id=group, client_id="pybroker-worker", max_poll_records=5)
    theirs = share_consumer(bootstrap, group, "librdkafka-worker")
    got: dict[str, list[bytes]] = {"ours": [], "theirs": []}
    try:
        ours.subscribe([topic])
        theirs.subscribe([topic])
        ours.poll(100)
        poll_messages(theirs, 0.1)
        values = [b"job-%04d" % i for i in range(200)]
        writer = threading.Thread(target=produce, args=(bootstrap, topic, values), kwargs={"pace": 0.01})
        writer.start()

        def drained():
            for r in ours.poll(50):
                assert r.delivery_count == 1
                got["ours"].append(r.value)
            got["theirs"].extend(m.value() for m in poll_messages(theirs, 0.05))
            return len(got["ours"]) + len(got["theirs"]) >= len(values)
        wait_until(drained, 60, "the share group to receive every record")
        writer.join()
        assert sorted(got["ours"] + got["theirs"]) == sorted(values)     # each record once
        assert got["ours"] and got["theirs"], {k: len(v) for k, v in got.items()}
    finally:
        ours.close()
        theirs.close()


def test_release_redelivers_with_count_two_and_reject_never_again(cluster):
    topic, group = queue(cluster)
    produce(cluster.bootstrap, topic, [b"release-me", b"reject-me", b"accept-me"])
    seen: dict[bytes, list[int]] = {}
    with ShareConsumer(cluster.bootstrap, group_id=group, share_acknowledgement_mode="explicit") as c:
        c.subscribe([topic])

        def step():
            records = c.poll(200)
            for r in records:
                seen.setdefault(r.value, []).append(r.delivery_count)
                kind = {b"release-me": AcknowledgeType.RELEASE, b"reject-me": AcknowledgeType.REJECT}.get(
                    r.value, AcknowledgeType.ACCEPT)
                if r.value == b"release-me" and len(seen[r.value]) >= 2:
                    kind = AcknowledgeType.ACCEPT
                c.acknowledge(r, kind)
            if records:
                assert all(e is None for e in c.commit_sync().values())
            return len(seen.get(b"release-me", [])) >= 2
        wait_until(step, 30, "the released record to come back")
        for _ in range(5):
            step()
    assert seen == {b"release-me": [1, 2], b"reject-me": [1], b"accept-me": [1]}


def test_implicit_mode_accepts_at_the_next_poll_and_close_releases_held_records(cluster):
    topic, group = queue(cluster)
    produce(cluster.bootstrap, topic, [b"r-%d" % i for i in range(6)])
    first = ShareConsumer(cluster.bootstrap, group_id=group, max_poll_records=3)
    first.subscribe([topic])
    batch: list = []
    wait_until(lambda: batch.extend(first.poll(200)) or batch, 30, "a first batch")
    assert [r.value for r in batch] == [b"r-0", b"r-1", b"r-2"]
    second_batch: list = []
    wait_until(lambda: second_batch.extend(first.poll(200)) or second_batch, 30, "a second batch")
    first.close()        # the second batch is accepted implicitly at close
    with ShareConsumer(cluster.bootstrap, group_id=group) as second:
        second.subscribe([topic])
        later: list = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            later.extend(second.poll(200))
    assert [r.value for r in second_batch] == [b"r-3", b"r-4", b"r-5"]
    assert later == []       # everything was accepted: nothing comes back


def test_explicit_records_unacknowledged_at_close_go_back_at_once(cluster):
    topic, group = queue(cluster)
    produce(cluster.bootstrap, topic, [b"held"])
    holder = ShareConsumer(cluster.bootstrap, group_id=group, share_acknowledgement_mode="explicit")
    holder.subscribe([topic])
    got: list = []
    wait_until(lambda: got.extend(holder.poll(200)) or got, 30, "the record")
    holder.close()          # never acknowledged: the session's close releases it
    started = time.monotonic()
    with ShareConsumer(cluster.bootstrap, group_id=group) as other:
        other.subscribe([topic])
        again: list = []
        wait_until(lambda: again.extend(other.poll(200)) or again, 30, "the released record")
    assert [(r.value, r.delivery_count) for r in again] == [(b"held", 2)]
    assert time.monotonic() - started < 25      # not the 30 s default lock duration


def test_partitions_led_by_several_brokers(cluster):
    topic, group = queue(cluster, partitions=4)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    values = {b"v-%d" % i for i in range(40)}
    for i, v in enumerate(sorted(values)):
        p.produce(topic, v, partition=i % 4)
    assert p.flush(15) == 0
    got: list = []
    with ShareConsumer(cluster.bootstrap, group_id=group) as c:
        c.subscribe([topic])
        wait_until(lambda: got.extend(c.poll(200)) or len(got) >= 40, 30, "every partition's records")
        assert sorted(c.assignment()) == [(topic, i) for i in range(4)]
    assert {r.value for r in got} == values and len(got) == 40
