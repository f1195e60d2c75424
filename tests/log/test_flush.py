"""When a log's data becomes durable: the recovery point moves at every roll, the
periodic flush runs on the flusher thread, and a truncation keeps the checkpoint below
the offsets it replaced whatever the flusher was doing."""
import asyncio
import os
import threading

from log_helpers import append, make_batch, offsets, read_all
from pybroker.log import Log, checkpoint
from pybroker.log.flusher import Flusher
from pybroker.log.segment import LogSegment


def test_roll_flushes_and_moves_the_recovery_point_to_the_new_active_segment(log_dir, config):
    log = Log.open(log_dir, config)
    for _ in range(40):
        append(log, make_batch(3, 40))
    assert len(log.segments) >= 3
    active = log.active_segment.base_offset
    assert log.recovery_point == active
    assert checkpoint.read_offset(log_dir, checkpoint.RECOVERY_POINT) == active
    assert not any(s.dirty for s in log.segments[:-1])
    log.close()


def test_after_a_crash_only_segments_since_the_last_roll_are_recovered(log_dir, config, monkeypatch):
    log = Log.open(log_dir, config)
    for _ in range(40):
        append(log, make_batch(3, 40))
    segments = len(log.segments)
    expected = read_all(log)
    # A crash: no close, no final flush.
    for segment in log.segments:
        os.close(segment.fd)
    recovered = []
    original = LogSegment.recover

    def counting(self, *args, **kwargs):
        recovered.append(self.base_offset)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LogSegment, "recover", counting)
    reopened = Log.open(log_dir, config)
    assert recovered == [reopened.active_segment.base_offset]
    assert len(reopened.segments) == segments
    assert read_all(reopened) == expected
    reopened.close()


class LoopFlusher:
    """A threaded flusher whose results come back through an event loop the test runs."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.flusher = Flusher(self.loop.call_soon_threadsafe)

    def settle(self):
        self.flusher.drain()
        self.loop.run_until_complete(asyncio.sleep(0.05))

    def close(self):
        self.loop.close()


def test_periodic_flush_runs_on_the_flusher_thread(log_dir, config):
    harness = LoopFlusher()
    log = Log.open(log_dir, config)
    log.flusher = harness.flusher
    threads = []
    original = LogSegment.flush
    append(log, make_batch(3))
    seen = threading.Event()

    def job():
        threads.append(threading.current_thread().name)
        seen.set()

    harness.flusher.submit(job)
    log.flush_async()
    harness.settle()
    assert threads and threads[0].startswith("log-flusher")
    assert threading.current_thread().name not in threads
    assert log.recovery_point == log.log_end_offset
    assert checkpoint.read_offset(log_dir, checkpoint.RECOVERY_POINT) == log.log_end_offset
    assert LogSegment.flush is original
    log.close()
    harness.close()


def test_truncation_after_a_queued_flush_keeps_the_checkpoint_at_or_below_the_truncated_end(log_dir, config):
    harness = LoopFlusher()
    log = Log.open(log_dir, config)
    log.flusher = harness.flusher
    for _ in range(5):
        append(log, make_batch(3))
    gate = threading.Event()
    harness.flusher.submit(gate.wait)  # the flusher is busy: what follows queues up
    log.flush_async()  # would checkpoint the log end, 15
    assert log.truncate_to(6) > 0
    gate.set()
    harness.settle()
    assert log.log_end_offset == 6
    # Never above what the truncation kept: the flush queued before it checkpointed 15.
    assert checkpoint.read_offset(log_dir, checkpoint.RECOVERY_POINT) <= 6
    assert log.recovery_point <= 6
    assert offsets(read_all(log)) == list(range(6))
    log.close()
    harness.close()
