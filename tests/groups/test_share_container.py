"""The listener container in share-group mode against real broker processes: more
workers than partitions all get records; a failing record is RELEASEd (delivered again,
with a higher delivery count, possibly to another worker) until the back-off is
exhausted, then recovered and REJECTed; every good record is ACCEPTed exactly once."""
from __future__ import annotations

import threading

import pytest

from groups_helpers import create_topic, unique, wait_until
from pybroker.client import ShareConsumer
from pybroker.client.container import AckMode, DefaultErrorHandler, FixedBackOff, ListenerContainer
from test_groups_share import cluster, group_configs, produce  # noqa: F401

pytestmark = pytest.mark.interop


def test_share_mode_is_a_worker_pool_with_release_then_reject(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("pool")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    values = [b"job-%03d" % i for i in range(60)] + [b"poison"]
    lock = threading.Lock()
    done: dict[bytes, str] = {}
    workers_used: set[str] = set()
    poison_counts: list[int] = []
    recovered: list[tuple[bytes, str]] = []

    def listener(record):
        with lock:
            workers_used.add(threading.current_thread().name)
            if record.value == b"poison":
                poison_counts.append(record.delivery_count)
                raise ValueError("cannot process")
            assert record.value not in done, record      # accepted records never come back
            done[record.value] = threading.current_thread().name
        threading.Event().wait(0.01)        # some work, so the pool spreads it

    handler = DefaultErrorHandler(lambda record, exc: recovered.append((record.value, str(exc))),
                                  FixedBackOff(10, 2))
    container = ListenerContainer(
        # record_limit: at most 5 records per fetch, so the pool spreads them even when a
        # stalled producer sends many in one batch (batch-optimized would hand the batch
        # to one worker).
        {"bootstrap.servers": bootstrap, "group.id": group, "max.poll.records": 5, "fetch.max.wait.ms": 100,
         "share.acquire.mode": "record_limit"},
        [topic], listener, error_handler=handler, poll_timeout_ms=100, concurrency=3, share=True)
    with container:
        wait_until(lambda: all(w.consumer is not None and w.consumer.member.generation > 0 for w in container.workers),
                   30, "every worker to join")
        produce(bootstrap, topic, values, pace=0.005)
        wait_until(lambda: len(done) == 60 and recovered, 60, "every record processed and the poison recovered")
    assert container.errors == []
    assert sorted(done) == sorted(values[:-1])
    assert poison_counts == [1, 2, 3]          # the first try and two retries, one delivery each
    assert recovered == [(b"poison", "cannot process")]
    assert len(set(done.values())) >= 2, workers_used      # more than one worker on one partition
    with ShareConsumer(bootstrap, group_id=group) as late:   # nothing left: all ACCEPTed or REJECTed
        late.subscribe([topic])
        assert all(not late.poll(300) for _ in range(5))


def test_share_mode_rejects_ack_modes():
    with pytest.raises(ValueError):
        ListenerContainer({"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, ["t"], print,
                          ack_mode=AckMode.RECORD, share=True)
