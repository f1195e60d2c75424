"""A Kafka consumer: explicitly assigned partitions, or a consumer group.

``assign`` the partitions (or ``subscribe`` to topics / a regex with a ``group.id``:
the group's coordinator, see ``pybroker.client.coordinator``, hands out partitions and
stores committed offsets), optionally ``seek``; ``poll`` sends one Fetch per partition
leader, decodes the returned batches (one ``decode_batch`` per batch) and hands out the
records from each partition's position on. A fetch returns whole batches, so records
below the position (the start of the batch holding it) are skipped. Control batches
(transaction markers) are skipped whole.

Group members start each partition at the group's committed offset, else per
``auto.offset.reset``. With ``enable.auto.commit`` (the default when a group is set),
every ``auto.commit.interval.ms`` a poll first commits the positions of the records
already returned. Rebalances happen inside ``poll``: with an eager protocol (range,
roundrobin, sticky) every owned partition is revoked first; with cooperative-sticky only
the partitions that move are revoked, then the member rejoins once more.

On the brokers' machine, ``pybroker.shm.data.dir`` (the cluster's data dir) or
``pybroker.shm.region`` lets ``poll`` read committed batches straight from the leaders'
shared-memory tail rings (``pybroker.client.shm_tail``), falling back to Fetch for
whatever the rings cannot serve; ``metrics()`` counts what each path delivered.

Configuration takes Kafka's names as a dict or keywords with underscores, as
``Producer`` does. Not thread-safe: one thread polls (a heartbeat thread runs beside it).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Callable, NamedTuple

from pybroker import errors
from pybroker.client.admin import EARLIEST, LATEST, list_offsets
from pybroker.client.cluster import REFRESH_CODES, Client
from pybroker.client.consumer_group_member import ConsumerGroupMember
from pybroker.client.coordinator import COOPERATIVE, GroupCoordinatorClient
from pybroker.client.transaction_manager import GroupMetadata
from pybroker.client.producer import normalize_config
from pybroker.client.security import ClientSecurity
from pybroker.client.shm_tail import ShmTail
from pybroker.protocol import api
from pybroker.record import control
from pybroker.record.batch import CREATE_TIME, decode_batch, iter_batches

log = logging.getLogger(__name__)

TIMESTAMP_TYPES = {CREATE_TIME: "CreateTime", 1: "LogAppendTime"}


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str  # "CreateTime" or "LogAppendTime"
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


TopicPartition = tuple[str, int]


DEFAULTS = {
    "bootstrap_servers": None,
    "client_id": "pybroker-consumer",
    "group_id": None,
    "group_instance_id": None,
    "group_protocol": "classic",       # or "consumer": KIP-848, the coordinator assigns
    "group_remote_assignor": None,     # consumer protocol: "uniform" or "range" (the broker's default: uniform)
    "auto_offset_reset": "latest",
    "enable_auto_commit": None,  # on when group.id is set
    "auto_commit_interval_ms": 5000,
    "isolation_level": "read_uncommitted",
    "fetch_max_wait_ms": 500,
    "fetch_min_bytes": 1,
    "fetch_max_bytes": 50 * 1024 * 1024,
    "max_partition_fetch_bytes": 1024 * 1024,
    "request_timeout_ms": 30_000,
    "session_timeout_ms": 45_000,
    "heartbeat_interval_ms": 3000,
    "max_poll_interval_ms": 300_000,
    "max_poll_records": 500,
    "partition_assignment_strategy": ("range", COOPERATIVE),
    "metadata_max_age_ms": 300_000,
    "retry_backoff_ms": 100,
    "pybroker_shm_data_dir": None,  # opt-in shared-memory tail reads (same machine only)
    "pybroker_shm_region": None,
}
# An idle shared-memory tail is polled again after this long, doubling up to the cap (the
# ring has no wake-up signal): a fresh record waits at most the cap, ~0.5 ms on average,
# and an idle consumer costs ~1,000 short wake-ups a second. A 5 ms cap measured ~1.2 ms
# p50 end to end against Fetch's 0.6 ms long poll (perf/tail_bench.py).
SHM_IDLE_SLEEP_S = (0.0001, 0.001)
ISOLATION_LEVELS = {"read_uncommitted": 0, "read_committed": 1, 0: 0, 1: 1}
ASSIGNOR_CLASS_NAMES = {  # Java class names users copy from Kafka configs
    "org.apache.kafka.clients.consumer.RangeAssignor": "range",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
    "org.apache.kafka.clients.consumer.StickyAssignor": "sticky",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": COOPERATIVE,
}

RebalanceCallback = Callable[["Consumer", list[TopicPartition]], None]


class Consumer:
    """Read partitions from a position; see the module docstring.

    ``auto_offset_reset``: "earliest", "latest" or "none" (raise OffsetOutOfRange) —
    used for partitions without a position and when a position falls out of range.
    """

    def __init__(self, bootstrap_servers=None, config: dict | None = None, **kwargs):
        if isinstance(bootstrap_servers, dict):
            config, bootstrap_servers = bootstrap_servers, None
        if bootstrap_servers is not None:
            kwargs["bootstrap_servers"] = bootstrap_servers
        cfg = normalize_config(config, kwargs, DEFAULTS, {})
        if not cfg["bootstrap_servers"]:
            raise ValueError("bootstrap.servers is required")
        self.config = cfg
        auto_offset_reset = cfg["auto_offset_reset"]
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(f"auto_offset_reset must be earliest, latest or none, not {auto_offset_reset!r}")
        if cfg["isolation_level"] not in ISOLATION_LEVELS:
            raise ValueError(f"isolation_level must be read_uncommitted or read_committed, "
                             f"not {cfg['isolation_level']!r}")
        self.auto_offset_reset = auto_offset_reset
        self.isolation_level = ISOLATION_LEVELS[cfg["isolation_level"]]
        self.fetch_max_wait_ms = int(cfg["fetch_max_wait_ms"])
        self.fetch_min_bytes = int(cfg["fetch_min_bytes"])
        self.fetch_max_bytes = int(cfg["fetch_max_bytes"])
        self.max_partition_fetch_bytes = int(cfg["max_partition_fetch_bytes"])
        self.max_poll_records = int(cfg["max_poll_records"])
        if self.max_poll_records < 1:
            raise ValueError("max.poll.records must be >= 1")
        request_timeout_ms = int(cfg["request_timeout_ms"])
        self.client = Client(cfg["bootstrap_servers"], client_id=cfg["client_id"],
                             timeout=(request_timeout_ms + self.fetch_max_wait_ms) / 1000.0,
                             security=ClientSecurity.from_options(cfg))
        self.group_id = cfg["group_id"]
        auto_commit = cfg["enable_auto_commit"]
        self.enable_auto_commit = bool(self.group_id) if auto_commit is None else bool(auto_commit)
        if self.enable_auto_commit and not self.group_id:
            raise ValueError("enable.auto.commit needs a group.id")
        self.auto_commit_interval = int(cfg["auto_commit_interval_ms"]) / 1000.0
        self.metadata_max_age = int(cfg["metadata_max_age_ms"]) / 1000.0
        strategies = cfg["partition_assignment_strategy"]
        if isinstance(strategies, str):
            strategies = [s.strip() for s in strategies.split(",") if s.strip()]
        strategies = [ASSIGNOR_CLASS_NAMES.get(s, s) for s in strategies]
        self.coordinator: GroupCoordinatorClient | None = None
        group_protocol = str(cfg["group_protocol"]).lower()
        if group_protocol not in ("classic", "consumer"):
            raise ValueError(f"group.protocol must be classic or consumer, not {cfg['group_protocol']!r}")
        if self.group_id and group_protocol == "consumer":
            self.coordinator = ConsumerGroupMember(
                self.client, self.group_id, group_instance_id=cfg["group_instance_id"],
                rebalance_timeout_ms=int(cfg["max_poll_interval_ms"]),
                server_assignor=cfg["group_remote_assignor"], retry_backoff_ms=int(cfg["retry_backoff_ms"]))
        elif self.group_id:
            self.coordinator = GroupCoordinatorClient(
                self.client, self.group_id, group_instance_id=cfg["group_instance_id"],
                session_timeout_ms=int(cfg["session_timeout_ms"]),
                rebalance_timeout_ms=int(cfg["max_poll_interval_ms"]),
                heartbeat_interval_ms=int(cfg["heartbeat_interval_ms"]),
                assignors=list(strategies), retry_backoff_ms=int(cfg["retry_backoff_ms"]))
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        # Offsets to resolve before fetching: EARLIEST, LATEST or a timestamp.
        self._pending_reset: dict[TopicPartition, int] = {}
        # Group-assigned partitions whose start comes from the committed offsets.
        self._need_committed: set[TopicPartition] = set()
        self._partition_bytes: dict[TopicPartition, int] = {}
        self._buffer: list[ConsumerRecord] = []
        self._buffer_pos = 0
        self._paused: set[TopicPartition] = set()
        self.high_watermarks: dict[TopicPartition, int] = {}
        self._subscription: list[str] | None = None
        self._pattern: re.Pattern | None = None
        self._on_assigned: RebalanceCallback | None = None
        self._on_revoked: RebalanceCallback | None = None
        self._on_lost: RebalanceCallback | None = None
        self._next_auto_commit = time.monotonic() + self.auto_commit_interval
        self._metadata_checked = 0.0
        self._subscribed_counts: dict[str, int] = {}
        self._shm = ShmTail.open(cfg["pybroker_shm_data_dir"], cfg["pybroker_shm_region"])
        self._shm_idle = SHM_IDLE_SLEEP_S[0]
        self.shm_records = 0
        self.socket_records = 0
        self._closed = False

    def metrics(self) -> dict[str, int | bool]:
        """Where records came from: ``shm_records`` (tail rings) and ``socket_records``
        (Fetch), plus the ring reader's counters (``shm_*``) when tail reads are on."""
        out: dict[str, int | bool] = {"shm_enabled": self._shm is not None,
                                      "shm_records": self.shm_records,
                                      "socket_records": self.socket_records}
        if self._shm is not None:
            out.update(shm_reads=self._shm.reads, shm_idle_reads=self._shm.idle_reads,
                       shm_fallbacks=self._shm.fallbacks, shm_bytes=self._shm.bytes)
        return out

    # -- assignment and positions -----------------------------------------------

    def partitions_for(self, topic: str) -> list[int]:
        return self.client.partitions_for(topic, refresh=True)

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership; with a group.id the
        committed offsets still give the start, and commits still work)."""
        if self._subscription is not None or self._pattern is not None:
            raise ValueError("assign() and subscribe() cannot be mixed; unsubscribe() first")
        self._set_assignment(list(dict.fromkeys((t, int(p)) for t, p in partitions)))

    def _set_assignment(self, partitions: list[TopicPartition]) -> None:
        self._drop_buffer()
        self._assignment = partitions
        keep = set(self._assignment)
        self._positions = {tp: o for tp, o in self._positions.items() if tp in keep}
        self._pending_reset = {tp: s for tp, s in self._pending_reset.items() if tp in keep}
        self._need_committed &= keep
        self._paused &= keep
        for tp in self._assignment:
            if tp not in self._positions and tp not in self._pending_reset:
                if self.coordinator is not None:
                    self._need_committed.add(tp)
                else:
                    self._reset_by_policy(tp)

    def _reset_by_policy(self, tp: TopicPartition) -> None:
        if self.auto_offset_reset != "none":
            self._pending_reset[tp] = EARLIEST if self.auto_offset_reset == "earliest" else LATEST

    # -- group membership ----------------------------------------------------------

    def subscribe(self, topics=None, *, pattern: str | re.Pattern | None = None,
                  on_assigned: RebalanceCallback | None = None,
                  on_revoked: RebalanceCallback | None = None,
                  on_lost: RebalanceCallback | None = None) -> None:
        """Join the group for ``topics`` (a list) or every topic matching ``pattern``
        (also given as a single string starting with "^", as librdkafka does).
        Callbacks get (consumer, partitions) from inside ``poll``: ``on_revoked`` before
        partitions go (commit there), ``on_assigned`` once new ones arrive, ``on_lost``
        when the membership was lost (no commit is possible; defaults to on_revoked)."""
        if self.coordinator is None:
            raise ValueError("subscribe() needs a group.id")
        if isinstance(topics, str) and topics.startswith("^"):
            topics, pattern = None, topics
        elif isinstance(topics, re.Pattern):
            topics, pattern = None, topics
        if (topics is None) == (pattern is None):
            raise ValueError("subscribe() takes a list of topics or a pattern")
        if topics is not None:
            if isinstance(topics, str):
                topics = [topics]
            if not topics or not all(isinstance(t, str) and t for t in topics):
                raise ValueError("subscribe() needs non-empty topic names")
            self._subscription = sorted(set(topics))
            self._pattern = None
        else:
            self._pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
            self._subscription = []
        self._on_assigned, self._on_revoked, self._on_lost = on_assigned, on_revoked, on_lost
        self._metadata_checked = 0.0
        self.coordinator.request_rejoin()

    def subscription(self) -> list[str]:
        return list(self._subscription or [])

    def unsubscribe(self) -> None:
        if self.coordinator is not None and self._subscription is not None:
            self._revoke(list(self._assignment), commit=True)
            self.coordinator.leave()
        self._subscription = None
        self._pattern = None
        self._set_assignment([])

    def _maybe_rejoin(self) -> None:
        coordinator = self.coordinator
        if coordinator is None or self._subscription is None:
            return
        coordinator.note_poll()
        now = time.monotonic()
        if now - self._metadata_checked >= self.metadata_max_age or not self._subscribed_counts:
            self._check_metadata()
        rounds = 0
        while coordinator.rejoin_needed:
            rounds += 1
            if rounds > 20:
                raise errors.RebalanceInProgress("the group kept rebalancing; giving up for this poll")
            owned = list(self._assignment)
            cooperative = coordinator.protocol == COOPERATIVE and coordinator.generation >= 0
            lost = coordinator.generation < 0 and bool(owned)
            if lost:
                self._revoke(owned, commit=False, lost=True)
                owned = []
            elif not cooperative and owned:
                self._revoke(owned, commit=True)
                owned = []
            topics = self._subscription if self._pattern is None else sorted(self._subscribed_counts)
            new = coordinator.join(topics, owned, self._cluster_for)
            coordinator.start_heartbeat()
            current = set(self._assignment)
            revoked = [tp for tp in self._assignment if tp not in set(new)]
            added = [tp for tp in new if tp not in current]
            if revoked:
                # Cooperative: give up only what moved, then rejoin so it can be handed on.
                self._revoke(revoked, commit=True)
                coordinator.request_rejoin()
            self._set_assignment([tp for tp in self._assignment if tp in set(new)] + added)
            if self._on_assigned is not None:
                self._on_assigned(self, added)

    def _revoke(self, partitions: list[TopicPartition], commit: bool, lost: bool = False) -> None:
        if not partitions:
            return
        if commit and self.enable_auto_commit:
            try:
                self.commit_sync({tp: off for tp, off in self._current_positions().items()
                                  if tp in set(partitions)})
            except errors.KafkaError as exc:
                log.warning("commit before revoking %s failed: %s", partitions, exc)
        callback = (self._on_lost or self._on_revoked) if lost else self._on_revoked
        if callback is not None:
            callback(self, list(partitions))
        gone = set(partitions)
        self._set_assignment([tp for tp in self._assignment if tp not in gone])

    def _check_metadata(self) -> None:
        """Notice new topics matching the pattern and grown partition counts: either
        means the leader must assign again."""
        self._metadata_checked = time.monotonic()
        if self._pattern is not None:
            meta = self.client.refresh()
            topics = sorted(t for t, info in meta.topics.items()
                            if not info.is_internal and not info.error_code and self._pattern.search(t))
        else:
            meta = self.client.refresh(self._subscription)
            topics = self._subscription
        counts = {t: len(meta.topics[t].partitions) for t in topics
                  if t in meta.topics and not meta.topics[t].error_code}
        if counts != self._subscribed_counts:
            if self._subscribed_counts or self.coordinator.generation >= 0:
                self.coordinator.request_rejoin()
            self._subscribed_counts = counts

    def _cluster_for(self, topics: list[str]) -> dict[str, int]:
        meta = self.client.refresh(topics)
        return {t: len(meta.topics[t].partitions) for t in topics
                if t in meta.topics and not meta.topics[t].error_code}

    # -- commits -------------------------------------------------------------------

    def _current_positions(self) -> dict[TopicPartition, int]:
        """Positions of the records already returned (the next offset to read)."""
        out = {}
        for tp in self._assignment:
            if tp in self._positions:
                out[tp] = self._positions[tp]
        for rec in reversed(self._buffer[self._buffer_pos:]):
            out[(rec.topic, rec.partition)] = rec.offset
        return out

    def commit_sync(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offsets to read), by default the positions of every
        assigned partition; waits for the answer and raises its error."""
        self._require_group()
        self.coordinator.commit(self._current_positions() if offsets is None else dict(offsets))

    commit = commit_sync

    def commit_async(self, offsets: dict[TopicPartition, int] | None = None,
                     callback: Callable[[dict, Exception | None], None] | None = None) -> None:
        """Like commit_sync without waiting; ``callback(offsets, exception)`` runs in a
        later poll/commit/close on this thread."""
        self._require_group()
        self.coordinator.commit_async(self._current_positions() if offsets is None else dict(offsets), callback)

    def group_metadata(self) -> GroupMetadata:
        """The member's group, generation and member id, for a transactional producer's
        ``send_offsets_to_transaction`` (KIP-447 fencing of a consumer that lost its
        partitions)."""
        if not self.group_id:
            raise RuntimeError("group_metadata needs a group.id")
        c = self.coordinator
        return GroupMetadata(self.group_id, c.generation, c.member_id, c.group_instance_id)

    def committed(self, partitions: TopicPartition | list[TopicPartition]):
        """The group's committed offset of one partition (None if none), or a dict for
        a list of partitions."""
        self._require_group()
        if isinstance(partitions, tuple):
            return self.coordinator.fetch_committed([partitions]).get(partitions)
        return self.coordinator.fetch_committed(list(partitions))

    def _require_group(self) -> None:
        if self.coordinator is None:
            raise ValueError("commits need a group.id")

    def _maybe_auto_commit(self, force: bool = False) -> None:
        if not self.enable_auto_commit or not self._assignment:
            return
        now = time.monotonic()
        if force or now >= self._next_auto_commit:
            self._next_auto_commit = now + self.auto_commit_interval
            try:
                self.coordinator.commit_async(self._current_positions())
            except errors.KafkaError as exc:
                log.warning("auto commit failed: %s", exc)

    # -- pause / resume -------------------------------------------------------------

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Stop returning records of these partitions until resumed (the group keeps
        them assigned)."""
        for tp in partitions:
            self._check_assigned(tp)
        self._drop_buffer()
        self._paused.update(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> list[TopicPartition]:
        return sorted(self._paused)

    def assignment(self) -> list[TopicPartition]:
        return list(self._assignment)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self._check_assigned(tp)
        self._drop_buffer()
        self._positions[tp] = offset
        self._pending_reset.pop(tp, None)

    def seek_to_beginning(self, partitions: list[TopicPartition] | None = None) -> None:
        self._seek_spec(partitions, EARLIEST)

    def seek_to_end(self, partitions: list[TopicPartition] | None = None) -> None:
        self._seek_spec(partitions, LATEST)

    def seek_to_timestamp(self, partitions: list[TopicPartition] | None, timestamp_ms: int) -> None:
        """First offset whose timestamp is >= timestamp_ms (the end if none is)."""
        self._seek_spec(partitions, timestamp_ms)

    def position(self, tp: TopicPartition) -> int:
        self._check_assigned(tp)
        if tp in self._pending_reset or tp in self._need_committed:
            self._resolve_resets()
        if tp not in self._positions:
            raise errors.OffsetOutOfRange(f"{tp[0]}-{tp[1]} has no position and auto_offset_reset is none")
        for rec in self._buffer[self._buffer_pos:]:
            if (rec.topic, rec.partition) == tp:
                return rec.offset
        return self._positions[tp]

    def _seek_spec(self, partitions, spec: int) -> None:
        self._drop_buffer()
        for tp in partitions if partitions is not None else self._assignment:
            self._check_assigned(tp)
            self._pending_reset[tp] = spec
            self._positions.pop(tp, None)

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._assignment:
            raise ValueError(f"{tp[0]}-{tp[1]} is not assigned to this consumer")

    def _drop_buffer(self) -> None:
        # Fetching moved each partition's position past its buffered records: rewind
        # to the first record not handed out, so dropping the buffer loses nothing.
        rewound = set()
        for rec in self._buffer[self._buffer_pos:]:
            tp = (rec.topic, rec.partition)
            if tp not in rewound:
                rewound.add(tp)
                self._positions[tp] = rec.offset
        self._buffer = []
        self._buffer_pos = 0

    def _resolve_resets(self) -> None:
        if self._need_committed:
            wanted = sorted(self._need_committed)
            found = self.coordinator.fetch_committed(wanted)
            for tp in wanted:
                self._need_committed.discard(tp)
                if found.get(tp) is not None:
                    self._positions[tp] = found[tp]
                else:
                    self._reset_by_policy(tp)
        if not self._pending_reset:
            return
        found = list_offsets(self.client, dict(self._pending_reset), self.isolation_level)
        for tp, (offset, _) in found.items():
            if offset < 0:
                # A timestamp past the last record: Kafka answers -1; start at the end.
                offset = list_offsets(self.client, {tp: LATEST}, self.isolation_level)[tp][0]
            self._positions[tp] = offset
            self._pending_reset.pop(tp, None)

    # -- fetching ----------------------------------------------------------------

    def poll(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records from the assigned partitions, waiting up to ``timeout_ms`` for some;
        at most ``max_records`` (default max.poll.records). Group work (rebalances,
        auto commit) happens here too."""
        if self._closed:
            raise RuntimeError("consumer is closed")
        limit = self.max_poll_records if max_records is None else max_records
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            if self.coordinator is not None:
                self.coordinator.drain_async_commits()
                self._maybe_rejoin()
                self._maybe_auto_commit()
            if self._buffer_pos < len(self._buffer):
                return self._take(limit)
            if self._assignment:
                self._resolve_resets()
                remaining = max(0, int((deadline - time.monotonic()) * 1000))
                records = self._fetch_once(min(self.fetch_max_wait_ms, remaining))
                if records:
                    self._buffer = records
                    self._buffer_pos = 0
                    return self._take(limit)
            elif self._subscription is None:
                return []
            else:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return []

    def _take(self, max_records: int | None) -> list[ConsumerRecord]:
        start = self._buffer_pos
        end = len(self._buffer) if max_records is None else min(len(self._buffer), start + max_records)
        out = self._buffer[start:end]
        self._buffer_pos = end
        if end >= len(self._buffer):
            self._buffer = []
            self._buffer_pos = 0
        return out

    def _fetch_once(self, max_wait_ms: int) -> list[ConsumerRecord]:
        by_leader: dict[int, dict[str, list[dict]]] = {}
        records: list[ConsumerRecord] = []
        from_shm = 0
        for tp in self._assignment:
            if tp not in self._positions or tp in self._paused:
                continue
            leader = self.client.leader_for(*tp)
            if leader < 0:
                self.client.refresh([tp[0]])
                continue
            # The ring carries no aborted transactions: read_committed always fetches.
            if self._shm is not None and not self.isolation_level and self._read_shm_tail(tp, leader, records):
                from_shm += 1
                continue
            by_leader.setdefault(leader, {}).setdefault(tp[0], []).append({
                "partition": tp[1],
                "current_leader_epoch": -1,
                "fetch_offset": self._positions[tp],
                "last_fetched_epoch": -1,
                "log_start_offset": -1,
                "partition_max_bytes": self._partition_bytes.get(tp, self.max_partition_fetch_bytes),
            })
        if not by_leader:
            if from_shm:
                self._shm_backoff(bool(records), max_wait_ms)
                return records
            time.sleep(min(max_wait_ms, 100) / 1000.0)
            return []
        # Long-poll only when one broker is asked; otherwise one slow broker would hold
        # back the others' data. Records already read from a ring are not held back.
        wait = max_wait_ms if len(by_leader) == 1 else min(max_wait_ms, 100)
        if records or from_shm:
            wait = 0
        socket_start = len(records)
        for leader, topics in by_leader.items():
            body = {
                "replica_id": -1,
                "max_wait_ms": wait,
                "min_bytes": self.fetch_min_bytes,
                "max_bytes": self.fetch_max_bytes,
                "isolation_level": self.isolation_level,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                "forgotten_topics_data": [],
                "rack_id": "",
            }
            try:
                response = self.client.connection(leader).request(api.FETCH, body)
            except (errors.NetworkException, errors.RequestTimedOut):
                self.client.refresh(list(topics))
                continue
            if response.get("error_code"):
                errors.raise_for_code(response["error_code"], "fetch failed")
            for t in response["responses"]:
                for p in t["partitions"]:
                    self._handle_partition(t["topic"], p, records)
        self.socket_records += len(records) - socket_start
        if from_shm:
            self._shm_backoff(bool(records), max_wait_ms)
        return records

    def _read_shm_tail(self, tp: TopicPartition, leader: int, out: list[ConsumerRecord]) -> bool:
        """Serve ``tp`` from its leader's tail ring, decoding as a Fetch response's
        records; False when the ring cannot answer and a Fetch must."""
        info = self.client.metadata.topics.get(tp[0])
        meta = info.partitions.get(tp[1]) if info is not None else None
        if meta is None:
            return False
        got = self._shm.read(tp[0], tp[1], leader, meta.leader_epoch, self._positions[tp],
                             self._partition_bytes.get(tp, self.max_partition_fetch_bytes),
                             topic_id=info.topic_id)
        if got is None:
            return False
        if not got.records:
            self.high_watermarks[tp] = got.high_watermark
            return True
        before = len(out)
        self._handle_partition(tp[0], {"partition_index": tp[1], "error_code": 0,
                                       "high_watermark": got.high_watermark,
                                       "records": got.records}, out)
        self.shm_records += len(out) - before
        return True

    def _shm_backoff(self, got_records: bool, max_wait_ms: int) -> None:
        """Between ring polls that found nothing, sleep a little longer each time (the
        ring has no wake-up signal); data resets the wait to its minimum."""
        if got_records:
            self._shm_idle = SHM_IDLE_SLEEP_S[0]
            return
        time.sleep(min(self._shm_idle, max_wait_ms / 1000.0))
        self._shm_idle = min(self._shm_idle * 2, SHM_IDLE_SLEEP_S[1])

    def _handle_partition(self, topic: str, p: dict, out: list[ConsumerRecord]) -> None:
        tp = (topic, p["partition_index"])
        if tp not in self._positions:
            return
        code = p["error_code"]
        if code == errors.OffsetOutOfRange.code:
            if self.auto_offset_reset == "none":
                raise errors.OffsetOutOfRange(f"offset {self._positions[tp]} is out of range for {topic}-{tp[1]}")
            self._pending_reset[tp] = EARLIEST if self.auto_offset_reset == "earliest" else LATEST
            del self._positions[tp]
            return
        if code in REFRESH_CODES:
            self.client.refresh([topic])
            return
        if code:
            errors.raise_for_code(code, f"fetch of {topic}-{tp[1]}")
        self.high_watermarks[tp] = p["high_watermark"]
        data = p.get("records")
        if not data:
            return
        position = self._positions[tp]
        complete = 0
        # read_committed: the aborted transactions overlapping this data, by first offset;
        # a producer's batches are dropped from its first offset until its ABORT marker
        # (Kafka's consumer does the same).
        aborted = sorted((t["first_offset"], t["producer_id"]) for t in p.get("aborted_transactions") or ())
        aborting: set[int] = set()
        for header, view in iter_batches(data):
            complete += 1
            while aborted and aborted[0][0] <= header.last_offset:
                aborting.add(aborted.pop(0)[1])
            if header.is_control:
                if header.producer_id in aborting and \
                        control.marker_type(view, header._replace(position=0)) == control.ABORT:
                    aborting.discard(header.producer_id)
            elif header.last_offset >= position and not (header.is_transactional and header.producer_id in aborting):
                ts_type = "LogAppendTime" if header.timestamp_type else "CreateTime"
                for rec in decode_batch(view):
                    if rec.offset >= position:
                        out.append(ConsumerRecord(topic, tp[1], rec.offset, rec.timestamp, ts_type,
                                                  rec.key, rec.value, rec.headers))
            if header.last_offset < position:
                continue
            # Offsets inside a batch can have gaps (compaction): the next fetch starts
            # after the batch, not after its last returned record.
            position = header.next_offset
        if complete == 0:
            # Only a partial batch: it is larger than what we asked for (brokers before
            # KIP-74). Ask for more next time, within the request limit.
            limit = self._partition_bytes.get(tp, self.max_partition_fetch_bytes)
            if limit >= self.fetch_max_bytes:
                raise errors.RecordListTooLarge(
                    f"a batch at offset {position} of {topic}-{tp[1]} exceeds {self.fetch_max_bytes} bytes")
            self._partition_bytes[tp] = min(limit * 2, self.fetch_max_bytes)
            return
        self._positions[tp] = position

    def close(self, autocommit: bool = True) -> None:
        """Commit (with auto commit on), leave the group, close connections."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.coordinator is not None:
                try:
                    if autocommit and self.enable_auto_commit and self._assignment:
                        self.coordinator.commit(self._current_positions())
                    if self._subscription is not None:
                        self._revoke(list(self._assignment), commit=False)
                        self.coordinator.leave()
                except errors.KafkaError as exc:
                    log.warning("closing the group membership failed: %s", exc)
                finally:
                    self.coordinator.close()
        finally:
            self.client.close()
            if self._shm is not None:
                self._shm.close()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
