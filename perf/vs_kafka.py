"""pybroker against Apache Kafka 4.4 on the same machine, in one run, targets alternated.

Both targets run side by side with the same topology: a 1-node Kafka (tools/kafka_ref.py,
KRaft, combined broker+controller) and a ``pybroker up --brokers 1`` cluster for the rows
on one node, then 3 Kafka nodes and 3 pybroker brokers for the RF 3 rows. Every row runs
the same load generator against both: Kafka's own Java ProducerPerformance /
ConsumerPerformance (from the kafka-tools jar in the kafka_ref cache), or confluent-kafka
(librdkafka) in child processes. Each round runs the row on Kafka, then on pybroker
(A B A B ...); the table gives each target's median, its range over the rounds, the ratio
pybroker / Kafka of the medians, the brokers' CPU-seconds per million records (user+system
of the broker processes during the row: the JVMs; pybroker's supervisor and brokers) and
their RSS after the row.

    python perf/vs_kafka.py                       # every row, 3 rounds
    python perf/vs_kafka.py --quick               # smaller rows, 3 rounds (~5 minutes)
    python perf/vs_kafka.py --rows small-produce,clients-100 --rounds 5
    python perf/vs_kafka.py --list

Row registry (how other files add rows)
---------------------------------------
A row is a function ``run(target, ctx) -> dict[str, float]`` registered with ``@row``::

    from vs_kafka import row, Metric

    @row("sync-produce", "franz-go sync produce, 20,000 x 50 workers", nodes=1,
         metrics=[Metric("seconds", "s", better="lower")])
    def sync_produce(target, ctx):
        topic = target.topic(ctx.unique("sync"), partitions=1)
        ...                       # drive target.bootstrap; ctx.quick, ctx.records(n)
        return {"seconds": elapsed, "records": 20_000}

``target`` is a ``Target``: ``name`` ("kafka" or "pybroker"), ``bootstrap``, ``nodes``,
``topic(name, partitions, rf, config)`` (creates and waits for leaders), ``java(main, args)``
(runs a class from Kafka's jars, returns stdout) and ``libs`` (the jar directory).
``ctx`` is a ``Context``: ``quick``, ``records(full, quick)``, ``unique(prefix)``,
``tmp`` (a scratch dir for build outputs). The returned dict holds one value per declared
metric, plus ``records`` (how many records the row moved: the CPU-per-million column);
``setup=`` (optional) runs once per target before the first round. After its own rows
this module imports every ``perf/vs_kafka_rows_*.py`` (e.g. ``vs_kafka_rows_client.py``
for the client-side rows): a file there only has to import ``row`` and decorate functions.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import importlib
import itertools
import multiprocessing
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tools"))
# Rows files import this module as ``vs_kafka``; when run as a script it is ``__main__``:
# one module object either way, so there is one registry.
sys.modules.setdefault("vs_kafka", sys.modules[__name__])

RECORD_SIZE = 100
# librdkafka's informational logs (telemetry ids, ...) off: warnings and errors stay.
QUIET = {"log_level": 4}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- the registry -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str
    unit: str
    better: str = "higher"    # or "lower"
    fmt: str = ",.0f"


@dataclasses.dataclass
class Row:
    name: str
    title: str
    run: Callable
    nodes: int
    metrics: list[Metric]
    setup: Callable | None = None


ROWS: dict[str, Row] = {}


def row(name: str, title: str, nodes: int = 1, metrics: list[Metric] | None = None, setup: Callable | None = None):
    """Register ``run(target, ctx) -> {metric key: value, "records": n}`` as row ``name``."""
    def register(fn):
        if name in ROWS:
            raise ValueError(f"row {name!r} registered twice")
        ROWS[name] = Row(name, title, fn, nodes, list(metrics or [Metric("rec/s", "rec/s")]), setup)
        return fn
    return register


@dataclasses.dataclass
class Context:
    quick: bool
    tmp: str
    _counter: itertools.count = dataclasses.field(default_factory=itertools.count)
    # Per (row, target) state left by a row's setup.
    state: dict = dataclasses.field(default_factory=dict)

    def records(self, full: int, quick: int | None = None) -> int:
        return (quick if quick is not None else max(1, full // 5)) if self.quick else full

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter)}"


# -- targets ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / CLK_TCK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
    return total / 1e6


class Target:
    """One cluster under test. ``pids()``: the broker processes whose CPU and RSS count."""

    def __init__(self, name: str, bootstrap: str, nodes: int, pids: Callable[[], list[int]], libs: str):
        self.name, self.bootstrap, self.nodes, self._pids, self.libs = name, bootstrap, nodes, pids, libs

    def pids(self) -> list[int]:
        return self._pids()

    def topic(self, name: str, partitions: int = 1, rf: int = 1, config: dict | None = None) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({**QUIET, "bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(name, partitions, rf, config=dict(config or {}))])[name].result(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            md = admin.list_topics(name, timeout=10).topics.get(name)
            if md is not None and md.error is None and len(md.partitions) == partitions and all(
                    p.leader >= 0 and len(p.isrs) == rf for p in md.partitions.values()):
                return name
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: topic {name} has no leaders after 60 s")

    def java(self, main: str, *args: str, timeout: float = 600) -> str:
        cmd = ["java", "-Xmx512m", "-cp", os.path.join(self.libs, "*"),
               "-Dlog4j2.level=WARN", main, *args]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{main} failed ({done.returncode}):\n{done.stdout[-3000:]}")
        return done.stdout


@contextlib.contextmanager
def clusters(nodes: int, pybroker_args: list[str]):
    """Kafka and pybroker, ``nodes`` each, both up for the whole block."""
    from kafka_ref import KafkaCluster, fetch_jars
    from pybroker.testing import BrokerCluster

    libs = fetch_jars()
    with tempfile.TemporaryDirectory(prefix="vs-kafka-pb-") as pb_dir, \
            KafkaCluster(nodes=nodes, config={"auto.create.topics.enable": "false"}) as kafka, \
            BrokerCluster(data_dir=pb_dir, brokers=nodes, extra_args=pybroker_args,
                          start_timeout=60) as pb:
        kafka_pids = list(kafka.pids)
        targets = [Target("kafka", kafka.bootstrap, nodes, lambda: kafka_pids, libs),
                   Target("pybroker", pb.bootstrap, nodes, lambda: _tree(pb.pid), libs)]
        for target in targets:
            # Warm up (the JVM's JIT above all): the first row must not measure a cold broker.
            producer_performance(target, target.topic("warm-up", 1, nodes), 300_000, "1")
        yield targets


# -- load generators ----------------------------------------------------------------------


_PRODUCER_PERF = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                            r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def producer_performance(target: Target, topic: str, records: int, acks: str, throughput: int = -1,
                         **props) -> dict:
    """Kafka's kafka-producer-perf-test. Latency there is send() to acknowledgement."""
    conf = {"acks": acks, **{k.replace("_", "."): v for k, v in props.items()}}
    out = target.java("org.apache.kafka.tools.ProducerPerformance", "--bootstrap-server", target.bootstrap,
                      "--topic", topic, "--num-records", str(records), "--record-size", str(RECORD_SIZE),
                      "--throughput", str(throughput), "--producer-props",
                      *(f"{k}={v}" for k, v in conf.items()))
    match = None
    for match in _PRODUCER_PERF.finditer(out):
        pass
    if match is None:
        raise RuntimeError(f"no summary from ProducerPerformance:\n{out[-2000:]}")
    return {"rec/s": float(match[2]), "p50 ms": float(match[6]), "p99 ms": float(match[8]),
            "records": int(match[1])}


