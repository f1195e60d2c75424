"""The share consumer's acknowledgement batches: runs of consecutive offsets with one
type each, as ShareFetch/ShareAcknowledge carry them; and SharePartition.done, what
DescribeShareGroupOffsets subtracts from the lag."""
from pybroker.client.share_consumer import ACCEPT, GAP, REJECT, RELEASE, ack_batches
from pybroker.group.share_partition import SharePartition


def test_consecutive_offsets_of_one_type_make_one_batch():
    acks = {5: ACCEPT, 6: ACCEPT, 7: ACCEPT, 8: RELEASE, 10: ACCEPT, 11: GAP, 12: REJECT}
    assert ack_batches(acks) == [
        {"first_offset": 5, "last_offset": 7, "acknowledge_types": [ACCEPT]},
        {"first_offset": 8, "last_offset": 8, "acknowledge_types": [RELEASE]},
        {"first_offset": 10, "last_offset": 10, "acknowledge_types": [ACCEPT]},
        {"first_offset": 11, "last_offset": 11, "acknowledge_types": [GAP]},
        {"first_offset": 12, "last_offset": 12, "acknowledge_types": [REJECT]},
    ]
    assert ack_batches({}) == []


def test_done_counts_acknowledged_and_archived_past_the_start():
    sp = SharePartition(0)
    assert sp.acquire("m", 0, 0, 10, 10, 30_000) == [(0, 9, 1)]
    assert sp.acknowledge("m", 3, 4, [ACCEPT], 0, 30_000)
    assert sp.acknowledge("m", 6, 6, [REJECT], 0, 30_000)
    assert sp.start == 0 and sp.done() == 3
    assert sp.acknowledge("m", 0, 2, [ACCEPT], 0, 30_000)
    assert sp.start == 5 and sp.done() == 1        # 0..4 folded into the start offset
