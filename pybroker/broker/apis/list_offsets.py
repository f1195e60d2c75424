"""ListOffsets (2): earliest (-2), latest (-1), the first offset whose record timestamp is at
or after a given time (through the time index), the record with the largest timestamp
(-3, KIP-734, v7+), the earliest local offset (-4, KIP-405, v8+: the log start, as nothing
is tiered here) and the latest tiered offset (-5, KIP-1005, v9+: none, offset -1, as Kafka
answers for a topic without remote storage). Answered by the leader only
(NOT_LEADER_OR_FOLLOWER elsewhere), with KIP-320 epoch fencing; offsets at or above the
high watermark are never reported to consumers, nor at or above the last stable offset
to read_committed ones (isolation_level 1). A consumer asking a leader whose high
watermark has not yet reached the offset where its leadership began (a fresh election, or a
restart on a stale high-watermark checkpoint) gets OFFSET_NOT_AVAILABLE, which clients
retry, as Kafka answers: the offsets could otherwise go backwards."""
from __future__ import annotations

from pybroker.broker.authorization import require
from pybroker.errors import InvalidRequest, KafkaError, OffsetNotAvailable
from pybroker.security.acls import DESCRIBE, TOPIC

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
# The first ListOffsets version a client may send each special timestamp in.
_FIRST_VERSION = {MAX_TIMESTAMP: 7, EARLIEST_LOCAL: 8, LATEST_TIERED: 9}
READ_COMMITTED = 1
# Kafka's replica id for tools that may read any replica, not only the leader.
DEBUGGING_REPLICA_ID = -2
CONSUMER_REPLICA_ID = -1


def handle(broker, request) -> dict:
    body = request.body
    topics = []
    for topic in body["topics"]:
        name = topic["name"]
        parts = []
        for req in topic["partitions"]:
            index = req["partition_index"]
            entry = {"partition_index": index, "error_code": 0, "old_style_offsets": [], "timestamp": -1, "offset": -1, "leader_epoch": -1}
            try:
                require(broker, request, DESCRIBE, TOPIC, name, "describe topic")
                partition = broker.logs.get_partition(name, index)
                if body["replica_id"] != DEBUGGING_REPLICA_ID:
                    partition.require_leader()
                partition.check_leader_epoch(req.get("current_leader_epoch", -1))
                if body["replica_id"] == CONSUMER_REPLICA_ID and partition.high_watermark < partition.leader_start_offset:
                    # A leader just elected (or restarted) with a high watermark not yet past
                    # where its leadership began: what it would answer could go backwards.
                    raise OffsetNotAvailable(
                        f"{name}-{index}: the high watermark {partition.high_watermark} has not reached "
                        f"the leader's start offset {partition.leader_start_offset} yet")
                ts = req["timestamp"]
                epoch = partition.leader_epoch
                if ts < 0 and request.api_version < _FIRST_VERSION.get(ts, 0):
                    raise InvalidRequest(f"ListOffsets timestamp {ts} needs version {_FIRST_VERSION[ts]} or later")
                visible = (partition.last_stable_offset if body.get("isolation_level", 0) == READ_COMMITTED
                           else partition.high_watermark)
                if ts == LATEST:
                    # Consumers see committed offsets; a replica (for its own use) the log end.
                    offset = visible if body["replica_id"] < 0 else partition.log_end_offset
                    found_ts = -1
                elif ts in (EARLIEST, EARLIEST_LOCAL):
                    offset, found_ts = partition.log_start_offset, -1
                elif ts == LATEST_TIERED:
                    offset, found_ts, epoch = -1, -1, -1
                elif ts < 0 and ts != MAX_TIMESTAMP:
                    raise InvalidRequest(f"Unsupported ListOffsets timestamp {ts}")
                else:
                    log = partition.log
                    found = log.max_timestamp_and_offset() if ts == MAX_TIMESTAMP else log.offset_for_timestamp(ts)
                    offset, found_ts = found if found is not None else (-1, -1)
                    if offset >= visible:
                        offset, found_ts = -1, -1
                    if ts == MAX_TIMESTAMP:
                        # The epoch of the batch holding the record, as Kafka reports it.
                        epoch = partition.epochs.epoch_for_offset(offset) if offset >= 0 else -1
                entry.update(offset=offset, timestamp=found_ts, leader_epoch=epoch)
                if request.api_version == 0:
                    entry["old_style_offsets"] = [offset] if offset >= 0 else []
            except KafkaError as exc:
                entry["error_code"] = exc.code
            parts.append(entry)
        topics.append({"name": name, "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}
