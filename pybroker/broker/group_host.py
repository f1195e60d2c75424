"""Hosts the group coordinator (``pybroker.group``) on the broker's event loop.

The coordinator is pure logic: a JoinGroup or SyncGroup that must wait for other members
comes back PENDING and is parked under a future; every later call (or a deadline in
``tick``) may complete parked requests, which are drained here and resolved. One timer
task sleeps until the coordinator's next deadline (session timeouts, rebalance timeouts,
the initial rebalance delay).

Committed offsets live in ``<data>/__consumer_offsets/`` (an append-only file of
CRC-checked records). Writes go through the page cache without fsync, as Kafka's do: a
commit survives the death of any process once acknowledged.

Owned by the broker's event loop thread.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from pybroker.group.coordinator import CoordinatorSettings, GroupCoordinator
from pybroker.group.offset_store import OffsetStore
from pybroker.group.state_machine import PENDING

log = logging.getLogger("pybroker.group")

# Kafka's offsets.retention.check.interval.ms.
RETENTION_CHECK_S = 600.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class GroupHost:
    def __init__(self, data_dir: str, settings: CoordinatorSettings | None = None):
        self.store = OffsetStore(os.path.join(data_dir, "__consumer_offsets"), fsync=False)
        self.coordinator = GroupCoordinator(self.store, settings)
        self._timer: asyncio.TimerHandle | None = None
        self._housekeeping: asyncio.Task | None = None

    def start(self) -> None:
        self._housekeeping = asyncio.get_running_loop().create_task(self._expire_loop())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self.store.close()

    # -- parked requests ---------------------------------------------------------------

    async def call(self, method: str, group_id: str, **request):
        """Run a coordinator call that may park (join, sync); resolve whatever completes."""
        fut = asyncio.get_running_loop().create_future()
        result = getattr(self.coordinator, method)(group_id, _now_ms(), token=fut, **request)
        self._after_call()
        if result is PENDING:
            return await fut
        return result

    def run(self, method: str, *args, **kwargs):
        """Run a coordinator call that answers at once (heartbeat, leave, commits...)."""
        result = getattr(self.coordinator, method)(*args, **kwargs)
        self._after_call()
        return result

    def _after_call(self, completed=()) -> None:
        for _group_id, completion in [*completed, *self.coordinator.take_completions()]:
            fut = completion.token
            if isinstance(fut, asyncio.Future) and not fut.done():
                fut.set_result(completion.response)
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.coordinator.next_deadline_ms()
        if deadline is not None:
            delay = max(0.0, (deadline - _now_ms()) / 1000.0)
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._after_call(self.coordinator.tick(_now_ms()))

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_CHECK_S)
            expired = self.run("expire_offsets", _now_ms())
            if expired:
                log.info("expired %d committed offsets", expired)
            self.store.compact()
