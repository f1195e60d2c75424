"""One partition replica hosted by this broker: its log, role (leader or follower), high
watermark, leader-epoch cache, producer state and the requests waiting on it.

Owned by the broker's event loop thread (not thread-safe). The produce path works per
batch: ``parse_batches`` validates sizes and CRCs (one crc32c call per batch), the
producer table is checked per batch, and the request's own buffer is written to the log
with its offsets rewritten in place — records are never decoded or decompressed here.

Roles. Until the controller sends a ``PartitionState`` the partition is *standalone*: the
only replica, leader of epoch 0, its high watermark the log end (a single broker without
a supervisor). ``apply_state`` makes it leader or follower of a leader epoch:

- leader: accepts Produce, serves consumers below the high watermark and followers up to
  the log end; tracks each follower's log end offset (its fetch offset) and when it was
  last caught up; the high watermark is the minimum log end over the ISR and never moves
  backwards; ISR changes are proposals (``isr_to_shrink``/``isr_to_expand``) that the
  ReplicaManager sends to the controller.
- follower: refuses Produce (NOT_LEADER_OR_FOLLOWER) and serves consumer Fetch only from
  v11 (KIP-392 fetch from follower, below its own high watermark); the replica fetcher
  truncates it by leader epoch, then appends what the leader sends with the leader's
  offsets; its high watermark is min(leader's, own log end).

Transactions: the producer table tracks each producer's open transaction; the last stable
offset (``last_stable_offset``) bounds read_committed reads; the leader writes COMMIT and
ABORT markers for the transaction coordinator (``append_marker``), and every replica
indexes aborted transactions in the segment's ``.txnindex`` as a marker is appended,
replicated or replayed at start-up.

Files next to the log: ``leader-epoch-checkpoint`` (pybroker.log.leader_epoch) and
``high-watermark`` (decimal text, written on flush and close), so a restarted replica
starts from min(checkpoint, log end) rather than exposing uncommitted data.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

import os

from pybroker.broker import producer_snapshot
from pybroker.broker.producer_state import BatchMetadata, ProducerStateManager, last_sequence
from pybroker.config import TopicConfig
from pybroker.errors import (
    FencedLeaderEpoch,
    InvalidRecord,
    KafkaError,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    NotLeaderOrFollower,
    OffsetOutOfRange,
    PolicyViolation,
    UnknownLeaderEpoch,
)
from pybroker.log import checkpoint
from pybroker.log.leader_epoch import LeaderEpochCache
from pybroker.log.log import AppendInfo, Log
from pybroker.log.txn_index import AbortedTxn
from pybroker.record import control
from pybroker.record.batch import keyless_records, parse_batches, recompress

log = logging.getLogger("pybroker.broker")

HIGH_WATERMARK_FILE = "high-watermark"
UNKNOWN_OFFSET = -1
# DeleteRecords' offset meaning "up to the high watermark".
DELETE_TO_HIGH_WATERMARK = -1


@dataclass
class AppendResult:
    base_offset: int
    log_append_time: int
    log_start_offset: int
    # Offset of the last record written (or found again, for a deduplicated retry):
    # acks=all waits until the high watermark passes it.
    last_offset: int = -1


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class OffsetWaiters:
    """Requests parked until a watermark of the partition reaches an offset (Kafka's
    delayed operations keyed by offset): acks=all produces on the high watermark,
    DeleteRecords on the low watermark. Each future is resolved once, by the owner."""

    __slots__ = ("_waiters",)

    def __init__(self):
        self._waiters: list[tuple[int, asyncio.Future]] = []

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def add(self, offset: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((offset, fut))
        return fut

    def forget(self, fut: asyncio.Future) -> None:
        self._waiters = [(o, f) for o, f in self._waiters if f is not fut]

    def pop_reached(self, mark: int) -> list[asyncio.Future]:
        """Remove and return the futures waiting for an offset <= ``mark``."""
        ready = [f for o, f in self._waiters if o <= mark]
        if ready:
            self._waiters = [(o, f) for o, f in self._waiters if o > mark]
        return ready

    def pop_all(self) -> list[asyncio.Future]:
        waiters, self._waiters = self._waiters, []
        return [f for _, f in waiters]


def resolve(futures: list[asyncio.Future], result) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(result)


# -- the leader's view of a follower, and the ISR / high-watermark rules (pure) ---------


class FollowerState:
    """What the leader knows of one follower replica, from its fetches."""

    __slots__ = ("log_end_offset", "log_start_offset", "last_caught_up_ms", "last_fetch_leader_leo",
                 "last_fetch_ms", "high_watermark_sent")

    def __init__(self, now_ms: int):
        self.log_end_offset = UNKNOWN_OFFSET
        # As its fetches report it; the low watermark (DeleteRecords) is the minimum.
        self.log_start_offset = UNKNOWN_OFFSET
        # A follower counts as caught up when leadership starts, so a new leader does not
        # shrink its ISR before the followers had a chance to fetch.
        self.last_caught_up_ms = now_ms
        self.last_fetch_leader_leo = UNKNOWN_OFFSET
        self.last_fetch_ms = now_ms
        # The high watermark in the last fetch answer to it: a positions-only fetch
        # (shared-memory replication) returns early when the high watermark passes it.
        self.high_watermark_sent = UNKNOWN_OFFSET

    def on_fetch(self, fetch_offset: int, leader_leo: int, now_ms: int) -> None:
        """Kafka's lastCaughtUpTime rule: caught up now if it asked for the leader's log
        end; caught up at its previous fetch if it now asks for at least what the leader's
        log end was then."""
        if fetch_offset >= leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif fetch_offset >= self.last_fetch_leader_leo >= 0:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.log_end_offset = fetch_offset
        self.last_fetch_leader_leo = leader_leo
        self.last_fetch_ms = now_ms


def isr_high_watermark(leader_leo: int, isr, leader_id: int, followers: dict[int, FollowerState]) -> int:
    """The minimum log end offset over the ISR; a member whose log end is unknown (no
    fetch since this leadership began) holds it at UNKNOWN_OFFSET."""
    hw = leader_leo
    for replica in isr:
        if replica == leader_id:
            continue
        state = followers.get(replica)
        leo = UNKNOWN_OFFSET if state is None else state.log_end_offset
        if leo < hw:
            hw = leo
    return hw


def lagging_replicas(isr, leader_id: int, followers: dict[int, FollowerState], now_ms: int, lag_max_ms: int) -> list[int]:
    """ISR members that have not been caught up for longer than ``lag_max_ms``."""
    return [
        r for r in isr
        if r != leader_id and (r not in followers or now_ms - followers[r].last_caught_up_ms > lag_max_ms)
    ]


def may_join_isr(state: FollowerState, high_watermark: int, epoch_start_offset: int) -> bool:
    """An out-of-sync follower rejoins once it holds everything committed and something
    of the current leader epoch (so it cannot hold a divergent suffix of an old one)."""
    return state.log_end_offset >= high_watermark and state.log_end_offset >= epoch_start_offset


# -- the partition ------------------------------------------------------------------------


class Partition:
    def __init__(self, topic: str, index: int, log_: Log, leader_epoch: int = 0, node_id: int = 0):
        self.topic = topic
        self.index = index
        self.log = log_
        self.node_id = node_id
        self.leader_epoch = leader_epoch
        # None until the controller sends one: a standalone single replica.
        self.state = None
        self.leader = node_id
        self.partition_epoch = -1
        self.replicas = [node_id]
        self.isr = [node_id]
        self.followers: dict[int, FollowerState] = {}
        # A follower of a new leader epoch must truncate (by epoch) before fetching.
        self.needs_truncation = False
        # The log end when this process last became leader. Kafka starts a leader epoch
        # with every leadership; here a whole-cluster restart keeps the epoch (no failover
        # happened), and a stale high-watermark checkpoint could then let an empty new
        # replica (a reassignment's) into the ISR: joining also needs this offset.
        self.leadership_start_offset = 0
        # Proposals to the controller in flight, so the periodic check does not repeat them.
        self.isr_change_pending = False
        self.producers = ProducerStateManager()
        self._waiters: set[asyncio.Future] = set()
        # acks=all produces parked until the high watermark passes their last offset.
        self._commit_waiters = OffsetWaiters()
        # DeleteRecords parked until the low watermark reaches the requested offset.
        self._low_watermark_waiters = OffsetWaiters()
        # Whether a broker is live (the broker sets it from the cluster image): replicas on
        # dead brokers do not hold the low watermark back, as in Kafka.
        self.broker_alive: Callable[[int], bool] = lambda _node_id: True
        if log_.created:
            # Nothing to load: no epoch, high watermark or producer of a new log exists.
            self.epochs = LeaderEpochCache(log_.directory, on_disk=False)
            stored = None
        else:
            self.epochs = self._load_epoch_cache()
            stored = checkpoint.read_offset(log_.directory, HIGH_WATERMARK_FILE)
        log_.epoch_cache = self.epochs
        self._hw = min(max(stored or 0, log_.log_start_offset), log_.log_end_offset)
        self._hw_checkpointed = stored
        if not log_.created:
            self._rebuild_producer_state()

    def _load_epoch_cache(self) -> LeaderEpochCache:
        cache = LeaderEpochCache.load(self.log.directory)
        if cache is None:
            return LeaderEpochCache.rebuild(self.log.directory, (
                (h.partition_leader_epoch, h.base_offset)
                for segment in self.log.segments for h in segment.batches_from(0)))
        # Recovery may have dropped a torn tail the checkpoint still describes.
        cache.truncate_from_end(self.log.log_end_offset)
        cache.truncate_from_start(self.log.log_start_offset)
        return cache

    # -- offsets -----------------------------------------------------------------------

    @property
    def config(self) -> TopicConfig:
        return self.log.config

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def high_watermark(self) -> int:
        if self.state is None:
            # A standalone replica is the whole ISR: everything appended is committed.
            return self.log.log_end_offset
        return self._hw

    @property
    def last_stable_offset(self) -> int:
        """Where read_committed consumers stop: the first offset of the oldest transaction
        not yet stable here, or the high watermark."""
        hw = self.high_watermark
        self.producers.on_high_watermark(hw)
        first = self.producers.first_unstable_offset()
        return hw if first is None else min(first, hw)

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node_id

    # -- role --------------------------------------------------------------------------

    def apply_state(self, state) -> bool:
        """Take the controller's PartitionState. A state older than the current one (by
        leader epoch, then partition epoch) is ignored. Returns whether anything changed."""
        current = self.state
        if current is not None:
            if state.leader_epoch < current.leader_epoch:
                return False
            if state.leader_epoch == current.leader_epoch and state.partition_epoch <= current.partition_epoch:
                return False
        was_leader = current is not None and self.is_leader
        new_epoch = current is None or state.leader_epoch != current.leader_epoch
        self.state = state
        self.leader = state.leader
        self.leader_epoch = state.leader_epoch
        self.partition_epoch = state.partition_epoch
        self.replicas = list(state.replicas)
        self.isr = list(state.isr)
        self.isr_change_pending = False
        now = monotonic_ms()
        if self.is_leader:
            self.needs_truncation = False
            if new_epoch or not was_leader:
                self.epochs.assign_at_log_end(state.leader_epoch, self.log.log_end_offset)
                self.leadership_start_offset = self.log.log_end_offset
                self.followers = {r: FollowerState(now) for r in self.replicas if r != self.node_id}
                # One line per partition at DEBUG: the broker logs a summary of the
                # leaderships a push gave it (thousands at once at start or failover).
                log.debug("%s-%d: leader of epoch %d from offset %d, isr %s",
                         self.topic, self.index, state.leader_epoch, self.log.log_end_offset, self.isr)
            else:
                for r in self.replicas:
                    if r != self.node_id and r not in self.followers:
                        self.followers[r] = FollowerState(now)
                for r in list(self.followers):
                    if r not in self.replicas:
                        del self.followers[r]
            self.maybe_increment_high_watermark()
            self.check_low_watermark()
        else:
            if was_leader or new_epoch:
                self.needs_truncation = True
                self.followers = {}
                self._fail_waiters(NotLeaderOrFollower(
                    f"Leader of {self.topic}-{self.index} moved to broker {state.leader} (epoch {state.leader_epoch})"))
            self._hw = min(self._hw, self.log.log_end_offset)
        # Parked fetches re-evaluate: a fetch to a former leader now gets an error.
        self._wake_fetchers()
        return True

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """KIP-320 fencing of a request carrying the epoch its sender believes current."""
        if current_leader_epoch < 0 or current_leader_epoch == self.leader_epoch:
            return
        if current_leader_epoch < self.leader_epoch:
            raise FencedLeaderEpoch(
                f"epoch {current_leader_epoch} is older than the current leader epoch {self.leader_epoch} of {self.topic}-{self.index}")
        raise UnknownLeaderEpoch(
            f"epoch {current_leader_epoch} is newer than the current leader epoch {self.leader_epoch} of {self.topic}-{self.index}")

    def require_leader(self) -> None:
        if not self.is_leader:
            raise NotLeaderOrFollower(
                f"Broker {self.node_id} is not the leader of {self.topic}-{self.index} (leader is {self.leader})")

    # -- produce (leader) ----------------------------------------------------------------

    def stored_form(self, records, max_records_bytes: int):
        """The records field as this topic stores it: as produced (``compression.type``
        producer, Kafka's default, and the hot path: nothing is decoded), or with every
        batch's records in the topic's codec. Inflating is bounded by ``max_records_bytes``.
        A compacted topic refuses records without a key (Kafka's LogValidator), which
        means decoding them: only such topics pay for that."""
        config = self.config
        codec = config.compression_codec
        if codec is None and not config.compact:
            return records
        headers = parse_batches(records, config.max_message_bytes)
        if config.compact:
            self._refuse_keyless(records, headers, max_records_bytes)
        if codec is None:
            return records
        if all(h.compression == codec or h.is_control for h in headers):
            return records
        return recompress(records, headers, codec, max_records_bytes)

    def _refuse_keyless(self, records, headers, max_records_bytes: int) -> None:
        missing = keyless_records(records, headers, max_records_bytes)
        if not missing:
            return
        message = (f"Compacted topic cannot accept message without key in topic partition "
                   f"{self.topic}-{self.index}.")
        exc = InvalidRecord(message)
        exc.record_errors = [{"batch_index": n, "batch_index_error_message": message} for n in missing]
        raise exc

    def append(self, records: memoryview, acks: int, now_ms: int | None = None) -> AppendResult:
        """Validate and append the records field of one Produce partition."""
        self.require_leader()
        if acks == -1 and len(self.isr) < self.config.min_insync_replicas:
            raise NotEnoughReplicas(
                f"The size of the current ISR {set(self.isr)} is insufficient to satisfy the "
                f"min.isr requirement of {self.config.min_insync_replicas} for partition {self.topic}-{self.index}"
            )
        headers = parse_batches(records, self.config.max_message_bytes)
        if any(h.is_control for h in headers):
            raise InvalidRecord("Clients are not allowed to write control records")
        if headers[0].producer_id >= 0:
            duplicate = self._check_producer(headers)
            if duplicate is not None:
                return AppendResult(duplicate.first_offset, -1, self.log.log_start_offset, duplicate.last_offset)
        return self._append_as_leader(records, headers, now_ms)

    def _append_as_leader(self, records, headers, now_ms: int | None) -> AppendResult:
        """Write validated batches at the log end in this leader's epoch, then update the
        producer table, the high watermark and the parked fetches."""
        if self.epochs.latest_epoch < self.leader_epoch:
            self.epochs.assign(self.leader_epoch, self.log.log_end_offset)
        self.epochs.write_pending()
        active = self.log.active_segment
        info = self.log.append(records, headers, self.leader_epoch, now_ms)
        if headers[0].producer_id >= 0:
            self._record_producer(headers, info.first_offset, records)
        if self.log.active_segment is not active:
            self.snapshot_producer_state()
        if self.state is not None:
            self.maybe_increment_high_watermark()
        self._wake_fetchers()
        return AppendResult(info.first_offset, info.log_append_time, info.log_start_offset, info.last_offset)

    def _check_producer(self, headers) -> BatchMetadata | None:
        # Idempotent producers send one batch per partition per request; if a request
        # carries several, each must follow the previous, and a retry repeats all of them.
        duplicate = None
        for h in headers:
            if h.producer_id < 0 or h.base_sequence < 0:
                continue
            found = self.producers.check(
                h.producer_id, h.producer_epoch, h.base_sequence, last_sequence(h.base_sequence, h.last_offset_delta),
                h.is_transactional,
            )
            if found is not None and duplicate is None:
                duplicate = found
        return duplicate

    def _record_producer(self, headers, first_offset: int, buf) -> None:
        """Update the producer table with batches appended from ``first_offset`` on
        (``buf`` holds them, at the headers' positions): sequences, transactions opened
        by transactional batches, and closed by markers (control batches)."""
        offset = first_offset
        for h in headers:
            count = h.last_offset_delta + 1
            if h.is_control and h.producer_id >= 0:
                self._complete_txn(h, offset, *control.read_marker(buf, h))
            elif h.producer_id >= 0 and h.base_sequence >= 0:
                self.producers.update(
                    h.producer_id,
                    h.producer_epoch,
                    BatchMetadata(
                        h.base_sequence,
                        last_sequence(h.base_sequence, h.last_offset_delta),
                        offset,
                        offset + count - 1,
                        h.max_timestamp,
                    ),
                    h.is_transactional,
                )
            offset += count

    def _complete_txn(self, header, marker_offset: int, kind: int, coordinator_epoch: int) -> None:
        first = self.producers.complete_txn(header.producer_id, header.producer_epoch, coordinator_epoch,
                                            marker_offset, header.max_timestamp)
        if kind == control.ABORT:
            self.log.append_aborted_txn(AbortedTxn(header.producer_id, first, marker_offset, self.last_stable_offset))

    def append_marker(self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int = 0,
                      now_ms: int | None = None) -> tuple[AppendResult, bytearray]:
        """Write a COMMIT or ABORT marker for the transaction coordinator (leader only).
        A marker older than the producer's epoch is refused (INVALID_PRODUCER_EPOCH).
        Returns where it landed and its bytes as written (for the shared-memory ring)."""
        self.require_leader()
        self.producers.check_marker(producer_id, producer_epoch)
        records = control.build_marker(producer_id, producer_epoch, commit, coordinator_epoch, now_ms)
        return self._append_as_leader(records, parse_batches(records, len(records)), now_ms), records

    def _rebuild_producer_state(self) -> None:
        """Load the producer table from the newest snapshot and replay the batch headers
        after it (headers only, no record bytes), so a producer retrying across a broker
        restart is still deduplicated. After a clean shutdown nothing is replayed. Without
        a snapshot (a log written before they existed) the active segment is replayed;
        producers older than that are unknown and may start at any sequence, Kafka's rule
        for producers whose state went with retention."""
        plog = self.log
        loaded = producer_snapshot.load_latest(plog.directory, plog.log_start_offset, plog.log_end_offset)
        if loaded is None:
            start = plog.active_segment.base_offset
        else:
            start, self.producers = loaded
        start = max(start, plog.log_start_offset)
        for segment in plog.segments:
            first = segment.translate_offset(start)  # None: nothing at or after start here
            if first is None:
                continue
            for h in segment.batches_from(first.position):
                if h.base_offset < start or h.producer_id < 0:
                    continue
                if h.is_control:
                    # A marker is a few dozen bytes: read it alone, not the segment.
                    data = os.pread(segment.fd, h.size, h.position)
                    self._complete_txn(h, h.base_offset, *control.read_marker(data, h._replace(position=0)))
                elif h.base_sequence >= 0:
                    self._record_producer([h], h.base_offset, None)

    def snapshot_producer_state(self) -> None:
        """Save the producer table as of the log end (at a roll and at clean shutdown).
        Best effort: the records are already in the log, and without a snapshot a restart
        replays the active segment, so a failed write (disk full) is only logged. A log that
        never held a batch, or a snapshot already at the log end, needs no new one."""
        end = self.log.log_end_offset
        if end == 0 or producer_snapshot.exists(self.log.directory, end):
            return
        try:
            producer_snapshot.write(self.log.directory, self.log.log_end_offset, self.producers)
        except OSError as exc:
            log.warning("%s-%d: producer-state snapshot not written: %s", self.topic, self.index, exc)

    # -- acks=all ------------------------------------------------------------------------

    def commit_waiter(self, last_offset: int) -> asyncio.Future | None:
        """None if ``last_offset`` is already below the high watermark, else a future
        resolved with None (committed) or the KafkaError to answer with."""
        if self.high_watermark > last_offset:
            return None
        return self._commit_waiters.add(last_offset)

    def forget_commit_waiter(self, fut: asyncio.Future) -> None:
        self._commit_waiters.forget(fut)

    def _complete_commit_waiters(self) -> None:
        ready = self._commit_waiters.pop_reached(self.high_watermark - 1)
        if not ready:
            return
        # Kafka's rule: data the ISR holds is committed, but if the ISR shrank below
        # min.insync.replicas meanwhile the producer is told it is under-replicated.
        error = None
        if len(self.isr) < self.config.min_insync_replicas:
            error = NotEnoughReplicasAfterAppend(
                f"The size of the current ISR {set(self.isr)} is insufficient to satisfy the "
                f"min.isr requirement of {self.config.min_insync_replicas} for partition {self.topic}-{self.index}")
        resolve(ready, error)

    def _fail_waiters(self, error: KafkaError) -> None:
        """Leadership is gone: every parked produce and DeleteRecords gets ``error``."""
        resolve(self._commit_waiters.pop_all(), error)
        resolve(self._low_watermark_waiters.pop_all(), error)

    # -- DeleteRecords -------------------------------------------------------------------

    def cleaning_plan(self, now_ms: int):
        """What the log cleaner should compact in this replica's log now, or None. Every
        replica cleans its own log (as in Kafka): only below its high watermark, keeping
        the last batch of each producer it tracks for sequence continuity."""
        retain = frozenset(entry.batches[-1].last_offset
                           for entry in self.producers.producers.values() if entry.batches)
        return self.log.cleaning_plan(now_ms, self.high_watermark, retain)

    def delete_records(self, offset: int) -> int:
        """Raise the log start offset to ``offset`` (-1: the high watermark) on the leader,
        deleting the segments wholly below it. Returns the offset the low watermark must
        reach for the deletion to be complete on every replica."""
        self.require_leader()
        if "delete" not in self.config.cleanup_policies:
            raise PolicyViolation(
                f"Records of partition {self.topic}-{self.index} can not be deleted due to the configured policy")
        hw = self.high_watermark
        target = hw if offset == DELETE_TO_HIGH_WATERMARK else offset
        if target < 0 or target > hw:
            raise OffsetOutOfRange(
                f"The offset {offset} for partition {self.topic}-{self.index} is not valid: "
                f"it must lie in [0, {hw}] (the high watermark) or be -1")
        # Producer state stays: idempotent producers keep their sequences across the
        # deletion (Kafka expires them by time, not by log start).
        self.log.increment_log_start_offset(target)
        self.check_low_watermark()
        return target

    @property
    def low_watermark(self) -> int:
        """The lowest log start offset among this leader's replicas on live brokers (-1
        while a follower has not reported one since this leadership began)."""
        low = self.log.log_start_offset
        alive = self.broker_alive
        for replica, state in self.followers.items():
            if state.log_start_offset < low and alive(replica):
                low = state.log_start_offset
        return low

    def low_watermark_waiter(self, offset: int) -> asyncio.Future | None:
        """None if the low watermark already reached ``offset``, else a future resolved
        with the low watermark once it does, or with the KafkaError to answer with."""
        if self.low_watermark >= offset:
            return None
        return self._low_watermark_waiters.add(offset)

    def forget_low_watermark_waiter(self, fut: asyncio.Future) -> None:
        self._low_watermark_waiters.forget(fut)

    def check_low_watermark(self) -> None:
        """Answer the DeleteRecords the low watermark now satisfies (after a follower
        reported a new log start, the replicas or the live brokers changed)."""
        if self._low_watermark_waiters and self.is_leader:
            low = self.low_watermark
            resolve(self._low_watermark_waiters.pop_reached(low), low)

    # -- replication (leader side) -------------------------------------------------------

    def maybe_increment_high_watermark(self) -> bool:
        """Move the high watermark up to the minimum log end over the ISR (never down).
        Returns whether it moved; waiting produces and fetches are woken when it does."""
        if not self.is_leader:
            return False
        hw = isr_high_watermark(self.log.log_end_offset, self.isr, self.node_id, self.followers)
        if hw <= self._hw:
            return False
        self._hw = hw
        self._complete_commit_waiters()
        self._wake_fetchers()
        return True

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, log_start_offset: int = UNKNOWN_OFFSET,
                          now_ms: int | None = None) -> None:
        """A follower asked for ``fetch_offset``: its log end; it reports its log start.
        Updates its catch-up time, the high watermark and the low watermark."""
        self.require_leader()
        state = self.followers.get(replica_id)
        if state is None:
            raise NotLeaderOrFollower(f"Broker {replica_id} is not a replica of {self.topic}-{self.index}")
        now_ms = monotonic_ms() if now_ms is None else now_ms
        state.on_fetch(min(fetch_offset, self.log.log_end_offset), self.log.log_end_offset, now_ms)
        if log_start_offset != state.log_start_offset:
            state.log_start_offset = log_start_offset
            self.check_low_watermark()
        self.maybe_increment_high_watermark()

    def isr_to_shrink(self, lag_max_ms: int, now_ms: int | None = None) -> list[int] | None:
        """The ISR without its lagging followers, or None when nothing should change."""
        if not self.is_leader or self.state is None or self.isr_change_pending:
            return None
        now_ms = monotonic_ms() if now_ms is None else now_ms
        lagging = lagging_replicas(self.isr, self.node_id, self.followers, now_ms, lag_max_ms)
        if not lagging:
            return None
        return [r for r in self.isr if r not in lagging]

    @property
    def leader_start_offset(self) -> int:
        """Where this leadership started: the start offset of the leader epoch, or the log
        end when this process became leader, whichever is later. Until the high watermark
        reaches it, the leader cannot tell what was committed before (its checkpointed high
        watermark may be older): followers join the ISR only past it, and consumers' offset
        lookups get OFFSET_NOT_AVAILABLE meanwhile, as Kafka answers after an election."""
        epoch_start = self.epochs.start_offset_of(self.leader_epoch)
        epoch_start = self.log.log_end_offset if epoch_start is None else epoch_start
        return max(epoch_start, self.leadership_start_offset)

    def isr_to_expand(self) -> list[int] | None:
        """The ISR plus every out-of-sync follower that may rejoin, or None."""
        if not self.is_leader or self.state is None or self.isr_change_pending:
            return None
        epoch_start = self.leader_start_offset
        joining = [
            r for r in self.replicas
            if r not in self.isr and r in self.followers
            and may_join_isr(self.followers[r], self._hw, epoch_start)
        ]
        if not joining:
            return None
        return self.isr + joining

    # -- replication (follower side) -----------------------------------------------------

    def append_as_follower(self, buf, headers) -> AppendInfo:
        """Append batches fetched from the leader with the leader's offsets and epochs."""
        if self.is_leader:
            raise NotLeaderOrFollower(f"{self.topic}-{self.index} is led here; it does not follow")
        active = self.log.active_segment
        self.epochs.write_pending()
        info = self.log.append_with_offsets(buf, headers)
        latest = self.epochs.latest_epoch
        for h in headers:
            if h.partition_leader_epoch > latest:
                self.epochs.assign(h.partition_leader_epoch, h.base_offset)
                latest = h.partition_leader_epoch
        self._record_producer_as_follower(headers, buf)
        if self.log.active_segment is not active:
            self.snapshot_producer_state()
        self._wake_fetchers()
        return info

    def _record_producer_as_follower(self, headers, buf) -> None:
        # The batches carry their own offsets; a new leader must deduplicate retries of
        # what the old leader wrote and know the open transactions, so the follower
        # keeps the same table (and the same aborted-transaction index).
        for h in headers:
            if h.producer_id >= 0:
                self._record_producer([h], h.base_offset, buf)

    def update_follower_high_watermark(self, leader_hw: int) -> None:
        hw = min(leader_hw, self.log.log_end_offset)
        if hw > self._hw:
            self._hw = hw
            self._wake_fetchers()

    def update_follower_log_start_offset(self, leader_log_start: int) -> None:
        """Follow the leader's log start up (DeleteRecords, retention), never past our own
        high watermark: the same deletion, so a later leader elected from here does not
        serve what was deleted. The follower reports its new start in its next fetch."""
        target = min(leader_log_start, self.high_watermark)
        if target > self.log.log_start_offset:
            self.log.increment_log_start_offset(target)

    def truncate_to(self, offset: int) -> int:
        """Drop the log from ``offset`` on (whole batches), with the epoch cache, producer
        state and high watermark. Returns bytes dropped."""
        dropped = self.log.truncate_to(offset)
        if dropped:
            # A marker may have gone with the tail, reopening its transaction: the table
            # is rebuilt from the newest snapshot below the cut, as Kafka reloads it.
            producer_snapshot.delete_above(self.log.directory, self.log.log_end_offset)
            self.producers = ProducerStateManager()
            self._rebuild_producer_state()
        self._hw = min(self._hw, self.log.log_end_offset)
        return dropped

    def truncate_fully_and_start_at(self, offset: int) -> int:
        dropped = self.log.truncate_fully_and_start_at(offset)
        self.producers = ProducerStateManager()
        producer_snapshot.delete_above(self.log.directory, -1)
        self._hw = offset
        return dropped

    # -- fetch -------------------------------------------------------------------------

    def register_waiter(self, fut: asyncio.Future) -> None:
        self._waiters.add(fut)

    def unregister_waiter(self, fut: asyncio.Future) -> None:
        self._waiters.discard(fut)

    def _wake_fetchers(self) -> None:
        if self._waiters:
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(None)
            self._waiters.clear()

    # -- durability --------------------------------------------------------------------

    def write_high_watermark(self) -> None:
        """Checkpoint the high watermark (on the log's flusher, in order with its other
        background writes); nothing to write when it has not moved."""
        hw = self.high_watermark
        if hw != self._hw_checkpointed:
            self._hw_checkpointed = hw
            self.log.write_checkpoint(HIGH_WATERMARK_FILE, hw)

    def flush(self) -> None:
        """The periodic flush: fsyncs and checkpoints on the log's flusher."""
        self.log.flush_async()
        self.write_high_watermark()

    def abandon(self) -> None:
        """Release waiters without writing anything: the replica is being deleted (a
        full disk must not stop that)."""
        self._wake_fetchers()
        self._fail_waiters(NotLeaderOrFollower(f"{self.topic}-{self.index} is being deleted"))

    def close(self) -> None:
        self.abandon()
        self.write_high_watermark()
        self.snapshot_producer_state()
        self.epochs.save_if_absent(self.log.log_end_offset)
        self.log.close()


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["Partition", "AppendResult", "FollowerState", "KafkaError", "now_ms",
           "isr_high_watermark", "lagging_replicas", "may_join_isr"]
