"""The consumer side of KIP-848 consumer groups (``group_protocol="consumer"``): the
coordinator computes the assignment, the member reconciles with ConsumerGroupHeartbeat.

Life of a member (Kafka's ConsumerMembershipManager)::

    heartbeat epoch 0 with the subscription -> the answer carries a member epoch and the
    target assignment (as topic ids) -> the consumer revokes what is no longer its own
    (committing first) and takes what is new -> the next heartbeat reports what it owns,
    which lets the coordinator hand revoked partitions to their new owners -> heartbeat
    every ``heartbeat_interval_ms`` the coordinator gives; epoch -1 (or -2 for a static
    member) on close. FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID: give up every partition
    and join again with epoch 0.

It plugs into the Consumer where the classic coordinator does (``join`` returns the new
assignment, ``rejoin_needed`` asks the consumer's thread to call it), and reuses its
connection, commit and offset-fetch code: OffsetCommit carries the member epoch where the
classic protocol has the generation. Revocation is incremental, as with the
cooperative-sticky assignor.

Threads: as for the classic coordinator, the heartbeat thread only sets flags and epochs
the consumer's thread acts on at its next poll.
"""
from __future__ import annotations

import logging
import time
import uuid

from pybroker import errors
from pybroker.client.connection import BrokerConnection
from pybroker.client.coordinator import COOPERATIVE, COORDINATOR_CODES, GroupCoordinatorClient
from pybroker.protocol import api

log = logging.getLogger(__name__)

FENCED_CODES = {errors.FencedMemberEpoch.code, errors.UnknownMemberId.code}
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2