def consumer_performance(target: Target, topic: str, records: int) -> dict:
    """Kafka's kafka-consumer-perf-test; the rate excludes the group join (fetch.nMsg.sec)."""
    out = target.java("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", target.bootstrap,
                      "--topic", topic, "--num-records", str(records), "--timeout", "60000",
                      "--group", f"perf-{time.monotonic_ns()}")
    lines = [line for line in out.splitlines() if line.count(",") >= 9 and not line.startswith("start.time")]
    if not lines:
        raise RuntimeError(f"no summary from ConsumerPerformance:\n{out[-2000:]}")
    fields = [f.strip() for f in lines[-1].split(",")]
    return {"rec/s": float(fields[9]), "records": int(float(fields[4]))}


def fill(target: Target, topic: str, records: int) -> None:
    """Write ``records`` x 100 B with confluent-kafka, fast (batches), for consume rows."""
    from confluent_kafka import Producer
    producer = Producer({**QUIET, "bootstrap.servers": target.bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 2_000_000, "acks": "1"})
    payload = b"x" * RECORD_SIZE
    for i in range(records):
        while True:
            try:
                producer.produce(topic, payload, partition=i % _partitions(target, topic))
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(120):
        raise RuntimeError(f"{target.name}: fill of {topic} did not finish")


