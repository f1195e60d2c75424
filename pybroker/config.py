"""Typed settings with Kafka's names and defaults.

Two scopes, as in Kafka: broker settings (``BrokerConfig``) and per-topic settings
(``TopicConfig``, the subset DescribeConfigs reports and CreateTopics may override).
Values arrive as strings from the wire or the command line; ``parse`` turns them into the
declared type or raises ``InvalidConfig`` naming the key.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pybroker.errors import InvalidConfig
from pybroker.record import compression as codecs

# Kafka topic config name -> (attribute, type, default). Defaults are Kafka's.
TOPIC_CONFIGS: dict[str, tuple[str, type, object]] = {
    "cleanup.policy": ("cleanup_policy", str, "delete"),
    "compression.type": ("compression_type", str, "producer"),
    "segment.bytes": ("segment_bytes", int, 1024 * 1024 * 1024),
    "segment.ms": ("segment_ms", int, 7 * 24 * 3600 * 1000),
    "segment.index.bytes": ("segment_index_bytes", int, 10 * 1024 * 1024),
    "index.interval.bytes": ("index_interval_bytes", int, 4096),
    "retention.ms": ("retention_ms", int, 7 * 24 * 3600 * 1000),
    "retention.bytes": ("retention_bytes", int, -1),
    "max.message.bytes": ("max_message_bytes", int, 1024 * 1024 + 12),
    "message.timestamp.type": ("message_timestamp_type", str, "CreateTime"),
    "min.insync.replicas": ("min_insync_replicas", int, 1),
    "unclean.leader.election.enable": ("unclean_leader_election_enable", bool, False),
    "flush.messages": ("flush_messages", int, 2**63 - 1),
    "flush.ms": ("flush_ms", int, 2**63 - 1),
}


def _parse_value(key: str, typ: type, raw: object) -> object:
    if isinstance(raw, typ) and not (typ is int and isinstance(raw, bool)):
        return raw
    text = str(raw).strip()
    try:
        if typ is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if typ is int:
            return int(text)
        return text
    except ValueError:
        raise InvalidConfig(f"Invalid value {raw!r} for configuration {key}") from None


# Kafka's compression.type values -> the codec a batch is stored in (None: as produced).
COMPRESSION_TYPES: dict[str, int | None] = {
    "producer": None, "uncompressed": codecs.NONE, "gzip": codecs.GZIP, "snappy": codecs.SNAPPY,
    "lz4": codecs.LZ4, "zstd": codecs.ZSTD,
}


@dataclass(frozen=True)
class TopicConfig:
    """Per-topic settings. ``overrides`` keeps the keys set explicitly (DescribeConfigs
    reports those as TOPIC_CONFIG, the rest as defaults)."""

    cleanup_policy: str = "delete"
    compression_type: str = "producer"
    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * 24 * 3600 * 1000
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    max_message_bytes: int = 1024 * 1024 + 12
    message_timestamp_type: str = "CreateTime"
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    flush_messages: int = 2**63 - 1
    flush_ms: int = 2**63 - 1
    overrides: tuple = field(default=(), compare=False)

    @classmethod
    def parse(cls, settings: dict[str, object] | None = None, base: "TopicConfig | None" = None) -> "TopicConfig":
        """Build from Kafka-named settings, on top of ``base`` (the broker defaults)."""
        values = {}
        for key, raw in (settings or {}).items():
            if key not in TOPIC_CONFIGS:
                raise InvalidConfig(f"Unknown topic config name: {key}")
            attr, typ, _ = TOPIC_CONFIGS[key]
            values[attr] = _parse_value(key, typ, raw)
        if values.get("segment_bytes", 1 << 20) < 14:
            raise InvalidConfig("segment.bytes must be at least 14")
        if values.get("min_insync_replicas", 1) < 1:
            raise InvalidConfig("min.insync.replicas must be at least 1")
        if values.get("message_timestamp_type", "CreateTime") not in ("CreateTime", "LogAppendTime"):
            raise InvalidConfig("message.timestamp.type must be CreateTime or LogAppendTime")
        if values.get("compression_type", "producer") not in COMPRESSION_TYPES:
            raise InvalidConfig(f"compression.type must be one of {', '.join(COMPRESSION_TYPES)}")
        start = base or cls()
        overrides = tuple(sorted(set(start.overrides) | set((settings or {}).keys())))
        return dataclasses.replace(start, overrides=overrides, **values)

    @property
    def compression_codec(self) -> int | None:
        """The codec id batches are stored in, or None for ``producer`` (as sent)."""
        return COMPRESSION_TYPES[self.compression_type]

    def to_kafka(self) -> dict[str, str]:
        """All settings as Kafka names -> strings (the DescribeConfigs view)."""
        out = {}
        for key, (attr, typ, _) in TOPIC_CONFIGS.items():
            value = getattr(self, attr)
            out[key] = str(value).lower() if typ is bool else str(value)
        return out

    def overridden(self) -> dict[str, str]:
        full = self.to_kafka()
        return {k: full[k] for k in self.overrides if k in full}


@dataclass(frozen=True)
class BrokerConfig:
    """Settings of one broker process."""

    broker_id: int = 0
    host: str = "127.0.0.1"
    port: int = 9092
    data_dir: str = "./pybroker-data"
    # advertised host for Metadata; defaults to host.
    advertised_host: str | None = None
    num_partitions: int = 1
    default_replication_factor: int = 1
    auto_create_topics_enable: bool = True
    delete_topic_enable: bool = True
    # Largest request frame accepted (Kafka's socket.request.max.bytes, 100 MiB).
    socket_request_max_bytes: int = 100 * 1024 * 1024
    # Largest record batch accepted (Kafka's message.max.bytes).
    message_max_bytes: int = 1024 * 1024 + 12
    log_retention_check_interval_ms: int = 300_000
    # Fetch responses never hold more than this many bytes, whatever the client asks.
    fetch_max_bytes: int = 55 * 1024 * 1024
    topic_defaults: TopicConfig = field(default_factory=TopicConfig)
    cluster_id: str = "pybroker-cluster-0000"
    # Replication (Kafka's names with dots): a follower that has not caught up to the
    # leader's log end within replica.lag.time.max.ms leaves the ISR.
    replica_lag_time_max_ms: int = 30_000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_max_bytes: int = 1024 * 1024
    replica_fetch_response_max_bytes: int = 10 * 1024 * 1024
    replica_fetch_backoff_ms: int = 1_000
    # The cluster's shared-memory region (pybroker.shm), when the supervisor made one:
    # heartbeats, the offsets table and tail rings for co-located followers.
    shm_name: str | None = None
    # Followers read a co-located leader's tail ring before fetching over the socket.
    replica_shm_enabled: bool = True

    @property
    def advertised(self) -> str:
        return self.advertised_host or self.host
