"""In-process replication harness: several brokers' data planes in one event loop, each
with its own data dir and listener on an ephemeral port, and a fake controller that owns
the partition states (leader, epochs, ISR) and pushes every change to every node, as the
supervisor does. Nodes run the real request handlers, Partition, ReplicaManager and
ReplicaFetcher; only the LogManager is reduced to a dict of partitions."""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import struct
import uuid

from pybroker import errors
from pybroker.broker.apis import delete_records, fetch, list_offsets, offset_for_leader_epoch, produce
from pybroker.broker.connection import Connection
from pybroker.broker.fetch_session import FetchSessionCache
from pybroker.broker.partition import Partition
from pybroker.broker.quotas import ClientQuotas
from pybroker.broker.replica_manager import ReplicaManager
from pybroker.broker.replica_selector import selector_for
from pybroker.broker.stats import BrokerStats
from pybroker.cluster.metadata import BrokerInfo, ClusterImage, PartitionState
from pybroker.cluster.topics import TopicMetadata
from pybroker.config import BrokerConfig, TopicConfig
from pybroker.log.log import Log
from pybroker.protocol import api
from pybroker.record.batch import build_batch, iter_records

HANDLERS = {
    api.PRODUCE: produce.handle,
    api.FETCH: fetch.handle,
    api.LIST_OFFSETS: list_offsets.handle,
    api.OFFSET_FOR_LEADER_EPOCH: offset_for_leader_epoch.handle,
    api.DELETE_RECORDS: delete_records.handle,
}


class Logs:
    def __init__(self):
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.topics: dict[str, TopicMetadata] = {}

    def get_partition(self, topic, index):
        partition = self.partitions.get((topic, index))
        if partition is None:
            raise errors.UnknownTopicOrPartition(f"{topic}-{index}")
        return partition


class Node:
    """The parts of a Broker the replication code uses."""

    def __init__(self, node_id: int, data_dir: str, cluster: "Cluster", **settings):
        self.node_id = node_id
        self.config = BrokerConfig(broker_id=node_id, port=0, data_dir=data_dir, **settings)
        self.cluster = cluster
        self.image = cluster.image
        self.logs = Logs()
        self.replicas = ReplicaManager(self)
        self.stats = BrokerStats()
        self.fetch_sessions = FetchSessionCache(self.config.max_incremental_fetch_session_cache_slots,
                                                self.config.min_incremental_fetch_session_eviction_ms)
        self.authorizer = None           # no --authorizer: every request is allowed
        self.replica_selector = selector_for(self.config.replica_selector_class)
        self.quotas = ClientQuotas(self.config.quota_window_num, self.config.quota_window_size_seconds)  # none set
        self.serving = asyncio.Event()   # the harness's image is whole from the start
        self.serving.set()
        self.stopping = False
        # A paused node (a SIGSTOPped broker) neither fetches nor hears from the controller.
        self.paused = False
        self.connections: set = set()
        self._stop_waiters: set = set()
        self._server = None
        self._handlers = {k: (h, inspect.iscoroutinefunction(h)) for k, h in HANDLERS.items()}
        self.port = 0

    async def start(self):
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.image.brokers[self.node_id] = BrokerInfo(self.node_id, "127.0.0.1", self.port)
        self.replicas.start()

    async def stop(self):
        """A clean stop: fetchers, listener, logs (with their checkpoints)."""
        self.stopping = True
        for fut in list(self._stop_waiters):
            if not fut.done():
                fut.set_result(None)
        await self.replicas.stop()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        for partition in self.logs.partitions.values():
            partition.close()
        self.image.brokers.pop(self.node_id, None)

    def register_stop_waiter(self, fut):
        self._stop_waiters.add(fut)

    def unregister_stop_waiter(self, fut):
        self._stop_waiters.discard(fut)

    def ensure_topic(self, name):
        return None if name in self.logs.topics else errors.UnknownTopicOrPartition(name)

    async def handle_frame(self, conn, frame):
        from pybroker.broker.broker import Broker

        return await Broker.handle_frame(self, conn, frame)

    async def alter_partition(self, topic, partition, leader_epoch, partition_epoch, new_isr):
        return self.cluster.alter_partition(self.node_id, topic, partition, leader_epoch, partition_epoch, new_isr)

    def host(self, topic: str, index: int, config: TopicConfig, topic_id: str | None = None):
        directory = os.path.join(self.config.data_dir, f"{topic}-{index}")
        meta = TopicMetadata(topic, index + 1, config=config)
        if topic_id is not None:
            meta.topic_id = topic_id
        self.logs.topics.setdefault(topic, meta)
        partition = Partition(topic, index, Log.open(directory, config), node_id=self.node_id)
        self.logs.partitions[(topic, index)] = partition
        return partition


