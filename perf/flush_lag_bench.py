"""Event-loop lag while a broker flushes thousands of partitions, and the scrubber's rate.

One LogManager hosts ``--partitions`` partitions (a directory, a segment and two indexes
each) on a real disk. On its event loop a writer appends a batch to a partition every
millisecond (so every flush finds dirty segments), a probe sleeps 5 ms at a time and
records how late it wakes (the lag any heartbeat or request would see), and the periodic
flush (``LogManager.flush``: every partition's fsyncs and recovery-point / high-watermark
checkpoints) runs back to back. Two modes, alternated A B A B:

* ``loop``   — the flush's fsyncs and checkpoint writes run on the event loop (an inline
               flusher: what the broker did before the flusher thread);
* ``thread`` — they run on the flusher thread (the broker's default).

Then ``pybroker verify-log``'s scan (``pybroker.log.verify``, which the scrubber runs
too) is timed over one partition of ``--scrub-mb`` MB in 64 KiB batches: MB/s
unthrottled (median of 3, page cache warm) and under the scrubber's default limit of
20 MB/s (``log_scrub_max_mb_per_s``).

    python perf/flush_lag_bench.py                       # 5,000 partitions, 3 rounds
    python perf/flush_lag_bench.py --partitions 1000 --rounds 1
    python perf/flush_lag_bench.py --partitions 0 --scrub-mb 512   # the scrub only

Prints a markdown table for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.broker.log_manager import LogManager  # noqa: E402
from pybroker.cluster.topics import TopicMetadata  # noqa: E402
from pybroker.config import BrokerConfig, TopicConfig  # noqa: E402
from pybroker.log import damage, verify  # noqa: E402
from pybroker.log.flusher import Flusher  # noqa: E402
from pybroker.record import batch as rb  # noqa: E402

PROBE_S = 0.005


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def raise_fd_limit(needed: int) -> None:
    """Each partition holds three fds (its segment and the maps of its two indexes)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))  # root may raise the hard limit
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def one_round(logs: LogManager, mode: str, flushes: int, batch: bytes) -> dict:
    loop = asyncio.get_running_loop()
    logs.flusher.drain()
    logs.flusher = Flusher(loop.call_soon_threadsafe) if mode == "thread" else Flusher()
    for partition in logs.partitions.values():
        partition.log.flusher = logs.flusher
    partitions = list(logs.partitions.values())
    stop = asyncio.Event()
    wakes: list[tuple[float, float]] = []  # (went to sleep, woke up)
    windows: list[tuple[float, float]] = []  # flushes: (started, done)
    rng = random.Random(1)

    async def writer():
        while not stop.is_set():
            buf = bytearray(batch)
            partitions[rng.randrange(len(partitions))].log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20))
            await asyncio.sleep(0.001)

    async def probe():
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(PROBE_S)
            wakes.append((before, time.perf_counter()))

    tasks = [loop.create_task(writer()), loop.create_task(probe())]
    durations = []
    for _ in range(flushes):
        for n, partition in enumerate(partitions):  # every partition has something to flush
            buf = bytearray(batch)
            partition.log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20))
            if n % 256 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.05)  # the probe's sleeps from here on overlap only the flush
        started = time.perf_counter()
        await logs.flush()
        while logs.flusher.pending:  # the thread's work counts until it is done
            await asyncio.sleep(0.001)
        windows.append((started, time.perf_counter()))
        durations.append(windows[-1][1] - started)
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    # Every probe sleep that overlapped a flush: how late it woke.
    lags = [(woke - slept - PROBE_S) * 1000 for slept, woke in wakes
            if any(slept < end and woke > start for start, end in windows)]
    return {"mode": mode, "p50": percentile(lags, 50), "p99": percentile(lags, 99), "max": max(lags),
            "samples": len(lags), "flush_s": statistics.median(durations)}


