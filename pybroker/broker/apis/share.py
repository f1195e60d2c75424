"""KIP-932 share groups: ShareGroupHeartbeat (76), ShareGroupDescribe (77), ShareFetch
(78), ShareAcknowledge (79), and the offsets admin APIs DescribeShareGroupOffsets (90),
AlterShareGroupOffsets (91) and DeleteShareGroupOffsets (92).

Membership and every share-partition's state (which records are acquired, by whom, and
their delivery counts) live with the group coordinator in the supervisor, so a partition
leader change never loses or forks that state. A ShareFetch, sent to the partition
leaders like a Fetch:

1. checks the member's *share session* on this broker (epoch 0 opens it with the
   partitions asked for, each later request carries the next epoch and may add partitions
   or forget some, -1 closes it; a wrong epoch is INVALID_SHARE_SESSION_EPOCH, a missing
   session SHARE_SESSION_NOT_FOUND);
2. hands the coordinator the acknowledgements it carries and, in the same call, asks it
   to acquire up to ``max_records`` records below each led partition's high watermark
   (one round trip to the supervisor) — in whole batches, past ``max_records`` to the
   end of the batch that reaches it, unless the request asks for the record-limit mode —
   and answers with the whole batches that hold them, read from the segment files (sendfile, like Fetch) and the acquired ranges with
   their delivery counts. With nothing to acquire it waits up to ``max_wait_ms`` for an append.
Records acquired but not sent (the answer's byte budget ran out) go back at once.

Authorization (with an authorizer), as Kafka's: heartbeats, ShareFetch and
ShareAcknowledge need READ on the group (GROUP_AUTHORIZATION_FAILED), ShareFetch READ on
each topic (TOPIC_AUTHORIZATION_FAILED for its partitions); the describe APIs need
DESCRIBE on the group (and on each topic whose offsets they show).
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from pybroker import errors
from pybroker.broker.apis.consumer_group import denied_group, group_heartbeat_refusal, heartbeat_answer
from pybroker.broker.authorization import allowed, operations
from pybroker.broker.topic_ids import TopicNames
from pybroker.broker.apis.fetch import SendfileRegion, release_regions, wait_for_append
from pybroker.group.consumer_group import heartbeat_error
from pybroker.security.acls import DESCRIBE, GROUP, READ, TOPIC

FINAL_EPOCH = -1
INITIAL_EPOCH = 0
# Kafka's max.share.session.cache.slots is 1,000 per broker: the oldest session goes first.
MAX_SESSIONS = 1000
BATCH_OPTIMIZED = 0            # ShareAcquireMode: 0 batch-optimized, 1 record-limit
MAX_SHARE_ENDS = 100_000       # share-partitions whose SPEO a broker remembers


@dataclass
class ShareSession:
    epoch: int
    partitions: set = field(default_factory=set)    # (topic, partition)


def _sessions(broker) -> dict:
    sessions = getattr(broker, "share_sessions", None)
    if sessions is None:
        sessions = broker.share_sessions = {}
    return sessions


def _next_epoch(epoch: int) -> int:
    return 1 if epoch >= 2**31 - 1 else epoch + 1




# -- membership ---------------------------------------------------------------------------

async def heartbeat(broker, request) -> dict:
    body = request.body
    peer = request.peer[0] if request.peer else ""
    try:
        refusal = group_heartbeat_refusal(broker, request)
        if refusal is not None:
            raise refusal
        response = await broker.controller.group("share_heartbeat", body["group_id"], {
            "member_id": body["member_id"], "member_epoch": body["member_epoch"], "rack_id": body.get("rack_id"),
            "subscribed_topic_names": body.get("subscribed_topic_names"),
            "client_id": request.client_id or "", "client_host": f"/{peer}" if peer else "",
        })
    except errors.KafkaError as exc:
        response = heartbeat_error(exc.code, str(exc))
    return heartbeat_answer(response)


async def describe(broker, request) -> dict:
    names = request.body["group_ids"]
    permitted = [g for g in names if allowed(broker, request, DESCRIBE, GROUP, g)]
    groups = await broker.controller.group("share_group_describe", "", {"group_ids": permitted}) if permitted else []
    for group in groups:
        if request.body.get("include_authorized_operations", False):
            group["authorized_operations"] = operations(broker, request, GROUP, group["group_id"])
        for member in group["members"]:
            for tp in member["assignment"]["topic_partitions"]:
                tp["topic_id"] = uuid.UUID(tp["topic_id"])
    by_id = {g["group_id"]: g for g in groups}
    return {"throttle_time_ms": 0, "groups": [by_id.get(g) or denied_group(g) for g in names]}


async def describe_offsets(broker, request) -> dict:
    """Each share-partition's start offset (SPSO) and lag: the records below the high
    watermark not yet acknowledged or archived, as Kafka computes it from the partition's
    end offset. The high watermark is this broker's own for the partitions it leads, else
    the one the coordinator host knows from the leader (shared memory, or the leader's
    latest report); -1 when neither is known (no leader)."""
    topics = broker.image.topics
    out = []
    for group in request.body["groups"]:
        asked = None if group.get("topics") is None else \
            {t["topic_name"]: list(t["partitions"]) for t in group["topics"]}
        if not allowed(broker, request, DESCRIBE, GROUP, group["group_id"]):
            out.append({"group_id": group["group_id"], "topics": [], "error_code": errors.GroupAuthorizationFailed.code,
                        "error_message": f"Not authorized to describe group {group['group_id']}"})
            continue
        try:
            rows = await broker.controller.group("share_offsets", group["group_id"], {"topics": asked})
        except errors.KafkaError as exc:
            out.append({"group_id": group["group_id"], "topics": [], "error_code": exc.code,
                        "error_message": str(exc)})
            continue
        by_topic: dict[str, list] = {}
        for topic, index, start, done, leader_high_watermark in rows:
            state = broker.image.partitions.get((topic, index))
            entry = {"partition_index": index, "start_offset": start,
                     "leader_epoch": state.leader_epoch if state else -1, "lag": -1, "error_code": 0,
                     "error_message": None}
            if not allowed(broker, request, DESCRIBE, TOPIC, topic):
                if asked is None:
                    continue  # every topic asked: those it may not describe are left out
                entry["error_code"] = errors.TopicAuthorizationFailed.code
            elif topic not in topics or state is None:
                entry["error_code"] = errors.UnknownTopicOrPartition.code
            elif start >= 0:
                high_watermark = leader_high_watermark
                try:
                    partition = broker.logs.get_partition(topic, index)
                    partition.require_leader()
                    high_watermark = partition.high_watermark
                except errors.KafkaError:
                    pass    # led elsewhere: the leader's, as the coordinator host knows it
                if high_watermark >= 0:
                    entry["lag"] = max(0, high_watermark - start - done)
            by_topic.setdefault(topic, []).append(entry)
        out.append({"group_id": group["group_id"], "error_code": 0, "error_message": None, "topics": [
            {"topic_name": t, "topic_id": uuid.UUID(str(topics[t].topic_id)) if t in topics else uuid.UUID(int=0),
             "partitions": parts} for t, parts in by_topic.items()]})
    return {"throttle_time_ms": 0, "groups": out}


def _topic_id(broker, name: str) -> uuid.UUID:
    topic = broker.image.topics.get(name)
    return uuid.UUID(str(topic.topic_id)) if topic is not None else uuid.UUID(int=0)


async def alter_offsets(broker, request) -> dict:
    """New start offsets for share-partitions of an empty share group (the coordinator
    decides; see GroupCoordinator.alter_share_offsets)."""
    body = request.body
    topics = [[t["topic_name"], [[p["partition_index"], p["start_offset"]] for p in t["partitions"]]]
              for t in body["topics"]]
    try:
        answer = await broker.controller.group("alter_share_offsets", body["group_id"], {"topics": topics})
    except errors.KafkaError as exc:
        answer = {"error_code": exc.code, "error_message": str(exc), "topics": []}
    return {"throttle_time_ms": 0, "error_code": answer["error_code"], "error_message": answer["error_message"],
            "responses": [{"topic_name": name, "topic_id": _topic_id(broker, name) if any(
                code == 0 for _, code, _ in rows) else uuid.UUID(int=0), "partitions": [
                    {"partition_index": p, "error_code": code, "error_message": message}
                    for p, code, message in rows]} for name, rows in answer["topics"]]}


async def delete_offsets(broker, request) -> dict:
    """An empty share group forgets its state for whole topics (see
    GroupCoordinator.delete_share_offsets)."""
    body = request.body
    try:
        answer = await broker.controller.group("delete_share_offsets", body["group_id"],
                                               {"topics": [t["topic_name"] for t in body["topics"]]})
    except errors.KafkaError as exc:
        answer = {"error_code": exc.code, "error_message": str(exc), "topics": []}
    return {"throttle_time_ms": 0, "error_code": answer["error_code"], "error_message": answer["error_message"],
            "responses": [{"topic_name": name, "topic_id": _topic_id(broker, name) if not code else uuid.UUID(int=0),
                           "error_code": code, "error_message": message}
                          for name, code, message in answer["topics"]]}


# -- sessions -----------------------------------------------------------------------------

def _open_session(broker, body: dict, names: TopicNames) -> tuple[ShareSession | None, int, str | None]:
    """The member's session after this request's epoch, or an error code and message."""
    sessions = _sessions(broker)
    key = (body.get("group_id") or "", body.get("member_id") or "")
    epoch = body["share_session_epoch"]
    asked = {(name, p["partition_index"])
             for t in body["topics"] if (name := names.get(t["topic_id"])) is not None for p in t["partitions"]}
    if epoch == INITIAL_EPOCH:
        if key not in sessions and len(sessions) >= MAX_SESSIONS:
            sessions.pop(next(iter(sessions)))
        session = sessions[key] = ShareSession(_next_epoch(0), asked)
        return session, 0, None
    session = sessions.get(key)
    if session is None:
        return None, errors.ShareSessionNotFound.code, f"no share session for member {key[1]}"
    if epoch != FINAL_EPOCH and epoch != session.epoch:
        return None, errors.InvalidShareSessionEpoch.code, \
            f"share session epoch {epoch}, expected {session.epoch}"
    if epoch == FINAL_EPOCH:
        del sessions[key]
        return session, 0, None
    session.epoch = _next_epoch(epoch)
    session.partitions |= asked
    for t in body.get("forgotten_topics_data") or ():
        name = names.get(t["topic_id"])
        session.partitions -= {(name, p) for p in t["partitions"]}
    return session, 0, None


def _ack_batches(body: dict, names: TopicNames) -> list[list]:
    return [[name, p["partition_index"], b["first_offset"], b["last_offset"],
             list(b["acknowledge_types"])]
            for t in body["topics"] if (name := names.get(t["topic_id"])) is not None for p in t["partitions"]
            for b in p.get("acknowledgement_batches") or ()]


async def _acknowledge(broker, body: dict, names: TopicNames) -> tuple[dict, int]:
    """Forwards the request's acknowledgement batches: an error code per partition, and
    a group-level error code (unknown member or group) if any."""
    batches = _ack_batches(body, names)
    if not batches:
        return {}, 0
    try:
        rows = await broker.controller.group("share_acknowledge", body.get("group_id") or "",
                                             {"member_id": body.get("member_id") or "", "batches": batches})
    except errors.KafkaError as exc:
        return {(t, p): exc.code for t, p, *_ in batches}, exc.code
    return {(t, p): code for t, p, code in rows}, 0


def _leader_entry(broker, topic: str, partition: int) -> dict:
    state = broker.image.partitions.get((topic, partition))
    return {"leader_id": state.leader if state else -1, "leader_epoch": state.leader_epoch if state else -1}


# -- ShareFetch ---------------------------------------------------------------------------

async def share_fetch(broker, request) -> dict:
    body = request.body
    names = TopicNames(broker)
    if not allowed(broker, request, READ, GROUP, body.get("group_id") or ""):
        return {"throttle_time_ms": 0, "error_code": errors.GroupAuthorizationFailed.code,
                "error_message": "Not authorized to read the share group", "acquisition_lock_timeout_ms": 0,
                "responses": [], "node_endpoints": []}
    session, code, message = _open_session(broker, body, names)
    base = {"throttle_time_ms": 0, "error_code": code, "error_message": message,
            "acquisition_lock_timeout_ms": 0, "responses": [], "node_endpoints": []}
    if session is None:
        return base
    group_id, member_id = body.get("group_id") or "", body.get("member_id") or ""
    if body["share_session_epoch"] == FINAL_EPOCH:
        ack_codes, _ = await _acknowledge(broker, body, names)
        await broker.controller.group("share_release", group_id, {"member_id": member_id})
        return {**base, "responses": _answer(broker, {}, ack_codes, {}, {})}

    # The acknowledgements go with the first acquisition: one call to the coordinator.
    batches = _ack_batches(body, names)
    max_records = max(1, body.get("max_records") or 500)
    whole_batches = body.get("share_acquire_mode", BATCH_OPTIMIZED) == BATCH_OPTIMIZED
    ends = _share_ends(broker)
    ack_codes: dict = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0, body.get("max_wait_ms", 0)) / 1000.0
    while True:
        part_errors, led = {}, []
        for topic, index in sorted(session.partitions):
            try:
                if not allowed(broker, request, READ, TOPIC, topic):
                    raise errors.TopicAuthorizationFailed()
                partition = broker.logs.get_partition(topic, index)
                partition.require_leader()
                led.append(partition)
            except errors.KafkaError as exc:
                part_errors[(topic, index)] = exc.code
        try:
            found = await broker.controller.group("share_acquire", group_id, {
                "member_id": member_id, "max_records": max_records, "batches": batches,
                "partitions": [[p.topic, p.index, p.log_start_offset, p.high_watermark,
                                _alignment(ends, group_id, p, max_records) if whole_batches else None]
                               for p in led]})
        except errors.KafkaError as exc:     # the coordinator did not answer
            found = {"error": exc.code, "message": str(exc), "ack_error": exc.code, "ack": []}
        if batches:
            ack_codes = {(t, p): found["ack_error"] for t, p, *_ in batches} if found["ack_error"] else \
                {(t, p): code for t, p, code in found["ack"]}
            batches = []
        if found["error"]:
            return {**base, "error_code": found["error"], "error_message": found["message"],
                    "responses": _answer(broker, part_errors, ack_codes, {}, {})}
        for t, p, _, end in found["acquired"]:
            ends[(group_id, t, p)] = end
        acquired = {(t, p): [tuple(r) for r in ranges] for t, p, ranges, _ in found["acquired"] if ranges}
        records, regions = await _read_acquired(broker, group_id, member_id, acquired, body)
        wait = deadline - loop.time()
        if acquired or part_errors or wait <= 0 or broker.stopping:
            return {**base, "acquisition_lock_timeout_ms": found["lock_ms"],
                    "responses": _answer(broker, part_errors, ack_codes, acquired, records)}
        release_regions(regions)
        await wait_for_append(broker, led, wait)


def _share_ends(broker) -> dict:
    """Each share-partition's end offset (SPEO) as this broker, its leader, last heard it
    from the coordinator: every acquisition of a partition comes through its leader."""
    ends = getattr(broker, "share_ends", None)
    if ends is None or len(ends) > MAX_SHARE_ENDS:
        ends = broker.share_ends = {}
    return ends


def _alignment(ends: dict, group_id: str, partition, max_records: int) -> list | None:
    """Batch-optimized acquisition (ShareAcquireMode 0, Kafka's default): the SPEO this
    broker expects and the last offset of the batch holding the ``max_records``-th record
    from there, so the coordinator acquires whole batches (SharePartition.acquire)."""
    speo = ends.get((group_id, partition.topic, partition.index))
    if speo is None or speo >= partition.high_watermark:
        return None
    end = partition.log.batch_end(min(speo + max_records, partition.high_watermark) - 1)
    return None if end is None else [speo, end]


async def _read_acquired(broker, group_id, member_id, acquired: dict, body: dict) -> tuple[dict, list]:
    """The batches holding each partition's acquired ranges, within the request's byte
    budget (at least one batch); acquisitions left outside it are undone."""
    remaining = max(0, min(body.get("max_bytes", 0x7FFFFFFF), broker.config.fetch_max_bytes))
    records, regions, undo = {}, [], []
    min_one = True
    for (topic, index), ranges in sorted(acquired.items()):
        partition = broker.logs.get_partition(topic, index)
        first, last = ranges[0][0], ranges[-1][1]
        found = partition.log.read(first, remaining, max_offset=last + 1, min_one=min_one) \
            if remaining > 0 or min_one else None
        sent_to = -1 if found is None else found.last_offset
        if found is not None:
            region = SendfileRegion(found, f"{topic}-{index}")
            regions.append(region)
            records[(topic, index)] = region
            remaining -= region.length
            min_one = False
        kept = [(f, min(last_, sent_to), n) for f, last_, n in ranges if f <= sent_to]
        undo += [[topic, index, max(f, sent_to + 1), last_] for f, last_, _ in ranges if last_ > sent_to]
        if kept:
            acquired[(topic, index)] = kept
        else:
            del acquired[(topic, index)]
    if undo:
        await broker.controller.group("share_unacquire", group_id, {"member_id": member_id, "ranges": undo})
    return records, regions


def _answer(broker, part_errors: dict, ack_codes: dict, acquired: dict, records: dict) -> list:
    by_topic: dict[str, list] = {}
    for tp in sorted(set(part_errors) | set(ack_codes) | set(acquired)):
        topic, index = tp
        code = part_errors.get(tp, 0)
        by_topic.setdefault(topic, []).append({
            "partition_index": index, "error_code": code, "error_message": None,
            "acknowledge_error_code": ack_codes.get(tp, 0), "acknowledge_error_message": None,
            "current_leader": _leader_entry(broker, topic, index),
            "records": records.get(tp, b""),
            "acquired_records": [{"first_offset": f, "last_offset": last, "delivery_count": n}
                                 for f, last, n in acquired.get(tp, ())],
        })
    topics = broker.image.topics
    return [{"topic_id": uuid.UUID(str(topics[t].topic_id)), "partitions": parts}
            for t, parts in by_topic.items() if t in topics]


# -- ShareAcknowledge ---------------------------------------------------------------------

async def share_acknowledge(broker, request) -> dict:
    body = request.body
    names = TopicNames(broker)
    base = {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "acquisition_lock_timeout_ms": 0,
            "responses": [], "node_endpoints": []}
    if not allowed(broker, request, READ, GROUP, body.get("group_id") or ""):
        return {**base, "error_code": errors.GroupAuthorizationFailed.code,
                "error_message": "Not authorized to read the share group"}
    if body["share_session_epoch"] == INITIAL_EPOCH:
        return {**base, "error_code": errors.InvalidShareSessionEpoch.code,
                "error_message": "ShareAcknowledge cannot open a share session"}
    session, code, message = _open_session(broker, {**body, "topics": [], "forgotten_topics_data": []}, names)
    if session is None:
        return {**base, "error_code": code, "error_message": message}
    ack_codes, group_code = await _acknowledge(broker, body, names)
    if body["share_session_epoch"] == FINAL_EPOCH:
        await broker.controller.group("share_release", body.get("group_id") or "",
                                      {"member_id": body.get("member_id") or ""})
    responses = _answer(broker, {}, ack_codes, {}, {})
    for topic in responses:
        for p in topic["partitions"]:
            p["error_code"] = p.pop("acknowledge_error_code")
            for key in ("acknowledge_error_message", "records", "acquired_records"):
                p.pop(key)
    return {**base, "error_code": group_code, "responses": responses}
