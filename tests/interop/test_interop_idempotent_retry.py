"""Idempotent produce on the wire: a retried batch is acknowledged, not appended twice.

Batches are built with kafka-python's record builder and sent with raw Produce requests,
so the retry is exact (same producer id, epoch and sequence), as a client resends a batch
whose acknowledgement was lost.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.interop

OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def test_retried_batch_gets_same_offset_and_is_stored_once(pybroker_cluster, topic, wire):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        ids = client.init_producer_id()
        assert ids.error_code == 0 and ids.producer_id >= 0 and ids.producer_epoch >= 0
        batch = wire.build_batch([(None, b"a"), (None, b"b"), (None, b"c")],
                                 producer_id=ids.producer_id, producer_epoch=ids.producer_epoch,
                                 base_sequence=0)

        first = client.produce(topic, 0, batch, acks=-1)
        retry = client.produce(topic, 0, batch, acks=-1)
        assert (first.error_code, first.base_offset) == (0, 0)
        assert (retry.error_code, retry.base_offset) == (0, 0)

        following = wire.build_batch([(None, b"d")], producer_id=ids.producer_id,
                                     producer_epoch=ids.producer_epoch, base_sequence=3)
        nxt = client.produce(topic, 0, following, acks=-1)
        assert (nxt.error_code, nxt.base_offset) == (0, 3)

        values = [r.value for b in client.fetch_batches(topic, 0, 0) for r in b]
        assert values == [b"a", b"b", b"c", b"d"]


def test_sequence_gap_is_rejected_as_out_of_order(pybroker_cluster, topic, wire):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        ids = client.init_producer_id()
        first = wire.build_batch([(None, b"a")], producer_id=ids.producer_id,
                                 producer_epoch=ids.producer_epoch, base_sequence=0)
        assert client.produce(topic, 0, first, acks=-1).error_code == 0
        gap = wire.build_batch([(None, b"z")], producer_id=ids.producer_id,
                               producer_epoch=ids.producer_epoch, base_sequence=5)
        assert client.produce(topic, 0, gap, acks=-1).error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
        values = [r.value for b in client.fetch_batches(topic, 0, 0) for r in b]
        assert values == [b"a"]


def test_producer_without_id_may_resend_and_gets_two_copies(pybroker_cluster, topic, wire):
    # Negative control: without a producer id the broker cannot recognise a retry, so the
    # dedup above is the broker's doing, not an artefact of the test client.
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        batch = wire.build_batch([(None, b"plain")])
        assert client.produce(topic, 0, batch, acks=1).base_offset == 0
        assert client.produce(topic, 0, batch, acks=1).base_offset == 1
        values = [r.value for b in client.fetch_batches(topic, 0, 0) for r in b]
        assert values == [b"plain", b"plain"]
