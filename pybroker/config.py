"""Typed settings with Kafka's names and defaults.

Two scopes, as in Kafka: broker settings (``BrokerConfig``) and per-topic settings
(``TopicConfig``, the subset DescribeConfigs reports and CreateTopics may override).
Values arrive as strings from the wire or the command line; ``parse`` turns them into the
declared type or raises ``InvalidConfig`` naming the key.
"""
from __future__ import annotations

import dataclasses
import re
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
    # Accepted, validated, stored and described as Kafka 4 does, but without effect here:
    # no tiered storage, no preallocation, no delayed file deletion, no replication
    # throttles, no segment jitter, codec levels of the client libraries' defaults, and
    # record timestamps are not checked against the produce time.
    "compression.gzip.level": ("compression_gzip_level", int, -1),
    "compression.lz4.level": ("compression_lz4_level", int, 9),
    "compression.zstd.level": ("compression_zstd_level", int, 3),
    "file.delete.delay.ms": ("file_delete_delay_ms", int, 60_000),
    "follower.replication.throttled.replicas": ("follower_replication_throttled_replicas", str, ""),
    "leader.replication.throttled.replicas": ("leader_replication_throttled_replicas", str, ""),
    "local.retention.bytes": ("local_retention_bytes", int, -2),
    "local.retention.ms": ("local_retention_ms", int, -2),
    "message.timestamp.after.max.ms": ("message_timestamp_after_max_ms", int, 3_600_000),
    "message.timestamp.before.max.ms": ("message_timestamp_before_max_ms", int, 2**63 - 1),
    "preallocate": ("preallocate", bool, False),
    "remote.log.copy.disable": ("remote_log_copy_disable", bool, False),
    "remote.log.delete.on.disable": ("remote_log_delete_on_disable", bool, False),
    "remote.storage.enable": ("remote_storage_enable", bool, False),
    "segment.jitter.ms": ("segment_jitter_ms", int, 0),
    "errors.deadletterqueue.group.enable": ("errors_deadletterqueue_group_enable", bool, False),
    "max.decompressed.message.bytes": ("max_decompressed_message_bytes", int, 2147483639),
    "remote.copy.lag.bytes": ("remote_copy_lag_bytes", int, -1),
    "remote.copy.lag.ms": ("remote_copy_lag_ms", int, 0),
}
# Topic configs pybroker stores and reports without acting on them (see above).
STORED_ONLY_TOPIC_CONFIGS = frozenset(list(TOPIC_CONFIGS)[list(TOPIC_CONFIGS).index("compression.gzip.level"):])
# One line of documentation per topic config (DescribeConfigs v3+ include_documentation).
TOPIC_CONFIG_DOCS: dict[str, str] = {
    "cleanup.policy": "How old segments go: delete (by retention) and/or compact (latest value per key).",
    "compression.type": "Codec batches are stored in; producer keeps the producer's codec.",
    "segment.bytes": "Size at which a segment file is rolled.",
    "segment.ms": "Age at which a segment is rolled even if not full.",
    "segment.index.bytes": "Size of a segment's offset and time index files.",
    "index.interval.bytes": "Bytes between offset index entries.",
    "retention.ms": "Age after which a segment is deleted (-1: no time limit).",
    "retention.bytes": "Partition size beyond which the oldest segments are deleted (-1: no limit).",
    "max.message.bytes": "Largest record batch accepted.",
    "message.timestamp.type": "CreateTime (the producer's) or LogAppendTime (the broker's) timestamps.",
    "min.insync.replicas": "In-sync replicas an acks=all produce needs.",
    "unclean.leader.election.enable": "Whether a replica outside the ISR may become leader.",
    "flush.messages": "Messages between forced fsyncs.",
    "flush.ms": "Time between forced fsyncs.",
    "delete.retention.ms": "How long delete tombstones are kept in a compacted topic.",
    "min.cleanable.dirty.ratio": "Dirty share of a log that triggers compaction.",
    "min.compaction.lag.ms": "Minimum age before a record may be compacted.",
    "max.compaction.lag.ms": "Maximum age before a record must be compacted.",
    "compression.gzip.level": "gzip level used when the broker compresses (not applied by pybroker).",
    "compression.lz4.level": "lz4 level used when the broker compresses (not applied by pybroker).",
    "compression.zstd.level": "zstd level used when the broker compresses (not applied by pybroker).",
    "file.delete.delay.ms": "Delay before a deleted segment's files are removed (pybroker removes at once).",
    "follower.replication.throttled.replicas": "Replicas throttled on the follower side (stored only).",
    "leader.replication.throttled.replicas": "Replicas throttled on the leader side (stored only).",
    "local.retention.bytes": "Local size limit with tiered storage (no tiered storage here).",
    "local.retention.ms": "Local age limit with tiered storage (no tiered storage here).",
    "message.timestamp.after.max.ms": "How far ahead of the broker's clock a timestamp may be (not checked here).",
    "message.timestamp.before.max.ms": "How far behind the broker's clock a timestamp may be (not checked here).",
    "preallocate": "Whether segment files are preallocated (not done here).",
    "remote.log.copy.disable": "Stop copying to tiered storage (no tiered storage here).",
    "remote.log.delete.on.disable": "Delete tiered data when tiering is turned off (no tiered storage here).",
    "remote.storage.enable": "Tiered storage for the topic (not supported: only false is accepted).",
    "segment.jitter.ms": "Random jitter subtracted from segment.ms (not applied here).",
    "errors.deadletterqueue.group.enable": "Whether share groups may send undeliverable records to a dead letter queue "
                                           "(no share groups here).",
    "max.decompressed.message.bytes": "Largest decompressed batch the broker would accept (pybroker never decompresses).",
    "remote.copy.lag.bytes": "Bytes a segment may lag before tiering (no tiered storage here).",
    "remote.copy.lag.ms": "Time a segment may lag before tiering (no tiered storage here).",
}

