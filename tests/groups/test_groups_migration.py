"""Online migration between the classic and the consumer (KIP-848) group protocols with
real clients: confluent-kafka classic members consume a 6-partition topic, consumer-
protocol members join the same group, which becomes a consumer group with both kinds
sharing the partitions and nothing produced meanwhile lost; the classic members leave and
it stays a consumer group. The other way: the last consumer-protocol member leaves and
the group is classic again, its classic members owning every partition."""
from __future__ import annotations

import threading
import time

import pytest

from groups_helpers import GROUP_ARGS, ConsumerProcess, create_topic, group_cluster, produce, unique, wait_until
from pybroker.testing import BrokerCluster

pytestmark = pytest.mark.interop
PARTITIONS = 6
ALL = set(range(PARTITIONS))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with group_cluster(tmp_path_factory, "--group-consumer-heartbeat-interval-ms", "500") as c:
        yield c


def group_type(bootstrap: str, group: str) -> str:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})     # kept alive until the answer is in
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=30)
    types = {g.group_id: str(g.type).rsplit(".", 1)[-1] for g in listed.valid}
    assert group in types, (types, listed.errors)
    return types[group]


def owned(members) -> list[set[int]]:
    return [m.owned for m in members]


def partitioned(members) -> bool:
    """Every partition owned by exactly one member."""
    held = [p for m in members for p in m.owned]
    return sorted(held) == sorted(ALL)


def consumed(members) -> set[bytes]:
    return {m["v"].encode() for c in members for m in c.messages()}


class Producing:
    """Keeps producing until stopped; ``values`` is everything acknowledged."""

    def __init__(self, bootstrap: str, topic: str):
        self.values: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bootstrap, topic), daemon=True)
        self._thread.start()

    def _run(self, bootstrap, topic):
        start = 10_000
        while not self._stop.is_set():
            self.values |= produce(bootstrap, topic, 30, PARTITIONS, start=start)
            start += 30
            time.sleep(0.1)

    def stop(self) -> set[bytes]:
        self._stop.set()
        self._thread.join(30)
        return self.values


def start(bootstrap, topic, group, name, protocol):
    return ConsumerProcess(bootstrap, topic, group, name, commit_every=1, assignor=protocol)


@pytest.mark.parametrize("assignor", ["range", "cooperative-sticky"])
def test_classic_group_with_members_upgrades_and_loses_nothing(cluster, assignor):
    """Eager (range: revokes everything, then rejoins) and cooperative classic members."""
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("upgrade")
    before = produce(bootstrap, topic, 60, PARTITIONS)
    classic = [start(bootstrap, topic, group, f"classic-{i}", assignor) for i in range(2)]
    modern: list[ConsumerProcess] = []
    try:
        wait_until(lambda: partitioned(classic) and before <= consumed(classic), 60,
                   "two classic members to share the partitions and read the first records")
        assert group_type(bootstrap, group) == "CLASSIC"
        producing = Producing(bootstrap, topic)
        modern = [start(bootstrap, topic, group, f"modern-{i}", "consumer") for i in range(2)]
        everyone = classic + modern
        started = time.monotonic()
        wait_until(lambda: partitioned(everyone) and all(owned(everyone)), 60,
                   "classic and consumer-protocol members to share the six partitions")
        print(f"\nmixed group balanced {time.monotonic() - started:.2f} s after the consumer members started")
        assert group_type(bootstrap, group) == "CONSUMER"
        assert sorted(len(o) for o in owned(everyone)) == [1, 1, 2, 2]
        during = producing.stop()
        wait_until(lambda: during <= consumed(everyone), 30, "every record produced during the migration to be read")

        for c in classic:
            c.stop()
        wait_until(lambda: partitioned(modern) and sorted(len(o) for o in owned(modern)) == [3, 3], 30,
                   "the consumer-protocol members to take over the classic members' partitions")
        assert group_type(bootstrap, group) == "CONSUMER"
        after = produce(bootstrap, topic, 60, PARTITIONS, start=90_000)
        wait_until(lambda: after <= consumed(modern), 30, "the consumer-protocol members to read the last records")
        assert before | during | after <= consumed(everyone)
    finally:
        for c in classic + modern:
            c.stop()


def test_last_consumer_protocol_member_leaving_downgrades_the_group(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("downgrade")
    classic = [start(bootstrap, topic, group, f"classic-{i}", "range") for i in range(2)]
    modern: list[ConsumerProcess] = []
    try:
        wait_until(lambda: partitioned(classic), 60, "two classic members to share the partitions")
        modern = [start(bootstrap, topic, group, "modern-0", "consumer")]
        everyone = classic + modern
        wait_until(lambda: partitioned(everyone) and all(owned(everyone)), 60,
                   "the consumer-protocol member to get its share")
        assert group_type(bootstrap, group) == "CONSUMER"
        modern[0].stop()
        wait_until(lambda: group_type(bootstrap, group) == "CLASSIC", 30, "the group to be classic again")
        wait_until(lambda: partitioned(classic) and sorted(len(o) for o in owned(classic)) == [3, 3], 30,
                   "the classic members to own every partition")
        records = produce(bootstrap, topic, 60, PARTITIONS)
        wait_until(lambda: records <= consumed(classic), 30, "the classic members to read new records")
        assert group_type(bootstrap, group) == "CLASSIC"
    finally:
        for c in classic + modern:
            c.stop()


def test_policy_disabled_keeps_a_classic_group_with_members_classic(tmp_path):
    c = BrokerCluster(data_dir=tmp_path, brokers=1,
                      extra_args=[*GROUP_ARGS, "--group-consumer-migration-policy", "disabled"])
    c.start()
    classic, modern = None, None
    try:
        topic, group = create_topic(c.bootstrap, PARTITIONS), unique("disabled")
        classic = start(c.bootstrap, topic, group, "classic-0", "range")
        wait_until(lambda: classic.owned == ALL, 60, "the classic member to own every partition")
        modern = start(c.bootstrap, topic, group, "modern-0", "consumer")
        wait_until(lambda: modern.of("subscribed"), 30, "the consumer-protocol member to subscribe")
        time.sleep(3.0)                     # its heartbeats are refused (GROUP_ID_NOT_FOUND) meanwhile
        assert group_type(c.bootstrap, group) == "CLASSIC"
        assert classic.owned == ALL and not modern.owned
    finally:
        for p in (classic, modern):
            if p is not None:
                p.stop()
        c.stop()
