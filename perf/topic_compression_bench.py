"""What a topic's ``compression.type`` costs the broker: produce throughput and broker
CPU for a topic storing batches as sent (``producer``) against topics that make the
broker re-encode them (``lz4``, ``zstd``, ``gzip``), in one run on one cluster.

confluent-kafka produces uncompressed batches of log-like (compressible) 100-byte
records with acks=1, so every batch is re-encoded on the re-encoding topics.

    python perf/topic_compression_bench.py                 # 500,000 x 100 B per topic
    python perf/topic_compression_bench.py --records 200000

Prints a markdown table ready for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import cluster_cpu_seconds, produce_throughput  # noqa: E402
from pybroker.testing import BrokerCluster  # noqa: E402

TYPES = ["producer", "lz4", "zstd", "gzip"]


def payload(size: int) -> bytes:
    line = b"2026-11-25T12:00:00Z INFO orders-service order=12345 status=shipped region=eu-west "
    return (line * (size // len(line) + 1))[:size]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=500_000)
    p.add_argument("--size", type=int, default=100)
    args = p.parse_args(argv)
    rows = []
    with BrokerCluster(data_dir=tempfile.mkdtemp(prefix="pybroker-perf-")) as cluster:
        conf = {"bootstrap.servers": cluster.bootstrap}
        admin = AdminClient(conf)
        for compression_type in TYPES:
            topic = f"compression-{compression_type}-{uuid.uuid4().hex[:6]}"
            admin.create_topics([NewTopic(topic, 1, 1, config={"compression.type": compression_type})])[topic].result(15)
            time.sleep(0.2)
            cpu = cluster_cpu_seconds(cluster.pid)
            seconds = produce_throughput(conf, topic, args.records, args.size, "1", 120, payload(args.size))
            cpu = cluster_cpu_seconds(cluster.pid) - cpu
            on_disk = sum(f.stat().st_size for f in cluster.data_dir.rglob(f"{topic}-0/*.log"))
            rows.append((compression_type, args.records / seconds, cpu, on_disk))
    base_rate = rows[0][1]
    print(f"{args.records:,} x {args.size} B per topic, confluent-kafka producer sending uncompressed batches, acks=1\n")
    print("| topic compression.type | records/s | vs producer | broker CPU-s | on disk |")
    print("|---|---|---|---|---|")
    for name, rate, cpu, size in rows:
        print(f"| {name} | {rate:,.0f} | {rate / base_rate:.2f}x | {cpu:.2f} | {size / 1024 / 1024:.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
