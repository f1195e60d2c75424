"""Topic administration: the requests behind kafka-topics and AdminClient.

Every per-topic error the broker reports is raised as its ``pybroker.errors`` class
carrying the broker's own message, so tools print what the broker said.

Not thread-safe.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pybroker import errors
from pybroker.client.cluster import Client, TopicInfo
from pybroker.protocol import api

EARLIEST = -2
LATEST = -1
RESOURCE_TOPIC = 2  # DescribeConfigs resource_type of a topic
# DescribeConfigs config_source values (Kafka's ConfigSource enum).
CONFIG_SOURCES = {
    -1: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "CLIENT_METRICS_CONFIG",
    8: "GROUP_CONFIG",
}
DEFAULT_TIMEOUT_MS = 30_000


@dataclass
class NewTopic:
    """A topic to create. -1 partitions / replication factor means the broker's default
    (CreateTopics v4+)."""

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: str
    is_default: bool
    read_only: bool
    is_sensitive: bool


def _raise_for(code: int, message: str | None, what: str) -> None:
    if code:
        raise errors.for_code(code)(message or f"{what}: {errors.for_code(code).message}")


class Admin:
    """Create, delete, grow and describe topics; look up offsets."""

    def __init__(self, bootstrap_servers, client_id: str = "pybroker-admin", timeout: float = 30.0):
        self.client = Client(bootstrap_servers, client_id=client_id, timeout=timeout)
        self.timeout_ms = int(timeout * 1000)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Admin":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- topics ------------------------------------------------------------------

    def create_topics(self, topics: list[NewTopic], validate_only: bool = False) -> dict[str, int]:
        """Create the topics; returns {name: partition count the broker reports (-1 if
        the version does not say)}. Raises the first per-topic error."""
        conn = self.client.controller()
        version = conn.version_for(api.CREATE_TOPICS)
        body_topics = []
        for t in topics:
            if version < 4 and (t.num_partitions < 0 or t.replication_factor < 0):
                raise errors.InvalidRequest(
                    "this broker needs an explicit partition count and replication factor"
                )
            body_topics.append({
                "name": t.name,
                "num_partitions": t.num_partitions,
                "replication_factor": t.replication_factor,
                "assignments": [],
                "configs": [{"name": k, "value": v} for k, v in t.configs.items()],
            })
        response = conn.request(
            api.CREATE_TOPICS,
            {"topics": body_topics, "timeout_ms": self.timeout_ms, "validate_only": validate_only},
            version,
        )
        out = {}
        for result in response["topics"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {result['name']!r}")
            out[result["name"]] = result.get("num_partitions", -1)
        return out

    def delete_topics(self, names: list[str]) -> None:
        conn = self.client.controller()
        version = conn.version_for(api.DELETE_TOPICS)
        body = {
            "topic_names": list(names),
            "topics": [{"name": n} for n in names],
            "timeout_ms": self.timeout_ms,
        }
        response = conn.request(api.DELETE_TOPICS, body, version)
        for result in response["responses"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {result['name']!r}")

    def create_partitions(self, new_totals: dict[str, int], validate_only: bool = False) -> None:
        """Grow each topic to the given total partition count (Kafka never shrinks)."""
        body = {
            "topics": [{"name": n, "count": c, "assignments": None} for n, c in new_totals.items()],
            "timeout_ms": self.timeout_ms,
            "validate_only": validate_only,
        }
        response = self.client.controller().request(api.CREATE_PARTITIONS, body)
        for result in response["results"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {result['name']!r}")

    def list_topics(self, include_internal: bool = True) -> list[str]:
        meta = self.client.refresh()
        return sorted(
            name for name, info in meta.topics.items()
            if not info.error_code and (include_internal or not info.is_internal)
        )

    def describe_topics(self, names: list[str] | None = None) -> list[TopicInfo]:
        """Topics with their partitions (leader, replicas, isr), sorted by name; all
        topics when ``names`` is None. An unknown topic raises UnknownTopicOrPartition."""
        meta = self.client.refresh(names)
        wanted = sorted(meta.topics) if names is None else names
        out = []
        for name in wanted:
            info = meta.topics.get(name)
            if info is None:
                raise errors.UnknownTopicOrPartition(f"Topic '{name}' does not exist")
            _raise_for(info.error_code, None, f"topic {name!r}")
            out.append(info)
        return out

    def describe_configs(self, topic: str) -> dict[str, ConfigEntry]:
        conn = self.client.any_connection()
        version = conn.version_for(api.DESCRIBE_CONFIGS)
        body = {
            "resources": [{"resource_type": RESOURCE_TOPIC, "resource_name": topic, "configuration_keys": None}],
            "include_synonyms": False,
            "include_documentation": False,
        }
        response = conn.request(api.DESCRIBE_CONFIGS, body, version)
        out = {}
        for result in response["results"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {topic!r}")
            for c in result["configs"]:
                if version == 0:
                    is_default = bool(c.get("is_default"))
                    source = "DEFAULT_CONFIG" if is_default else "DYNAMIC_TOPIC_CONFIG"
                else:
                    source = CONFIG_SOURCES.get(c.get("config_source", -1), "UNKNOWN")
                    # As Kafka's ConfigEntry.isDefault: only the built-in default counts.
                    is_default = source == "DEFAULT_CONFIG"
                out[c["name"]] = ConfigEntry(
                    c["name"], c["value"], source, is_default,
                    bool(c.get("read_only")), bool(c.get("is_sensitive")),
                )
        return out

    # -- offsets -----------------------------------------------------------------

    def list_offsets(self, specs: dict[tuple[str, int], int], isolation_level: int = 0) -> dict[tuple[str, int], tuple[int, int]]:
        """Offsets by spec: -2 earliest, -1 latest, or a timestamp (first offset whose
        timestamp is >= it; -1 when none). Returns {(topic, p): (offset, timestamp)}."""
        return list_offsets(self.client, specs, isolation_level)


def list_offsets(client: Client, specs: dict[tuple[str, int], int], isolation_level: int = 0) -> dict[tuple[str, int], tuple[int, int]]:
    """ListOffsets sent to each partition's leader (shared by Admin and Consumer)."""
    by_leader: dict[int, dict[str, list[dict]]] = {}
    for (topic, partition), spec in specs.items():
        leader = client.wait_for_leader(topic, partition)
        by_leader.setdefault(leader, {}).setdefault(topic, []).append({
            "partition_index": partition,
            "current_leader_epoch": -1,
            "timestamp": spec,
            "max_num_offsets": 1,
        })
    out = {}
    for leader, topics in by_leader.items():
        body = {
            "replica_id": -1,
            "isolation_level": isolation_level,
            "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
            "timeout_ms": DEFAULT_TIMEOUT_MS,
        }
        response = client.connection(leader).request(api.LIST_OFFSETS, body)
        for t in response["topics"]:
            for p in t["partitions"]:
                _raise_for(p["error_code"], None, f"{t['name']}-{p['partition_index']}")
                offset = p.get("offset", -1)
                if offset == -1 and p.get("old_style_offsets"):
                    offset = p["old_style_offsets"][0]
                out[(t["name"], p["partition_index"])] = (offset, p.get("timestamp", -1))
    return out