def scrub_rate(directory: str, limit_mb_s: float | None) -> float:
    pace = damage.Pacer(limit_mb_s * 1e6) if limit_mb_s else None
    started = time.perf_counter()
    report = verify.verify_partition(directory, pace)
    assert report.ok, "the benchmark's own log is damaged"
    return report.bytes_checked / (time.perf_counter() - started) / 1e6


def scrub_bench(root: str, megabytes: int) -> None:
    from pybroker.log import Log

    directory = os.path.join(root, "scrub-0")
    log = Log.open(directory, TopicConfig(retention_ms=-1))
    batch = rb.build_batch([(None, os.urandom(1000), [], int(time.time() * 1000))] * 64)
    for _ in range(megabytes * 1_000_000 // len(batch)):
        buf = bytearray(batch)
        log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20))
    size = log.size_bytes
    log.close()
    free = [scrub_rate(directory, None) for _ in range(3)]
    paced = scrub_rate(directory, 20.0)
    print(f"\nscrub (verify-log's scan, the scrubber's too) of one partition, {size / 1e6:.0f} MB in "
          f"{len(batch) // 1024} KiB batches: {statistics.median(free):.0f} MB/s unthrottled "
          f"(median of 3, {min(free):.0f}-{max(free):.0f}), {paced:.1f} MB/s with log_scrub_max_mb_per_s=20; "
          f"load average {os.getloadavg()[0]:.1f}")


def lag_bench(root: str, config: TopicConfig, batch: bytes, args) -> None:
    logs = LogManager(BrokerConfig(data_dir=os.path.join(root, "lag"), topic_defaults=config))
    topic = TopicMetadata("lag", args.partitions, config=config)
    logs.topics["lag"] = topic
    created = time.perf_counter()
    for index in range(args.partitions):
        logs.ensure_partition(topic, index)
    print(f"{args.partitions} partitions opened in {time.perf_counter() - created:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    if not args.no_freeze:  # as the broker does once its first cluster image is applied
        gc.collect()
        gc.freeze()

    async def run_all():
        results = []
        for n in range(args.rounds):
            for mode in ("loop", "thread"):
                result = await one_round(logs, mode, args.flushes, batch)
                print(f"round {n + 1} {mode}: {result}", file=sys.stderr)
                results.append(result)
        logs.close()
        return results

    results = asyncio.run(run_all())
    print(f"\n{args.partitions} partitions, {args.rounds} rounds x {args.flushes} flushes per mode, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| fsyncs and checkpoints | loop lag p50 ms | p99 ms (median, range) | max ms | flush s |")
    print("|---|---|---|---|---|")
    for mode in ("loop", "thread"):
        rs = [r for r in results if r["mode"] == mode]
        p99s = [r["p99"] for r in rs]
        print(f"| {'on the event loop (before)' if mode == 'loop' else 'flusher thread (now)'} "
              f"| {statistics.median(r['p50'] for r in rs):.1f} "
              f"| {statistics.median(p99s):.1f} ({min(p99s):.1f}-{max(p99s):.1f}) "
              f"| {max(r['max'] for r in rs):.0f} | {statistics.median(r['flush_s'] for r in rs):.2f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3, help="A B rounds of each mode")
    p.add_argument("--flushes", type=int, default=3, help="flushes per round")
    p.add_argument("--scrub-mb", type=int, default=256, help="size of the partition the scrub reads (0: skip)")
    p.add_argument("--no-freeze", action="store_true",
                   help="leave the opened partitions to the cyclic GC's full passes (the broker freezes them)")
    p.add_argument("--dir", default=None, help="where to put the data (default: a temp dir on /var/tmp)")
    args = p.parse_args()
    raise_fd_limit(args.partitions * 4 + 1000)
    root = tempfile.mkdtemp(prefix="flush-lag-", dir=args.dir or "/var/tmp")
    config = TopicConfig(segment_index_bytes=64 * 1024, retention_ms=-1)
    batch = rb.build_batch([(None, b"v" * 100, [], int(time.time() * 1000))] * 10)
    try:
        if args.partitions:
            lag_bench(root, config, batch, args)
        if args.scrub_mb:
            scrub_bench(root, args.scrub_mb)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
