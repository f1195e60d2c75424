"""Fetch (1): long poll over partitions, answering with byte ranges of segment files that
the connection sends with ``os.sendfile``.

Sizing follows KIP-74: the response holds at most ``max_bytes``, each partition at most
``partition_max_bytes``, only whole batches — except that the first partition with data
returns at least one whole batch even if it is larger, so a consumer can never get stuck
behind a big batch.

Consumers (``replica_id`` -1) read only below the high watermark, from the leader — or,
from v11 (KIP-392), from any replica, below that replica's high watermark (a follower
learns it from the leader's fetch answers); with a ``replica.selector.class`` a leader
answers a consumer whose ``rack_id`` matches an in-sync follower's rack with that
follower as ``preferred_read_replica`` and no records (pybroker.broker.replica_selector).
A consumer's offset beyond a follower's log end gets OFFSET_OUT_OF_RANGE there, its
``current_leader_epoch`` is checked against the follower's. read_committed consumers
(isolation_level 1) read only below the last stable offset, with the aborted transactions overlapping what they get (from the ``.txnindex``); a debugging consumer (``replica_id`` -2) may ask any replica, for what lies below that
replica's high watermark; follower replicas (``replica_id`` >= 0) read up to the log end, and their fetch
offset tells the leader their log end (the high watermark and ISR follow from it). A
``current_leader_epoch`` older than the partition's gets FENCED_LEADER_EPOCH, a newer one
UNKNOWN_LEADER_EPOCH (KIP-320). From v12 a consumer's ``last_fetched_epoch`` is checked
against the leader-epoch cache and a divergence is answered with ``diverging_epoch``.

Long poll: if fewer than ``min_bytes`` are ready, the request waits (up to ``max_wait_ms``)
for an append or a high-watermark advance on any of its partitions, then answers with
what is there.

Positions only: a follower that read the records from the leader's shared-memory tail
ring still fetches, to report its log end (the ISR and high watermark follow from it) and
learn the high watermark, but with ``max_bytes`` 0. Such a fetch carries no record bytes
and its long poll ends as soon as a partition's log end passes the fetch offset or its
high watermark passes what that follower was last told.

Client quotas: a consumer with a ``consumer_byte_rate`` has ``max_bytes`` capped to what
its quota window allows, and the response's record bytes counted before it is sent; over
the quota it gets an empty response with ``throttle_time_ms`` and a muted connection
(pybroker.broker.quotas). Followers are not subject to client quotas. A throttled fetch
of a session is answered with the session's id and no partitions; the session's state is
left as it was, so the next fetch brings what this one would have.

Fetch sessions (KIP-227, pybroker.broker.fetch_session): a request with a session id and
epoch > 0 fetches every partition of its session (with the cached fetch state, updated by
the partitions it lists) and is answered with those that changed; its long poll waits on
all of them.

Topic ids (v13+, KIP-516): topics are asked and answered by id. The handler turns the
ids into names on the way in (an id no topic has is answered UNKNOWN_TOPIC_ID), and each
partition's entry keeps the id it was asked by: a session's later round whose topic was
deleted and made again under the same name answers UNKNOWN_TOPIC_ID for it rather than
serving the new topic's records. v15's ``replica_state`` carries the replica id.

Authorization (with an authorizer): a consumer needs READ on each topic, a follower
CLUSTER_ACTION on the cluster; the partitions of a topic it may not read are answered
TOPIC_AUTHORIZATION_FAILED, as Kafka does, and the rest are served.
"""
from __future__ import annotations

import asyncio
import time
import uuid

from pybroker.broker.authorization import allowed, allowed_on_cluster
from pybroker.broker.fetch_session import FINAL_EPOCH, INITIAL_EPOCH, INVALID_SESSION_ID, next_epoch
from pybroker.broker.partition import monotonic_ms
from pybroker.broker.replica_selector import NO_PREFERRED_REPLICA, preferred_read_replica
from pybroker.broker.topic_ids import TopicNames
from pybroker.errors import (FetchSessionIdNotFound, InvalidFetchSessionEpoch, KafkaError, OffsetOutOfRange,
                             TopicAuthorizationFailed, UnknownTopicId)
