"""Where a log's fsyncs and checkpoint writes run (Kafka's "flush-log" scheduler task).

A ``Flusher`` runs jobs one at a time, in the order submitted, on one worker thread, and
hands each job's result (or its exception) back to the thread that owns the logs through
``deliver`` (the broker passes ``loop.call_soon_threadsafe``). One thread for every log
of a broker keeps the order total: a checkpoint written after a truncation always lands
after every checkpoint queued before it, so a recovery point never goes back above data
that a truncation replaced.

Without ``deliver`` the flusher is inline: jobs run at once on the caller's thread (tools,
tests, a log opened outside a broker).

A job touches only files by path and fds it opened itself, never a ``LogSegment``: the
owner thread may delete or truncate segments meanwhile (fsync of a file that is gone is
skipped, see ``fsync_path``).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

log = logging.getLogger("pybroker.log")

Done = Callable[[object, BaseException | None], None]


def fsync_path(path: str) -> None:
    """fsync a file by name; a file deleted meanwhile has nothing left to make durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Flusher:
    """Ordered background I/O for the logs of one broker. ``submit`` from the owner
    thread only."""

    def __init__(self, deliver: Callable | None = None, name: str = "log-flusher"):
        self._deliver = deliver
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) if deliver else None
        self.pending = 0

    @property
    def inline(self) -> bool:
        return self._executor is None

    def submit(self, job: Callable[[], object], on_done: Done | None = None) -> None:
        """Run ``job``; then ``on_done(result, exception)`` on the owner thread."""
        if self._executor is None:
            try:
                result = job()
            except Exception as exc:  # the caller's on_done decides what a failure means
                if on_done is None:
                    raise
                on_done(None, exc)
                return
            if on_done is not None:
                on_done(result, None)
            return
        self.pending += 1
        future = self._executor.submit(job)
        future.add_done_callback(lambda f: self._deliver(self._finish, f, on_done))

    def _finish(self, future: Future, on_done: Done | None) -> None:
        self.pending -= 1
        exc = future.exception()
        if on_done is not None:
            on_done(None if exc else future.result(), exc)
        elif exc is not None:
            log.warning("background log I/O failed: %s", exc)

    def wait(self) -> None:
        """Block until every job submitted so far has run (before renaming a directory
        that queued jobs still write into)."""
        if self._executor is not None:
            self._executor.submit(lambda: None).result()

    def drain(self) -> None:
        """Wait for every job submitted, then run later ones inline (shutdown). The
        results of drained jobs are still delivered if the owner's loop runs again."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


INLINE = Flusher()

