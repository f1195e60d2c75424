"""Typed settings with Kafka's names and defaults.

Two scopes, as in Kafka: broker settings (``BrokerConfig``) and per-topic settings
(``TopicConfig``, the subset DescribeConfigs reports and CreateTopics may override).
Values arrive as strings from the wire or the command line; ``parse`` turns them into the
declared type or raises ``InvalidConfig`` naming the key.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pybroker.errors import InvalidConfig, InvalidRequest
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
    "delete.retention.ms": ("delete_retention_ms", int, 24 * 3600 * 1000),
    "min.cleanable.dirty.ratio": ("min_cleanable_dirty_ratio", float, 0.5),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", int, 0),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", int, 2**63 - 1),
}

# Topic configs Kafka declares as lists (comma separated): the only ones
# IncrementalAlterConfigs may APPEND to or SUBTRACT from.
LIST_CONFIGS = frozenset({"cleanup.policy"})
# Kafka's compression.type values -> the codec a batch is stored in (None: as produced).
COMPRESSION_TYPES: dict[str, int | None] = {
    "producer": None, "uncompressed": codecs.NONE, "gzip": codecs.GZIP, "snappy": codecs.SNAPPY,
    "lz4": codecs.LZ4, "zstd": codecs.ZSTD,
}
# Configs whose every item must be one of these (Kafka's ValidList / ValidString).
_CHOICES: dict[str, frozenset[str]] = {
    "cleanup.policy": frozenset({"compact", "delete"}),
    "compression.type": frozenset(COMPRESSION_TYPES),
    "message.timestamp.type": frozenset({"CreateTime", "LogAppendTime"}),
}
# Lower bounds of numeric configs (Kafka's ConfigDef.Range.atLeast).
_MINIMUMS: dict[str, int] = {
    "segment.bytes": 14,
    "segment.ms": 1,
    "segment.index.bytes": 4,
    "index.interval.bytes": 0,
    "retention.ms": -1,
    "max.message.bytes": 0,
    "min.insync.replicas": 1,
    "flush.messages": 1,
    "flush.ms": 0,
    "delete.retention.ms": 0,
    "min.cleanable.dirty.ratio": 0,
    "min.compaction.lag.ms": 0,
    "max.compaction.lag.ms": 1,
}
# Upper bounds of numeric configs (Kafka's ConfigDef.Range.between).
_MAXIMUMS: dict[str, float] = {
    "min.cleanable.dirty.ratio": 1,
}

# IncrementalAlterConfigs operations (Kafka's AlterConfigOp.OpType).
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def split_list(value: str | None) -> list[str]:
    """A list-type config's items: ``"compact, delete"`` -> ["compact", "delete"]."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _check_value(key: str, value: object) -> None:
    """Kafka's validators: a lower bound for numbers, a set of choices for names."""
    lowest = _MINIMUMS.get(key)
    if lowest is not None and value < lowest:
        raise InvalidConfig(f"Invalid value {value} for configuration {key}: {key} must be at least {lowest}")
    highest = _MAXIMUMS.get(key)
    if highest is not None and value > highest:
        raise InvalidConfig(f"Invalid value {value} for configuration {key}: {key} must be no more than {highest}")
    choices = _CHOICES.get(key)
    if choices is None:
        return
    items = split_list(str(value)) if key in LIST_CONFIGS else [str(value).strip()]
    bad = [item for item in items if item not in choices]
    if bad:
        raise InvalidConfig(f"Invalid value {value} for configuration {key}: "
                            f"String must be one of: {', '.join(sorted(choices))}")


