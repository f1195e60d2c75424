"""What the broker's connection limits cost and what they protect, on one broker.

- ``produce``: confluent-kafka produces ``--records`` records of ``--size`` bytes (acks=1)
  to a fresh topic; records/s. The request path's buffer handling is what changed, so
  this is the number that must not drop.
- ``read``: the connection layer alone, in this process: a socketpair, the ``Connection``
  class of each tree reading ``--records`` frames of ``--size`` bytes (handled by a no-op),
  one tree after the other per round; frames/s and MB/s.
- ``slowloris``: ``--connections`` sockets each declare a 100 MiB request and send one
  byte a second for ``--seconds``; the broker's peak RSS, and a normal producer's
  records/s while they do.

``--code DIR`` runs the cluster from another source tree (e.g. an older commit
unpacked with ``git archive``), so old and new alternate in one run::

    git archive <commit> | tar -x -C /tmp/base
    python perf/limits_bench.py produce --code /tmp/base --code . --rounds 3
    python perf/limits_bench.py slowloris --code . --connections 500

Prints one line per run and a median/range summary per tree.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.testing import BrokerCluster  # noqa: E402  (runnable from a checkout)

MIB = 1024 * 1024


def _tree_module(code: str, relative: str):
    """Module ``relative`` (a path in the tree) loaded from the source tree ``code``."""
    import importlib.util

    path = Path(code) / relative
    spec = importlib.util.spec_from_file_location(f"tree_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_cluster(code: str, extra_args=()) -> BrokerCluster:
    """A one-broker cluster of the tree ``code``, started by that tree's own launcher
    (its BrokerCluster knows its CLI's options and start-up lines)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(code).resolve())
    launcher = _tree_module(code, "pybroker/testing.py").BrokerCluster
    cluster = launcher(data_dir=tempfile.mkdtemp(prefix="limits-bench-"), brokers=1, env=env,
                       extra_args=list(extra_args), start_timeout=60)
    return cluster.start()


def broker_process(cluster: BrokerCluster) -> psutil.Process:
    root = psutil.Process(cluster.pid)
    return next(p for p in root.children(recursive=True) if "pybroker.broker.main" in p.cmdline())


def produce_rate(bootstrap: str, records: int, size: int) -> float:
    # linger 20 ms and 1 MB batches: under load, requests of several hundred KiB, which
    # take the growing-buffer path as well as the exact-size one.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 20,
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000})
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    payload = os.urandom(size)
    producer.produce(topic, payload)
    producer.flush(30)
    start = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, payload)
                break
            except BufferError:
                producer.poll(0.01)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - start
    if remaining:
        raise RuntimeError(f"{remaining} records not delivered")
    return records / elapsed


def run_produce(args) -> dict[str, list[float]]:
    """records/s, and the broker's CPU time per MB received: the wall-clock rate swings
    with the machine's load, the CPU cost per byte much less."""
    rates: dict[str, list[float]] = {code: [] for code in args.code}
    cpu: dict[str, list[float]] = {code: [] for code in args.code}
    for round_no in range(args.rounds):
        for code in args.code:
            cluster = start_cluster(code)
            try:
                broker = broker_process(cluster)
                before = broker.cpu_times()
                rate = produce_rate(cluster.bootstrap, args.records, args.size)
                after = broker.cpu_times()
            finally:
                cluster.stop()
            used = (after.user + after.system) - (before.user + before.system)
            ms_per_mb = used * 1000 / (args.records * args.size / MIB)
            rates[code].append(rate)
            cpu[code].append(ms_per_mb)
            print(f"round {round_no + 1} {code}: {rate:,.0f} records/s, broker CPU {ms_per_mb:.1f} ms/MiB", flush=True)
    for code, values in cpu.items():
        print(f"{code}: broker CPU median {statistics.median(values):.1f} ms/MiB "
              f"(range {min(values):.1f}..{max(values):.1f})")
    return rates


def _load_connection_class(code: str):
    return _tree_module(code, "pybroker/broker/connection.py").Connection


def read_rate(connection_class, frames: int, size: int) -> tuple[float, float]:
    """Frames/s through one connection, and the reading thread's CPU µs per frame (the
    steadier figure on a loaded machine): a writer thread sends ``frames`` frames of
    ``size`` bytes; the broker side only counts them."""
    import asyncio

    from pybroker.config import BrokerConfig

    frame = struct.pack(">i", size) + os.urandom(size)

    class Server:
        config = BrokerConfig()
        connections: set = set()

        def __init__(self):
            self.seen = 0
            self.done = asyncio.Event()

        async def handle_frame(self, conn, view):
            self.seen += 1
            if self.seen == frames:
                self.done.set()
            return None

    async def run() -> float:
        ours, theirs = socket.socketpair()
        server = Server()
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: connection_class(server), ours)

        def write():
            for _ in range(frames):
                theirs.sendall(frame)

        start, cpu_start = time.perf_counter(), time.thread_time()
        writer = threading.Thread(target=write)
        writer.start()
        await server.done.wait()
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
        writer.join()
        theirs.close()
        return frames / elapsed, cpu * 1e6 / frames

    return asyncio.run(run())


