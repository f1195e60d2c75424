"""Replication through the shared-memory tail rings: followers append what the leader's
ring holds, report positions with byte-less fetches, fall back to the socket when the
ring cannot answer, and end with logs byte-identical to the socket path's."""
import asyncio
import os
import time

from pybroker import shm
from pybroker.record import compression
from pybroker.record.batch import parse_batches

from shm_replication_harness import Client, ShmCluster, log_bytes, run, wait_for


async def _started(tmp_path, **kwargs) -> ShmCluster:
    cluster = ShmCluster(tmp_path, **kwargs)
    await cluster.start()
    cluster.create("t")
    return cluster


def test_follower_catches_up_through_the_ring(tmp_path):
    async def scenario():
        cluster = await _started(tmp_path)
        try:
            client = Client(cluster.nodes[0])
            for i in range(5):
                answer = await client.produce([b"v%d-%d" % (i, j) for j in range(10)], acks=1)
                assert answer["error_code"] == 0
            await wait_for(lambda: all(cluster.partition(n).log_end_offset == 50 for n in (1, 2)))
            leader_log = log_bytes(cluster, 0)
            for n in (1, 2):
                assert log_bytes(cluster, n) == leader_log
                # Every record byte the follower holds came from the ring, none by socket.
                assert cluster.nodes[n].shm.ring_bytes == len(leader_log)
            await wait_for(lambda: cluster.partition(1).high_watermark == 50)
        finally:
            await cluster.stop()
    run(scenario())


def test_acks_all_completes_over_the_ring(tmp_path):
    async def scenario():
        cluster = await _started(tmp_path)
        try:
            client = Client(cluster.nodes[0])
            for i in range(20):
                answer = await client.produce([b"x%d" % i] * 3, acks=-1)
                assert answer["error_code"] == 0
                assert answer["base_offset"] == 3 * i
                for n in (1, 2):
                    assert cluster.partition(n).log_end_offset >= 3 * (i + 1)
            assert cluster.partition(0).high_watermark == 60
            leader_log = log_bytes(cluster, 0)
            for n in (1, 2):
                assert cluster.nodes[n].shm.ring_bytes == len(leader_log)
        finally:
            await cluster.stop()
    run(scenario())


def test_lapped_follower_falls_back_to_the_socket(tmp_path):
    async def scenario():
        # A 4 KiB ring holds a few batches: a follower paused meanwhile finds its next
        # batch overwritten.
        cluster = await _started(tmp_path, ring_bytes=4096)
        try:
            client = Client(cluster.nodes[0])
            await client.produce([b"first"], acks=-1)
            await cluster.pause(2)
            for i in range(30):
                answer = await client.produce([b"%d" % i * 50] * 4, acks=1)
                assert answer["error_code"] == 0
            end = cluster.partition(0).log_end_offset
            cluster.resume(2)
            await wait_for(lambda: cluster.partition(2).log_end_offset == end)
            follower = cluster.nodes[2].shm
            assert follower.ring_misses > 0
            assert follower.ring_bytes < len(log_bytes(cluster, 0))
            assert log_bytes(cluster, 2) == log_bytes(cluster, 0)
            # Node 1 kept up the whole time: the ring served all of it.
            assert cluster.nodes[1].shm.ring_bytes == len(log_bytes(cluster, 0))
        finally:
            await cluster.stop()
    run(scenario())


def test_shm_and_socket_followers_write_identical_logs(tmp_path):
    async def scenario():
        cluster = await _started(tmp_path, socket_only={2})
        try:
            client = Client(cluster.nodes[0])
            for i in range(8):
                codec = (compression.GZIP, compression.LZ4, compression.ZSTD, compression.SNAPPY,
                         compression.NONE)[i % 5]
                answer = await client.produce([b"r%d-%d" % (i, j) * (j + 1) for j in range(7)],
                                              acks=-1, compression=codec)
                assert answer["error_code"] == 0, answer
            end = cluster.partition(0).log_end_offset
            await wait_for(lambda: all(cluster.partition(n).log_end_offset == end for n in (1, 2)))
            assert log_bytes(cluster, 1) == log_bytes(cluster, 2) == log_bytes(cluster, 0)
            assert cluster.nodes[1].shm.ring_bytes == len(log_bytes(cluster, 0))
            assert cluster.nodes[2].shm.ring_bytes == 0
        finally:
            await cluster.stop()
    run(scenario())


