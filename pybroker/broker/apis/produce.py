"""Produce (0): validate and append each partition's batches; acks=0 gets no response.

Per batch, never per record: the records field is a writable view of the request
buffer, validated (size, magic, CRC-32C) and written to the log with offsets rewritten in
place. acks=-1 on a single replica is committed on append; ``min.insync.replicas`` is
still enforced against the ISR.
"""
from __future__ import annotations

import logging

from pybroker.errors import CorruptMessage, InvalidRequiredAcks, KafkaError

log = logging.getLogger("pybroker.broker")


def _partition_error(index: int, exc: KafkaError) -> dict:
    return {
        "index": index,
        "error_code": exc.code,
        "base_offset": -1,
        "log_append_time_ms": -1,
        "log_start_offset": -1,
        "record_errors": [],
        "error_message": exc.detail,
    }


def handle(broker, request) -> dict | None:
    body = request.body
    acks = body["acks"]
    responses = []
    for topic in body["topic_data"]:
        name = topic["name"]
        results = []
        if acks not in (0, 1, -1):
            error = InvalidRequiredAcks(f"Invalid required acks value {acks}: must be -1, 0 or 1")
            results = [_partition_error(p["index"], error) for p in topic["partition_data"]]
            responses.append({"name": name, "partition_responses": results})
            continue
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
                result = partition.append(records, acks)
            except KafkaError as exc:
                results.append(_partition_error(index, exc))
                continue
            results.append(
                {
                    "index": index,
                    "error_code": 0,
                    "base_offset": result.base_offset,
                    "log_append_time_ms": result.log_append_time,
                    "log_start_offset": result.log_start_offset,
                    "record_errors": [],
                    "error_message": None,
                }
            )
        responses.append({"name": name, "partition_responses": results})
    if acks == 0:
        return None
    return {"responses": responses, "throttle_time_ms": 0}

