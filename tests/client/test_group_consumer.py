"""The group consumer against a real broker: membership, assignment, commits, rebalances."""
import threading
import time
import uuid

import pytest

from pybroker import errors
from pybroker.client import Admin, Consumer, NewTopic, Producer

FAST_GROUP = {"heartbeat_interval_ms": 100, "session_timeout_ms": 6000, "fetch_max_wait_ms": 100,
              "max_poll_interval_ms": 10000}


class PollingThread:
    """Polls one consumer on its own thread (a JoinGroup blocks until every member
    rejoins, so two members cannot share one thread)."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.records = []
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop.is_set():
                self.records += self.consumer.poll(50)
        except Exception as exc:  # reported by close()
            self.error = exc

    def close(self):
        self.stop.set()
        self.thread.join(15)
        self.consumer.close()
        assert self.error is None, self.error


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def make_topic(bootstrap, partitions, records_per_partition=0):
    name = f"grp-{uuid.uuid4().hex[:10]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    if records_per_partition:
        with Producer(bootstrap, linger_ms=0) as producer:
            for p in range(partitions):
                for i in range(records_per_partition):
                    producer.send(name, b"%d-%d" % (p, i), partition=p)
    return name


def poll_until(consumers, predicate, timeout=15.0):
    got = {id(c): [] for c in consumers}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            got[id(c)] += c.poll(50)
        if predicate(got):
            return got
    raise AssertionError(f"condition not met; got {[len(v) for v in got.values()]} records")


def test_single_member_gets_every_partition_and_commits_on_close(bootstrap):
    topic = make_topic(bootstrap, 3, 5)
    group = f"g-{uuid.uuid4().hex[:8]}"
    assigned = []
    c = Consumer(bootstrap, group_id=group, auto_offset_reset="earliest", **FAST_GROUP)
    c.subscribe([topic], on_assigned=lambda _c, tps: assigned.extend(tps))
    got = poll_until([c], lambda g: sum(map(len, g.values())) >= 15)
    assert sorted(assigned) == [(topic, p) for p in range(3)]
    assert len(got[id(c)]) == 15
    c.close()
    with Consumer(bootstrap, group_id=group, enable_auto_commit=False) as check:
        assert check.committed([(topic, p) for p in range(3)]) == {(topic, p): 5 for p in range(3)}


def test_second_member_splits_partitions_and_resumes_from_commits(bootstrap):
    topic = make_topic(bootstrap, 4, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    cfg = dict(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
               partition_assignment_strategy="roundrobin", **FAST_GROUP)
    a = Consumer(bootstrap, **cfg)
    a.subscribe([topic])
    poll_until([a], lambda g: sum(map(len, g.values())) >= 12)
    a.commit_sync()
    ta = PollingThread(a)
    b = Consumer(bootstrap, **cfg)
    b.subscribe([topic])
    tb = PollingThread(b)
    wait_for(lambda: len(a.assignment()) == 2 and len(tb.consumer.assignment()) == 2)
    assert sorted(a.assignment() + tb.consumer.assignment()) == [(topic, p) for p in range(4)]
    time.sleep(0.3)
    # Everything was committed: neither member sees old records again.
    assert ta.records == [] and tb.records == []
    ta.close()
    tb.close()


def test_cooperative_rebalance_revokes_only_moved_partitions(bootstrap):
    topic = make_topic(bootstrap, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    cfg = dict(group_id=group, partition_assignment_strategy="cooperative-sticky", **FAST_GROUP)
    revoked_a = []
    a = Consumer(bootstrap, **cfg)
    a.subscribe([topic], on_revoked=lambda _c, tps: revoked_a.extend(tps))
    ta = PollingThread(a)
    wait_for(lambda: len(a.assignment()) == 4)
    b = Consumer(bootstrap, **cfg)
    b.subscribe([topic])
    tb = PollingThread(b)
    wait_for(lambda: len(a.assignment()) == 2 and len(tb.consumer.assignment()) == 2)
    # Only the two partitions that moved to b were revoked from a.
    assert sorted(revoked_a) == sorted(tb.consumer.assignment())
    ta.close()
    tb.close()


def test_regex_subscription_matches_topics(bootstrap):
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(f"{prefix}-a", 1, 1), NewTopic(f"{prefix}-b", 2, 1),
                             NewTopic(f"other{prefix}", 1, 1)])
    c = Consumer(bootstrap, group_id=f"g-{prefix}", **FAST_GROUP)
    c.subscribe(f"^{prefix}-.*")
    deadline = time.monotonic() + 10
    while len(c.assignment()) < 3 and time.monotonic() < deadline:
        c.poll(50)
    assert sorted(c.assignment()) == [(f"{prefix}-a", 0), (f"{prefix}-b", 0), (f"{prefix}-b", 1)]
    c.close()


def test_auto_commit_commits_positions_of_returned_records(bootstrap):
    topic = make_topic(bootstrap, 1, 10)
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = Consumer(bootstrap, group_id=group, auto_offset_reset="earliest", auto_commit_interval_ms=0,
                 max_poll_records=4, **FAST_GROUP)
    c.subscribe([topic])
    got = poll_until([c], lambda g: sum(map(len, g.values())) >= 4)
    assert len(got[id(c)]) == 4
    c.poll(0)  # the next poll commits what the previous one returned
    c.coordinator.drain_async_commits()
    with Consumer(bootstrap, group_id=group, enable_auto_commit=False) as check:
        assert check.committed((topic, 0)) == 4
    c.close(autocommit=False)


def test_pause_withholds_records_until_resume(bootstrap):
    topic = make_topic(bootstrap, 2, 2)
    c = Consumer(bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=50)
    c.assign([(topic, 0), (topic, 1)])
    c.pause([(topic, 1)])
    got = []
    for _ in range(10):
        got += c.poll(50)
    assert {r.partition for r in got} == {0}
    c.resume([(topic, 1)])
    got = poll_until([c], lambda g: sum(map(len, g.values())) >= 2)[id(c)]
    assert {r.partition for r in got} == {1}
    c.close()


def test_offset_reset_none_without_commit_raises(bootstrap):
    topic = make_topic(bootstrap, 1, 1)
    c = Consumer(bootstrap, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="none", **FAST_GROUP)
    c.assign([(topic, 0)])
    with pytest.raises(errors.OffsetOutOfRange):
        c.position((topic, 0))
    c.close()


def test_commit_without_group_is_refused(bootstrap):
    with Consumer(bootstrap) as c:
        with pytest.raises(ValueError):
            c.commit_sync({("t", 0): 1})
        with pytest.raises(ValueError):
            c.subscribe(["t"])


def test_admin_lists_describes_alters_and_deletes_groups(bootstrap):
    topic = make_topic(bootstrap, 2, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = Consumer(bootstrap, group_id=group, auto_offset_reset="earliest", **FAST_GROUP)
    c.subscribe([topic])
    poll_until([c], lambda g: sum(map(len, g.values())) >= 4)
    with Admin(bootstrap, timeout=10) as admin:
        assert admin.describe_cluster().brokers
        assert group in [g.group_id for g in admin.list_groups()]
        (desc,) = admin.describe_groups([group])
        assert desc.state == "Stable" and desc.protocol_type == "consumer"
        assert desc.members[0].assignment == [(topic, 0), (topic, 1)]
        c.close()
        assert admin.list_group_offsets(group) == {(topic, 0): 2, (topic, 1): 2}
        admin.alter_group_offsets(group, {(topic, 0): 1})
        assert admin.list_group_offsets(group)[(topic, 0)] == 1
        admin.delete_groups([group])
        assert group not in [g.group_id for g in admin.list_groups()]
