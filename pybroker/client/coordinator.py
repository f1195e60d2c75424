"""The consumer side of the classic group protocol: membership, heartbeats, offsets.

Life of a member (Kafka's ConsumerCoordinator)::

    FindCoordinator -> JoinGroup (first one without a member id: v4+ answers
    MEMBER_ID_REQUIRED with the id to use) -> the leader runs the assignor over every
    member's Subscription -> SyncGroup (the leader sends the assignments; everyone gets
    its own) -> Heartbeat every heartbeat.interval.ms until the coordinator answers
    REBALANCE_IN_PROGRESS (rejoin), UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION (rejoin as
    new), or LeaveGroup on close.

Threads: the consumer's thread calls everything except ``_heartbeat_loop``, which runs
on a daemon thread with a connection of its own and only ever sets flags the consumer's
thread acts on at its next poll (``rejoin_needed``, ``coordinator_unknown``). It also
enforces max.poll.interval.ms: a consumer that does not poll in time leaves the group,
as Kafka's heartbeat thread does, so its partitions go to members that are alive.
"""
from __future__ import annotations

import logging
import threading
import time

from pybroker import errors
from pybroker.client.cluster import Client
from pybroker.client.connection import BrokerConnection
from pybroker.group.assignors import assignor_for
from pybroker.group.consumer_protocol import (
    Assignment, Subscription, decode_assignment, decode_subscription, encode_assignment,
    encode_subscription,
)
from pybroker.protocol import api

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
PROTOCOL_TYPE = "consumer"
COOPERATIVE = "cooperative-sticky"
# Errors meaning "ask FindCoordinator again".
COORDINATOR_CODES = {errors.NotCoordinator.code, errors.CoordinatorNotAvailable.code,
                     errors.CoordinatorLoadInProgress.code}
# Errors meaning "this member must join again" (with a fresh member id for the first two).
RESET_MEMBER_CODES = {errors.UnknownMemberId.code, errors.FencedInstanceId.code}
REJOIN_CODES = {errors.IllegalGeneration.code, errors.RebalanceInProgress.code} | RESET_MEMBER_CODES