from pybroker.protocol.primitives import ZERO_UUID
from pybroker.security.acls import CLUSTER_ACTION, READ, TOPIC

READ_COMMITTED = 1
# Kafka's debugging-consumer replica id: served by any replica, leader or follower, up to
# that replica's high watermark. A broker refetching a quarantined range from another
# replica (pybroker.broker.replica_repair) asks this way.
DEBUGGING_REPLICA_ID = -2


class _FdFile:
    """The minimal file object asyncio's sendfile needs around a raw fd."""

    mode = "rb"

    def __init__(self, fd: int, name: str):
        self._fd = fd
        self.name = name

    def fileno(self) -> int:
        return self._fd

    def seek(self, offset: int, whence: int = 0) -> int:
        import os

        return os.lseek(self._fd, offset, whence)


class SendfileRegion:
    """A byte range of a segment file inside a response; released once sent (or dropped)."""

    is_file_region = True

    def __init__(self, file_slice, name: str):
        self._slice = file_slice
        self.position = file_slice.position
        self.length = file_slice.length
        self.file = _FdFile(file_slice.fd, name)
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slice.release()


def release_regions(chunks) -> None:
    for chunk in chunks:
        if getattr(chunk, "is_file_region", False):
            chunk.release()


def _read_partitions(broker, body: dict, regions: list, first: bool = True,
                     denied: frozenset = frozenset(), version: int = 4) -> tuple[list, int, bool, bool]:
    """Build the response topics. Returns (responses, bytes of records, whether to answer
    now (an error, a diverging epoch, a preferred read replica), any news for a
    positions-only fetch). ``first`` is set on the first pass of a long poll: a follower's
    fetch offset is recorded then, not again on each wake-up. Topics in ``denied`` are
    answered TOPIC_AUTHORIZATION_FAILED. ``version``: the request's (v11+ consumers may
    read from followers)."""
    replica_id = body.get("replica_id", -1)
    # Kafka's FetchParams.fetchOnlyLeader: a consumer's fetch carries client metadata from
    # v11 on, and may then be served by any replica (KIP-392).
    follower_reads = replica_id == -1 and version >= 11
    select = broker.replica_selector if follower_reads else None
    client_rack = body.get("rack_id") or None
    replicas = getattr(broker, "replicas", None)
    shm = getattr(broker, "shm", None)
    positions_only = replica_id >= 0 and body.get("max_bytes", 1) == 0
    news = False
    remaining = max(0, min(body.get("max_bytes", 0x7FFFFFFF), broker.config.fetch_max_bytes))
    committed = body.get("isolation_level", 0) == READ_COMMITTED
    min_one = True
    total = 0
    answer_now = False
    responses = []
    for topic in body["topics"]:
        name = topic["topic"]
        parts = []
        for req in topic["partitions"]:
            index = req["partition"]
            entry = {
                "partition_index": index,
                "error_code": 0,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": [] if committed else None,
                "preferred_read_replica": -1,
                "records": b"",
            }
            try:
                if "topic_id" in req and _not_the_topic(broker, name, req["topic_id"]):
                    raise UnknownTopicId()       # unknown, or deleted and made again since
                if name in denied:
                    raise TopicAuthorizationFailed()
                partition = broker.logs.get_partition(name, index)
                if replica_id != DEBUGGING_REPLICA_ID:
                    if not follower_reads:
                        partition.require_leader()
                    partition.check_leader_epoch(req.get("current_leader_epoch", -1))
                if select is not None and partition.is_leader and _redirect(broker, select, partition, req, entry,
                                                                           client_rack):
                    answer_now = True
                    parts.append(entry)
                    continue
                if replica_id >= 0:
                    if first:
                        hw_before = partition.high_watermark
                        partition.on_follower_fetch(replica_id, req["fetch_offset"], req.get("log_start_offset", -1))
                        if replicas is not None:
                            replicas.on_follower_fetch(partition)
                        if shm is not None and partition.high_watermark != hw_before:
                            shm.mark_dirty(partition)
                    max_offset = None
                    lso = partition.high_watermark
                else:
                    lso = partition.last_stable_offset
                    max_offset = lso if committed else partition.high_watermark
                    if _diverging(partition, req, entry):
                        answer_now = True
                        parts.append(entry)
                        continue
                hw = partition.high_watermark
                entry["high_watermark"] = hw
                entry["last_stable_offset"] = lso
                entry["log_start_offset"] = partition.log_start_offset
                if replica_id >= 0:
                    follower = partition.followers.get(replica_id)
                    if follower is not None:
                        news = news or (positions_only and hw > follower.high_watermark_sent)
                        follower.high_watermark_sent = hw
                if positions_only:
                    fetch_offset = req["fetch_offset"]
                    if not partition.log_start_offset <= fetch_offset <= partition.log_end_offset:
                        raise OffsetOutOfRange(
                            f"offset {fetch_offset} is outside [{partition.log_start_offset}, "
                            f"{partition.log_end_offset}] of {name}-{index}")
                    news = news or partition.log_end_offset > fetch_offset
                    parts.append(entry)
                    continue
                limit = min(req["partition_max_bytes"], remaining)
                if limit > 0 or min_one:
                    found = partition.log.read(req["fetch_offset"], limit, max_offset=max_offset, min_one=min_one)
                    if found is not None:
                        if committed and replica_id < 0:
                            entry["aborted_transactions"] = [
                                {"producer_id": t.producer_id, "first_offset": t.first_offset}
                                for t in partition.log.collect_aborted_txns(req["fetch_offset"], found.last_offset + 1, lso)]
                        region = SendfileRegion(found, f"{name}-{index}")
                        regions.append(region)
                        entry["records"] = region
                        total += region.length
                        remaining -= region.length
                        min_one = False
            except KafkaError as exc:
                # As Kafka's ReplicaManager.createLogReadResult: an error carries no offsets.
                entry.update(error_code=exc.code, high_watermark=-1, last_stable_offset=-1, log_start_offset=-1)
                answer_now = True
            parts.append(entry)
        responses.append({"topic": name, "partitions": parts})
    return responses, total, answer_now, news


