"""A follower joins the ISR only once it holds the leader's log end as of the start of
that leadership: after a whole-cluster restart the leader keeps its epoch (no failover
happened) and its high-watermark checkpoint may be stale, and without this rule an empty
new replica (a reassignment's adding one) would join at once and could then lead. Until
the high watermark gets there, consumers' ListOffsets get OFFSET_NOT_AVAILABLE (a stale
"latest" of 0 would hide acknowledged records); followers' own lookups are answered."""
from __future__ import annotations

from types import SimpleNamespace

from pybroker import errors
from pybroker.broker.apis import list_offsets

from pybroker.broker.partition import Partition
from pybroker.cluster.metadata import PartitionState
from pybroker.config import TopicConfig
from pybroker.log.log import Log
from pybroker.record.batch import build_batch, parse_batches


def restarted_leader(tmp_path) -> Partition:
    """Partition t-0 with 50 records, reopened as after a crash: no high-watermark
    checkpoint was written."""
    plog = Log.open(str(tmp_path / "t-0"), TopicConfig())
    buf = bytearray(build_batch([(b"k", b"v%d" % i, [], None) for i in range(50)]))
    plog.append(memoryview(buf), parse_batches(memoryview(buf), 1 << 20))
    plog.close()
    return Partition("t", 0, Log.open(str(tmp_path / "t-0"), TopicConfig()), node_id=0)


def test_an_empty_follower_does_not_join_a_restarted_leaders_isr(tmp_path):
    leader = restarted_leader(tmp_path)
    # Broker 1 of the ISR has not fetched since the restart: the high watermark stays at 0.
    leader.apply_state(PartitionState("t", 0, 0, 0, 1, (0, 1, 2), (0, 1), adding_replicas=(2,)))
    assert (leader.log_end_offset, leader.high_watermark) == (50, 0)
    leader.on_follower_fetch(2, 0)
    assert leader.isr_to_expand() is None
    leader.on_follower_fetch(2, 49)
    assert leader.isr_to_expand() is None
    leader.on_follower_fetch(2, 50)
    assert leader.isr_to_expand() == [0, 1, 2]
    leader.close()


def _latest(leader: Partition, replica_id: int) -> dict:
    broker = SimpleNamespace(authorizer=None, logs=SimpleNamespace(get_partition=lambda topic, index: leader))
    request = SimpleNamespace(api_version=5, body={"replica_id": replica_id, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "timestamp": list_offsets.LATEST}]}]})
    return list_offsets.handle(broker, request)["topics"][0]["partitions"][0]


def test_consumers_get_offset_not_available_until_the_high_watermark_reaches_the_leaders_start(tmp_path):
    leader = restarted_leader(tmp_path)
    leader.apply_state(PartitionState("t", 0, 0, 0, 1, (0, 1), (0, 1)))
    assert _latest(leader, -1)["error_code"] == errors.OffsetNotAvailable.code
    follower = _latest(leader, 1)  # a replica's own lookup: the log end
    assert (follower["error_code"], follower["offset"]) == (0, 50)
    leader.on_follower_fetch(1, 50)
    assert (_latest(leader, -1)["error_code"], _latest(leader, -1)["offset"]) == (0, 50)
    leader.close()
