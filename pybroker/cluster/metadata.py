"""The cluster image the supervisor (controller) owns and pushes to every broker.

Plain data, serialisable to JSON-able dicts for the control plane. The controller is the
only writer; brokers hold a copy and apply each update as a whole.

- ``BrokerInfo``: a live broker's id, listener, pid and rack (``broker.rack``).
- ``PartitionState``: Kafka's LeaderAndIsr for one partition. ``leader_epoch`` changes
  with every leader change (it fences stale leaders and marks batches);
  ``partition_epoch`` changes with every change at all (leader or ISR), so a leader's
  ISR update based on an old state is refused (Kafka's AlterPartition rule).
"""
from __future__ import annotations

from dataclasses import dataclass, field

NO_LEADER = -1


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    pid: int = 0
    # Every client listener's (name, port); empty: one PLAINTEXT listener on ``port``.
    listeners: tuple[tuple[str, int], ...] = ()
    # The private inter-broker Unix socket, when the broker has one (security.listener).
    internal_socket: str = ""
    # Kafka's broker.rack: where the broker stands (rack-aware placement, KIP-392); None: unset.
    rack: str | None = None

    def to_json(self) -> dict:
        doc = {"node_id": self.node_id, "host": self.host, "port": self.port, "pid": self.pid}
        if self.listeners:
            doc["listeners"] = [list(item) for item in self.listeners]
        if self.internal_socket:
            doc["internal_socket"] = self.internal_socket
        if self.rack is not None:
            doc["rack"] = self.rack
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "BrokerInfo":
        return cls(int(doc["node_id"]), doc["host"], int(doc["port"]), int(doc.get("pid", 0)),
                   tuple((str(n), int(p)) for n, p in doc.get("listeners", ())), doc.get("internal_socket", ""),
                   doc.get("rack"))

    def port_for(self, listener: str | None) -> int:
        """The port of ``listener`` (the one a client connected to): Kafka advertises
        the addresses of that listener. None, or a listener this broker lacks: ``port``."""
        if listener is not None:
            for name, port in self.listeners:
                if name == listener:
                    return port
        return self.port

    def address_for(self, listener: str | None) -> tuple[str, int]:
        """(host, port) a client of ``listener`` is told; on the inter-broker socket,
        (its path, -1): pybroker's client takes a host starting with "/" for a Unix socket."""
        if listener == "INTERNAL" and self.internal_socket:
            return self.internal_socket, -1
        return self.host, self.port_for(listener)


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    def to_json(self) -> dict:
        # Not dataclasses.asdict: it deep-copies field by field, and a push or a metadata
        # snapshot converts every partition of the cluster.
        doc = {"topic": self.topic, "partition": self.partition, "leader": self.leader,
               "leader_epoch": self.leader_epoch, "partition_epoch": self.partition_epoch,
               "replicas": list(self.replicas), "isr": list(self.isr)}
        if self.adding_replicas or self.removing_replicas:
            doc["adding_replicas"] = list(self.adding_replicas)
            doc["removing_replicas"] = list(self.removing_replicas)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "PartitionState":
        return cls(
            doc["topic"], int(doc["partition"]), int(doc["leader"]), int(doc["leader_epoch"]),
            int(doc["partition_epoch"]), tuple(doc["replicas"]), tuple(doc["isr"]),
            tuple(doc.get("adding_replicas", ())), tuple(doc.get("removing_replicas", ())),
        )

    @property
    def reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    @property
    def under_replicated(self) -> bool:
        """Kafka's rule: fewer in sync than the replication factor, which while replicas
        are being added is that of the set without them."""
        return len(self.isr) < len(self.replicas) - len(self.adding_replicas)

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass
class ClusterImage:
    """What a broker knows of the cluster: live brokers, topics (with configs), the
    state of every partition, and the dynamic broker and group configs."""

    cluster_id: str = "pybroker-cluster"
    brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    topics: dict = field(default_factory=dict)          # name -> TopicMetadata
    partitions: dict[tuple[str, int], PartitionState] = field(default_factory=dict)
    # Dynamic BROKER ("" = cluster default) and GROUP configs: (resource type, name) -> {config: value}.
    resource_configs: dict[tuple[int, str], dict[str, str]] = field(default_factory=dict)
    # Client quotas: entity -> {key: value} (pybroker.cluster.client_quotas).
    client_quotas: dict[tuple, dict[str, float]] = field(default_factory=dict)
