"""Fault-test harness: a multi-broker cluster whose processes the tests SIGKILL, SIGSTOP
and restart; the supervisor's status document; and a ledger of sequence-numbered messages
that counts acked, lost (acknowledged but never read back) and duplicated (read more than
once) messages.

Every process a test starts is ended by pid or process group in a finalizer: the
process group of every ``up`` process ever started (brokers are spawned into it, and an
adopted broker stays in the group of the supervisor that spawned it), after a SIGCONT to
any broker a test stopped.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterable

import pytest

from pybroker.testing import wait_until
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.cli.status import fetch_status
from pybroker.testing import BrokerCluster

# Long enough for a restarted broker to catch up and a 3-broker cluster to start on a
# busy 2-core machine; short enough that a stuck cluster fails the test, not the run.
CLUSTER_START_TIMEOUT = 40.0
CONVERGE_TIMEOUT = 20.0
LOG_TAIL_BYTES = 6_000


wait_for = wait_until  # (predicate, timeout, what, interval)


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise
        return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError as exc:
        if exc.errno not in (errno.ESRCH, errno.EPERM):
            raise


class FaultCluster(BrokerCluster):
    """A ``BrokerCluster`` that remembers every process group it started and the brokers
    a test stopped, so ``teardown`` can end all of them whatever the test did to the
    supervisor. Owned by the test's thread, except ``kill_broker``/``status`` which the
    leader-killer thread also calls (they touch no shared state but the stopped set,
    guarded by a lock)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("start_timeout", CLUSTER_START_TIMEOUT)
        super().__init__(*args, **kwargs)
        self.process_groups: list[int] = []
        self._stopped: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> "FaultCluster":
        try:
            super().start()
        finally:
            if self.pid is not None and self.pid not in self.process_groups:
                self.process_groups.append(self.pid)
        return self

    # -- supervisor's view --------------------------------------------------------------

    def status(self) -> dict | None:
        """The supervisor's status document (as ``pybroker status --json``), or None while
        no supervisor answers."""
        try:
            return asyncio.run(fetch_status(str(self.data_dir.resolve())))
        except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
            self.last_status_error = exc
            return None

    def partition(self, topic: str, index: int, status: dict | None = None) -> dict | None:
        status = status if status is not None else self.status()
        if status is None:
            return None
        for part in status["partitions"]:
            if part["topic"] == topic and part["partition"] == index:
                return part
        return None

    def broker(self, node_id: int, status: dict | None = None) -> dict | None:
        status = status if status is not None else self.status()
        if status is None:
            return None
        return next((b for b in status["brokers"] if b["id"] == node_id), None)

    def live_leader(self, topic: str, index: int, status: dict | None = None) -> int | None:
        """The partition's leader when the supervisor counts that broker alive."""
        status = status if status is not None else self.status()
        part = self.partition(topic, index, status)
        if part is None or part["leader"] is None or part["leader"] < 0:
            return None
        broker = self.broker(part["leader"], status)
        return part["leader"] if broker and broker["alive"] else None

    def wait_full_isr(self, topic: str, partitions: Iterable[int], timeout: float = CONVERGE_TIMEOUT,
                      what: str = "") -> dict:
        """Wait until every listed partition has a live leader and all replicas in its ISR."""
        partitions = list(partitions)

        def full():
            status = self.status()
            if status is None:
                return None
            for index in partitions:
                part = self.partition(topic, index, status)
                if part is None or self.live_leader(topic, index, status) is None:
                    return None
                if sorted(part["isr"]) != sorted(part["replicas"]):
                    return None
            return status
        return wait_for(full, timeout, what or f"full ISR of {topic} {partitions}")

    # -- faults ------------------------------------------------------------------------

    def broker_pid(self, node_id: int) -> int:
        broker = self.broker(node_id)
        assert broker is not None and broker["pid"], f"broker {node_id} has no pid: {broker}"
        return int(broker["pid"])

    def kill_broker(self, node_id: int) -> int:
        pid = self.broker_pid(node_id)
        _signal(pid, signal.SIGKILL)
        return pid

    def stop_broker(self, node_id: int) -> int:
        """SIGSTOP a broker; ``teardown`` sends SIGCONT whatever happens."""
        pid = self.broker_pid(node_id)
        with self._lock:
            self._stopped.add(pid)
        _signal(pid, signal.SIGSTOP)
        return pid

    def continue_broker(self, pid: int) -> None:
        _signal(pid, signal.SIGCONT)
        with self._lock:
            self._stopped.discard(pid)

    def kill_supervisor(self) -> None:
        """SIGKILL only the ``up`` process; its brokers keep running."""
        self.kill(whole_group=False)

    def teardown(self) -> None:
        with self._lock:
            stopped = list(self._stopped)
            self._stopped.clear()
        for pid in stopped:
            _signal(pid, signal.SIGCONT)
        try:
            self.stop()
        finally:
            for pgid in self.process_groups:
                _signal_group(pgid, signal.SIGKILL)

    def logs_tail(self, max_bytes: int = LOG_TAIL_BYTES) -> str:
        parts = []
        for path in sorted((self.data_dir / "logs").glob("*.log")) + [self.log_path]:
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            parts.append(f"==> {path} <==\n" + (text if len(text) <= max_bytes else "...\n" + text[-max_bytes:]))
        return "\n".join(parts)