# Topic configs Kafka declares as lists (comma separated): the only ones
# IncrementalAlterConfigs may APPEND to or SUBTRACT from.
LIST_CONFIGS = frozenset({"cleanup.policy", "follower.replication.throttled.replicas",
                          "leader.replication.throttled.replicas"})
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
    "compression.lz4.level": 1,
    "compression.zstd.level": -131072,
    "file.delete.delay.ms": 0,
    "local.retention.bytes": -2,
    "local.retention.ms": -2,
    "message.timestamp.after.max.ms": 0,
    "message.timestamp.before.max.ms": 0,
    "segment.jitter.ms": 0,
    "max.decompressed.message.bytes": 0,
    "remote.copy.lag.bytes": -1,
    "remote.copy.lag.ms": 0,
}
# Upper bounds of numeric configs (Kafka's ConfigDef.Range.between).
_MAXIMUMS: dict[str, float] = {
    "min.cleanable.dirty.ratio": 1,
    "compression.gzip.level": 9,
    "compression.lz4.level": 17,
    "compression.zstd.level": 22,
}
# A throttled-replicas list: "*" or partition:broker pairs (Kafka's ThrottledReplicaListValidator).
_THROTTLED_REPLICA = re.compile(r"\*|[0-9]+:[0-9]+")

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
    if key == "compression.gzip.level" and value != -1 and value < 1:
        raise InvalidConfig(f"Invalid value {value} for configuration {key}: {key} must be -1 or in 1..9")
    if key == "remote.storage.enable" and value:
        raise InvalidConfig("Invalid value true for configuration remote.storage.enable: "
                            "pybroker has no tiered storage")
    if key.endswith(".replication.throttled.replicas"):
        items = split_list(str(value))
        if not all(_THROTTLED_REPLICA.fullmatch(item) for item in items) or ("*" in items and len(items) > 1):
            raise InvalidConfig(f"Invalid value {value} for configuration {key}: must be '*' or a list of "
                                "partitionId:brokerId pairs")
        return
    choices = _CHOICES.get(key)
    if choices is None:
        return
    items = split_list(str(value)) if key in LIST_CONFIGS else [str(value).strip()]
    bad = [item for item in items if item not in choices]
    if bad:
        raise InvalidConfig(f"Invalid value {value} for configuration {key}: "
                            f"String must be one of: {', '.join(sorted(choices))}")