def _partitions(target: Target, topic: str, _cache={}) -> int:
    key = (target.bootstrap, topic)
    if key not in _cache:
        from confluent_kafka.admin import AdminClient
        _cache[key] = len(AdminClient({"bootstrap.servers": target.bootstrap}).list_topics(topic).topics[topic].partitions)
    return _cache[key]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


# Child processes (spawned: confluent-kafka must not be forked with live clients).
_STAMP = struct.Struct(">d")


def _stamped(size: int) -> Callable[[], bytes]:
    pad = b"x" * (size - _STAMP.size)
    return lambda: _STAMP.pack(time.time()) + pad


def _paced_producers(bootstrap: str, topic: str, partitions: int, producers: int, rate: float,
                     seconds: float, conf: dict, out) -> None:
    """``producers`` producers sharing an offered ``rate`` msg/s for ``seconds``; reports
    (sent, delivered, first send, last delivery) through ``out``."""
    from confluent_kafka import Producer
    clients = [Producer({**QUIET, "bootstrap.servers": bootstrap, **conf}) for _ in range(producers)]
    for p in clients:
        p.list_topics(topic, timeout=30)
    delivered = [0]
    last = [0.0]

    def report(err, _msg):
        if err is None:
            delivered[0] += 1
            last[0] = time.time()

    make = _stamped(RECORD_SIZE)
    start = time.time()
    sent = 0
    tick = 0.001
    end = start + seconds
    while True:
        now = time.time()
        if now >= end:
            break
        due = int((now - start) * rate)
        while sent < due:
            client = clients[sent % producers]
            try:
                client.produce(topic, make(), partition=sent % partitions, on_delivery=report)
            except BufferError:
                client.poll(0.001)
                continue
            sent += 1
        for client in clients:
            client.poll(0)
        time.sleep(tick)
    for client in clients:
        client.flush(60)
    out.put(("producer", sent, delivered[0], start, last[0]))


def _latency_consumers(bootstrap: str, topic: str, group: str | None, consumers: int, partitions: int,
                       ready, stop, since, out) -> None:
    """``consumers`` consumers (in a group, or assigned at the log end with ``group`` None),
    one thread each; record end-to-end latency (now - the stamp in the value) of records
    stamped after ``since``."""
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition
    conf = {**QUIET, "bootstrap.servers": bootstrap, "group.id": group or "unused", "enable.auto.commit": True,
            "auto.offset.reset": "latest", "fetch.queue.backoff.ms": 1}
    clients = [Consumer(conf) for _ in range(consumers)]
    assigned: dict[int, set] = {i: set() for i in range(consumers)}
    lock = threading.Lock()
    if group is None:
        clients[0].assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])
        assigned[0] = set(range(partitions))
    else:
        for i, c in enumerate(clients):
            def on_assign(_c, parts, i=i):
                with lock:
                    assigned[i] = {p.partition for p in parts}

            def on_revoke(_c, parts, i=i):
                with lock:
                    assigned[i] = set()
            c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    latencies: list[float] = []
    count = [0]

    def loop(c):
        while not stop.is_set():
            msgs = c.consume(1000, 0.1)
            now = time.time()
            t0 = since.value
            for m in msgs:
                if m.error() is None:
                    count[0] += 1
                    (stamp,) = _STAMP.unpack_from(m.value())
                    if t0 and stamp >= t0:
                        latencies.append((now - stamp) * 1000)

    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while time.time() < deadline:
        with lock:
            covered = set().union(*assigned.values())
        if len(covered) == partitions:
            break
        time.sleep(0.1)
    ready.release()
    stop.wait()
    for t in threads:
        t.join(5)
    for c in clients:
        c.close()
    out.put(("consumer", latencies, count[0]))