_CLUSTERS = pytest.StashKey[list]()


@pytest.fixture
def fault_cluster(request, tmp_path_factory):
    """``make(brokers=3, extra_args=(), start=True) -> FaultCluster`` in a fresh data dir;
    every cluster made is torn down after the test, every process group it ever had
    SIGKILLed."""
    made: list[FaultCluster] = []

    def make(brokers: int = 3, extra_args: Iterable[str] = (), start: bool = True, **kwargs) -> FaultCluster:
        kwargs.setdefault("data_dir", tmp_path_factory.mktemp("cluster"))
        cluster = FaultCluster(brokers=brokers, extra_args=list(extra_args), **kwargs)
        made.append(cluster)
        request.node.stash.setdefault(_CLUSTERS, []).append(cluster)
        return cluster.start() if start else cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for cluster in item.stash.get(_CLUSTERS, []):
            report.sections.append((f"cluster logs ({cluster.data_dir})", cluster.logs_tail()))


# -- clients -------------------------------------------------------------------------------

def create_topic(bootstrap: str, topic: str, partitions: int = 1, replication: int = 3,
                 config: dict | None = None, timeout: float = 15.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication, config=config or {})],
        operation_timeout=timeout)
    futures[topic].result(timeout)


@dataclasses.dataclass
class Ledger:
    """What a sequence-numbered producer sent and what the broker acknowledged.

    ``acked`` maps sequence number -> (partition, offset, monotonic ack time); ``failed``
    maps it to the delivery error. Delivery callbacks run on the thread that polls the
    producer; the ledger is read only after the producer is flushed.
    """
    acked: dict = dataclasses.field(default_factory=dict)
    failed: dict = dataclasses.field(default_factory=dict)
    sent_at: dict = dataclasses.field(default_factory=dict)
    client_errors: list = dataclasses.field(default_factory=list)

    def on_delivery(self, err, msg) -> None:
        seq = int(msg.value())
        if err is None:
            self.acked[seq] = (msg.partition(), msg.offset(), time.monotonic())
        else:
            self.failed[seq] = str(err)