def _not_the_topic(broker, name: str, topic_id) -> bool:
    topic = broker.image.topics.get(name)
    return topic is None or str(topic.topic_id) != str(topic_id)


def _redirect(broker, select, partition, req: dict, entry: dict, client_rack: str | None) -> bool:
    """KIP-392 on the leader: when the replica selector picks a follower for this
    consumer, answer with it as ``preferred_read_replica`` and the leader's offsets, no
    records (Kafka's ReplicaManager.readFromLog skips the read)."""
    preferred = preferred_read_replica(select, partition, broker.image.brokers, client_rack,
                                       req["fetch_offset"], monotonic_ms())
    if preferred == NO_PREFERRED_REPLICA:
        return False
    entry["preferred_read_replica"] = preferred
    entry["high_watermark"] = partition.high_watermark
    entry["last_stable_offset"] = partition.last_stable_offset
    entry["log_start_offset"] = partition.log_start_offset
    return True


def _diverging(partition, req: dict, entry: dict) -> bool:
    """KIP-320: a consumer that last fetched epoch E up to fetch_offset has diverged if
    this log's epoch E (or the largest below it) ends before fetch_offset."""
    last_epoch = req.get("last_fetched_epoch", -1)
    if last_epoch < 0:
        return False
    epoch, end = partition.epochs.end_offset_for(last_epoch, partition.log_end_offset)
    if epoch < 0 or (epoch == last_epoch and end >= req["fetch_offset"]):
        return False
    entry["diverging_epoch"] = {"epoch": epoch, "end_offset": end}
    entry["high_watermark"] = entry["last_stable_offset"] = partition.high_watermark
    entry["log_start_offset"] = partition.log_start_offset
    return True


# From v13 Fetch names topics by id (KIP-516); v15 moves the replica id into replica_state.
TOPIC_ID_VERSION = 13
REPLICA_STATE_VERSION = 15
# The name a request's unknown topic id goes by while it is served: no topic name can
# hold a NUL, so it never meets a real topic (and answers UNKNOWN_TOPIC_ID).
_UNKNOWN_ID = "\x00"