def test_new_leader_ring_never_serves_a_truncated_suffix(tmp_path):
    async def scenario():
        cluster = await _started(tmp_path)
        try:
            await Client(cluster.nodes[0]).produce([b"a"] * 5, acks=-1)
            await cluster.pause(1)
            await cluster.pause(2)
            # Offsets 5..9 of epoch 0 reach node 0's ring and log only.
            await Client(cluster.nodes[0]).produce([b"lost"] * 5, acks=1)
            cluster.resume(1)
            cluster.elect("t", 0, leader=1, isr=(0, 1))
            await wait_for(lambda: cluster.partition(0).log_end_offset == 5)
            await Client(cluster.nodes[1]).produce([b"kept"] * 3, acks=-1)
            await wait_for(lambda: cluster.partition(0).log_end_offset == 8)
            cluster.elect("t", 0, leader=0, isr=(0, 1))
            cluster.resume(2)
            # Node 2 resumes at offset 5; node 0's ring still holds the epoch-0 batch
            # 5..9 there, which it must not take.
            await wait_for(lambda: cluster.partition(2).log_end_offset == 8)
            assert log_bytes(cluster, 2) == log_bytes(cluster, 0) == log_bytes(cluster, 1)
            values = await Client(cluster.nodes[0]).values()
            assert values == [b"a"] * 5 + [b"kept"] * 3
            epochs = [h.partition_leader_epoch for h in parse_batches(log_bytes(cluster, 2), 1 << 20)]
            assert epochs == [0, 1]
        finally:
            await cluster.stop()
    run(scenario())


def test_offsets_rows_and_heartbeats_are_published(tmp_path):
    async def scenario():
        cluster = await _started(tmp_path)
        try:
            await Client(cluster.nodes[0]).produce([b"z"] * 4, acks=-1)
            region = cluster.region
            slot = region.offsets.find("t", 0)

            def row_caught_up():
                row = region.offsets.read(slot)
                return row.log_end_offset == 4 and row.high_watermark == 4

            await wait_for(row_caught_up)
            row = region.offsets.read(slot)
            assert (row.topic, row.partition, row.leader_id, row.leader_epoch, row.log_start_offset) == \
                ("t", 0, 0, 0, 0)
            before = {n: region.brokers.read(n).heartbeat_ms for n in cluster.nodes}
            now = int(time.time() * 1000)
            for n, node in cluster.nodes.items():
                broker_row = region.brokers.read(n)
                assert broker_row.pid == os.getpid() and broker_row.port == node.port
                assert broker_row.state == shm.ALIVE and broker_row.is_fresh(now, 1000)
            await wait_for(lambda: all(region.brokers.read(n).heartbeat_ms > before[n] for n in cluster.nodes))
            # A new leader takes the row over with its epoch.
            cluster.elect("t", 0, leader=1)
            await wait_for(lambda: region.offsets.read(slot).leader_id == 1)
            assert region.offsets.read(slot).leader_epoch == 1
            await cluster.nodes[2].replicas.stop()
            await cluster.nodes[2].shm.stop()
            assert region.brokers.read(2).state == shm.STOPPING
        finally:
            await cluster.stop()
    run(scenario())


def test_a_ring_serving_bytes_the_leader_lacks_is_refused_after_one_truncation(tmp_path, monkeypatch):
    """Whatever puts bytes into a leader's ring that its log does not hold (it was a
    deleted topic's entries under a reused slot), a follower truncates at most once per
    leader epoch for it: it then replicates over the socket instead of looping through
    append, OFFSET_OUT_OF_RANGE, truncate."""
    from pybroker.broker.partition import Partition
    from pybroker.record.batch import build_batch

    truncations = []
    real = Partition.truncate_to

    def counting(self, offset):
        dropped = real(self, offset)
        if dropped:
            truncations.append((self.node_id, offset))
        return dropped
    monkeypatch.setattr(Partition, "truncate_to", counting)

    async def scenario():
        cluster = await _started(tmp_path)
        try:
            # Forge an entry under node 0's partition key, at epoch 0, before node 0 has
            # appended anything (its first append takes the ring over and empties it).
            key = shm.RingKey(cluster.region.offsets.find("t", 0),
                              shm.topic_id_bytes(cluster.topic_ids["t"]), 0)
            forged = build_batch([(None, b"not-in-the-leader-log", [], None)] * 5, partition_leader_epoch=0)
            assert cluster.region.ring(0).append(key, 0, 4, forged)
            await wait_for(lambda: any(n == 1 for n, _ in truncations) and any(n == 2 for n, _ in truncations))
            await wait_for(lambda: all(cluster.partition(n).log_end_offset == 0 for n in (1, 2)))
            await asyncio.sleep(1.0)  # a looping follower would truncate many times meanwhile
            assert sorted(truncations) == [(1, 0), (2, 0)]
            answer = await Client(cluster.nodes[0]).produce([b"real"] * 3, acks=-1)
            assert answer["error_code"] == 0
            await wait_for(lambda: all(cluster.partition(n).log_end_offset == 3 for n in (1, 2)))
            assert log_bytes(cluster, 1) == log_bytes(cluster, 2) == log_bytes(cluster, 0)
        finally:
            await cluster.stop()
    run(scenario())
