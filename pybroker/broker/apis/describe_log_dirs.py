"""DescribeLogDirs (35): this broker's one log directory (its data dir), with the size of
every partition it hosts, as every Kafka UI and ``kafka-log-dirs --describe`` ask. The
offset lag is Kafka's: how far the replica's log end trails the high watermark (0 on a
leader). Never a future (AlterReplicaLogDirs) replica: pybroker has one dir per broker."""
from __future__ import annotations

import os

from pybroker.broker.authorization import allowed_on_cluster
from pybroker.errors import ClusterAuthorizationFailed
from pybroker.security.acls import DESCRIBE


def _volume(path: str) -> tuple[int, int]:
    try:
        st = os.statvfs(path)
    except OSError:
        return -1, -1
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def handle(broker, request) -> dict:
    if not allowed_on_cluster(broker, request, DESCRIBE):
        return {"throttle_time_ms": 0, "error_code": ClusterAuthorizationFailed.code, "results": []}
    wanted = request.body.get("topics")
    selected = None if wanted is None else {(t["topic"], p) for t in wanted for p in t["partitions"]}
    by_topic: dict[str, list] = {}
    for (topic, index), partition in sorted(broker.logs.partitions.items()):
        if selected is not None and (topic, index) not in selected:
            continue
        by_topic.setdefault(topic, []).append({
            "partition_index": index,
            "partition_size": partition.log.size_bytes,
            "offset_lag": max(0, partition.high_watermark - partition.log_end_offset),
            "is_future_key": False,
        })
    total, usable = _volume(broker.logs.data_dir)
    return {"throttle_time_ms": 0, "error_code": 0, "results": [{
        "error_code": 0, "log_dir": broker.logs.data_dir, "total_bytes": total, "usable_bytes": usable,
        "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()],
    }]}