def _by_id_to_by_name(broker, body: dict, version: int) -> dict:
    """A v13+ request in the names the rest of the handler speaks; each partition's
    entry keeps the id it was asked by (a session's later rounds check it). Returns
    name -> the id the request gave."""
    if version >= REPLICA_STATE_VERSION:
        state = body.get("replica_state") or {}
        body["replica_id"] = state.get("replica_id", -1)
    names = TopicNames(broker)
    asked = {}
    for topic in body["topics"]:
        name = topic["topic"] = names.get(topic["topic_id"]) or _UNKNOWN_ID + str(topic["topic_id"])
        asked[name] = topic["topic_id"]
        for req in topic["partitions"]:
            req["topic_id"] = topic["topic_id"]
    for topic in body.get("forgotten_topics_data") or ():
        topic["topic"] = names.get(topic["topic_id"]) or _UNKNOWN_ID + str(topic["topic_id"])
    return asked


def _by_name_to_by_id(broker, answer: dict, asked: dict) -> None:
    topics = broker.image.topics
    for entry in answer["responses"]:
        name = entry["topic"]
        if name in asked:
            entry["topic_id"] = asked[name]
        elif name.startswith(_UNKNOWN_ID):
            entry["topic_id"] = uuid.UUID(name[1:])
        elif name in topics:
            entry["topic_id"] = uuid.UUID(str(topics[name].topic_id))
        else:
            entry["topic_id"] = ZERO_UUID


async def handle(broker, request) -> dict:
    if request.api_version < TOPIC_ID_VERSION:
        return await _handle(broker, request)
    asked = _by_id_to_by_name(broker, request.body, request.api_version)
    answer = await _handle(broker, request, asked)
    _by_name_to_by_id(broker, answer, asked)
    return answer


async def _handle(broker, request, asked: dict | None = None) -> dict:
    body = request.body
    context = _session_context(broker, body)
    if isinstance(context, dict):
        return context
    session, expected_epoch = context
    quota = broker.quotas.fetch
    quota_applies = quota.enabled and body.get("replica_id", -1) < 0
    if quota_applies:
        cap = quota.max_value_in_window(request.principal, request.client_id)
        if cap is not None:
            body["max_bytes"] = min(body.get("max_bytes", 0x7FFFFFFF), int(cap))
    fetch_body = body if session is None else dict(body, topics=session.request_topics())
    if asked is not None and session is not None:
        # A session's partitions answer by the ids they were first asked by.
        for topic in fetch_body["topics"]:
            if topic["partitions"] and "topic_id" in topic["partitions"][0]:
                asked.setdefault(topic["topic"], topic["partitions"][0]["topic_id"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0, body.get("max_wait_ms", 0)) / 1000.0
    min_bytes = body.get("min_bytes", 1)
    first = True
    denied = _denied_topics(broker, request, fetch_body)
    while True:
        regions: list[SendfileRegion] = []
        responses, total, answer_now, news = _read_partitions(broker, fetch_body, regions, first, denied,
                                                              request.api_version)
        first = False
        wait = deadline - loop.time()
        if total >= min_bytes or news or answer_now or wait <= 0 or broker.stopping:
            break
        release_regions(regions)
        if not await _wait_for_append(broker, fetch_body, wait) and not total:
            # The wait ran out with no append, high-watermark move or state change on any
            # of the partitions: the answer is what was just read (no records in it).
            break
    session_id = INVALID_SESSION_ID
    if session is not None:
        if session.epoch != expected_epoch:
            # Another request of this session was served meanwhile (a duplicate).
            release_regions(regions)
            return _session_error(InvalidFetchSessionEpoch.code, session.id)
        session_id = session.id
    if quota_applies and _throttled(broker, request, quota, total):
        release_regions(regions)
        return {"throttle_time_ms": request.throttle_ms, "error_code": 0, "session_id": session_id, "responses": []}
    if session is not None:
        responses = session.filter_response(responses)
    elif expected_epoch == INITIAL_EPOCH:
        requests = {(topic["topic"], req["partition"]): req for topic in body["topics"] for req in topic["partitions"]}
        session_id = broker.fetch_sessions.maybe_create(
            body.get("replica_id", -1) >= 0, responses, requests, _now_ms())
    if total:
        _count_bytes_out(broker, responses, body.get("replica_id", -1) >= 0)
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "session_id": session_id,
        "responses": responses,
    }


