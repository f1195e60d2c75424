"""ShareFetch's acquire modes (KIP-1206) against real broker processes: batch-optimized
(the default) acquires whole producer batches even past max_records, so a batch is sent
and acquired once; record-limit acquires at most max_records per fetch, leaving the rest
of the batch to other members."""
from __future__ import annotations

import time

import pytest

from groups_helpers import create_topic, unique
from pybroker.client import ShareConsumer
from test_groups_share import cluster, group_configs  # noqa: F401

pytestmark = pytest.mark.interop

RECORDS = 300


def one_batch(bootstrap, topic):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 500, "batch.num.messages": 10_000})
    for i in range(RECORDS):
        producer.produce(topic, b"job-%04d" % i, partition=0)
    assert producer.flush(15) == 0


def poll_until(consumer, want, timeout):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += [r.value for r in consumer.poll(100)]
    return got


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["batch_optimized", "record_limit"])
def test_a_fetch_acquires_the_whole_batch_unless_record_limit_is_asked(cluster, mode):
    topic, group = create_topic(cluster.bootstrap, 1), unique("acquire")
    group_configs(cluster.bootstrap, group, share_auto_offset_reset="earliest")
    one_batch(cluster.bootstrap, topic)
    first = ShareConsumer(cluster.bootstrap, group_id=group, max_poll_records=10, share_acquire_mode=mode,
                          share_acknowledgement_mode="explicit")
    second = ShareConsumer(cluster.bootstrap, group_id=group, share_acquire_mode=mode)
    try:
        first.subscribe([topic])
        # Two polls: the first fetch has no alignment to go by (10 records), the second
        # knows where the share-partition ends and takes the rest of the batch.
        mine = poll_until(first, 10, 30)
        mine += poll_until(first, 10, 30)
        assert len(mine) == 20
        second.subscribe([topic])
        theirs = poll_until(second, RECORDS - 20, 5)
        if mode == "batch_optimized":
            assert theirs == []                         # every record is held by the first member
            mine += poll_until(first, RECORDS - 20, 30)     # and reaches it without another fetch
            assert sorted(mine) == [b"job-%04d" % i for i in range(RECORDS)]
        else:
            assert len(theirs) >= RECORDS - 40, len(theirs)   # the first holds at most two more fetches' worth
            assert not set(theirs) & set(mine)
    finally:
        first.close()
        second.close()