def apply_config_ops(overrides: dict[str, str], ops: list[tuple[str, int, str | None]],
                     defaults: "TopicConfig") -> dict[str, str]:
    """A topic's new overrides after IncrementalAlterConfigs ``ops`` ((name, op, value)),
    as Kafka computes them: SET replaces, DELETE reverts to the default, APPEND/SUBTRACT
    add or remove items of a list config, starting from its current value (the
    override, else the default). Raises InvalidConfig / InvalidRequest; the values
    themselves are checked when the result is parsed."""
    out = dict(overrides)
    for name, op, value in ops:
        if name not in TOPIC_CONFIGS:
            raise InvalidConfig(f"Unknown topic config name: {name}")
        if op == OP_DELETE:
            out.pop(name, None)
            continue
        if op not in (OP_SET, OP_APPEND, OP_SUBTRACT):
            raise InvalidRequest(f"Unknown config operation {op} for config {name}")
        if value is None:
            raise InvalidConfig(f"Null value not supported for topic config {name}")
        if op == OP_SET:
            out[name] = value
            continue
        if name not in LIST_CONFIGS:
            verb = "append" if op == OP_APPEND else "subtract"
            raise InvalidConfig(f"Config value {verb} is not allowed for config key: {name}")
        current = split_list(out[name] if name in out else defaults.to_kafka()[name])
        given = split_list(value)
        if op == OP_APPEND:
            items = current + [item for item in given if item not in current]
        else:
            items = [item for item in current if item not in given]
        out[name] = ",".join(items)
    return out


def _parse_value(key: str, typ: type, raw: object) -> object:
    if isinstance(raw, typ) and not (typ is int and isinstance(raw, bool)):
        return raw
    if typ is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
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
        if typ is float:
            return float(text)
        return text
    except ValueError:
        raise InvalidConfig(f"Invalid value {raw!r} for configuration {key}") from None




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
    delete_retention_ms: int = 24 * 3600 * 1000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = 2**63 - 1
    overrides: tuple = field(default=(), compare=False)
    # Derived from cleanup.policy once: {"delete"}, {"compact"} or both; the Produce hot
    # path tests ``compact``, a bool.
    cleanup_policies: frozenset = field(init=False, compare=False, repr=False)
    compact: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        policies = frozenset(split_list(self.cleanup_policy))
        object.__setattr__(self, "cleanup_policies", policies)
        object.__setattr__(self, "compact", "compact" in policies)

    @classmethod
    def parse(cls, settings: dict[str, object] | None = None, base: "TopicConfig | None" = None) -> "TopicConfig":
        """Build from Kafka-named settings, on top of ``base`` (the broker defaults)."""
        values = {}
        for key, raw in (settings or {}).items():
            if key not in TOPIC_CONFIGS:
                raise InvalidConfig(f"Unknown topic config name: {key}")
            attr, typ, _ = TOPIC_CONFIGS[key]
            values[attr] = _parse_value(key, typ, raw)
            _check_value(key, values[attr])
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
    # Bytes of requests being read or waiting to be handled, over all connections
    # (Kafka's queued.max.request.bytes); reading pauses beyond it. -1: no bound
    # (Kafka's default); pybroker bounds it by default.
    queued_max_request_bytes: int = 256 * 1024 * 1024
    # A frame begun but not completed within this time closes the connection (pybroker's
    # own: Kafka counts a trickling sender as active).
    socket_request_read_timeout_ms: int = 60_000
    # A connection with no request in flight and no traffic this long is closed
    # (Kafka's connections.max.idle.ms).
    connections_max_idle_ms: int = 600_000
    # Client connections beyond these are closed as they arrive (Kafka's max.connections,
    # max.connections.per.ip). The fd limit caps max.connections further (acceptor.py).
    max_connections: int = 2**31 - 1
    max_connections_per_ip: int = 2**31 - 1
    # Largest record batch accepted (Kafka's message.max.bytes).
    message_max_bytes: int = 1024 * 1024 + 12
    log_retention_check_interval_ms: int = 300_000
    # Kafka's log.flush.offset.checkpoint.interval.ms: how often every partition's
    # dirty segments are fsynced and its recovery point and high watermark checkpointed
    # (on the flusher thread). Segments are also flushed when they roll.
    log_flush_offset_checkpoint_interval_ms: int = 60_000
    # The background scrubber (0: off): every this many ms it re-reads the closed
    # segments not checked since they closed, CRC by CRC, at most log_scrub_max_mb_per_s,
    # and quarantines the damage it finds (pybroker.log.damage).
    log_scrub_interval_ms: int = 0
    log_scrub_max_mb_per_s: float = 20.0
    # Kafka's log.cleaner.backoff.ms: the pause between log cleaner passes when no
    # compacted partition needs cleaning.
    log_cleaner_backoff_ms: int = 15_000
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
