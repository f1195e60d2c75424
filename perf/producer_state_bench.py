"""Partition open time with and without a producer-state snapshot.

Writes ``--batches`` one-record idempotent batches (``--producers`` producers, in turn) to
one partition, closes it cleanly (which snapshots the producer table at the log end), and
times setting the partition up again on the reopened log: with the snapshot, and with the snapshots removed (the table is then
rebuilt by replaying the active segment's batch headers, as before snapshots existed).

    python perf/producer_state_bench.py                    # 200,000 batches, 100 producers

Prints a markdown table ready for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.broker import producer_snapshot  # noqa: E402
from pybroker.broker.partition import Partition  # noqa: E402
from pybroker.config import TopicConfig  # noqa: E402
from pybroker.log.log import Log  # noqa: E402
from pybroker.record.batch import build_batch  # noqa: E402


def open_seconds(directory: str, config: TopicConfig) -> float:
    """Seconds to set up the partition on an opened log: its producer table and epoch
    cache (the log's own recovery is the same either way and not timed)."""
    plog = Log.open(directory, config, clean_shutdown=True)
    start = time.perf_counter()
    Partition("t", 0, plog, node_id=0)
    elapsed = time.perf_counter() - start
    plog.close()  # not Partition.close(): that would write a fresh snapshot
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=200_000)
    ap.add_argument("--producers", type=int, default=100)
    args = ap.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="pybroker-perf-")
    config = TopicConfig()
    p = Partition("t", 0, Log.open(directory, config), node_id=0)
    seqs = [0] * args.producers
    for i in range(args.batches):
        pid = i % args.producers
        p.append(memoryview(bytearray(build_batch([(None, b"x" * 100, None, 1)], producer_id=pid,
                                                  producer_epoch=0, base_sequence=seqs[pid]))), acks=1)
        seqs[pid] += 1
    p.close()
    with_snapshot = statistics.median(open_seconds(directory, config) for _ in range(3))
    for offset in producer_snapshot.offsets(directory):
        os.remove(producer_snapshot.path_of(directory, offset))
    without = statistics.median(open_seconds(directory, config) for _ in range(3))
    print(f"{args.batches:,} one-record idempotent batches from {args.producers} producers in one segment; "
          f"median of 3 opens\n")
    print("| open | seconds | per batch |")
    print("|---|---:|---:|")
    print(f"| with the clean-shutdown snapshot | {with_snapshot:.3f} | - |")
    print(f"| replaying batch headers (no snapshot) | {without:.3f} | {without / args.batches * 1e6:.1f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
