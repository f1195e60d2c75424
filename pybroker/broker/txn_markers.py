"""The partition leader's side of ending a transaction: the transaction coordinator's
``write_txn_markers`` control request (Kafka's WriteTxnMarkers, on the control channel).

For each marker and each partition it names, the leader appends a COMMIT or ABORT control
batch (``Partition.append_marker``), publishes it to the shared-memory tail ring like any
append, and answers once the in-sync replicas hold it (Kafka writes markers with
acks=all): the coordinator completes a transaction only when every marker is committed,
so a leader failover cannot lose one. Errors are per partition (NOT_LEADER_OR_FOLLOWER,
NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT ...); the coordinator retries those.
"""
from __future__ import annotations

from pybroker.broker.delayed import settle
from pybroker.broker.partition import Partition
from pybroker.errors import KafkaError, NotEnoughReplicas, RequestTimedOut

MARKER_TIMEOUT_MS = 15_000


async def write_txn_markers(broker, markers: list[dict]) -> dict:
    results: dict[tuple[str, int], int] = {}
    pending = []
    shm = getattr(broker, "shm", None)
    for marker in markers:
        for topic, index in marker["partitions"]:
            key = (topic, index)
            try:
                partition = broker.logs.get_partition(topic, index)
                partition.require_leader()
                if len(partition.isr) < partition.config.min_insync_replicas:
                    raise NotEnoughReplicas(f"{topic}-{index}: ISR {partition.isr} below min.insync.replicas")
                result, records = partition.append_marker(marker["producer_id"], marker["producer_epoch"],
                                                          bool(marker["commit"]), marker.get("coordinator_epoch", 0))
            except KafkaError as exc:
                results[key] = exc.code
                continue
            if shm is not None:
                shm.on_leader_append(partition, records, result.base_offset, result.last_offset)
            results[key] = 0
            fut = partition.commit_waiter(result.last_offset)
            if fut is not None:
                pending.append((partition, key, fut))
    if pending:
        def timed_out(partition) -> KafkaError:
            return RequestTimedOut(f"{partition.topic}-{partition.index}: marker not replicated in time")

        for _, key, error in await settle(broker, pending, MARKER_TIMEOUT_MS, Partition.forget_commit_waiter,
                                          timed_out):
            if error is not None:
                results[key] = error.code
    return {"results": [[t, p, code] for (t, p), code in results.items()]}
