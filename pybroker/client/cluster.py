"""What a client knows about a cluster: brokers, topics, partition leaders.

``ClusterMetadata`` is the pure view built from a Metadata response; ``Client`` owns the
connections (one per broker id, plus the bootstrap ones) and refreshes the view.

Not thread-safe: one thread owns a Client and its connections.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from pybroker import errors
from pybroker.client.connection import BrokerConnection
from pybroker.protocol import api

# Partition errors (produce or fetch) after which a metadata refresh finds the new leader.
REFRESH_CODES = frozenset({
    errors.NotLeaderOrFollower.code,
    errors.LeaderNotAvailable.code,
    errors.UnknownTopicOrPartition.code,
    errors.FencedLeaderEpoch.code,
    errors.UnknownLeaderEpoch.code,
})


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class PartitionInfo:
    topic: str
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()
    error_code: int = 0


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: object
    is_internal: bool
    partitions: dict[int, PartitionInfo]
    error_code: int = 0


@dataclass
class ClusterMetadata:
    """A snapshot of the cluster as one Metadata response described it."""

    brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    cluster_id: str | None = None
    controller_id: int = -1

    @classmethod
    def from_response(cls, response: dict) -> "ClusterMetadata":
        brokers = {
            b["node_id"]: BrokerInfo(b["node_id"], b["host"], b["port"], b.get("rack"))
            for b in response["brokers"]
        }
        topics = {}
        for t in response["topics"]:
            parts = {
                p["partition_index"]: PartitionInfo(
                    t["name"],
                    p["partition_index"],
                    p["leader_id"],
                    p.get("leader_epoch", -1),
                    tuple(p["replica_nodes"]),
                    tuple(p["isr_nodes"]),
                    tuple(p.get("offline_replicas") or ()),
                    p["error_code"],
                )
                for p in t["partitions"]
            }
            topics[t["name"]] = TopicInfo(
                t["name"], t.get("topic_id"), bool(t.get("is_internal")), parts, t["error_code"]
            )
        return cls(brokers, topics, response.get("cluster_id"), response.get("controller_id", -1))

    def partitions_for(self, topic: str) -> list[int]:
        info = self.topics.get(topic)
        if info is None or info.error_code:
            return []
        return sorted(info.partitions)

    def leader_for(self, topic: str, partition: int) -> int:
        """Broker id leading the partition, -1 when it has none right now."""
        info = self.topics.get(topic)
        if info is None or partition not in info.partitions:
            return -1
        return info.partitions[partition].leader


def parse_bootstrap(servers: str | list[str] | tuple[str, ...]) -> list[tuple[str, int]]:
    """``"h1:9092,h2:9093"`` or a list of ``host:port`` -> [(host, port)]."""
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item.startswith("/"):
            out.append((item, -1))  # a broker's private Unix socket (pybroker.client.security)
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host:
            raise ValueError(f"bootstrap server {item!r} is not HOST:PORT")
        try:
            port_no = int(port)
        except ValueError:
            raise ValueError(f"bootstrap server {item!r} has a bad port") from None
        if not 0 < port_no < 65536:
            raise ValueError(f"bootstrap server {item!r} has a bad port")
        out.append((host.strip("[]"), port_no))
    if not out:
        raise ValueError("no bootstrap servers given")
    return out


class Client:
    """Connections to a Kafka cluster, found from a bootstrap list.

    Holds the latest ``ClusterMetadata``; ``connection(node_id)`` hands out one
    connection per broker, opened on first use.
    """

    def __init__(self, bootstrap_servers, client_id: str = "pybroker", timeout: float = 30.0, security=None):
        self.bootstrap = parse_bootstrap(bootstrap_servers)
        # pybroker.client.security.ClientSecurity for every connection (None: PLAINTEXT).
        self.security = security
        self.client_id = client_id
        self.timeout = timeout
        self.metadata = ClusterMetadata()
        self._connections: dict[int, BrokerConnection] = {}
        self._bootstrap_conn: BrokerConnection | None = None

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
        if self._bootstrap_conn is not None:
            self._bootstrap_conn.close()
            self._bootstrap_conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- connections -------------------------------------------------------------

    def any_connection(self) -> BrokerConnection:
        """A live connection to some broker: a known one, else a bootstrap server."""
        for conn in self._connections.values():
            if conn.connected:
                return conn
        if self._bootstrap_conn is not None and self._bootstrap_conn.connected:
            return self._bootstrap_conn
        candidates = [(b.host, b.port) for b in self.metadata.brokers.values()] or []
        candidates += self.bootstrap
        last: Exception | None = None
        for host, port in candidates:
            conn = self.connect_to(host, port)
            try:
                conn.connect()
            except (errors.NetworkException, errors.RequestTimedOut) as exc:
                last = exc
                continue
            self._bootstrap_conn = conn
            return conn
        raise errors.NetworkException(
            f"no broker reachable among {', '.join(f'{h}:{p}' for h, p in candidates)}: {last}"
        )

    def connect_to(self, host: str, port: int, timeout: float | None = None) -> BrokerConnection:
        """A (not yet connected) connection to ``host:port`` with this client's security."""
        return BrokerConnection(host, port, self.client_id, self.timeout if timeout is None else timeout,
                                security=self.security)

    def connection(self, node_id: int) -> BrokerConnection:
        conn = self._connections.get(node_id)
        if conn is None:
            broker = self.metadata.brokers.get(node_id)
            if broker is None:
                self.refresh()
                broker = self.metadata.brokers.get(node_id)
                if broker is None:
                    raise errors.BrokerNotAvailable(f"broker {node_id} is not in the cluster metadata")
            conn = self.connect_to(broker.host, broker.port)
            self._connections[node_id] = conn
        return conn

    def controller(self) -> BrokerConnection:
        if self.metadata.controller_id < 0:
            self.refresh()
        if self.metadata.controller_id in self.metadata.brokers:
            return self.connection(self.metadata.controller_id)
        return self.any_connection()

    def request_any(self, api_key: int, body: dict, version: int | None = None) -> dict:
        """Send to any broker, trying another one if the first is unreachable."""
        try:
            return self.any_connection().request(api_key, body, version)
        except (errors.NetworkException, errors.RequestTimedOut):
            return self.any_connection().request(api_key, body, version)

    # -- metadata ----------------------------------------------------------------

    def refresh(self, topics: list[str] | None = None, allow_auto_create: bool = False) -> ClusterMetadata:
        """Fetch Metadata (all topics when ``topics`` is None) and keep it."""
        body = {
            "topics": None if topics is None else [{"name": t} for t in topics],
            "allow_auto_topic_creation": allow_auto_create,
            "include_cluster_authorized_operations": False,
            "include_topic_authorized_operations": False,
        }
        response = self.request_any(api.METADATA, body)
        fresh = ClusterMetadata.from_response(response)
        if topics is not None:
            # A partial refresh keeps what it did not ask about.
            merged = dict(self.metadata.topics)
            merged.update(fresh.topics)
            fresh.topics = merged
        for node_id, conn in list(self._connections.items()):
            broker = fresh.brokers.get(node_id)
            if broker is None or (broker.host, broker.port) != (conn.host, conn.port):
                conn.close()
                del self._connections[node_id]
        self.metadata = fresh
        return fresh

    def partitions_for(self, topic: str, refresh: bool = False) -> list[int]:
        if refresh or topic not in self.metadata.topics:
            self.refresh([topic])
        info = self.metadata.topics.get(topic)
        if info is not None and info.error_code:
            raise errors.for_code(info.error_code)(f"topic {topic!r}")
        return self.metadata.partitions_for(topic)

    def leader_for(self, topic: str, partition: int, refresh: bool = False) -> int:
        if refresh or topic not in self.metadata.topics:
            self.refresh([topic])
        return self.metadata.leader_for(topic, partition)

    def wait_for_leader(self, topic: str, partition: int, timeout: float = 10.0) -> int:
        """The partition's leader id, refreshing until one is elected or time runs out."""
        deadline = time.monotonic() + timeout
        leader = self.leader_for(topic, partition)
        backoff = 0.05
        while leader < 0:
            if time.monotonic() >= deadline:
                raise errors.LeaderNotAvailable(f"no leader for {topic}-{partition}")
            time.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, 1.0)
            leader = self.leader_for(topic, partition, refresh=True)
        return leader
