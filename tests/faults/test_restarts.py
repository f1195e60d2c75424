"""Restarts: the supervisor SIGKILLed in the middle of a failover and started again on
the same data dir (it adopts the brokers still running), and the whole cluster stopped
with SIGTERM or SIGKILLed as a process group and started again. Nothing acknowledged is
lost; every topic keeps its partitions and replicas."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

TOPIC_CONFIG = {"min.insync.replicas": "2"}


def produce_acked(cluster, faults, topic: str, count: int, producer=None):
    producer = producer or faults.SequenceProducer(cluster.bootstrap, topic)
    producer.send(count)
    assert producer.flush(30) == 0
    assert len(producer.ledger.acked) == producer.next_seq and not producer.ledger.failed, \
        producer.ledger.failed
    return producer


def all_led(cluster, topics: dict[str, int]):
    """The status once every partition of ``topics`` (name -> partition count) has a live
    leader whose high watermark reached its log end, else None."""
    status = cluster.status()
    if status is None:
        return None
    for name, count in topics.items():
        for index in range(count):
            part = cluster.partition(name, index, status)
            if part is None or cluster.live_leader(name, index, status) is None:
                return None
            if part["high_watermark"] != part["log_end_offset"]:
                return None
    return status


def assert_all_read_once(cluster, faults, topic: str, partitions: int, ledger) -> None:
    verdict = faults.check(ledger, faults.read_back(cluster.bootstrap, topic, range(partitions)))
    assert verdict.lost == [], f"acknowledged messages lost: {verdict.as_dict()}"
    assert verdict.duplicated == [], f"messages read twice: {verdict.as_dict()}"


@pytest.mark.parametrize("order", ["leader_then_supervisor", "supervisor_then_leader"])
def test_supervisor_sigkill_mid_failover_loses_nothing(fault_cluster, faults, topic, order):
    cluster = fault_cluster()
    faults.create_topic(cluster.bootstrap, topic, partitions=3, replication=3, config=TOPIC_CONFIG)
    status = cluster.wait_full_isr(topic, range(3))
    producer = produce_acked(cluster, faults, topic, 600)
    producer.close()
    leader = cluster.live_leader(topic, 0, status)
    up_pid = cluster.pid
    if order == "leader_then_supervisor":
        cluster.kill_broker(leader)
        cluster.kill_supervisor()
    else:
        pid = cluster.broker_pid(leader)
        cluster.kill_supervisor()
        os.kill(pid, signal.SIGKILL)

    cluster.start()
    assert cluster.pid != up_pid
    status = faults.wait_for(lambda: all_led(cluster, {topic: 3}), faults.CONVERGE_TIMEOUT,
                             "every partition to have a live leader after the supervisor restart")
    assert status["supervisor"]["pid"] == cluster.pid
    # Scripts see the same through the command line's stable JSON form.
    cli = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "status", "--data", str(cluster.data_dir),
                          "--json"], capture_output=True, text=True, timeout=20)
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["supervisor"]["pid"] == cluster.pid
    assert {(p["topic"], p["partition"]) for p in printed["partitions"] if p["topic"] == topic} == \
        {(topic, i) for i in range(3)}
    assert all(p["leader"] >= 0 for p in printed["partitions"] if p["topic"] == topic)
    assert sorted(b["id"] for b in status["brokers"] if b["alive"]) == [0, 1, 2]
    assert_all_read_once(cluster, faults, topic, 3, producer.ledger)

    # The cluster is whole again: the killed broker rejoined and acks=all works.
    cluster.wait_full_isr(topic, range(3), what="the killed broker to rejoin every ISR")
    after = produce_acked(cluster, faults, topic, 100)
    after.close()


def test_whole_cluster_restart_keeps_topics_and_messages(fault_cluster, faults, topic):
    cluster = fault_cluster()
    rf3, rf1 = f"{topic}-rf3", f"{topic}-rf1"
    faults.create_topic(cluster.bootstrap, rf3, partitions=3, replication=3, config=TOPIC_CONFIG)
    faults.create_topic(cluster.bootstrap, rf1, partitions=2, replication=1)
    topics = {rf3: 3, rf1: 2}
    cluster.wait_full_isr(rf3, range(3))
    cluster.wait_full_isr(rf1, range(2))
    replicas = {(p["topic"], p["partition"]): p["replicas"] for p in cluster.status()["partitions"]}
    producers = {name: produce_acked(cluster, faults, name, 300) for name in topics}

    for how in ("sigterm", "sigkill"):
        if how == "sigterm":
            assert cluster.stop() == 0, "the supervisor did not exit cleanly on SIGTERM"
        else:
            cluster.kill()
        cluster.start()
        status = faults.wait_for(lambda: all_led(cluster, topics), faults.CONVERGE_TIMEOUT,
                                 f"every partition to have a live leader after {how}")
        assert {(p["topic"], p["partition"]): p["replicas"] for p in status["partitions"]} == replicas, how
        for name, count in topics.items():
            # Producers from before the restart reconnect and keep writing.
            produce_acked(cluster, faults, name, 100, producer=producers[name])
            assert_all_read_once(cluster, faults, name, count, producers[name].ledger)
    for producer in producers.values():
        producer.close()