class GroupCoordinatorClient:
    """One consumer's membership in one group, and its committed offsets."""

    def __init__(self, client: Client, group_id: str, *, group_instance_id: str | None,
                 session_timeout_ms: int, rebalance_timeout_ms: int, heartbeat_interval_ms: int,
                 assignors: list[str], retry_backoff_ms: int = 100):
        self.client = client
        self.group_id = group_id
        self.group_instance_id = group_instance_id
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.heartbeat_interval = heartbeat_interval_ms / 1000.0
        self.assignors = [assignor_for(name) for name in assignors]
        self.retry_backoff = retry_backoff_ms / 1000.0
        self.member_id = ""
        self.generation = -1
        self.protocol: str | None = None
        self.is_leader = False
        self.rejoin_needed = True
        self.coordinator_unknown = True
        self._coordinator: tuple[int, str, int] | None = None
        self._conn: BrokerConnection | None = None
        self._lock = threading.Lock()
        self._last_poll = time.monotonic()
        self._max_poll_interval = rebalance_timeout_ms / 1000.0
        self._poll_timeout_left = False
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._async_commits: list[tuple] = []

    # -- coordinator -------------------------------------------------------------

    def connection(self) -> BrokerConnection:
        """The consumer thread's connection to the coordinator (found on demand)."""
        if self._conn is not None and not self.coordinator_unknown:
            return self._conn
        self._coordinator = self._find_coordinator()
        _, host, port = self._coordinator
        if self._conn is not None:
            self._conn.close()
        # JoinGroup may be parked for the whole rebalance timeout.
        timeout = max(self.client.timeout, self.rebalance_timeout_ms / 1000.0 + 5)
        self._conn = self.client.connect_to(host, port, timeout)
        self.coordinator_unknown = False
        return self._conn

    def _find_coordinator(self) -> tuple[int, str, int]:
        deadline = time.monotonic() + self.client.timeout
        while True:
            conn = self.client.any_connection()
            version = conn.version_for(api.FIND_COORDINATOR)
            body = {"key": self.group_id, "key_type": 0, "coordinator_keys": [self.group_id]}
            try:
                response = conn.request(api.FIND_COORDINATOR, body, version)
            except (errors.NetworkException, errors.RequestTimedOut):
                response = self.client.request_any(api.FIND_COORDINATOR, body)
            if version >= 4:
                entry = response["coordinators"][0]
            else:
                entry = response
            code = entry["error_code"]
            if not code:
                return entry["node_id"], entry["host"], entry["port"]
            if not errors.for_code(code).retriable or time.monotonic() > deadline:
                errors.raise_for_code(code, f"FindCoordinator for group {self.group_id!r}")
            time.sleep(self.retry_backoff)

    def request(self, api_key: int, body: dict) -> dict:
        """Send to the coordinator; a NOT_COORDINATOR style answer or a dead socket
        marks the coordinator unknown and raises, the caller retries."""
        self.drain_async_commits()
        conn = self.connection()
        try:
            response = conn.request(api_key, body)
        except (errors.NetworkException, errors.RequestTimedOut):
            self.coordinator_unknown = True
            raise
        if response.get("error_code") in COORDINATOR_CODES:
            self.coordinator_unknown = True
        return response

    # -- membership --------------------------------------------------------------

    def join(self, subscription_topics: list[str], owned: list[TopicPartition],
             cluster_for) -> list[TopicPartition]:
        """Join (or rejoin) and sync; returns this member's new assignment.
        ``cluster_for(topics)`` gives {topic: partition count} for the leader's assignor."""
        deadline = time.monotonic() + self.rebalance_timeout_ms / 1000.0 + 10
        while True:
            try:
                return self._join_once(subscription_topics, owned, cluster_for)
            except errors.KafkaError as exc:
                if time.monotonic() > deadline:
                    raise
                if exc.code in RESET_MEMBER_CODES:
                    with self._lock:
                        self.member_id, self.generation = "", -1
                elif not (exc.retriable or exc.code in REJOIN_CODES or exc.code == errors.MemberIdRequired.code):
                    raise
                log.debug("rejoining group %s after %s", self.group_id, exc)
                time.sleep(self.retry_backoff)

    def _join_once(self, topics: list[str], owned: list[TopicPartition], cluster_for) -> list[TopicPartition]:
        protocols = []
        for assignor in self.assignors:
            sub = Subscription(sorted(topics), None, sorted(owned), self.generation)
            protocols.append({"name": assignor.name, "metadata": encode_subscription(sub)})
        body = {
            "group_id": self.group_id,
            "session_timeout_ms": self.session_timeout_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "member_id": self.member_id,
            "group_instance_id": self.group_instance_id,
            "protocol_type": PROTOCOL_TYPE,
            "protocols": protocols,
            "reason": None,
        }
        response = self.request(api.JOIN_GROUP, body)
        code = response["error_code"]
        if code == errors.MemberIdRequired.code:
            self.member_id = response["member_id"]
            raise errors.MemberIdRequired("joining again with the member id given")
        if code:
            errors.raise_for_code(code, f"JoinGroup of {self.group_id!r}")
        with self._lock:
            self.member_id = response["member_id"]
            self.generation = response["generation_id"]
            self.protocol = response["protocol_name"]
            self.is_leader = response["leader"] == self.member_id
        assignments = []
        if self.is_leader:
            assignments = self._assign(response["members"], cluster_for)
        sync = self.request(api.SYNC_GROUP, {
            "group_id": self.group_id,
            "generation_id": self.generation,
            "member_id": self.member_id,
            "group_instance_id": self.group_instance_id,
            "protocol_type": PROTOCOL_TYPE,
            "protocol_name": self.protocol,
            "assignments": assignments,
        })
        if sync["error_code"]:
            errors.raise_for_code(sync["error_code"], f"SyncGroup of {self.group_id!r}")
        data = sync["assignment"]
        partitions = decode_assignment(data).partitions if data else []
        with self._lock:
            self.rejoin_needed = False
        return sorted(partitions)

    def _assign(self, members: list[dict], cluster_for) -> list[dict]:
        assignor = assignor_for(self.protocol)
        subscriptions = {}
        for m in members:
            sub = decode_subscription(m["metadata"])
            sub.group_instance_id = m.get("group_instance_id")
            subscriptions[m["member_id"]] = sub
        topics = sorted({t for s in subscriptions.values() for t in s.topics})
        result = assignor.assign(cluster_for(topics), subscriptions)
        return [{"member_id": member, "assignment": encode_assignment(Assignment(sorted(tps)))}
                for member, tps in result.items()]

    def leave(self) -> None:
        self.stop_heartbeat()
        if not self.member_id or self.group_instance_id is not None:
            return  # static members keep their place across restarts
        try:
            self.request(api.LEAVE_GROUP, {
                "group_id": self.group_id, "member_id": self.member_id,
                "members": [{"member_id": self.member_id, "group_instance_id": None, "reason": None}],
            })
        except errors.KafkaError as exc:
            log.debug("LeaveGroup failed: %s", exc)
        with self._lock:
            self.member_id, self.generation, self.rejoin_needed = "", -1, True

    def request_rejoin(self) -> None:
        with self._lock:
            self.rejoin_needed = True

    # -- heartbeats --------------------------------------------------------------

    def note_poll(self) -> None:
        self._last_poll = time.monotonic()
        if self._poll_timeout_left:
            self._poll_timeout_left = False
            self.request_rejoin()

    def start_heartbeat(self) -> None:
        if self._heartbeat_thread is None:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop, name=f"pybroker-heartbeat-{self.group_id}", daemon=True)
            self._heartbeat_thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._heartbeat_thread = self._heartbeat_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.heartbeat_interval + 2)

    def _heartbeat_loop(self) -> None:
        conn: BrokerConnection | None = None
        address = None
        while not self._stop.wait(self.heartbeat_interval):
            with self._lock:
                member_id, generation = self.member_id, self.generation
                stable = not self.rejoin_needed and generation >= 0
                coordinator = self._coordinator
            if not stable or coordinator is None:
                continue
            if time.monotonic() - self._last_poll > self._max_poll_interval:
                log.warning("consumer of group %s did not poll within max.poll.interval.ms; leaving the group",
                            self.group_id)
                self._poll_timeout_left = True
                body = {"group_id": self.group_id, "member_id": member_id,
                        "members": [{"member_id": member_id, "group_instance_id": None, "reason": None}]}
                api_key = api.LEAVE_GROUP
            else:
                body = {"group_id": self.group_id, "generation_id": generation, "member_id": member_id,
                        "group_instance_id": self.group_instance_id}
                api_key = api.HEARTBEAT
            if conn is None or address != coordinator:
                if conn is not None:
                    conn.close()
                address = coordinator
                conn = self.client.connect_to(coordinator[1], coordinator[2], self.session_timeout_ms / 1000.0)
            try:
                response = conn.request(api_key, body)
            except errors.KafkaError as exc:
                log.debug("heartbeat failed: %s", exc)
                conn.close()
                continue
            code = response.get("error_code", 0)
            with self._lock:
                if api_key == api.LEAVE_GROUP:
                    self.member_id, self.generation, self.rejoin_needed = "", -1, True
                elif code in COORDINATOR_CODES:
                    self.coordinator_unknown = True
                    self.rejoin_needed = True
                elif code in RESET_MEMBER_CODES and self.generation == generation:
                    self.member_id, self.generation, self.rejoin_needed = "", -1, True
                elif code in REJOIN_CODES:
                    self.rejoin_needed = True
        if conn is not None:
            conn.close()

    # -- offsets -----------------------------------------------------------------

    def _commit_body(self, offsets: dict[TopicPartition, int], metadata: str) -> dict:
        topics: dict[str, list] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            topics.setdefault(topic, []).append({
                "partition_index": partition, "committed_offset": offset,
                "committed_leader_epoch": -1, "commit_timestamp": -1,
                "committed_metadata": metadata,
            })
        with self._lock:
            generation, member_id = self.generation, self.member_id
        return {
            "group_id": self.group_id,
            "generation_id_or_member_epoch": generation,
            "member_id": member_id,
            "group_instance_id": self.group_instance_id,
            "retention_time_ms": -1,
            "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
        }

    @staticmethod
    def _commit_errors(response: dict) -> errors.KafkaError | None:
        for t in response["topics"]:
            for p in t["partitions"]:
                if p["error_code"]:
                    cls = errors.for_code(p["error_code"])
                    return cls(f"commit of {t['name']}-{p['partition_index']} failed: {cls.message}")
        return None

    def commit(self, offsets: dict[TopicPartition, int], metadata: str = "") -> None:
        """OffsetCommit and wait; raises the first partition error (REBALANCE_IN_PROGRESS,
        ILLEGAL_GENERATION ... mark the member for rejoin as well)."""
        if not offsets:
            return
        deadline = time.monotonic() + self.client.timeout
        while True:
            try:
                response = self.request(api.OFFSET_COMMIT, self._commit_body(offsets, metadata))
            except (errors.NetworkException, errors.RequestTimedOut):
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.retry_backoff)
                continue
            exc = self._commit_errors(response)
            if exc is None:
                return
            if exc.code in REJOIN_CODES:
                self.request_rejoin()
            if exc.retriable and time.monotonic() < deadline:
                time.sleep(self.retry_backoff)
                continue
            raise exc

    def commit_async(self, offsets: dict[TopicPartition, int], callback=None) -> None:
        """Send OffsetCommit without waiting; its answer is read (and ``callback(offsets,
        exception)`` called) before the next request on this connection or at close."""
        if not offsets:
            if callback is not None:
                callback(offsets, None)
            return
        self.drain_async_commits()
        try:
            conn = self.connection()
            pending = conn.send_request(api.OFFSET_COMMIT, self._commit_body(offsets, ""))
        except errors.KafkaError as exc:
            self.coordinator_unknown = True
            if callback is not None:
                callback(offsets, exc)
            return
        self._async_commits.append((conn, pending, dict(offsets), callback))

    def drain_async_commits(self) -> None:
        while self._async_commits:
            conn, pending, offsets, callback = self._async_commits.pop(0)
            try:
                exc = self._commit_errors(conn.read_response(api.OFFSET_COMMIT, pending))
            except errors.KafkaError as err:
                self.coordinator_unknown = True
                exc = err
            if exc is not None and exc.code in REJOIN_CODES:
                self.request_rejoin()
            if callback is not None:
                try:
                    callback(offsets, exc)
                except Exception:
                    log.exception("commit callback failed")
            elif exc is not None:
                log.warning("asynchronous commit failed: %s", exc)

    def fetch_committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Committed offsets (None where the group has none)."""
        topics: dict[str, list[int]] = {}
        for topic, partition in partitions:
            topics.setdefault(topic, []).append(partition)
        body = {"group_id": self.group_id, "require_stable": False,
                "topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]}
        deadline = time.monotonic() + self.client.timeout
        while True:
            try:
                response = self.request(api.OFFSET_FETCH, body)
            except (errors.NetworkException, errors.RequestTimedOut):
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.retry_backoff)
                continue
            code = response.get("error_code", 0)
            if code and errors.for_code(code).retriable and time.monotonic() < deadline:
                time.sleep(self.retry_backoff)
                continue
            if code:
                errors.raise_for_code(code, f"OffsetFetch of group {self.group_id!r}")
            out: dict[TopicPartition, int | None] = {}
            for t in response["topics"]:
                for p in t["partitions"]:
                    if p["error_code"]:
                        errors.raise_for_code(p["error_code"], f"OffsetFetch of {t['name']}-{p['partition_index']}")
                    offset = p["committed_offset"]
                    out[(t["name"], p["partition_index"])] = offset if offset >= 0 else None
            return out

    def close(self) -> None:
        self.stop_heartbeat()
        try:
            self.drain_async_commits()
        finally:
            if self._conn is not None:
                self._conn.close()
