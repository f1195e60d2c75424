"""The broker's budget for request bytes (Kafka's ``queued.max.request.bytes`` and its
SimpleMemoryPool, non-strict).

Every connection reserves the bytes of the request it is reading as its buffer grows,
and keeps them until the request has been handled. When the budget is spent, a
connection that needs more stops reading (its socket is not read, so TCP pushes back on
the client) and waits in line; each release wakes waiters, oldest first.

Buffers grow as bytes arrive, so several half-read requests could together hold the
whole budget and each wait for the others forever. So, as Kafka's non-strict pool lets
one request past the capacity, one connection at a time holds the *overdraft*: when
the pool is spent, the first to ask may keep growing its request to the end (at most
``socket.request.max.bytes``), then hands the overdraft on. Requests always progress,
and the pool never holds more than its capacity plus one request.

``capacity`` -1 means no bound (Kafka's default). Owned by the broker's event loop thread.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable


class MemoryPool:
    def __init__(self, capacity: int = -1):
        self.capacity = capacity
        self.used = 0
        # The most ever reserved at once since the last ``take_peak``.
        self.peak = 0
        self._waiters: OrderedDict[int, Callable[[], None]] = OrderedDict()
        self._overdraft: int | None = None

    @property
    def overdrawn(self) -> bool:
        """Some connection holds the overdraft."""
        return self._overdraft is not None

    @property
    def bounded(self) -> bool:
        return self.capacity >= 0

    def try_reserve(self, nbytes: int, key: int) -> bool:
        """Reserve ``nbytes`` more for the request ``key`` is reading."""
        if self.bounded and self.used >= self.capacity and nbytes > 0:
            if self._overdraft not in (None, key):
                return False
            self._overdraft = key
        self.used += nbytes
        if self.used > self.peak:
            self.peak = self.used
        return True

    def release(self, nbytes: int) -> None:
        self.used -= nbytes
        if self._waiters:
            self._wake()

    def request_read(self, key: int) -> None:
        """``key``'s request is complete (or abandoned): it needs no more memory, and the
        overdraft, if it held it, passes on."""
        if self._overdraft == key:
            self._overdraft = None
            self._wake()

    def _wake(self) -> None:
        while self._waiters and (not self.bounded or self.used < self.capacity or self._overdraft is None):
            _key, wake = self._waiters.popitem(last=False)
            wake()

    def wait(self, key: int, wake: Callable[[], None]) -> None:
        """Call ``wake()`` once memory has been released (then try again)."""
        self._waiters[key] = wake

    def cancel(self, key: int) -> None:
        self._waiters.pop(key, None)

    def take_peak(self) -> int:
        peak, self.peak = self.peak, self.used
        return peak
