"""Producer accumulator, configuration and delivery outcomes (no broker: an unreachable
bootstrap address keeps every batch in the accumulator)."""
import socket
import time

import pytest

from pybroker import errors
from pybroker.client.producer import Producer


@pytest.fixture
def dead_address():
    # A bound socket that never listens: connections are refused at once.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def offline_producer(address, topic="t", partitions=3, **kwargs):
    p = Producer(address, **kwargs)
    p._partition_counts[topic] = partitions  # as if metadata had been fetched
    return p


def test_dict_and_keyword_configuration_are_equivalent(dead_address):
    a = Producer({"bootstrap.servers": dead_address, "linger.ms": 7, "batch.size": 100})
    b = Producer(dead_address, linger_ms=7, batch_size=100)
    try:
        assert (a.linger, a.batch_size) == (b.linger, b.batch_size) == (0.007, 100)
    finally:
        a.close(0.1)
        b.close(0.1)


def test_unknown_configuration_is_refused(dead_address):
    with pytest.raises(ValueError, match="linger.msec"):
        Producer({"bootstrap.servers": dead_address, "linger.msec": 1})


def test_idempotence_defaults_on_and_follows_acks(dead_address):
    p = Producer(dead_address)
    q = Producer(dead_address, acks=1)
    try:
        assert p.idempotent and p.acks == -1
        assert not q.idempotent
    finally:
        p.close(0.1)
        q.close(0.1)
    with pytest.raises(ValueError, match="idempotence"):
        Producer(dead_address, acks=1, enable_idempotence=True)


def test_full_buffer_blocks_then_raises_after_max_block(dead_address):
    p = offline_producer(dead_address, buffer_memory=2000, max_block_ms=200, linger_ms=10_000)
    try:
        for _ in range(16):  # 16 x 121 accounted bytes fit in 2000
            p.send("t", b"x" * 100, partition=0)
        start = time.monotonic()
        with pytest.raises(errors.RequestTimedOut, match="buffer.memory"):
            p.send("t", b"x" * 100, partition=0)
        assert 0.15 < time.monotonic() - start < 2
    finally:
        p.close(0.1)


def test_oversized_record_is_refused_at_send(dead_address):
    p = offline_producer(dead_address, max_request_size=1000)
    try:
        with pytest.raises(errors.MessageTooLarge):
            p.send("t", b"x" * 2000, partition=0)
    finally:
        p.close(0.1)


def test_undeliverable_batches_fail_after_delivery_timeout(dead_address):
    failures, callbacks = [], []
    p = offline_producer(dead_address, delivery_timeout_ms=300, linger_ms=0, retry_backoff_ms=20,
                         on_batch_error=lambda *a: failures.append(a[:3]))
    try:
        futures = [p.send("t", b"v%d" % i, partition=1, callback=lambda m, e: callbacks.append((m, e)))
                   for i in range(3)]
        assert p.flush(5) == 0
        for f in futures:
            assert isinstance(f.exception(1), errors.KafkaError)
        assert sum(n for _, _, n in failures) == 3
        assert len(callbacks) == 3 and all(m is None and e is not None for m, e in callbacks)
    finally:
        p.close(0.1)


def test_records_of_one_batch_share_one_future(dead_address):
    p = offline_producer(dead_address, linger_ms=10_000)
    try:
        a = p.send("t", b"a", partition=2)
        b = p.send("t", b"b", partition=2)
        c = p.send("t", b"c", partition=0)
        assert a._batch is b._batch and a._batch is not c._batch
        assert (a._index, b._index) == (0, 1)
    finally:
        p.close(0.1)


def test_null_keys_stick_to_a_partition_until_its_batch_fills(dead_address):
    p = offline_producer(dead_address, partitions=4, batch_size=500, linger_ms=10_000)
    try:
        first = {p.send("t", b"x" * 10)._batch.partition for _ in range(5)}
        assert len(first) == 1
        sticky = first.pop()
        # ~31 bytes a record: the 500-byte batch fills within 20 records, and only then
        # does the choice move (to another partition).
        for sent in range(6, 40):
            partition = p.send("t", b"x" * 10)._batch.partition
            if partition != sticky:
                break
        assert partition != sticky and 10 <= sent < 25
    finally:
        p.close(0.1)


def test_keyed_records_follow_murmur2(dead_address):
    from kafka.partitioner.default import murmur2
    p = offline_producer(dead_address, partitions=5, linger_ms=10_000)
    try:
        for i in range(50):
            key = b"user-%d" % i
            assert p.send("t", b"v", key=key)._batch.partition == (murmur2(key) & 0x7FFFFFFF) % 5
    finally:
        p.close(0.1)