def empty_for_throttle(broker, request, body: dict) -> None:
    """A consumer fetch over its request_percentage is answered empty, as Kafka does: its
    records are not sent, and the bytes counted against consumer_byte_rate taken back."""
    regions = [p["records"] for t in body["responses"] for p in t["partitions"]
               if isinstance(p["records"], SendfileRegion)]
    release_regions(regions)
    body["responses"] = []
    if request.quota_bytes:
        broker.quotas.fetch.unrecord(request.principal, request.client_id, request.quota_bytes,
                                     time.monotonic() * 1000.0)
        request.quota_bytes = 0


def _throttled(broker, request, quota, nbytes: int) -> bool:
    """Kafka's fetch quota: the response's bytes are counted before it is sent; over
    ``consumer_byte_rate`` they are taken back and the client gets an empty response
    with the throttle time (and a muted connection) instead."""
    now = time.monotonic() * 1000.0
    throttle = quota.record(request.principal, request.client_id, nbytes, now)
    if not throttle:
        request.quota_bytes = nbytes
        return False
    quota.unrecord(request.principal, request.client_id, nbytes, now)
    request.throttle_ms = throttle
    return True


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


def _session_error(code: int, session_id: int = INVALID_SESSION_ID) -> dict:
    return {"throttle_time_ms": 0, "error_code": code, "session_id": session_id, "responses": []}


def _session_context(broker, body: dict):
    """What the request's session fields ask for (see pybroker.broker.fetch_session):
    (None, FINAL_EPOCH) sessionless, (None, INITIAL_EPOCH) full with a new session,
    (session, epoch it must have when answering) incremental, or an error answer."""
    cache = broker.fetch_sessions
    session_id = body.get("session_id", INVALID_SESSION_ID)
    epoch = body.get("session_epoch", FINAL_EPOCH)
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
        if session_id != INVALID_SESSION_ID:
            cache.remove(session_id)
        return None, epoch
    session = cache.get(session_id)
    if session is None:
        return _session_error(FetchSessionIdNotFound.code)
    if session.epoch != epoch:
        return _session_error(InvalidFetchSessionEpoch.code)
    session.update(body["topics"], body.get("forgotten_topics_data") or [])
    if not session.partitions:
        cache.remove(session.id)
        return None, FINAL_EPOCH
    cache.touch(session, _now_ms())
    session.epoch = next_epoch(session.epoch)
    return session, session.epoch


def _denied_topics(broker, request, body: dict) -> frozenset:
    if broker.authorizer is None:
        return frozenset()
    names = {topic["topic"] for topic in body["topics"]}
    if body.get("replica_id", -1) >= 0:
        return frozenset() if allowed_on_cluster(broker, request, CLUSTER_ACTION) else frozenset(names)
    return frozenset(n for n in names if not allowed(broker, request, READ, TOPIC, n))


def _count_bytes_out(broker, responses: list, follower: bool) -> None:
    """BytesOut (consumers) or ReplicationBytesOut (followers), per topic of the answer."""
    stats = broker.stats
    for topic in responses:
        nbytes = sum(p["records"].length for p in topic["partitions"] if isinstance(p["records"], SendfileRegion))
        if nbytes:
            stats.on_fetch(topic["topic"], nbytes, follower)


async def _wait_for_append(broker, body: dict, timeout: float) -> bool:
    watched = [broker.logs.partitions.get((topic["topic"], req["partition"]))
               for topic in body["topics"] for req in topic["partitions"]]
    return await wait_for_append(broker, [p for p in watched if p is not None], timeout)


async def wait_for_append(broker, watched: list, timeout: float) -> bool:
    """Until an append, a high-watermark advance or a new state on any of ``watched`` (or
    the broker stops), at most ``timeout`` seconds. True if one came, False on timeout."""
    fut = asyncio.get_running_loop().create_future()
    for partition in watched:
        partition.register_waiter(fut)
    broker.register_stop_waiter(fut)
    try:
        await asyncio.wait_for(fut, timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        for partition in watched:
            partition.unregister_waiter(fut)
        broker.unregister_stop_waiter(fut)
