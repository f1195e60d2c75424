"""The in-process replication harness with a real shared-memory region: the fake
controller creates the region and allocates an offsets-table slot for each partition
before publishing it (as the supervisor does), and every node gets a ShmLink."""
from __future__ import annotations

import glob
import os
import sys
import uuid

import posix_ipc

from pybroker import shm
from pybroker.broker.shm_link import ShmLink

_REPLICATION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "replication")
if _REPLICATION not in sys.path:
    sys.path.insert(0, _REPLICATION)

from replication_harness import Client, Cluster, run, wait_for  # noqa: E402,F401  (re-exported)

FAST = dict(replica_lag_time_max_ms=400, replica_fetch_wait_max_ms=50, replica_fetch_backoff_ms=20)


class ShmCluster(Cluster):
    """``socket_only``: node ids whose followers never read the rings (they still
    publish rows, heartbeats and, as leaders, their ring)."""

    def __init__(self, tmp_path, count: int = 3, ring_bytes: int = 1 << 20, socket_only=(), **settings):
        self.region_name = f"/pybroker-test-{uuid.uuid4().hex[:16]}"
        super().__init__(tmp_path, count, shm_name=self.region_name, **{**FAST, **settings})
        self.region = shm.SharedRegion.create(self.region_name, brokers=8, slots=64,
                                              ring_bytes=ring_bytes, ring_count=count)
        self.socket_only = set(socket_only)
        for node in self.nodes.values():
            node.shm = None

    async def start(self):
        await super().start()
        for node_id, node in self.nodes.items():
            link = ShmLink(node, replication=node_id not in self.socket_only)
            link.start()
            assert link.attached
            node.shm = link

    async def stop(self):
        for node in self.nodes.values():
            if not node.stopping:
                await node.replicas.stop()
                if node.shm is not None:
                    await node.shm.stop()
        await super().stop()
        self.region.close()
        try:
            posix_ipc.unlink_shared_memory(self.region_name)
        except posix_ipc.ExistentialError:
            pass

    def create(self, topic: str, replicas=(0, 1, 2), config=None, partitions: int = 1):
        topic_id = self.topic_ids.setdefault(topic, str(uuid.uuid4()))
        for index in range(partitions):
            self.region.offsets.allocate(topic, index, shm.topic_id_bytes(topic_id))
        super().create(topic, replicas, config, partitions)


def log_bytes(cluster: Cluster, node_id: int, topic: str = "t", index: int = 0) -> bytes:
    """Every segment of one replica, in offset order: what must match across replicas."""
    directory = os.path.join(cluster.nodes[node_id].config.data_dir, f"{topic}-{index}")
    out = b""
    for path in sorted(glob.glob(os.path.join(directory, "*.log"))):
        with open(path, "rb") as f:
            out += f.read()
    return out
