"""The cluster image the supervisor (controller) owns and pushes to every broker.

Plain data, serialisable to JSON-able dicts for the control plane. The controller is the
only writer; brokers hold a copy and apply each update as a whole.

- ``BrokerInfo``: a live broker's id, listener and pid.
- ``PartitionState``: Kafka's LeaderAndIsr for one partition. ``leader_epoch`` changes
  with every leader change (it fences stale leaders and marks batches);
  ``partition_epoch`` changes with every change at all (leader or ISR), so a leader's
  ISR update based on an old state is refused (Kafka's AlterPartition rule).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

NO_LEADER = -1


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    pid: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> "BrokerInfo":
        return cls(int(doc["node_id"]), doc["host"], int(doc["port"]), int(doc.get("pid", 0)))


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    def to_json(self) -> dict:
        # Not dataclasses.asdict: it deep-copies field by field, and a push or a metadata
        # snapshot converts every partition of the cluster.
        return {"topic": self.topic, "partition": self.partition, "leader": self.leader,
                "leader_epoch": self.leader_epoch, "partition_epoch": self.partition_epoch,
                "replicas": list(self.replicas), "isr": list(self.isr)}

    @classmethod
    def from_json(cls, doc: dict) -> "PartitionState":
        return cls(
            doc["topic"], int(doc["partition"]), int(doc["leader"]), int(doc["leader_epoch"]),
            int(doc["partition_epoch"]), tuple(doc["replicas"]), tuple(doc["isr"]),
        )

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
