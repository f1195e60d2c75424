"""A KIP-932 share-group consumer (Queues for Kafka): the members of a share group read
the same partitions together, each record handed to one member at a time.

Life of a member (Kafka's ShareConsumerImpl)::

    ShareGroupHeartbeat epoch 0 with the subscription -> the coordinator answers with a
    member epoch and the partitions to fetch from (every member may get every partition)
    -> a heartbeat thread keeps the membership alive every ``heartbeat_interval_ms`` the
    coordinator gives, and picks up assignment changes -> ``poll`` sends ShareFetch to
    each partition leader in a *share session* (epoch 0 opens it, each request carries
    the next epoch, -1 closes it); the answer carries whole batches and the offset ranges
    this member acquired, with their delivery counts -> records are acknowledged ACCEPT,
    RELEASE (give it to someone again) or REJECT (never again); the acknowledgements ride
    on the next ShareFetch to that leader, or a ShareAcknowledge (``commit_sync``).

Acknowledgement modes (``share_acknowledgement_mode``):

- ``implicit`` (the default): the records of a poll are accepted at the next ``poll``,
  ``commit_sync``/``commit_async`` or ``close``.
- ``explicit``: each record is acknowledged with ``acknowledge(record, type)``. A record
  left unacknowledged stays acquired until the group's lock duration
  (``group.share.record.lock.duration.ms``) runs out, then goes to a member again.

Offsets an acquired range holds but no delivered record has (transaction markers,
compacted-away records, aborted transactional records are not skipped: share groups read
uncommitted) are acknowledged as gaps at once, so they never come back.

Not thread-safe: one thread polls (the heartbeat thread runs beside it and only updates
the member epoch and assignment under a lock).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable, NamedTuple

from pybroker import errors
from pybroker.client.cluster import REFRESH_CODES, Client
from pybroker.client.connection import BrokerConnection
from pybroker.client.consumer_group_member import FENCED_CODES, LEAVE_EPOCH
from pybroker.client.coordinator import COORDINATOR_CODES, GroupCoordinatorClient
from pybroker.client.producer import normalize_config
from pybroker.client.security import ClientSecurity
from pybroker.protocol import api
from pybroker.record.batch import decode_batch, iter_batches

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]

GAP, ACCEPT, RELEASE, REJECT = 0, 1, 2, 3     # Kafka's AcknowledgeType numbers
ACK_TYPES = {"gap": GAP, "accept": ACCEPT, "release": RELEASE, "reject": REJECT}
SESSION_ERRORS = {errors.ShareSessionNotFound.code, errors.InvalidShareSessionEpoch.code}
FINAL_EPOCH = -1


class AcknowledgeType:
    """How a record is acknowledged (Kafka's ``AcknowledgeType``)."""
    ACCEPT = ACCEPT
    RELEASE = RELEASE
    REJECT = REJECT


class ShareRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    delivery_count: int        # 1 on the first delivery, 2 after one RELEASE or lock timeout, ...


DEFAULTS = {
    "bootstrap_servers": None,
    "client_id": "pybroker-share-consumer",
    "group_id": None,
    "share_acknowledgement_mode": "implicit",
    "share_acquire_mode": "batch_optimized",
    "fetch_max_wait_ms": 500,
    "fetch_min_bytes": 1,
    "fetch_max_bytes": 50 * 1024 * 1024,
    "max_poll_records": 500,
    "request_timeout_ms": 30_000,
    "retry_backoff_ms": 100,
}

# Kafka's share.acquire.mode (ShareFetch v2's ShareAcquireMode): whole batches, even past
# max.poll.records (the broker's default), or at most max.poll.records per fetch.
ACQUIRE_MODES = {"batch_optimized": 0, "record_limit": 1}

AckCallback = Callable[[dict[TopicPartition, list[int]], "errors.KafkaError | None"], None]


def ack_batches(acks: dict[int, int]) -> list[dict]:
    """{offset: type} as AcknowledgementBatches: runs of consecutive offsets, one type
    each (a run of mixed types carries one type per offset)."""
    out: list[dict] = []
    for offset in sorted(acks):
        kind = acks[offset]
        last = out[-1] if out else None
        if last is not None and last["last_offset"] + 1 == offset and last["acknowledge_types"] == [kind]:
            last["last_offset"] = offset
        else:
            out.append({"first_offset": offset, "last_offset": offset, "acknowledge_types": [kind]})
    return out


class ShareGroupMember(GroupCoordinatorClient):
    """One consumer's membership in one share group: ShareGroupHeartbeat, on the
    consumer's thread for the first join, then on a heartbeat thread."""

    def __init__(self, client: Client, group_id: str, retry_backoff_ms: int = 100):
        super().__init__(client, group_id, group_instance_id=None, session_timeout_ms=45_000,
                         rebalance_timeout_ms=300_000, heartbeat_interval_ms=1000, assignors=[],
                         retry_backoff_ms=retry_backoff_ms)
        self.member_id = str(uuid.uuid4())   # the client's own id (KIP-1082)
        self.generation = 0                  # the member epoch; 0 until the first answer
        self.topics: list[str] = []
        self._raw: list[tuple[str, list[int]]] | None = None   # (topic id, partitions); None: not joined
        self._ids: dict[str, str] = {}       # topic id -> name

    def _body(self, epoch: int) -> dict:
        return {"group_id": self.group_id, "member_id": self.member_id, "member_epoch": epoch,
                "rack_id": None, "subscribed_topic_names": sorted(self.topics) if epoch >= 0 else None}

    def partitions(self) -> list[TopicPartition]:
        """The assignment by topic name (on the consumer's thread: it may read metadata)."""
        with self._lock:
            raw = self._raw or ()
        if any(t not in self._ids for t, _ in raw):
            meta = self.client.refresh()
            self._ids.update({str(i.topic_id): n for n, i in meta.topics.items() if i.topic_id is not None})
        return sorted((self._ids[t], p) for t, ps in raw if t in self._ids for p in ps)

    @property
    def needs_join(self) -> bool:
        return self._raw is None or self.generation == 0 or self.coordinator_unknown

    def _note(self, response: dict, epoch: int) -> None:
        """Apply one answer (on either thread: it only sets fields under the lock)."""
        code = response["error_code"]
        if code in COORDINATOR_CODES:
            self.coordinator_unknown = True
            return
        with self._lock:
            if code in FENCED_CODES:
                self.generation = 0       # join again: the consumer's thread does
                return
            if code:
                errors.raise_for_code(code, f"ShareGroupHeartbeat of {self.group_id!r}: "
                                            f"{response.get('error_message')}")
            if self.generation != epoch:
                return
            self.generation = response["member_epoch"]
            if response.get("heartbeat_interval_ms", 0) > 0:
                self.heartbeat_interval = response["heartbeat_interval_ms"] / 1000.0
            assignment = response.get("assignment")
            if assignment is not None:
                self._raw = [(str(t["topic_id"]), list(t["partitions"])) for t in assignment["topic_partitions"]]

    def join(self) -> None:
        """Heartbeat on the consumer's thread until the member has an epoch and an
        assignment (the first join, or after being fenced or losing the coordinator)."""
        deadline = time.monotonic() + self.client.timeout
        while True:
            try:
                epoch = self.generation
                self._note(self.request(api.SHARE_GROUP_HEARTBEAT, self._body(epoch)), epoch)
                if not self.needs_join:
                    return
            except errors.KafkaError as exc:
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                log.debug("share group %s heartbeat failed, again: %s", self.group_id, exc)
            if time.monotonic() > deadline:
                raise errors.RequestTimedOut(f"share group {self.group_id!r} gave no assignment")
            time.sleep(self.retry_backoff)

    def _heartbeat_loop(self) -> None:
        conn: BrokerConnection | None = None
        address = None
        while not self._stop.wait(self.heartbeat_interval):
            with self._lock:
                epoch, coordinator = self.generation, self._coordinator
            if coordinator is None or epoch == 0 or self.coordinator_unknown:
                continue          # the consumer's thread joins again at its next poll
            if conn is None or address != coordinator:
                if conn is not None:
                    conn.close()
                address = coordinator
                conn = self.client.connect_to(coordinator[1], coordinator[2])
            try:
                self._note(conn.request(api.SHARE_GROUP_HEARTBEAT, self._body(epoch)), epoch)
            except errors.KafkaError as exc:
                log.debug("share group %s heartbeat failed: %s", self.group_id, exc)
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def leave(self) -> None:
        self.stop_heartbeat()
        try:
            self.request(api.SHARE_GROUP_HEARTBEAT, self._body(LEAVE_EPOCH))
        except errors.KafkaError as exc:
            log.debug("leaving share group %s failed: %s", self.group_id, exc)


class ShareConsumer:
    """Read records of a share group; see the module docstring.

    ``ShareConsumer("localhost:9092", group_id="workers")``, ``subscribe([topic])``, then
    ``poll()`` in a loop. Configuration takes Kafka's names as a dict or keywords with
    underscores, as ``Consumer`` does.
    """

    def __init__(self, bootstrap_servers=None, config: dict | None = None, **kwargs):
        if isinstance(bootstrap_servers, dict):
            config, bootstrap_servers = bootstrap_servers, None
        if bootstrap_servers is not None:
            kwargs["bootstrap_servers"] = bootstrap_servers
        cfg = normalize_config(config, kwargs, DEFAULTS, {})
        if not cfg["bootstrap_servers"]:
            raise ValueError("bootstrap_servers is required")
        if not cfg["group_id"]:
            raise ValueError("a share consumer needs a group_id")
        mode = cfg["share_acknowledgement_mode"]
        if mode not in ("implicit", "explicit"):
            raise ValueError(f"share_acknowledgement_mode must be 'implicit' or 'explicit', not {mode!r}")
        self.explicit = mode == "explicit"
        acquire = cfg["share_acquire_mode"]
        if acquire not in ACQUIRE_MODES:
            raise ValueError(f"share_acquire_mode must be 'batch_optimized' or 'record_limit', not {acquire!r}")
        self.acquire_mode = ACQUIRE_MODES[acquire]
        self.config = cfg
        self.client = Client(cfg["bootstrap_servers"], cfg["client_id"], cfg["request_timeout_ms"] / 1000.0,
                             security=ClientSecurity.from_options(cfg))
        self.member = ShareGroupMember(self.client, cfg["group_id"], cfg["retry_backoff_ms"])
        self.max_poll_records = int(cfg["max_poll_records"])
        self._sessions: dict[int, int] = {}                 # leader -> next share session epoch
        self._session_parts: dict[int, set[TopicPartition]] = {}
        self._acks: dict[TopicPartition, dict[int, int]] = {}   # pending: offset -> type
        self._delivered: dict[TopicPartition, set[int]] = {}    # handed out, not yet acknowledged
        self._callbacks: list[AckCallback] = []
        self._buffer: list[ShareRecord] = []
        self._closed = False

    # -- subscription -------------------------------------------------------------

    def subscribe(self, topics: list[str]) -> None:
        self.member.topics = sorted(set(topics))
        with self.member._lock:
            self.member._raw = None

    def subscription(self) -> list[str]:
        return list(self.member.topics)

    def assignment(self) -> list[TopicPartition]:
        return self.member.partitions()

    def unsubscribe(self) -> None:
        self._leave()
        self.member = ShareGroupMember(self.client, self.config["group_id"], self.config["retry_backoff_ms"])

    # -- acknowledgements ---------------------------------------------------------

    def acknowledge(self, record: ShareRecord, type: int | str = ACCEPT) -> None:
        """Acknowledge one delivered record: ACCEPT, RELEASE or REJECT (or their names).
        Sent with the next poll's ShareFetch, or by ``commit_sync``/``commit_async``."""
        kind = ACK_TYPES[type.lower()] if isinstance(type, str) else int(type)
        if kind not in (ACCEPT, RELEASE, REJECT):
            raise ValueError(f"acknowledge type must be ACCEPT, RELEASE or REJECT, not {type!r}")
        tp = (record.topic, record.partition)
        held = self._delivered.get(tp)
        if held is None or record.offset not in held:
            raise errors.InvalidRecordState(
                f"{record.topic}-{record.partition}@{record.offset} is not a record this consumer holds")
        held.discard(record.offset)
        self._acks.setdefault(tp, {})[record.offset] = kind

    def _accept_delivered(self) -> None:
        """Implicit mode: everything handed out and not yet acknowledged is accepted."""
        if self.explicit:
            return
        for tp, offsets in self._delivered.items():
            acks = self._acks.setdefault(tp, {})
            for offset in offsets:
                acks[offset] = ACCEPT
        self._delivered.clear()

    def commit_sync(self) -> dict[TopicPartition, errors.KafkaError | None]:
        """Send every pending acknowledgement with ShareAcknowledge now; the outcome per
        partition (None when it was acknowledged)."""
        self._accept_delivered()
        return self._send_acks(self._pending_by_leader(), closing=False)

    def commit_async(self, callback: AckCallback | None = None) -> None:
        """Send the pending acknowledgements with the next ShareFetch (the next poll) or at
        close; ``callback({tp: offsets}, error)`` runs when the answer arrives."""
        self._accept_delivered()
        if callback is not None:
            self._callbacks.append(callback)

    def _pending_by_leader(self) -> dict[int, dict[TopicPartition, dict[int, int]]]:
        out: dict[int, dict] = {}
        for tp, acks in self._acks.items():
            if acks:
                out.setdefault(self._leader(tp), {})[tp] = acks
        return out

    def _leader(self, tp: TopicPartition) -> int:
        leader = self.client.leader_for(*tp)
        return leader if leader >= 0 else self.client.leader_for(*tp, refresh=True)

    def _send_acks(self, by_leader: dict, closing: bool) -> dict:
        results: dict[TopicPartition, errors.KafkaError | None] = {}
        for leader, acks in by_leader.items():
            epoch = self._sessions.get(leader, 0)
            if epoch == 0 and not closing:
                continue          # no session on that broker: the acks wait for a ShareFetch
            body = {"group_id": self.member.group_id, "member_id": self.member.member_id,
                    "share_session_epoch": FINAL_EPOCH if closing else epoch,
                    "topics": self._topics_body(acks, with_acks=True)}
            try:
                response = self.client.connection(leader).request(api.SHARE_ACKNOWLEDGE, body)
            except errors.KafkaError as exc:
                results.update({tp: exc for tp in acks})
                continue
            if not closing:
                self._sessions[leader] = self._bump(epoch)
            if response["error_code"]:
                exc = errors.for_code(response["error_code"])(response.get("error_message") or "")
                self._reset_session(leader, response["error_code"])
                results.update({tp: exc for tp in acks})
                continue
            results.update(self._ack_results(response, acks))
        self._finish_acks(results)
        return results

    def _ack_results(self, response: dict, acks: dict, key: str = "error_code") -> dict:
        names = self._names_by_id()
        out = {tp: None for tp in acks}
        for t in response["responses"]:
            for p in t["partitions"]:
                tp = (names.get(str(t["topic_id"])), p["partition_index"])
                if tp in out and p.get(key):
                    out[tp] = errors.for_code(p[key])(f"acknowledging {tp[0]}-{tp[1]}")
        return out

    def _finish_acks(self, results: dict) -> None:
        """Drop the acknowledgements answered for, and tell the commit callbacks."""
        if not results:
            return
        sent = {tp: sorted(self._acks.pop(tp, {})) for tp in results}
        failed = next((e for e in results.values() if e is not None), None)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(sent, failed)
            except Exception:   # noqa: BLE001 - a callback must not break the consumer
                log.exception("share acknowledgement callback failed")

    # -- fetching -----------------------------------------------------------------

    def _names_by_id(self) -> dict[str, str]:
        return {str(i.topic_id): name for name, i in self.client.metadata.topics.items() if i.topic_id is not None}

    def _topics_body(self, partitions, with_acks: bool) -> list[dict]:
        by_topic: dict[str, list] = {}
        for tp in sorted(partitions):
            acks = self._acks.get(tp) if with_acks else None
            by_topic.setdefault(tp[0], []).append({
                "partition_index": tp[1], "partition_max_bytes": 0,
                "acknowledgement_batches": ack_batches(acks) if acks else []})
        topics = self.client.metadata.topics
        if any(t not in topics or topics[t].topic_id is None for t in by_topic):
            topics = self.client.refresh(sorted(by_topic)).topics
        return [{"topic_id": uuid.UUID(str(topics[t].topic_id)), "partitions": ps}
                for t, ps in by_topic.items() if t in topics and topics[t].topic_id is not None]

    @staticmethod
    def _bump(epoch: int) -> int:
        return 1 if epoch >= 2**31 - 1 else epoch + 1

    def _reset_session(self, leader: int, code: int) -> None:
        if code in SESSION_ERRORS:
            self._sessions.pop(leader, None)
            self._session_parts.pop(leader, None)

    def poll(self, timeout_ms: int = 1000) -> list[ShareRecord]:
        """Acknowledge the last poll's records (implicit mode), then return up to
        ``max_poll_records`` newly acquired records, waiting up to ``timeout_ms``."""
        if self._closed:
            raise RuntimeError("the share consumer is closed")
        if not self.member.topics:
            raise RuntimeError("subscribe() first")
        self._accept_delivered()
        if self.member.needs_join:
            self.member.join()
            self.member.start_heartbeat()
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            records = self._take()
            if records:
                return records
            wait = int(max(0.0, deadline - time.monotonic()) * 1000)
            self._fetch_once(min(wait, self.config["fetch_max_wait_ms"]))
            if not self._buffer and time.monotonic() >= deadline:
                self._flush_acks_without_session()
                return []

    def _take(self) -> list[ShareRecord]:
        out, self._buffer = self._buffer[:self.max_poll_records], self._buffer[self.max_poll_records:]
        for r in out:
            self._delivered.setdefault((r.topic, r.partition), set()).add(r.offset)
        return out

    def _flush_acks_without_session(self) -> None:
        """Acknowledgements for partitions no longer assigned still go to their leader."""
        assigned = set(self.member.partitions())
        stale = {leader: acks for leader, acks in self._pending_by_leader().items()
                 if not set(acks) & assigned}
        if stale:
            self._send_acks(stale, closing=False)

    def _fetch_once(self, max_wait_ms: int) -> None:
        assigned = self.member.partitions()
        by_leader: dict[int, set[TopicPartition]] = {}
        for tp in assigned:
            leader = self._leader(tp)
            if leader >= 0:
                by_leader.setdefault(leader, set()).add(tp)
        for leader, acks in self._pending_by_leader().items():
            by_leader.setdefault(leader, set())
        # Sessions on brokers that lead nothing of ours any more are closed.
        for leader in [b for b in self._sessions if b not in by_leader]:
            self._close_session(leader)
        if not by_leader:
            time.sleep(min(max_wait_ms, 100) / 1000.0)
            return
        wait = max_wait_ms if len(by_leader) == 1 else min(max_wait_ms, 100)
        for leader, wanted in by_leader.items():
            self._share_fetch(leader, wanted, wait)

    def _share_fetch(self, leader: int, wanted: set[TopicPartition], wait: int) -> None:
        epoch = self._sessions.get(leader, 0)
        known = self._session_parts.get(leader, set())
        acks = self._pending_by_leader().get(leader, {}) if epoch else {}
        if epoch == 0:
            known = set()
        asked = (wanted - known) | set(acks)
        forgotten = known - wanted
        body = {
            "group_id": self.member.group_id, "member_id": self.member.member_id,
            "share_session_epoch": epoch, "max_wait_ms": wait, "min_bytes": self.config["fetch_min_bytes"],
            "max_bytes": self.config["fetch_max_bytes"], "max_records": self.max_poll_records,
            "batch_size": self.max_poll_records, "share_acquire_mode": self.acquire_mode,
            "topics": self._topics_body(asked, with_acks=True),
            "forgotten_topics_data": [{"topic_id": t["topic_id"], "partitions": [p["partition_index"]
                                                                               for p in t["partitions"]]}
                                      for t in self._topics_body(forgotten, with_acks=False)],
        }
        try:
            response = self.client.connection(leader).request(api.SHARE_FETCH, body)
        except (errors.NetworkException, errors.RequestTimedOut) as exc:
            log.debug("ShareFetch to broker %d failed: %s", leader, exc)
            self._sessions.pop(leader, None)
            self.client.refresh([t for t, _ in wanted])
            return
        code = response["error_code"]
        if code:
            self._reset_session(leader, code)
            if code in SESSION_ERRORS or code in COORDINATOR_CODES or errors.for_code(code).retriable:
                log.debug("ShareFetch to broker %d: %s", leader, errors.name_of(code))
                time.sleep(self.member.retry_backoff)
                return
            if code in FENCED_CODES:
                with self.member._lock:
                    self.member.generation = 0
                time.sleep(self.member.retry_backoff)
                return
            errors.raise_for_code(code, f"ShareFetch of group {self.member.group_id!r}: {response.get('error_message')}")
        self._sessions[leader] = self._bump(epoch)
        self._session_parts[leader] = (known | wanted) - forgotten
        if acks:
            self._finish_acks(self._ack_results(response, acks, "acknowledge_error_code"))
        names = self._names_by_id()
        for t in response["responses"]:
            topic = names.get(str(t["topic_id"]))
            if topic is None:
                continue
            for p in t["partitions"]:
                self._handle_partition(topic, p)

    def _handle_partition(self, topic: str, p: dict) -> None:
        tp = (topic, p["partition_index"])
        if p["error_code"]:
            if p["error_code"] in REFRESH_CODES:
                self.client.refresh([topic])
            else:
                log.warning("ShareFetch of %s-%d: %s", topic, tp[1], errors.name_of(p["error_code"]))
            return
        ranges = [(r["first_offset"], r["last_offset"], r["delivery_count"]) for r in p.get("acquired_records") or ()]
        if not ranges:
            return
        counts: dict[int, int] = {}
        got: set[int] = set()
        data = p.get("records") or b""
        for header, view in iter_batches(data):
            if header.is_control or header.last_offset < ranges[0][0] or header.base_offset > ranges[-1][1]:
                continue
            ts_type = "LogAppendTime" if header.timestamp_type else "CreateTime"
            for rec in decode_batch(view):
                count = counts.get(rec.offset)
                if count is None:
                    count = next((n for f, last, n in ranges if f <= rec.offset <= last), None)
                    if count is None:
                        continue
                got.add(rec.offset)
                self._buffer.append(ShareRecord(topic, tp[1], rec.offset, rec.timestamp, ts_type, rec.key,
                                                rec.value, rec.headers, count))
        gaps = {o: GAP for f, last, _ in ranges for o in range(f, last + 1) if o not in got}
        if gaps:
            self._acks.setdefault(tp, {}).update(gaps)

    # -- closing ------------------------------------------------------------------

    def _close_session(self, leader: int) -> None:
        acks = self._pending_by_leader().get(leader, {})
        if self._sessions.get(leader, 0):
            self._send_acks({leader: acks}, closing=True)
        self._sessions.pop(leader, None)
        self._session_parts.pop(leader, None)

    def _leave(self) -> None:
        self._accept_delivered()
        leaders = set(self._sessions) | set(self._pending_by_leader())
        for leader in leaders:
            try:
                self._close_session(leader)
            except errors.KafkaError as exc:
                log.debug("closing the share session on broker %d failed: %s", leader, exc)
        if self.member._raw is not None:
            self.member.leave()
        else:
            self.member.stop_heartbeat()
        self._buffer = []
        self._delivered.clear()

    def close(self) -> None:
        """Acknowledge (implicit mode: accept the last poll's records), close every share
        session (records still held go back at once), leave the group."""
        if self._closed:
            return
        self._closed = True
        try:
            self._leave()
        finally:
            self.member.close()
            self.client.close()

    def __enter__(self) -> "ShareConsumer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