def apply_config_ops(overrides: dict[str, str], ops: list[tuple[str, int, str | None]],
                     defaults: "TopicConfig | dict[str, str]", known=None, lists=LIST_CONFIGS,
                     what: str = "topic") -> dict[str, str]:
    """A resource's new overrides after IncrementalAlterConfigs ``ops`` ((name, op,
    value)), as Kafka computes them: SET replaces, DELETE reverts to the default,
    APPEND/SUBTRACT add or remove items of a list config, starting from its current
    value (the override, else the default). ``known`` names the configs that exist
    (None: every topic config), ``lists`` the list-typed ones. Raises InvalidConfig /
    InvalidRequest; the values themselves are checked when the result is parsed."""
    known = TOPIC_CONFIGS if known is None else known
    out = dict(overrides)
    for name, op, value in ops:
        if name not in known:
            raise InvalidConfig(f"Unknown {what} config name: {name}")
        if op == OP_DELETE:
            out.pop(name, None)
            continue
        if op not in (OP_SET, OP_APPEND, OP_SUBTRACT):
            raise InvalidRequest(f"Unknown config operation {op} for config {name}")
        if value is None:
            raise InvalidConfig(f"Null value not supported for {what} config {name}")
        if op == OP_SET:
            out[name] = value
            continue
        if name not in lists:
            verb = "append" if op == OP_APPEND else "subtract"
            raise InvalidConfig(f"Config value {verb} is not allowed for config key: {name}")
        if not isinstance(defaults, dict):
            defaults = defaults.to_kafka()
        current = split_list(out[name] if name in out else defaults.get(name))
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
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3
    file_delete_delay_ms: int = 60_000
    follower_replication_throttled_replicas: str = ""
    leader_replication_throttled_replicas: str = ""
    local_retention_bytes: int = -2
    local_retention_ms: int = -2
    message_timestamp_after_max_ms: int = 3_600_000
    message_timestamp_before_max_ms: int = 2**63 - 1
    preallocate: bool = False
    remote_log_copy_disable: bool = False
    remote_log_delete_on_disable: bool = False
    remote_storage_enable: bool = False
    segment_jitter_ms: int = 0
    errors_deadletterqueue_group_enable: bool = False
    max_decompressed_message_bytes: int = 2147483639
    remote_copy_lag_bytes: int = -1
    remote_copy_lag_ms: int = 0
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
    # Client quotas (pybroker.broker.quotas): rates are measured over quota.window.num
    # samples of quota.window.size.seconds each, Kafka's defaults.
    quota_window_num: int = 11
    quota_window_size_seconds: int = 1
    # Incremental fetch sessions (KIP-227, pybroker.broker.fetch_session): how many the
    # broker keeps, and how long one must be unused before another may take its slot.
    max_incremental_fetch_session_cache_slots: int = 1000
    min_incremental_fetch_session_eviction_ms: int = 120_000
    topic_defaults: TopicConfig = field(default_factory=TopicConfig)
    cluster_id: str = "pybroker-cluster-0000"
    # Kafka's broker.rack ("": none): reported in Metadata and DescribeCluster; replicas
    # of a new partition spread over racks; consumers' ``client.rack`` is matched to it.
    broker_rack: str = ""
    # Kafka's replica.selector.class: "" (Kafka's default: consumers read from the leader)
    # or org.apache.kafka.common.replica.RackAwareReplicaSelector (KIP-392: a leader sends
    # a consumer to an in-sync replica in its rack; pybroker.broker.replica_selector).
    replica_selector_class: str = ""
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
    # Security (pybroker.security.listener). Kafka's listeners as "PROTOCOL:PORT,...";
    # empty: one PLAINTEXT listener on ``port``. The first listener's port is ``port``.
    listeners: str = ""
    sasl_enabled_mechanisms: str = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_cafile: str = ""
    # Kafka's ssl.client.auth: none | requested | required (mTLS; the principal is then the
    # certificate's subject).
    ssl_client_auth: str = "none"
    # KIP-368: a SASL session lasts this long, then the client must re-authenticate on
    # the connection or it is closed (0: sessions never end, Kafka's default).
    connections_max_reauth_ms: int = 0
    # A failed authentication is answered this late (and later for an address that keeps
    # failing): Kafka's connection.failed.authentication.delay.ms.
    connection_failed_authentication_delay_ms: int = 100
    # The private inter-broker Unix socket ("": none; followers use the PLAINTEXT port).
    internal_socket: str = ""
    # Authorization (Kafka's authorizer.class.name, super.users and
    # allow.everyone.if.no.acl.found): "acl" checks every request against the cluster's
    # ACLs (pybroker.security.authorizer); "" lets every client do everything.
    authorizer: str = ""
    super_users: str = ""  # principals separated by ";", e.g. "User:admin;User:ops"
    allow_everyone_if_no_acl_found: bool = False

    @property
    def advertised(self) -> str:
        return self.advertised_host or self.host


