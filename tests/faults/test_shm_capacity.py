"""Shared memory never limits the cluster: partitions beyond the offsets table's room are
created, written, read and restarted like any other, over sockets, with the shortage
logged once — never a failed CreateTopics or a failed start.

The default variant gives the region a 64-row table (48 usable) and a 100-partition
topic, read back before and after a restart. ``-m slow`` runs a 5,000-partition topic at
the default table size (more than the 4,096 rows the table used to have in all): created,
produced to, read back, restarted with every partition in the new region's table. (It
does not read back after the restart: reloading 1,700 partitions per broker takes many
minutes on a loaded 2-core machine today, which is partition-loading speed, not shared
memory.)"""
from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from pybroker import shm


def _produce_one_per_partition(bootstrap: str, topic: str, partitions: int, timeout: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                         "message.timeout.ms": int(timeout * 1000)})
    failed = []
    for index in range(partitions):
        producer.produce(topic, b"value-%d" % index, partition=index,
                         on_delivery=lambda err, msg: err is not None and failed.append(err))
        producer.poll(0)
    assert producer.flush(timeout) == 0
    assert not failed, failed[:3]


def _read_one_per_partition(bootstrap: str, topic: str, partitions: int, timeout: float) -> dict[int, bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
        got: dict[int, bytes] = {}
        deadline = time.monotonic() + timeout
        while len(got) < partitions and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if not msg.error():
                    got[msg.partition()] = msg.value()
        return got
    finally:
        consumer.close()


def _rows(cluster, topic: str, partitions: int) -> tuple[int, int, int]:
    """(partitions of ``topic`` with an offsets-table row, table capacity, its limit)."""
    region = shm.SharedRegion.attach(shm.region_name(str(cluster.data_dir.resolve())))
    try:
        offsets = region.offsets
        return sum(offsets.find(topic, i) is not None for i in range(partitions)), offsets.capacity, offsets.limit
    finally:
        region.close()


def _many_partitions(fault_cluster, faults, partitions: int, extra_args: list[str], timeout: float,
                     read_after_restart: bool = True) -> dict:
    cluster = fault_cluster(brokers=3, extra_args=extra_args, start_timeout=timeout)
    faults.create_topic(cluster.bootstrap, "wide", partitions=partitions, replication=1, timeout=timeout)
    _produce_one_per_partition(cluster.bootstrap, "wide", partitions, timeout)
    got = _read_one_per_partition(cluster.bootstrap, "wide", partitions, timeout)
    assert got == {i: b"value-%d" % i for i in range(partitions)}

    with_rows, capacity, limit = _rows(cluster, "wide", partitions)
    cluster.stop()
    cluster.start()  # on the same data dir: it must come up
    with_rows_after_restart = _rows(cluster, "wide", partitions)[0]
    if read_after_restart:
        got = _read_one_per_partition(cluster.bootstrap, "wide", partitions, timeout)
        assert got == {i: b"value-%d" % i for i in range(partitions)}
    warnings = (cluster.data_dir / "logs" / "supervisor.log").read_text().count("has no room for")
    return {"partitions": partitions, "slots": capacity, "limit": limit, "with_rows": with_rows,
            "with_rows_after_restart": with_rows_after_restart, "degradation_warnings": warnings}


@pytest.mark.timeout(150)
def test_partitions_beyond_a_full_offsets_table_use_sockets(fault_cluster, faults, tmp_path):
    report = _many_partitions(fault_cluster, faults, 100, ["--shm-slots", "64"], timeout=60)
    faults.write_report(tmp_path / "shm_capacity.json", report)
    assert report["slots"] == 64 and report["with_rows"] == report["limit"] == 48
    assert report["with_rows_after_restart"] == 48
    assert report["degradation_warnings"] >= 2  # at creation, and again at the restart


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_5000_partition_topic_is_created_used_and_restarted(fault_cluster, faults, tmp_path):
    # Loading thousands of partitions keeps a broker busy for many seconds on a loaded
    # 2-core machine: a long session timeout keeps that from fencing it meanwhile.
    report = _many_partitions(fault_cluster, faults, 5000, ["--session-timeout-ms", "120000"], timeout=300,
                              read_after_restart=False)
    faults.write_report(tmp_path / "shm_capacity_5000.json", report)
    assert report["with_rows"] == report["with_rows_after_restart"] == 5000 and report["slots"] >= 32768
    assert report["degradation_warnings"] == 0