def end_to_end(target: Target, topic: str, partitions: int, producers: int, groups: int, consumers: int,
               rate: float, seconds: float, warmup: float, producer_conf: dict) -> dict:
    """Paced produce with ``producers`` clients, consumed by ``groups`` groups of
    ``consumers`` (or one assigned consumer with ``groups`` 0): achieved rate (records
    delivered to the producer / time from first send to last delivery) and end-to-end
    latency p50/p99 of the records sent after ``warmup``."""
    mp = multiprocessing.get_context("spawn")
    out, stop, since = mp.Queue(), mp.Event(), mp.Value("d", 0.0)
    ready = mp.Semaphore(0)
    procs = [mp.Process(target=_latency_consumers,
                        args=(target.bootstrap, topic, f"{topic}-g{g}" if groups else None, consumers,
                              partitions, ready, stop, since, out))
             for g in range(max(1, groups))]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=150):
            raise RuntimeError(f"{target.name}: consumers not assigned within 150 s")
    time.sleep(1.0)
    since.value = time.time() + warmup
    producer = mp.Process(target=_paced_producers,
                          args=(target.bootstrap, topic, partitions, producers, rate, seconds + warmup,
                                producer_conf, out))
    producer.start()
    producer.join(seconds + warmup + 120)
    time.sleep(2.0)       # the last records reach the consumers
    stop.set()
    results = [out.get(timeout=60) for _ in range(len(procs) + 1)]
    for p in procs:
        p.join(30)
    _, sent, delivered, start, last = next(r for r in results if r[0] == "producer")
    latencies = [x for r in results if r[0] == "consumer" for x in r[1]]
    consumed = sum(r[2] for r in results if r[0] == "consumer")
    return {"rec/s": delivered / max(1e-9, last - start), "p50 ms": percentile(latencies, 50),
            "p99 ms": percentile(latencies, 99), "records": delivered + consumed}


# -- the rows (broker side) ---------------------------------------------------------------

THROUGHPUT = [Metric("rec/s", "rec/s")]
LATENCY = [Metric("rec/s", "rec/s"), Metric("p50 ms", "ms", "lower", ",.1f"), Metric("p99 ms", "ms", "lower", ",.1f")]


def _produce_row(partitions: int, acks: str, rf: int = 1, records: int = 2_000_000, **props):
    def run(target: Target, ctx: Context) -> dict:
        topic = target.topic(ctx.unique("produce"), partitions, rf,
                             {"min.insync.replicas": "2"} if rf == 3 else None)
        result = producer_performance(target, topic, ctx.records(records), acks, **props)
        return {"rec/s": result["rec/s"], "records": result["records"]}
    return run


row("produce-1p", "produce acks=1, RF 1, 1 partition (Java ProducerPerformance)")(_produce_row(1, "1"))
row("produce-8p", "produce acks=1, RF 1, 8 partitions (Java ProducerPerformance)")(_produce_row(8, "1"))


def _fill_setup(partitions: int, records: int):
    def setup(target: Target, ctx: Context) -> None:
        topic = target.topic(ctx.unique("consume"), partitions)
        fill(target, topic, ctx.records(records))
        ctx.state[(target.name, partitions)] = topic
    return setup


def _consume_java(partitions: int, records: int):
    def run(target: Target, ctx: Context) -> dict:
        return consumer_performance(target, ctx.state[(target.name, partitions)], ctx.records(records))
    return run


row("consume-1p", "consume 1 partition (Java ConsumerPerformance)",
    setup=_fill_setup(1, 2_000_000))(_consume_java(1, 2_000_000))
row("consume-8p", "consume 8 partitions (Java ConsumerPerformance)",
    setup=_fill_setup(8, 2_000_000))(_consume_java(8, 2_000_000))


