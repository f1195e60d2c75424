"""DescribeShareGroupOffsets gives every share-partition's lag, also for partitions the
share group's coordinator broker does not lead (Kafka computes it from the partition's
end offset wherever it is led): a 3-broker cluster, a six-partition topic read to the end
by a ShareConsumer, then more records on each partition; the coordinator answers the
lag of all six, and the CLI shows it."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from groups_helpers import create_topic, unique, wait_until
from pybroker.cli.groups import find_coordinator
from pybroker.client import Admin
from pybroker.protocol import api
from test_groups_share import cluster, group_configs, poll_messages, produce, share_consumer  # noqa: F401

pytestmark = pytest.mark.interop
PARTITIONS = 6


def offsets_at(conn, group):
    (answer,) = conn.request(api.DESCRIBE_SHARE_GROUP_OFFSETS,
                             {"groups": [{"group_id": group, "topics": None}]})["groups"]
    assert answer["error_code"] == 0, answer
    return {p["partition_index"]: (p["start_offset"], p["lag"]) for t in answer["topics"] for p in t["partitions"]
            if p["error_code"] == 0}


@pytest.mark.timeout(120)
def test_coordinator_reports_lag_of_partitions_led_by_other_brokers(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, PARTITIONS), unique("lag")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    for p in range(PARTITIONS):
        produce(bootstrap, topic, [b"old-%d-%d" % (p, i) for i in range(3)], partition=p)
    reader = share_consumer(bootstrap, group, "reader")
    got: list[bytes] = []
    try:
        reader.subscribe([topic])
        wait_until(lambda: got.extend(m.value() for m in poll_messages(reader)) or len(got) >= 3 * PARTITIONS,
                   30, "every old record")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:     # the implicit acknowledgements go out
            got.extend(m.value() for m in poll_messages(reader))
    finally:
        reader.close()
    assert len(got) == 3 * PARTITIONS
    # Partition p gets p + 1 records nobody has read: its lag.
    for p in range(PARTITIONS):
        produce(bootstrap, topic, [b"new-%d-%d" % (p, i) for i in range(p + 1)], partition=p)

    admin = Admin(bootstrap)
    try:
        node_id, _, _ = find_coordinator(admin, group)
        leaders = {p: admin.client.leader_for(topic, p, refresh=p == 0) for p in range(PARTITIONS)}
        assert any(leader != node_id for leader in leaders.values()), (node_id, leaders)
        expected = {p: (3, p + 1) for p in range(PARTITIONS)}
        conn = admin.client.connection(node_id)
        wait_until(lambda: offsets_at(conn, group) == expected, 15,
                   f"the coordinator (broker {node_id}; leaders {leaders}) to report every lag")
    finally:
        admin.close()
    described = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "share-groups", "--bootstrap-server",
                                bootstrap, "--describe", "--group", group], capture_output=True, text=True, timeout=60)
    assert described.returncode == 0, described.stderr
    rows = sorted(line.split() for line in described.stdout.splitlines() if line.startswith(group))
    assert rows == sorted([group, topic, str(p), "3", str(p + 1)] for p in range(PARTITIONS)), described.stdout
