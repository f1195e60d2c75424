"""One asyncio timer kept armed for an owner's next deadline (wall-clock ms): the group and
transaction coordinator hosts re-arm it after every call and run ``on_due`` when it fires.
Owned by one event loop."""
from __future__ import annotations

import asyncio
import time
from typing import Callable


def now_ms() -> int:
    return int(time.time() * 1000)


class DeadlineTimer:
    def __init__(self, next_deadline_ms: Callable[[], "int | None"], on_due: Callable[[], None]):
        self._next_deadline_ms = next_deadline_ms
        self._on_due = on_due
        self._timer: asyncio.TimerHandle | None = None

    def schedule(self) -> None:
        """Re-arm for the owner's current next deadline (none: stay idle)."""
        self.cancel()
        deadline = self._next_deadline_ms()
        if deadline is not None:
            delay = max(0.0, (deadline - now_ms()) / 1000.0)
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._on_due()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
