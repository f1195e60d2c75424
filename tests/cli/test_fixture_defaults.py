"""The pytest fixtures start clusters the way the README advises for tests."""
from __future__ import annotations

import time

import psutil


def _delay_flag(cluster) -> str:
    argv = psutil.Process(cluster.pid).cmdline()
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--group-initial-rebalance-delay-ms"]
    return values[-1]  # the last one given wins


def test_fixture_cluster_rebalances_without_the_initial_delay(pybroker_cluster):
    from confluent_kafka import Consumer

    from pybroker.client import Admin, NewTopic

    assert _delay_flag(pybroker_cluster) == "0"
    with Admin(pybroker_cluster.bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic("fixture-delay", 1, 1)])
    # A new group's first member is assigned at once, not after Kafka's 3 s default.
    consumer = Consumer({"bootstrap.servers": pybroker_cluster.bootstrap, "group.id": "fixture-delay",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe(["fixture-delay"])
        started = time.monotonic()
        while not consumer.assignment() and time.monotonic() - started < 30:
            consumer.poll(0.05)
        assert consumer.assignment()
        # Generous: under load a join takes a while, but not the 3 s the delay would add on top.
        assert time.monotonic() - started < 2.9
    finally:
        consumer.close()


def test_factory_keeps_a_delay_the_test_asks_for(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(extra_args=["--group-initial-rebalance-delay-ms", "3000"])
    assert _delay_flag(cluster) == "3000"