class Cluster:
    """The fake controller: partition states, pushed to every live node on change."""

    def __init__(self, tmp_path, count: int, **settings):
        self.image = ClusterImage()
        self.tmp_path = tmp_path
        self.settings = settings
        self.nodes = {i: Node(i, str(tmp_path / f"b{i}"), self, **settings) for i in range(count)}
        self.states: dict[tuple[str, int], PartitionState] = {}
        self.alter_log: list = []
        self.topic_ids: dict[str, str] = {}  # every node's metadata names the same id

    async def start(self):
        for node in self.nodes.values():
            await node.start()

    async def stop(self):
        for node in list(self.nodes.values()):
            if not node.stopping:
                await node.stop()

    def create(self, topic: str, replicas=(0, 1, 2), config: TopicConfig | None = None, partitions: int = 1):
        config = config or TopicConfig()
        topic_id = self.topic_ids.setdefault(topic, str(uuid.uuid4()))
        for index in range(partitions):
            for r in replicas:
                self.nodes[r].host(topic, index, config, topic_id)
            self.push(PartitionState(topic, index, replicas[0], 0, 0, tuple(replicas), tuple(replicas)))

    def push(self, state: PartitionState):
        self.states[state.key] = state
        for node in self.nodes.values():
            partition = node.logs.partitions.get(state.key)
            if partition is not None and not node.stopping and not node.paused:
                if partition.apply_state(state):
                    node.replicas.on_states_applied([partition])

    def alter_partition(self, node_id, topic, index, leader_epoch, partition_epoch, new_isr):
        state = self.states[(topic, index)]
        if node_id != state.leader:
            raise errors.NotLeaderOrFollower(f"{node_id} does not lead {topic}-{index}")
        if leader_epoch != state.leader_epoch:
            raise errors.FencedLeaderEpoch("stale leader epoch")
        if partition_epoch != state.partition_epoch:
            raise errors.InvalidUpdateVersion("stale partition epoch")
        new = dataclasses.replace(state, isr=tuple(new_isr), partition_epoch=state.partition_epoch + 1)
        self.alter_log.append(tuple(new_isr))
        self.push(new)
        return new

    def elect(self, topic, index, leader, isr=None):
        state = self.states[(topic, index)]
        new = dataclasses.replace(state, leader=leader, leader_epoch=state.leader_epoch + 1,
                                  partition_epoch=state.partition_epoch + 1,
                                  isr=tuple(isr if isr is not None else state.isr))
        self.push(new)
        return new

    async def pause(self, node_id):
        node = self.nodes[node_id]
        node.paused = True
        await node.replicas.stop()

    def resume(self, node_id):
        node = self.nodes[node_id]
        node.paused = False
        node.replicas.start()
        changed = [p for key, p in node.logs.partitions.items() if p.apply_state(self.states[key])]
        node.replicas.on_states_applied(changed)

    def partition(self, node_id, topic="t", index=0) -> Partition:
        return self.nodes[node_id].logs.partitions[(topic, index)]


SIZE = struct.Struct(">i")


class Client:
    """A minimal async Kafka client for one node."""

    def __init__(self, node: Node):
        self.node = node
        self.correlation_id = 0

    async def request(self, api_key, version, body, timeout=10.0):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.node.port)
        try:
            self.correlation_id += 1
            writer.write(api.encode_request(api_key, version, self.correlation_id, "test", body))
            await writer.drain()
            size = SIZE.unpack(await asyncio.wait_for(reader.readexactly(4), timeout))[0]
            payload = await asyncio.wait_for(reader.readexactly(size), timeout)
            return api.decode_response(api_key, version, payload)[1]
        finally:
            writer.close()

    async def produce(self, values, acks=-1, topic="t", index=0, timeout_ms=5000, **batch_args):
        batch = build_batch([(None, v, [], None) for v in values], **batch_args)
        body = {"transactional_id": None, "acks": acks, "timeout_ms": timeout_ms, "topic_data": [
            {"name": topic, "partition_data": [{"index": index, "records": batch}]}]}
        response = await self.request(api.PRODUCE, 7, body)
        return response["responses"][0]["partition_responses"][0]

    async def fetch(self, offset=0, topic="t", index=0, replica_id=-1, current_leader_epoch=-1, max_wait_ms=0,
                    version=11, rack_id=""):
        body = {"replica_id": replica_id, "max_wait_ms": max_wait_ms, "min_bytes": 1, "max_bytes": 1 << 20,
                "isolation_level": 0, "session_id": 0, "session_epoch": -1, "topics": [
                    {"topic": topic, "partitions": [{"partition": index, "current_leader_epoch": current_leader_epoch,
                                                     "fetch_offset": offset, "log_start_offset": -1,
                                                     "partition_max_bytes": 1 << 20}]}],
                "forgotten_topics_data": [], "rack_id": rack_id}
        response = await self.request(api.FETCH, version, body)
        return response["responses"][0]["partitions"][0]

    async def delete_records(self, offsets: dict, timeout_ms=5000, version=2) -> dict:
        """DeleteRecords of {(topic, partition): offset}; {(topic, partition): (error code,
        low watermark)}."""
        topics: dict = {}
        for (topic, index), offset in offsets.items():
            topics.setdefault(topic, []).append({"partition_index": index, "offset": offset})
        body = {"topics": [{"name": t, "partitions": ps} for t, ps in topics.items()], "timeout_ms": timeout_ms}
        response = await self.request(api.DELETE_RECORDS, version, body, timeout=timeout_ms / 1000 + 10)
        return {(t["name"], p["partition_index"]): (p["error_code"], p["low_watermark"])
                for t in response["topics"] for p in t["partitions"]}

    async def values(self, offset=0, topic="t", index=0):
        answer = await self.fetch(offset, topic, index)
        assert answer["error_code"] == 0, errors.name_of(answer["error_code"])
        return [r.value for r in iter_records(bytes(answer["records"] or b""))]


async def wait_for(predicate, timeout=5.0, interval=0.01):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))
