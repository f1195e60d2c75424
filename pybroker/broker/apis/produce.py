"""Produce (0): validate and append each partition's batches; acks=0 gets no response.

Per batch, never per record: the records field is a writable view of the request
buffer, validated (size, magic, CRC-32C) and written to the log with offsets rewritten in
place. acks=1 is answered after the leader's append. acks=-1 is refused with
NOT_ENOUGH_REPLICAS when the ISR is smaller than ``min.insync.replicas``; otherwise the
batches are appended and the answer waits (Kafka's delayed produce) until the high
watermark passes them, up to the request's ``timeout_ms`` (then REQUEST_TIMED_OUT); a
leader that loses leadership meanwhile answers NOT_LEADER_OR_FOLLOWER.

With a shared-memory region, each partition's appended batches also go to this broker's
tail ring (one entry per partition per request) for co-located followers.

Authorization (with an authorizer), as Kafka's: a transactional producer needs WRITE on
its transactional id (else every partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
each topic needs WRITE (else TOPIC_AUTHORIZATION_FAILED), and auto-creating it needs
CREATE on the cluster or the topic. One cached decision per topic per request.

A client with a ``producer_byte_rate`` quota has each request's size counted against it
(pybroker.broker.quotas); over it, the answer carries ``throttle_time_ms`` and the
connection is muted for that long (acks=0 requests too, with no answer).
"""
from __future__ import annotations

import logging
import time

from pybroker.broker.authorization import allowed, may_create_topic
from pybroker.broker.delayed import settle
from pybroker.broker.partition import Partition
from pybroker.errors import (CorruptMessage, InvalidRequiredAcks, KafkaError, RequestTimedOut,
                             TopicAuthorizationFailed, TransactionalIdAuthorizationFailed)
from pybroker.security.acls import TOPIC, TRANSACTIONAL_ID, WRITE

log = logging.getLogger("pybroker.broker")


def _partition_error(index: int, exc: KafkaError) -> dict:
    return {
        "index": index,
        "error_code": exc.code,
        "base_offset": -1,
        "log_append_time_ms": -1,
        "log_start_offset": -1,
        # Per-record reasons (INVALID_RECORD: e.g. a keyless record on a compacted topic).
        "record_errors": getattr(exc, "record_errors", []),
        "error_message": exc.detail,
    }


async def handle(broker, request) -> dict | None:
    body = request.body
    acks = body["acks"]
    responses = []
    # (partition, its response entry, future) of acks=-1 appends not yet committed.
    pending = []
    shm = getattr(broker, "shm", None)
    authorizing = broker.authorizer is not None
    refusal = None
    if acks not in (0, 1, -1):
        refusal = InvalidRequiredAcks(f"Invalid required acks value {acks}: must be -1, 0 or 1")
    elif authorizing and body.get("transactional_id") is not None \
            and not allowed(broker, request, WRITE, TRANSACTIONAL_ID, body["transactional_id"]):
        refusal = TransactionalIdAuthorizationFailed()
    for topic in body["topic_data"]:
        name = topic["name"]
        results = []
        if refusal is not None:
            results = [_partition_error(p["index"], refusal) for p in topic["partition_data"]]
            responses.append({"name": name, "partition_responses": results})
            continue
        if authorizing:
            if not allowed(broker, request, WRITE, TOPIC, name):
                topic_error = TopicAuthorizationFailed()
            elif name in broker.image.topics:
                topic_error = None
            else:
                topic_error = broker.ensure_topic(name, may_create_topic(broker, request, name))
        else:
            topic_error = broker.ensure_topic(name)
        for part in topic["partition_data"]:
            index = part["index"]
            try:
                if topic_error is not None:
                    raise topic_error
                partition = broker.logs.get_partition(name, index)
                records = part["records"]
                if records is None or len(records) == 0:
                    raise CorruptMessage("Produce request carries no record batches")
                records = partition.stored_form(records, broker.config.socket_request_max_bytes)
                log_end = partition.log_end_offset
                result = partition.append(records, acks)
            except KafkaError as exc:
                results.append(_partition_error(index, exc))
                continue
            if result.base_offset == log_end:
                # Appended now, not a deduplicated retry: counted per partition, from the
                # offsets the batches took.
                broker.stats.on_produce(name, result.last_offset - result.base_offset + 1, len(records))
            if shm is not None and result.base_offset == log_end:
                # Appended now (not a deduplicated retry): ``records`` holds the bytes as
                # written, offsets and leader epoch assigned in place.
                shm.on_leader_append(partition, records, result.base_offset, result.last_offset)
            entry = {
                "index": index,
                "error_code": 0,
                "base_offset": result.base_offset,
                "log_append_time_ms": result.log_append_time,
                "log_start_offset": result.log_start_offset,
                "record_errors": [],
                "error_message": None,
            }
            results.append(entry)
            if acks == -1:
                fut = partition.commit_waiter(result.last_offset)
                if fut is not None:
                    pending.append((partition, entry, fut))
        responses.append({"name": name, "partition_responses": results})
    if pending:
        await _wait_for_commit(broker, pending, body["timeout_ms"])
    quota = broker.quotas.produce
    if quota.enabled:
        # Kafka counts the whole request against producer_byte_rate, once it is done.
        request.throttle_ms = quota.record(request.principal, request.client_id, request.size,
                                           time.monotonic() * 1000.0)
    if acks == 0:
        return None
    return {"responses": responses, "throttle_time_ms": request.throttle_ms}


async def _wait_for_commit(broker, pending: list, timeout_ms: int) -> None:
    def timed_out(partition) -> KafkaError:
        return RequestTimedOut(
            f"{partition.topic}-{partition.index}: the in-sync replicas did not acknowledge "
            f"within {timeout_ms} ms (high watermark {partition.high_watermark})")

    for _, entry, error in await settle(broker, pending, timeout_ms, Partition.forget_commit_waiter, timed_out):
        if error is not None:
            entry.update(_partition_error(entry["index"], error))