@row("consume-1p-confluent", "consume 1 partition (confluent-kafka)", setup=_fill_setup(1, 2_000_000))
def consume_confluent(target: Target, ctx: Context) -> dict:
    from confluent_kafka import Consumer, TopicPartition
    topic = ctx.state[(target.name, 1)]
    want = ctx.records(2_000_000)
    consumer = Consumer({**QUIET, "bootstrap.servers": target.bootstrap, "group.id": ctx.unique("c"),
                         "enable.auto.commit": False, "queued.min.messages": 1_000_000,
                         "fetch.queue.backoff.ms": 1})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got, start = 0, None
    deadline = time.monotonic() + 120
    while got < want and time.monotonic() < deadline:
        msgs = consumer.consume(10_000, 1.0)
        if msgs and start is None:
            start = time.perf_counter()
        got += sum(1 for m in msgs if m.error() is None)
    elapsed = time.perf_counter() - start
    consumer.close()
    return {"rec/s": got / elapsed, "records": got}


@row("small-produce", "acks=1 RF 1, linger.ms=0, offered 50,000 msg/s, 1 partition (confluent-kafka)",
     metrics=LATENCY)
def small_produce(target: Target, ctx: Context) -> dict:
    topic = target.topic(ctx.unique("small"), 1)
    return end_to_end(target, topic, partitions=1, producers=1, groups=0, consumers=1, rate=50_000,
                      seconds=4 if ctx.quick else 10, warmup=1.0, producer_conf={"acks": "1", "linger.ms": 0})


@row("clients-100", "50 producers + 50 consumers in 5 groups, 10 partitions, 10,000 msg/s offered (confluent-kafka)",
     metrics=LATENCY)
def clients_100(target: Target, ctx: Context) -> dict:
    topic = target.topic(ctx.unique("many"), 10)
    return end_to_end(target, topic, partitions=10, producers=50, groups=5, consumers=10, rate=10_000,
                      seconds=5 if ctx.quick else 15, warmup=2.0, producer_conf={"acks": "1", "linger.ms": 5})


row("rf3-8p-java", "RF 3 acks=all (min ISR 2), 8 partitions (Java ProducerPerformance)", nodes=3)(
    _produce_row(8, "all", rf=3, records=1_000_000))


@row("rf3-8p-confluent", "RF 3 acks=all (min ISR 2), 8 partitions (confluent-kafka)", nodes=3)
def rf3_confluent(target: Target, ctx: Context) -> dict:
    from confluent_kafka import Producer
    topic = target.topic(ctx.unique("rf3c"), 8, 3, {"min.insync.replicas": "2"})
    records = ctx.records(1_000_000)
    producer = Producer({**QUIET, "bootstrap.servers": target.bootstrap, "acks": "all", "linger.ms": 5,
                         "queue.buffering.max.messages": 2_000_000})
    payload = b"x" * RECORD_SIZE
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, payload, partition=i % 8)
                break
            except BufferError:
                producer.poll(0.005)
    if producer.flush(120):
        raise RuntimeError(f"{target.name}: flush did not finish")
    return {"rec/s": records / (time.perf_counter() - start), "records": records}


row("rf3-1p-idempotent", "RF 3 acks=all idempotent, 1 partition (Java ProducerPerformance)", nodes=3)(
    _produce_row(1, "all", rf=3, records=1_000_000, enable_idempotence="true"))


def load_row_modules() -> list[str]:
    names = []
    for path in sorted(glob.glob(str(HERE / "vs_kafka_rows_*.py"))):
        name = Path(path).stem
        importlib.import_module(name)
        names.append(name)
    return names


# -- running and reporting -----------------------------------------------------------------