class ConsumerGroupMember(GroupCoordinatorClient):
    """One consumer's membership in one KIP-848 group."""

    def __init__(self, client, group_id: str, *, group_instance_id: str | None, rebalance_timeout_ms: int,
                 server_assignor: str | None = None, retry_backoff_ms: int = 100):
        super().__init__(client, group_id, group_instance_id=group_instance_id,
                         session_timeout_ms=rebalance_timeout_ms, rebalance_timeout_ms=rebalance_timeout_ms,
                         heartbeat_interval_ms=1000, assignors=[], retry_backoff_ms=retry_backoff_ms)
        self.server_assignor = server_assignor
        # The member id is the client's own (KIP-1082), kept across rejoins.
        self.member_id = str(uuid.uuid4())
        self.generation = -1          # the member epoch; -1 until the first answer
        self.protocol = COOPERATIVE   # the consumer revokes only what moved
        self._ids: dict[str, str] = {}    # topic id -> name

    # -- membership --------------------------------------------------------------

    def _topic_ids(self, names) -> dict[str, str]:
        meta = self.client.refresh(sorted(names))
        ids = {}
        for name in names:
            info = meta.topics.get(name)
            if info is not None and not info.error_code and info.topic_id is not None:
                ids[name] = str(info.topic_id)
                self._ids[str(info.topic_id)] = name
        return ids

    def _names(self, assignment) -> list[tuple[str, int]]:
        unknown = {str(t["topic_id"]) for t in assignment if str(t["topic_id"]) not in self._ids}
        if unknown:
            meta = self.client.refresh()
            self._ids.update({str(i.topic_id): name for name, i in meta.topics.items() if i.topic_id is not None})
        out = []
        for t in assignment:
            name = self._ids.get(str(t["topic_id"]))
            if name is None:
                log.debug("assigned topic id %s is not in the metadata yet", t["topic_id"])
                continue
            out.extend((name, p) for p in t["partitions"])
        return sorted(out)

    def join(self, subscription_topics, owned, cluster_for):
        """A full heartbeat (subscription and owned partitions); returns the assignment."""
        deadline = time.monotonic() + self.rebalance_timeout_ms / 1000.0 + 10
        while True:
            try:
                return self._heartbeat_full(subscription_topics, owned)
            except errors.KafkaError as exc:
                if time.monotonic() > deadline or not (exc.retriable or exc.code in FENCED_CODES):
                    raise
                if exc.code in FENCED_CODES:
                    owned = []
                log.debug("group %s heartbeat failed, again: %s", self.group_id, exc)
                time.sleep(self.retry_backoff)

    def _heartbeat_full(self, topics, owned):
        with self._lock:
            epoch = max(self.generation, 0)
        ids = self._topic_ids(set(topics) | {t for t, _ in owned})
        mine: dict[str, list[int]] = {}
        for topic, partition in owned:
            if topic in ids:
                mine.setdefault(ids[topic], []).append(partition)
        response = self.request(api.CONSUMER_GROUP_HEARTBEAT, {
            "group_id": self.group_id, "member_id": self.member_id, "member_epoch": epoch,
            "instance_id": self.group_instance_id, "rack_id": None,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "subscribed_topic_names": sorted(topics), "subscribed_topic_regex": None,
            "server_assignor": self.server_assignor,
            "topic_partitions": [{"topic_id": uuid.UUID(t), "partitions": sorted(ps)} for t, ps in sorted(mine.items())],
        })
        code = response["error_code"]
        if code:
            if code in FENCED_CODES:
                with self._lock:
                    self.generation = -1
            errors.raise_for_code(code, f"ConsumerGroupHeartbeat of {self.group_id!r}: {response.get('error_message')}")
        with self._lock:
            self._note_answer(response)
            self.rejoin_needed = False
        assignment = response.get("assignment")
        return sorted(owned) if assignment is None else self._names(assignment["topic_partitions"])

    def _note_answer(self, response: dict) -> None:
        """Under the lock: the member epoch and heartbeat interval of a good answer."""
        self.generation = response["member_epoch"]
        if response.get("heartbeat_interval_ms", 0) > 0:
            self.heartbeat_interval = response["heartbeat_interval_ms"] / 1000.0

    def leave(self) -> None:
        self.stop_heartbeat()
        if self.generation < 0:
            return
        epoch = STATIC_LEAVE_EPOCH if self.group_instance_id is not None else LEAVE_EPOCH
        try:
            self.request(api.CONSUMER_GROUP_HEARTBEAT, {
                "group_id": self.group_id, "member_id": self.member_id, "member_epoch": epoch,
                "instance_id": self.group_instance_id})
        except errors.KafkaError as exc:
            log.debug("leaving group %s failed: %s", self.group_id, exc)
        with self._lock:
            self.generation, self.rejoin_needed = -1, True

    # -- heartbeats --------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        conn: BrokerConnection | None = None
        address = None
        while not self._stop.wait(self.heartbeat_interval):
            with self._lock:
                epoch, coordinator = self.generation, self._coordinator
            if epoch < 0 or coordinator is None:
                continue
            if time.monotonic() - self._last_poll > self._max_poll_interval:
                log.warning("consumer of group %s did not poll within max.poll.interval.ms; leaving the group",
                            self.group_id)
                self._poll_timeout_left = True
                epoch = LEAVE_EPOCH
            if conn is None or address != coordinator:
                if conn is not None:
                    conn.close()
                address = coordinator
                conn = self.client.connect_to(coordinator[1], coordinator[2])
            try:
                response = conn.request(api.CONSUMER_GROUP_HEARTBEAT, {
                    "group_id": self.group_id, "member_id": self.member_id, "member_epoch": epoch,
                    "instance_id": self.group_instance_id})
            except errors.KafkaError as exc:
                log.debug("heartbeat failed: %s", exc)
                conn.close()
                conn = None
                continue
            code = response["error_code"]
            with self._lock:
                if epoch == LEAVE_EPOCH:
                    self.generation, self.rejoin_needed = -1, True
                elif code in COORDINATOR_CODES:
                    self.coordinator_unknown = True
                    self.rejoin_needed = True
                elif code in FENCED_CODES and self.generation == epoch:
                    self.generation, self.rejoin_needed = -1, True
                elif code:
                    log.warning("group %s heartbeat: %s", self.group_id, errors.name_of(code))
                else:
                    changed = response.get("assignment") is not None or response["member_epoch"] != epoch
                    if self.generation == epoch:
                        self._note_answer(response)
                    if changed:
                        # The consumer's thread fetches the assignment with a full heartbeat.
                        self.rejoin_needed = True
        if conn is not None:
            conn.close()