def run_read(args) -> dict[str, list[float]]:
    classes = {code: _load_connection_class(code) for code in args.code}
    rates: dict[str, list[float]] = {code: [] for code in args.code}
    cpu: dict[str, list[float]] = {code: [] for code in args.code}
    for round_no in range(args.rounds):
        for code, cls in classes.items():
            rate, us = read_rate(cls, args.records, args.size)
            rates[code].append(rate)
            cpu[code].append(us)
            print(f"round {round_no + 1} {code}: {rate:,.0f} frames/s of {args.size} B "
                  f"({rate * args.size / MIB:,.0f} MiB/s), reader CPU {us:.1f} µs/frame", flush=True)
    for code, values in cpu.items():
        print(f"{code}: reader CPU median {statistics.median(values):.1f} µs/frame "
              f"(range {min(values):.1f}..{max(values):.1f})")
    return rates


def run_slowloris(args) -> dict[str, list[float]]:
    peaks: dict[str, list[float]] = {code: [] for code in args.code}
    for code in args.code:
        cluster = start_cluster(code)
        socks: list[socket.socket] = []
        try:
            broker = broker_process(cluster)
            idle_rss = broker.memory_info().rss
            quiet = produce_rate(cluster.bootstrap, args.records, args.size)
            peak = [0]
            stop = threading.Event()

            def watch():
                # The machine is shared: the broker is killed past --rss-limit-mib, checked
                # every 0.2 s from the first connection on, before the OOM killer acts.
                while not stop.is_set():
                    try:
                        peak[0] = max(peak[0], broker.memory_info().rss)
                    except psutil.NoSuchProcess:
                        return
                    if peak[0] > args.rss_limit_mib * MIB:
                        print(f"{code}: broker RSS passed {args.rss_limit_mib} MiB: killed", flush=True)
                        broker.kill()
                        return
                    stop.wait(0.2)

            def drip():
                while not stop.is_set():
                    for sock in socks:
                        try:
                            sock.send(b"\0")
                        except OSError:
                            pass
                    stop.wait(1.0)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            host, port = cluster.addresses[0]
            for i in range(args.connections):
                sock = socket.create_connection((host, port), timeout=5)
                sock.sendall(struct.pack(">i", 100 * MIB) + struct.pack(">hhih", 18, 0, i, 0))
                socks.append(sock)
            dripper = threading.Thread(target=drip, daemon=True)
            dripper.start()
            try:
                loaded = produce_rate(cluster.bootstrap, args.records, args.size)
            except RuntimeError:
                loaded = 0.0
            stop.wait(args.seconds)
            stop.set()
            dripper.join(5)
            watcher.join(5)
            peak = peak[0]
            alive = broker.is_running()
            print(f"{code}: idle RSS {idle_rss / MIB:.0f} MiB, peak RSS {peak / MIB:.0f} MiB with "
                  f"{args.connections} trickling 100 MiB requests; producer {quiet:,.0f} records/s alone, "
                  f"{loaded:,.0f} records/s during ({loaded / quiet:.2f}x); broker alive: {alive}", flush=True)
            peaks[code].append(peak / MIB)
        finally:
            for sock in socks:
                sock.close()
            cluster.stop()
    return peaks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["produce", "read", "slowloris"])
    p.add_argument("--code", action="append", help="source tree to run the cluster from (repeatable)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--records", type=int, default=500_000)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--rss-limit-mib", type=int, default=4096, help="kill the broker past this RSS (slowloris)")
    args = p.parse_args(argv)
    args.code = [str(Path(code).resolve()) for code in args.code or [Path(__file__).resolve().parent.parent]]
    # ``python -m`` puts the working directory first on sys.path: run the clusters from
    # a neutral one so --code decides which tree they import.
    os.chdir(tempfile.gettempdir())
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")
    run, unit = {"produce": (run_produce, "records/s"), "read": (run_read, "frames/s"),
                 "slowloris": (run_slowloris, "MiB peak RSS")}[args.what]
    results = run(args)
    for code, values in results.items():
        print(f"{code}: median {statistics.median(values):,.0f} {unit} "
              f"(range {min(values):,.0f}..{max(values):,.0f}, n={len(values)})")
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