def run_rows(rows: list[Row], rounds: int, ctx: Context, pybroker_args: list[str]) -> dict:
    """{row name: {target name: [per-round results]}}; rows grouped by topology."""
    results: dict = {}
    for nodes in sorted({r.nodes for r in rows}):
        group = [r for r in rows if r.nodes == nodes]
        print(f"# starting Kafka and pybroker with {nodes} node(s) each", file=sys.stderr, flush=True)
        with clusters(nodes, pybroker_args) as targets:
            for r in group:
                per = results.setdefault(r.name, {t.name: [] for t in targets})
                if r.setup is not None:
                    for t in targets:
                        r.setup(t, ctx)
                for i in range(rounds):
                    for t in targets:
                        pids = t.pids()
                        cpu0 = cpu_seconds(pids)
                        load = os.getloadavg()[0]
                        try:
                            out = r.run(t, ctx)
                        except Exception as exc:  # one failed round is reported, the run goes on
                            print(f"# {r.name} round {i + 1} on {t.name} failed: {exc}", file=sys.stderr, flush=True)
                            continue
                        out["cpu"] = cpu_seconds(pids) - cpu0
                        out["rss"] = rss_mb(t.pids())
                        out["load"] = load
                        per[t.name].append(out)
                        shown = ", ".join(f"{m.key} {out.get(m.key, float('nan')):{m.fmt}}" for m in r.metrics)
                        print(f"# {r.name} round {i + 1} {t.name}: {shown}, cpu {out['cpu']:.2f} s, "
                              f"load {load:.1f}", file=sys.stderr, flush=True)
    return results


def _median_range(values: list[float], fmt: str) -> str:
    if not values:
        return "failed"
    med = statistics.median(values)
    return f"{med:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})" if len(values) > 1 else f"{med:{fmt}}"


def report(rows: list[Row], results: dict) -> str:
    lines = ["| row | metric | Kafka median (range) | pybroker median (range) | pybroker / Kafka |",
             "|---|---|---:|---:|---:|"]
    resources = ["| row | Kafka CPU-s / M records | pybroker CPU-s / M records | CPU ratio | Kafka RSS MB | pybroker RSS MB |",
                 "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        per = results.get(r.name)
        if per is None:
            continue
        meds = {}
        for m in r.metrics:
            cells = []
            for t in ("kafka", "pybroker"):
                vals = [o[m.key] for o in per[t] if m.key in o and o[m.key] == o[m.key]]
                meds[t] = statistics.median(vals) if vals else None
                cells.append(_median_range(vals, m.fmt))
            ratio = (f"{meds['pybroker'] / meds['kafka']:.2f}x" if meds["kafka"] and meds["pybroker"] is not None
                     else "")
            if ratio and m.better == "lower":
                ratio += " (lower is better)"
            lines.append(f"| {r.name} | {m.key} | {cells[0]} | {cells[1]} | {ratio} |")
        cpu = {t: statistics.median([o["cpu"] / o["records"] * 1e6 for o in per[t] if o.get("records")] or [float("nan")])
               for t in ("kafka", "pybroker")}
        rss = {t: statistics.median([o["rss"] for o in per[t]] or [float("nan")]) for t in ("kafka", "pybroker")}
        cpu_ratio = cpu["pybroker"] / cpu["kafka"] if cpu["kafka"] else float("nan")
        resources.append(f"| {r.name} | {cpu['kafka']:.2f} | {cpu['pybroker']:.2f} | {cpu_ratio:.2f}x | "
                         f"{rss['kafka']:,.0f} | {rss['pybroker']:,.0f} |")
    titles = [f"- `{r.name}`: {r.title}" for r in rows if r.name in results]
    loads = [o["load"] for per in results.values() for outs in per.values() for o in outs]
    load = f"load average (1 min) at row starts: {min(loads):.1f}–{max(loads):.1f}" if loads else ""
    return "\n".join(titles + ["", *lines, "", *resources, "", load])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", help="comma-separated row names (default: all); see --list")
    parser.add_argument("--quick", action="store_true", help="a fifth of the records, shorter paced rows")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--pybroker-arg", action="append", default=[], help="extra argument to `pybroker up`")
    args = parser.parse_args(argv)
    load_row_modules()
    if args.list:
        for r in ROWS.values():
            print(f"{r.name:24} nodes={r.nodes}  {r.title}")
        return 0
    names = args.rows.split(",") if args.rows else list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    rows = [ROWS[n] for n in names]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vs-kafka-") as tmp:
        results = run_rows(rows, args.rounds, Context(quick=args.quick, tmp=tmp), args.pybroker_arg)
    print(f"pybroker vs Apache Kafka 4.4, {args.rounds} rounds alternating Kafka, pybroker"
          f"{' (--quick)' if args.quick else ''}; {RECORD_SIZE} B records; {os.cpu_count()} cores; "
          f"{time.monotonic() - started:.0f} s\n")
    print(report(rows, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
