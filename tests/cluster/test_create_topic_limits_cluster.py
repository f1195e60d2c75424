"""CreateTopics limits against a running cluster: a 2**31-1 partition request is refused
at once with the supervisor's memory unchanged, and a create that fails leaves nothing
in the metadata log, so the cluster restarts on its own data dir."""
from __future__ import annotations

import time

import psutil
import pytest

from pybroker.cluster.controller import MAX_PARTITIONS_PER_REQUEST

POLICY_VIOLATION = 44


def supervisor_rss(cluster) -> int:
    return psutil.Process(cluster.pid).memory_info().rss


def test_two_billion_partitions_are_refused_at_once(pybroker_cluster, wire, broker_serves):
    before = supervisor_rss(pybroker_cluster)
    with wire.RawClient(pybroker_cluster.bootstrap, timeout=10) as client:
        start = time.monotonic()
        result = client.create_topic("huge", partitions=2**31 - 1)
        took = time.monotonic() - start
        assert result.error_code == POLICY_VIOLATION, result
        assert str(MAX_PARTITIONS_PER_REQUEST) in result.error_message
        md = client.metadata(["huge"], auto_create=False)
        assert md.topics[0].error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert took < 5, f"refusing took {took:.1f}s"
    assert supervisor_rss(pybroker_cluster) < before + (50 << 20)
    broker_serves(pybroker_cluster.bootstrap)


def test_cluster_partition_cap_from_the_command_line(pybroker_cluster_factory, wire):
    cluster = pybroker_cluster_factory(extra_args=["--max-partitions", "5"])
    with wire.RawClient(cluster.bootstrap, timeout=10) as client:
        assert client.create_topic("fits", partitions=4).error_code == 0
        over = client.create_topic("over", partitions=2)
        assert over.error_code == POLICY_VIOLATION and "max-partitions" in over.error_message


@pytest.mark.parametrize("partitions", [300, pytest.param(5000, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])])
def test_a_big_topic_then_a_full_restart(pybroker_cluster_factory, wire, partitions):
    """A topic of more partitions than the old fixed offsets table had slots (4,096), then
    the whole cluster stopped and started on its data dir: whether it was created or
    refused, the metadata log and the brokers agree with the answer, and the cluster
    starts again."""
    cluster = pybroker_cluster_factory(start_timeout=120)
    with wire.RawClient(cluster.bootstrap, timeout=600) as client:
        result = client.create_topic("big", partitions=partitions)
        created = result.error_code == 0
        if not created:
            assert client.metadata(["big"], auto_create=False).topics[0].error_code == 3
        assert client.create_topic("after", partitions=2).error_code == 0
    cluster.stop()
    cluster.start()
    with wire.RawClient(cluster.bootstrap, timeout=120) as client:
        md = client.metadata(["big"], auto_create=False).topics[0]
        if created:
            assert md.error_code == 0 and len(md.partitions) == partitions
        else:
            assert md.error_code == 3, f"a failed create came back after restart: {md}"
        assert client.wait_for_leaders("after", auto_create=False, timeout=60).partitions
        assert client.create_topic("later", partitions=1).error_code == 0
