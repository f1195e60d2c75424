"""A follower joins the ISR only once it holds the leader's log end as of the start of
that leadership: after a whole-cluster restart the leader keeps its epoch (no failover
happened) and its high-watermark checkpoint may be stale, and without this rule an empty
new replica (a reassignment's adding one) would join at once and could then lead."""
from __future__ import annotations

from pybroker.broker.partition import Partition
from pybroker.cluster.metadata import PartitionState
from pybroker.config import TopicConfig
from pybroker.log.log import Log
from pybroker.record.batch import build_batch, parse_batches


def test_an_empty_follower_does_not_join_a_restarted_leaders_isr(tmp_path):
    plog = Log.open(str(tmp_path / "t-0"), TopicConfig())
    buf = bytearray(build_batch([(b"k", b"v%d" % i, [], None) for i in range(50)]))
    plog.append(memoryview(buf), parse_batches(memoryview(buf), 1 << 20))
    plog.close()
    # Reopened as after a crash: no high-watermark checkpoint was written.
    leader = Partition("t", 0, Log.open(str(tmp_path / "t-0"), TopicConfig()), node_id=0)
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
