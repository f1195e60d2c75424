"""OffsetForLeaderEpoch (23): where a leader epoch ends in this leader's log.

A follower of a new leader asks with its latest epoch and truncates to the answer where
the logs diverge (KIP-101/279); consumers ask after a leader change to detect truncation
(KIP-320). The answer is the largest epoch <= the requested one that this log knows and
the first offset after it: the start of the next higher epoch, or the log end for the
current one; (-1, -1) for an epoch newer than any here. Only the leader answers.
"""
from __future__ import annotations

from pybroker.broker.authorization import allowed_on_cluster, require
from pybroker.errors import KafkaError
from pybroker.errors import ClusterAuthorizationFailed
from pybroker.security.acls import CLUSTER_ACTION, DESCRIBE, TOPIC


def handle(broker, request) -> dict:
    topics = []
    follower = request.body.get("replica_id", -2) >= 0
    cluster_denied = follower and not allowed_on_cluster(broker, request, CLUSTER_ACTION)
    for topic in request.body["topics"]:
        name = topic["topic"]
        parts = []
        for req in topic["partitions"]:
            index = req["partition"]
            entry = {"error_code": 0, "partition": index, "leader_epoch": -1, "end_offset": -1}
            try:
                if cluster_denied:
                    raise ClusterAuthorizationFailed()
                if not follower:
                    require(broker, request, DESCRIBE, TOPIC, name, "describe topic")
                partition = broker.logs.get_partition(name, index)
                partition.require_leader()
                partition.check_leader_epoch(req.get("current_leader_epoch", -1))
                epoch, end = partition.epochs.end_offset_for(req["leader_epoch"], partition.log_end_offset)
                entry.update(leader_epoch=epoch, end_offset=end)
            except KafkaError as exc:
                entry["error_code"] = exc.code
            parts.append(entry)
        topics.append({"topic": name, "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}
