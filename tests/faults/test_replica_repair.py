"""A damaged range of one replica is refetched from another, so the replica is whole again.

RF 3, acked records in several segments; the whole cluster is SIGKILLed, 16 bytes are
flipped inside a batch of a closed segment of one replica (below the recovery point, so
recovery trusts it and the background scrubber finds it), and the cluster restarts. The
scrubber quarantines the batch; the broker then refetches that range from another in-sync
replica and splices it back: no ``.corrupt`` file is left, the replica's log is byte for
byte the other replicas', the broker logged the restore, and a CRC-checking consumer reads
every acked record.
"""
from __future__ import annotations

import os
import sys
import time

import pytest

from test_corruption import TOPIC_CONFIG, batches, corrupt, read_with_crc_checks, segment_files


def replica_dir(cluster, node_id: int, topic: str) -> str:
    return str(cluster.data_dir / f"broker-{node_id}" / f"{topic}-0")


def log_bytes(directory: str) -> bytes:
    """Every segment's batches in offset order."""
    return b"".join(open(path, "rb").read() for path in segment_files(directory))


def broker_log(cluster, node_id: int) -> str:
    try:
        return (cluster.data_dir / "logs" / f"broker-{node_id}.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def corrupt_files(directory: str) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".corrupt")]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("damaged", ["leader", "follower"])
def test_a_quarantined_range_is_refetched_from_an_in_sync_replica(fault_cluster, faults, topic, damaged):
    cluster = fault_cluster(brokers=3, extra_args=["--broker-config", "log_scrub_interval_ms=300"])
    faults.create_topic(cluster.bootstrap, topic, partitions=1, replication=3, config=TOPIC_CONFIG)
    producer = faults.SequenceProducer(cluster.bootstrap, topic, **{"batch.size": 8192})
    producer.send(12_000)
    assert producer.flush(60) == 0
    ledger = producer.ledger
    assert len(ledger.acked) == producer.next_seq and not ledger.failed
    producer.close()
    part = cluster.partition(topic, 0, cluster.wait_full_isr(topic, [0], what="all replicas in sync before the kill"))
    leader = part["leader"]
    target = leader if damaged == "leader" else next(r for r in part["replicas"] if r != leader)
    directory = replica_dir(cluster, target, topic)
    time.sleep(1.0)  # followers' last fetch round lands

    cluster.kill()  # SIGKILL, every process
    healthy = [replica_dir(cluster, r, topic) for r in part["replicas"] if r != target]
    assert all(log_bytes(d) == log_bytes(directory) for d in healthy), "replicas differ before the damage"
    segments = segment_files(directory)
    assert len(segments) >= 4, segments
    closed = segments[len(segments) // 2]
    data, headers = batches(closed)
    lost = corrupt(closed, headers[len(headers) // 2], data)
    assert lost
    cluster.start()

    def restored():
        if corrupt_files(directory):
            return None
        return "restored from broker" in broker_log(cluster, target)
    faults.wait_for(restored, 90, f"the damaged range of broker {target}'s replica restored")
    assert "corrupt data quarantined" in broker_log(cluster, target), "the scrubber never found the damage"
    assert log_bytes(directory) == log_bytes(healthy[0]), "the repaired replica differs from a healthy one"

    part = cluster.partition(topic, 0, cluster.wait_full_isr(topic, [0], what="all replicas in sync after the repair"))
    role = "leader" if part["leader"] == target else "follower"
    seqs = read_with_crc_checks(cluster.bootstrap, topic, part["high_watermark"])
    assert len(seqs) == len(set(seqs)), "records read twice"
    assert set(seqs) == set(ledger.acked), f"{len(set(ledger.acked) - set(seqs))} acked records not read"
    print(f"\nreplica repair: {len(lost)} records in the damaged batch of broker {target} "
          f"({role} after the restart) restored; {len(seqs)} of {len(ledger.acked)} acked read back",
          file=sys.stderr)