# -- dynamic configs of other resources ----------------------------------------------------
# DescribeConfigs / AlterConfigs resource types (Kafka's ConfigResource.Type).
RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP = 2, 4, 32


@dataclass(frozen=True)
class ConfigKey:
    """A config Kafka defines for a resource: its type (bool, int, float, str), default
    (a string, as described), the bounds or choices it is checked against, and a line
    of documentation."""

    type: type
    default: str | None
    minimum: float | None = None
    maximum: float | None = None
    choices: frozenset | None = None
    doc: str = ""

    def check(self, name: str, raw: str | None) -> str:
        """The value as stored (a string), or InvalidConfig naming the config."""
        if raw is None:
            raise InvalidConfig(f"Null value not supported for config {name}")
        value = _parse_value(name, self.type, raw)
        if self.minimum is not None and value < self.minimum:
            raise InvalidConfig(f"Invalid value {raw} for configuration {name}: Value must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidConfig(f"Invalid value {raw} for configuration {name}: Value must be no more than {self.maximum}")
        if self.choices is not None and str(value) not in self.choices:
            raise InvalidConfig(f"Invalid value {raw} for configuration {name}: "
                                f"String must be one of: {', '.join(sorted(self.choices))}")
        return str(value).lower() if self.type is bool else str(value)


_MS = "time in milliseconds"
# Kafka 4's group configs (GroupConfig): settings of KIP-848 consumer, share and streams
# groups. pybroker runs classic groups only, so they are validated, stored (in the
# metadata log) and described, and have no effect yet.
GROUP_CONFIGS: dict[str, ConfigKey] = {
    "consumer.session.timeout.ms": ConfigKey(int, "45000", 1, doc="Session timeout of consumer group members."),
    "consumer.heartbeat.interval.ms": ConfigKey(int, "5000", 1, doc="Heartbeat interval of consumer group members."),
    "share.session.timeout.ms": ConfigKey(int, "45000", 1, doc="Session timeout of share group members."),
    "share.heartbeat.interval.ms": ConfigKey(int, "5000", 1, doc="Heartbeat interval of share group members."),
    "share.record.lock.duration.ms": ConfigKey(int, "30000", 1000, doc="How long a share consumer holds a record."),
    "share.delivery.count.limit": ConfigKey(int, "5", 2, doc="Deliveries of a record before it is archived."),
    "share.partition.max.record.locks": ConfigKey(int, "2000", 100, doc="In-flight records per share partition."),
    "share.auto.offset.reset": ConfigKey(str, "latest", choices=frozenset({"earliest", "latest"}),
                                         doc="Where a share partition starts: earliest or latest."),
    "share.isolation.level": ConfigKey(str, "read_uncommitted",
                                       choices=frozenset({"read_committed", "read_uncommitted"}),
                                       doc="Whether share groups deliver only committed transactional records."),
    "share.renew.acknowledge.enable": ConfigKey(bool, "true", doc="Whether share consumers may renew record locks."),
    "streams.session.timeout.ms": ConfigKey(int, "45000", 1, doc="Session timeout of streams group members."),
    "streams.heartbeat.interval.ms": ConfigKey(int, "5000", 1, doc="Heartbeat interval of streams group members."),
    "streams.num.standby.replicas": ConfigKey(int, "0", 0, doc="Standby replicas of a streams group's tasks."),
    "streams.initial.rebalance.delay.ms": ConfigKey(int, "3000", 0, doc="Delay of a streams group's first rebalance."),
    "consumer.assignment.interval.ms": ConfigKey(int, "1000", 0, doc="How often a consumer group's assignment is computed."),
    "share.assignment.interval.ms": ConfigKey(int, "1000", 0, doc="How often a share group's assignment is computed."),
    "streams.assignment.interval.ms": ConfigKey(int, "1000", 0, doc="How often a streams group's assignment is computed."),
    "streams.assignor.name": ConfigKey(str, "sticky", doc="The task assignor of a streams group."),
    "streams.rack.aware.assignment.tags": ConfigKey(str, "", doc="Client tags a streams group spreads standbys over."),
    "errors.deadletterqueue.topic.name": ConfigKey(str, "", doc="Where a share group sends undeliverable records."),
    "errors.deadletterqueue.copy.record.enable": ConfigKey(bool, "false",
                                                           doc="Whether dead-lettered records are copied whole."),
}
# The broker config whose value is a group config's default (Kafka's group.* settings);
# the others are their own.
GROUP_DEFAULT_SYNONYMS: dict[str, str] = {
    **{name: "group." + name for name in GROUP_CONFIGS if name.split(".")[0] in ("consumer", "share", "streams")
       and name not in ("share.auto.offset.reset", "share.isolation.level", "share.renew.acknowledge.enable")},
    "streams.assignor.name": "group.streams.assignors",
}

# Broker configs whose cluster-wide default (the "" BROKER resource) sets a topic config's
# default, as Kafka's ServerTopicConfigSynonyms: changing one changes every topic that
# does not override it, at once.
TOPIC_CONFIG_SYNONYMS: dict[str, str] = {
    "log.cleanup.policy": "cleanup.policy",
    "compression.type": "compression.type",
    "log.segment.bytes": "segment.bytes",
    "log.roll.ms": "segment.ms",
    "log.index.size.max.bytes": "segment.index.bytes",
    "log.index.interval.bytes": "index.interval.bytes",
    "log.retention.ms": "retention.ms",
    "log.retention.bytes": "retention.bytes",
    "message.max.bytes": "max.message.bytes",
    "log.message.timestamp.type": "message.timestamp.type",
    "min.insync.replicas": "min.insync.replicas",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "log.flush.interval.messages": "flush.messages",
    "log.flush.interval.ms": "flush.ms",
    "log.cleaner.delete.retention.ms": "delete.retention.ms",
    "log.cleaner.min.cleanable.ratio": "min.cleanable.dirty.ratio",
    "log.cleaner.min.compaction.lag.ms": "min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms": "max.compaction.lag.ms",
    "compression.gzip.level": "compression.gzip.level",
    "compression.lz4.level": "compression.lz4.level",
    "compression.zstd.level": "compression.zstd.level",
    "log.segment.delete.delay.ms": "file.delete.delay.ms",
    "log.local.retention.bytes": "local.retention.bytes",
    "log.local.retention.ms": "local.retention.ms",
    "log.message.timestamp.after.max.ms": "message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms": "message.timestamp.before.max.ms",
    "log.preallocate": "preallocate",
    "log.roll.jitter.ms": "segment.jitter.ms",
    "max.decompressed.message.bytes": "max.decompressed.message.bytes",
    "log.remote.copy.lag.bytes": "remote.copy.lag.bytes",
    "log.remote.copy.lag.ms": "remote.copy.lag.ms",
}
BROKER_SYNONYM_OF = {topic: broker for broker, topic in TOPIC_CONFIG_SYNONYMS.items()}

# Broker configs Kafka lets AlterConfigs change at runtime, per broker or cluster-wide,
# besides the topic-default synonyms above. ``log.cleaner.backoff.ms`` is applied by the
# brokers; the rest (thread counts, cleaner I/O, connection limits, replication
# throttles) are validated, stored in the metadata log and described, with no effect in
# pybroker's single-threaded brokers.
DYNAMIC_BROKER_CONFIGS: dict[str, ConfigKey] = {
    "log.cleaner.backoff.ms": ConfigKey(int, "15000", 0, doc="Pause between log cleaner passes with nothing to clean."),
    "log.cleaner.threads": ConfigKey(int, "1", 0, doc="Log cleaner threads (stored only)."),
    "log.cleaner.io.max.bytes.per.second": ConfigKey(float, "1.7976931348623157E308", doc="Cleaner I/O cap (stored only)."),
    "log.cleaner.dedupe.buffer.size": ConfigKey(int, "134217728", doc="Cleaner dedupe buffer (stored only)."),
    "log.cleaner.io.buffer.size": ConfigKey(int, "524288", 0, doc="Cleaner I/O buffer (stored only)."),
    "log.cleaner.io.buffer.load.factor": ConfigKey(float, "0.9", doc="Cleaner buffer load factor (stored only)."),
    "num.io.threads": ConfigKey(int, "8", 1, doc="Request handler threads (stored only)."),
    "num.network.threads": ConfigKey(int, "3", 1, doc="Network threads (stored only)."),
    "num.replica.fetchers": ConfigKey(int, "1", 1, doc="Replica fetcher threads (stored only)."),
    "num.recovery.threads.per.data.dir": ConfigKey(int, "2", 1, doc="Recovery threads (stored only)."),
    "background.threads": ConfigKey(int, "10", 1, doc="Background threads (stored only)."),
    "max.connections": ConfigKey(int, "2147483647", 0, doc="Connection limit (stored only)."),
    "max.connections.per.ip": ConfigKey(int, "2147483647", 0, doc="Connections per IP (stored only)."),
    "leader.replication.throttled.rate": ConfigKey(int, "9223372036854775807", 0,
                                                   doc="Leader-side replication throttle, bytes/s (stored only)."),
    "follower.replication.throttled.rate": ConfigKey(int, "9223372036854775807", 0,
                                                     doc="Follower-side replication throttle, bytes/s (stored only)."),
    "replica.alter.log.dirs.io.max.bytes.per.second": ConfigKey(int, "9223372036854775807", 0,
                                                                doc="Log dir move throttle (stored only)."),
}


def topic_config_key(name: str) -> ConfigKey:
    """A topic config's declaration, for checking it as the broker synonym's value."""
    _attr, typ, default = TOPIC_CONFIGS[name]
    shown = str(default).lower() if typ is bool else str(default)
    return ConfigKey(typ, shown, _MINIMUMS.get(name), _MAXIMUMS.get(name), _CHOICES.get(name),
                     TOPIC_CONFIG_DOCS[name])


def check_resource_configs(resource_type: int, resource_name: str, configs: dict[str, str]) -> None:
    """Raise InvalidConfig / InvalidRequest unless ``configs`` is a valid set of dynamic
    overrides for a BROKER ("" is the cluster-wide default) or GROUP resource."""
    for name, value in configs.items():
        if value is None:
            raise InvalidConfig(f"Null value not supported for config {name}")
        if resource_type == RESOURCE_GROUP:
            key = GROUP_CONFIGS.get(name)
            if key is None:
                raise InvalidConfig(f"Unknown group config name: {name}")
            key.check(name, value)
        elif name in TOPIC_CONFIG_SYNONYMS:
            if resource_name != "":
                raise InvalidRequest(
                    f"{name} sets a topic default, which pybroker keeps cluster-wide: alter it on the "
                    "default broker resource (entity name \"\", kafka-configs --entity-default)")
            TopicConfig.parse({TOPIC_CONFIG_SYNONYMS[name]: value})
        elif name in DYNAMIC_BROKER_CONFIGS:
            DYNAMIC_BROKER_CONFIGS[name].check(name, value)
        else:
            raise InvalidRequest(f"Cannot update these configs dynamically: {{{name}}}: a pybroker broker's "
                                 "other settings are fixed when it starts")


def topic_defaults_with(static: TopicConfig, cluster_defaults: dict[str, str]) -> TopicConfig:
    """The topic defaults every topic builds on: the static ones (``pybroker up --config``)
    overlaid with the cluster-wide dynamic broker defaults' topic synonyms. No key counts
    as a topic override: DescribeConfigs names the broker source of each."""
    settings = {TOPIC_CONFIG_SYNONYMS[k]: v for k, v in cluster_defaults.items() if k in TOPIC_CONFIG_SYNONYMS}
    return dataclasses.replace(TopicConfig.parse(settings, static), overrides=())