class SequenceProducer:
    """A confluent-kafka producer writing values ``b"<n>"`` for n = 0, 1, 2, ... (key
    the same, so a multi-partition topic spreads them) into a ``Ledger``."""

    def __init__(self, bootstrap: str, topic: str, **conf):
        self.topic = topic
        self.ledger = Ledger()
        self.next_seq = 0
        settings = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                    "linger.ms": 5, "message.timeout.ms": 30000,
                    "error_cb": lambda err: self.ledger.client_errors.append(str(err))}
        settings.update(conf)
        self.producer = Producer(settings)

    def send(self, count: int = 1, partition: int | None = None) -> None:
        for _ in range(count):
            seq = self.next_seq
            self.next_seq += 1
            payload = str(seq).encode()
            self.ledger.sent_at[seq] = time.monotonic()
            kwargs = {} if partition is None else {"partition": partition}
            self.producer.produce(self.topic, payload, payload, on_delivery=self.ledger.on_delivery, **kwargs)
        self.producer.poll(0)

    def flush(self, timeout: float = 40.0) -> int:
        return self.producer.flush(timeout)

    def close(self) -> None:
        """Drop the librdkafka handle so its threads stop reconnecting to a torn-down cluster."""
        self.producer.flush(0)
        self.producer = None


def high_watermark(consumer: Consumer, topic: str, index: int, timeout: float = 20.0) -> int:
    """The partition's high watermark, asked again while leadership is moving (a broker
    restarted after the last kill takes its preferred leadership back meanwhile:
    librdkafka's watermark query does not retry NOT_LEADER itself) or while a new leader's
    high watermark has not caught up (OFFSET_NOT_AVAILABLE, retriable in Kafka's clients)."""
    moving = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.OFFSET_NOT_AVAILABLE, KafkaError._TIMED_OUT, KafkaError._TRANSPORT}
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, index), timeout=5)[1]
        except KafkaException as exc:
            error = exc.args[0]
            if not (error.retriable() or error.code() in moving) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_back(bootstrap: str, topic: str, partitions: Iterable[int], timeout: float = 30.0) -> collections.Counter:
    """Every message of ``partitions`` from the earliest offset up to each partition's high
    watermark (taken when reading starts), counted by sequence number."""
    partitions = list(partitions)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-read-back",
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "enable.partition.eof": False, "fetch.wait.max.ms": 100})
    try:
        ends = {index: high_watermark(consumer, topic, index) for index in partitions}
        consumer.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in partitions])
        counts: collections.Counter = collections.Counter()
        positions = {i: 0 for i in partitions}
        deadline = time.monotonic() + timeout
        while any(positions[i] < ends[i] for i in partitions):
            if time.monotonic() > deadline:
                pytest.fail(f"read-back of {topic} stalled at {positions}, high watermarks {ends}")
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    pytest.fail(f"read-back consumer error: {msg.error()}")
                counts[int(msg.value())] += 1
                positions[msg.partition()] = msg.offset() + 1
        return counts
    finally:
        consumer.close()


@dataclasses.dataclass
class Verdict:
    acked: int
    failed: int
    read: int
    lost: list
    duplicated: list
    unacked_read: int

    def as_dict(self) -> dict:
        return {"acked": self.acked, "failed": self.failed, "read": self.read,
                "lost": len(self.lost), "duplicated": len(self.duplicated),
                "unacked_but_read": self.unacked_read,
                "lost_sample": self.lost[:20], "duplicated_sample": self.duplicated[:20]}


def check(ledger: Ledger, counts: collections.Counter) -> Verdict:
    """Lost: acknowledged but never read. Duplicated: read more than once. A message whose
    delivery failed may or may not be read (Kafka promises nothing about it)."""
    lost = sorted(seq for seq in ledger.acked if counts[seq] == 0)
    duplicated = sorted(seq for seq, n in counts.items() if n > 1)
    unacked = sum(1 for seq in counts if seq not in ledger.acked)
    return Verdict(acked=len(ledger.acked), failed=len(ledger.failed), read=sum(counts.values()),
                   lost=lost, duplicated=duplicated, unacked_read=unacked)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def write_report(path: Path, report: dict) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"\n{json.dumps(report, sort_keys=True)}\nreport written to {path}", file=sys.stderr)


_THIS_MODULE = sys.modules[__name__]


@pytest.fixture(scope="session")
def faults():
    """This module: wait_for, create_topic, SequenceProducer, read_back, check, percentile,
    write_report."""
    return _THIS_MODULE
