"""DeleteRecords (21): move partitions' log start offsets up (kafka-delete-records,
AdminClient.deleteRecords).

Answered by each partition's leader (NOT_LEADER_OR_FOLLOWER elsewhere,
UNKNOWN_TOPIC_OR_PARTITION for a partition the cluster does not have). The offset -1
means the high watermark; one above the high watermark, or negative, is
OFFSET_OUT_OF_RANGE; a topic whose ``cleanup.policy`` lacks ``delete`` is
POLICY_VIOLATION. The leader raises its log start (never lowers it), deleting the
segments wholly below; followers take the new start from their next Fetch answer and
report theirs in the Fetch after. As Kafka's delayed DeleteRecords, the answer waits
until the low watermark (the lowest log start over the replicas on live brokers)
reaches the requested offset, up to ``timeout_ms`` (then REQUEST_TIMED_OUT).

Kafka keys the request by partition: a partition named twice is answered once, for the
last offset given.
"""
from __future__ import annotations

from pybroker.broker.authorization import require
from pybroker.broker.delayed import settle
from pybroker.broker.partition import Partition
from pybroker.errors import KafkaError, RequestTimedOut
from pybroker.security.acls import DELETE, TOPIC


def _entry(index: int, low_watermark: int = -1, error_code: int = 0) -> dict:
    return {"partition_index": index, "low_watermark": low_watermark, "error_code": error_code}


async def handle(broker, request) -> dict:
    body = request.body
    wanted: dict[tuple[str, int], int] = {}
    for topic in body["topics"]:
        for part in topic["partitions"]:
            wanted[(topic["name"], part["partition_index"])] = part["offset"]
    shm = getattr(broker, "shm", None)
    results: dict[str, list[dict]] = {}
    # (partition, its response entry, future) of deletions the followers have yet to apply.
    pending = []
    for (name, index), offset in wanted.items():
        try:
            require(broker, request, DELETE, TOPIC, name, "delete records of")
            partition = broker.logs.get_partition(name, index)
            required = partition.delete_records(offset)
            entry = _entry(index, partition.low_watermark)
        except KafkaError as exc:
            results.setdefault(name, []).append(_entry(index, error_code=exc.code))
            continue
        results.setdefault(name, []).append(entry)
        if shm is not None:
            shm.mark_dirty(partition)  # the published log start moved
        fut = partition.low_watermark_waiter(required)
        if fut is not None:
            pending.append((partition, entry, fut))
    if pending:
        timeout_ms = body["timeout_ms"]

        def timed_out(partition) -> KafkaError:
            return RequestTimedOut(
                f"{partition.topic}-{partition.index}: the replicas did not delete up to the "
                f"requested offset within {timeout_ms} ms (low watermark {partition.low_watermark})")

        for _, entry, result in await settle(broker, pending, timeout_ms, Partition.forget_low_watermark_waiter,
                                             timed_out):
            if isinstance(result, KafkaError):
                entry["error_code"] = result.code
            else:
                entry["low_watermark"] = result
    return {"throttle_time_ms": 0,
            "topics": [{"name": name, "partitions": parts} for name, parts in results.items()]}
