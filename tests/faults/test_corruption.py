"""Mid-log corruption with a crash: 16 bytes flipped inside a batch of the active segment
(which recovery re-checks after the crash) and inside a batch of a closed segment (below
the recovery point: the background scrubber finds it), then a SIGKILL of the whole
cluster and a restart. Every acknowledged record outside the two damaged batches is kept
and read back by a CRC-checking consumer; the two damaged ranges are quarantined and
shown by ``pybroker status`` and ``pybroker verify-log``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from pybroker.record import batch as rb

TOPIC_CONFIG = {"segment.bytes": "32768"}


def segment_files(directory: str) -> list[str]:
    return sorted(os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".log"))


def batches(path: str) -> tuple[bytes, list[rb.BatchHeader]]:
    with open(path, "rb") as f:
        data = f.read()
    headers, _, _ = rb.scan_valid_prefix(data)
    return data, headers


def corrupt(path: str, header: rb.BatchHeader, data: bytes) -> set[int]:
    """Flip 16 bytes inside the batch's records; returns the sequence numbers it held."""
    seqs = {int(r.value) for r in rb.iter_records(data[header.position:header.position + header.size])}
    with open(path, "r+b") as f:
        f.seek(header.position + rb.HEADER_SIZE + 4)
        chunk = f.read(16)
        f.seek(header.position + rb.HEADER_SIZE + 4)
        f.write(bytes(b ^ 0xFF for b in chunk))
    return seqs


def read_with_crc_checks(bootstrap: str, topic: str, end: int, timeout: float = 60.0) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "corruption-read-back",
                         "enable.auto.commit": False, "check.crcs": True, "fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seqs, position = [], 0
        deadline = time.monotonic() + timeout
        while position < end:
            if time.monotonic() > deadline:
                pytest.fail(f"CRC-checking consumer stalled at offset {position} of {end}")
            for msg in consumer.consume(1000, 0.2):
                assert not msg.error(), f"consumer error at {position}: {msg.error()}"
                seqs.append(int(msg.value()))
                position = msg.offset() + 1
        return seqs
    finally:
        consumer.close()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("messages", [
    pytest.param(20_000, id="20k"),
    pytest.param(400_000, id="400k", marks=[pytest.mark.slow, pytest.mark.timeout(900)]),
])
def test_mid_log_corruption_and_a_crash_keep_every_valid_record(fault_cluster, faults, topic, messages):
    cluster = fault_cluster(brokers=1, extra_args=["--broker-config", "log_scrub_interval_ms=300"])
    faults.create_topic(cluster.bootstrap, topic, partitions=1, replication=1, config=TOPIC_CONFIG)
    producer = faults.SequenceProducer(cluster.bootstrap, topic, **{"batch.size": 8192})
    producer.send(messages)
    assert producer.flush(60) == 0
    assert not producer.ledger.failed, list(producer.ledger.failed.items())[:3]
    directory = str(cluster.data_dir / "broker-0" / f"{topic}-0")
    # Small batches at the end, so the active segment holds several.
    while len(batches(segment_files(directory)[-1])[1]) < 4:
        producer.send(5)
        assert producer.flush(30) == 0
    ledger = producer.ledger
    assert len(ledger.acked) == producer.next_seq and not ledger.failed
    producer.close()

    cluster.kill()  # SIGKILL, every process: no flush, no clean shutdown
    segments = segment_files(directory)
    assert len(segments) >= 4, segments
    closed = segments[len(segments) // 2]
    data, headers = batches(closed)
    lost = corrupt(closed, headers[len(headers) // 2], data)
    data, headers = batches(segments[-1])
    lost |= corrupt(segments[-1], headers[-2], data)
    cluster.start()

    def both_quarantined():
        status = cluster.status()
        part = status and cluster.partition(topic, 0, status)
        return part if part and len(part.get("damaged", ())) == 2 else None
    part = faults.wait_for(both_quarantined, 60, "both damaged ranges quarantined")
    assert sum(d["last_offset"] - d["first_offset"] + 1 for d in part["damaged"]) == len(lost)

    seqs = read_with_crc_checks(cluster.bootstrap, topic, part["high_watermark"])
    kept = set(seqs)
    assert len(seqs) == len(kept), "records read twice"
    assert kept == set(ledger.acked) - lost
    assert len(kept) == len(ledger.acked) - len(lost)

    result = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "verify-log", "--json", directory],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    rows = json.loads(result.stdout)["partitions"][0]["damage"]
    assert sorted(r["kind"] for r in rows) == ["quarantined", "quarantined"]
    print(f"\ncorruption: {len(ledger.acked)} acked, {len(kept)} kept and read back with CRC checks, "
          f"{len(lost)} in the 2 damaged batches quarantined, {len(segments)} segments", file=sys.stderr)
