"""Helpers of the consumer-group tests: topics, a keyed producer, committed offsets, the
`groups` tool in a subprocess, and consumer processes that report what they consume as
JSON lines. (A module of its own name: every test directory has a conftest.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from pybroker.client import Admin, NewTopic
from pybroker.testing import BrokerCluster, wait_until  # noqa: F401  (the group tests import wait_until from here)

GROUP_ARGS = ["--group-initial-rebalance-delay-ms", "0"]
CONSUMER_SCRIPT = Path(__file__).with_name("consumer_process.py")
PYTHON_MEMBER_SCRIPT = Path(__file__).with_name("python_member.py")
REBALANCE_TIMES = "PYBROKER_REBALANCE_TIMES"  # optional JSON file the timing tests append to


def group_cluster(tmp_path_factory, *extra_args: str) -> BrokerCluster:
    """A 3-broker cluster with no initial rebalance delay and ``extra_args``; ``with`` starts
    and stops it (the modules' ``cluster`` fixtures)."""
    return BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=3,
                         extra_args=[*GROUP_ARGS, *extra_args])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kafka_python_subscribe(consumer, topic: str, timeout: float = 15.0) -> None:
    """Subscribe a kafka-python consumer so that its first assignment, if it leads the
    group, already knows the topic's partitions.

    kafka-python 3.0 loses a rebalance its group leader starts itself. The leader
    records the metadata it assigned with (its "assignment snapshot") and rejoins when
    that differs from the metadata it has since seen; its snapshot of the subscription
    is only taken on a metadata update *after* ``subscribe()``, so a leader that joins
    before one arrives assigns with an empty snapshot and rejoins at once. If that
    rejoin's JoinGroup is still in flight when ``poll(timeout_ms=...)`` gives up, the
    next poll sees the snapshots equal, skips the pending join, and never applies its
    assignment: the leader keeps reading the partitions of the previous generation
    with heartbeats off, until the session timeout evicts it and other members read its
    uncommitted records again (duplicates), or never share the partitions at all.
    Kafka's default 3 s initial rebalance delay hides this; the tests run without it.
    ``topics()`` forces a metadata update right after ``subscribe()``, so the
    coordinator's snapshot is complete before the first JoinGroup is sent."""
    wait_until(lambda: consumer.partitions_for_topic(topic), timeout, f"kafka-python to see {topic}")
    consumer.subscribe([topic])
    consumer.topics()


def create_topic(bootstrap: str, partitions: int = 6, name: str | None = None) -> str:
    name = name or unique("orders")
    with Admin(bootstrap, timeout=10) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    return name


def produce(bootstrap: str, topic: str, count: int, partitions: int = 6, start: int = 0) -> set[bytes]:
    """``count`` values spread evenly over the partitions; returns the values."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    values, failed = set(), []
    for i in range(start, start + count):
        value = b"v%06d" % i
        producer.produce(topic, value, partition=i % partitions,
                         on_delivery=lambda error, msg: failed.append(str(error)) if error else None)
        values.add(value)
    left = producer.flush(15)
    assert left == 0 and not failed, f"{left} records undelivered, delivery errors: {sorted(set(failed))}"
    return values


def committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    with Admin(bootstrap, timeout=10) as admin:
        return admin.list_group_offsets(group)


def log_ends(bootstrap: str, topic: str, partitions: int = 6) -> dict[tuple[str, int], int]:
    with Admin(bootstrap, timeout=10) as admin:
        return {tp: o for tp, (o, _) in admin.list_offsets({(topic, p): -1 for p in range(partitions)}).items()}


def group_state(bootstrap: str, group: str):
    with Admin(bootstrap, timeout=10) as admin:
        return admin.describe_groups([group])[0]


def groups_tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "groups", "--bootstrap-server", bootstrap,
                           *argv], capture_output=True, text=True, timeout=60)


def record_times(name: str, figures: dict) -> None:
    """Print rebalance figures and append them to $PYBROKER_REBALANCE_TIMES if set."""
    print(f"\nrebalance times {name}: {json.dumps(figures)}")
    path = os.environ.get(REBALANCE_TIMES)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": name, **figures}) + "\n")


class ConsumerProcess:
    """One consumer_process.py child; a reader thread collects its JSON events."""

    def __init__(self, bootstrap: str, topic: str, group: str, client_id: str, commit_every: int = 1,
                 session_timeout_ms: int = 6000, assignor: str = "range", client: str = "confluent-kafka"):
        self.client_id = client_id
        self.events: list[dict] = []
        self._lock = threading.Lock()
        script = [str(CONSUMER_SCRIPT)] if client == "confluent-kafka" else [str(PYTHON_MEMBER_SCRIPT), client]
        self.proc = subprocess.Popen(
            [sys.executable, *script, bootstrap, topic, group, client_id, str(commit_every),
             str(session_timeout_ms), assignor],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(event)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.snapshot() if e["e"] == kind]

    @property
    def assignment(self) -> set[int]:
        assigned = self.of("assigned")
        return set(assigned[-1]["p"]) if assigned else set()

    @property
    def owned(self) -> set[int]:
        owned = self.of("owned")
        return set(owned[-1]["p"]) if owned else set()

    def messages(self) -> list[dict]:
        return self.of("msg")

    def last_commits(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for e in self.of("commit"):
            out.update({int(p): o for p, o in e["offsets"].items()})
        return out

    def kill(self) -> float:
        os.kill(self.proc.pid, signal.SIGKILL)
        t = time.time()
        self.proc.wait(10)
        return t

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
