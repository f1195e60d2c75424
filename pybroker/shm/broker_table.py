"""Broker table: one row per broker id with its pid, port, heartbeat and state.

Each broker writes its own row; the supervisor reads every row to judge liveness without
talking to the brokers (a stale heartbeat, like gunicorn's worker tmp file, says the
process is stuck even when it has not exited).

Row layout (native byte order, 64 bytes, 8-aligned)::

    ROW = "q"   # seq         => seqlock word (odd while the row is being rewritten)
          "q"   # pid         => broker process id, 0 = row never used
          "q"   # port        => Kafka listener port
          "q"   # heartbeat   => wall-clock ms of the last heartbeat
          "q"   # state       => EMPTY / STARTING / ALIVE / STOPPING
          "q"   # started_ms  => wall-clock ms when the broker registered
          "I"   # news        => futex word, changed after each write of this broker's
                  #                offsets rows (tail readers wait on it; see futex.py)
          "12x" # reserved

``news`` is outside the seqlock too: readers only compare it with what they saw before
they looked for new data, and wait on it while it is unchanged.
``heartbeat`` stores one aligned 8-byte word and needs no seqlock (see seqlock.py for why
that is atomic); registration and state changes rewrite several fields under the seqlock.
Writer: the broker owning the row (its event-loop thread). Readers: anyone.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from pybroker.shm.futex import Futex
from pybroker.shm.seqlock import SeqlockRows

ROW = struct.Struct(
    "@q"   # seq
    "q"    # pid
    "q"    # port
    "q"    # heartbeat_ms
    "q"    # state
    "q"    # started_ms
    "I"    # news
    "12x"  # reserved
)
ROW_SIZE = 64
assert ROW.size == ROW_SIZE
_FIELDS = struct.Struct("@qqqqq")  # pid .. started_ms, written after the seq word
_HEARTBEAT_WORD = 3
_NEWS_OFFSET = 48

EMPTY, STARTING, ALIVE, STOPPING = 0, 1, 2, 3
STATE_NAMES = {EMPTY: "empty", STARTING: "starting", ALIVE: "alive", STOPPING: "stopping"}


class BrokerRow(NamedTuple):
    broker_id: int
    pid: int
    port: int
    heartbeat_ms: int
    state: int
    started_ms: int

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, f"unknown({self.state})")

    def is_fresh(self, now_ms: int, timeout_ms: int) -> bool:
        """Registered, not stopping, and heartbeating within ``timeout_ms``."""
        return self.state in (STARTING, ALIVE) and now_ms - self.heartbeat_ms <= timeout_ms


class BrokerTable:
    """The broker rows of one region. See the module docstring for who writes what."""

    def __init__(self, data: memoryview, words: memoryview, base: int, capacity: int):
        self._rows = SeqlockRows(data, words, base, ROW_SIZE, capacity)
        self._data = data
        self._words = words
        self.capacity = capacity
        self._news: dict[int, Futex] = {}

    @staticmethod
    def size_for(capacity: int) -> int:
        return capacity * ROW_SIZE

    def register(self, broker_id: int, pid: int, port: int, now_ms: int,
                 state: int = STARTING) -> None:
        """Claim the row at broker start (a restarted broker overwrites its old row)."""
        rows = self._rows
        token = rows.begin_write(broker_id)
        _FIELDS.pack_into(self._data, rows.offset(broker_id) + 8, pid, port, now_ms, state, now_ms)
        rows.end_write(broker_id, token)

    def set_state(self, broker_id: int, state: int) -> None:
        if state not in STATE_NAMES:
            raise ValueError(f"unknown broker state {state}")
        rows = self._rows
        token = rows.begin_write(broker_id)
        self._words[(rows.offset(broker_id) >> 3) + 4] = state
        rows.end_write(broker_id, token)

    def heartbeat(self, broker_id: int, now_ms: int) -> None:
        """One aligned 8-byte store: cheap enough for every ~100 ms tick."""
        self._words[(self._rows.offset(broker_id) >> 3) + _HEARTBEAT_WORD] = now_ms

    def news_word(self, broker_id: int) -> Futex:
        """The futex word broker ``broker_id`` changes after each write of its offsets
        rows: its owner ``announce``s, tail readers ``wait`` on it."""
        word = self._news.get(broker_id)
        if word is None:
            if not 0 <= broker_id < self.capacity:
                raise IndexError(f"broker id {broker_id} outside 0..{self.capacity - 1}")
            word = self._news[broker_id] = Futex(self._data, self._rows.offset(broker_id) + _NEWS_OFFSET)
        return word

    def announce(self, broker_id: int) -> None:
        """New offsets are published: change the news word and wake its waiters."""
        word = self.news_word(broker_id)
        word.bump()
        word.wake()

    def clear(self, broker_id: int) -> None:
        """Forget a broker (supervisor, after reaping it for good)."""
        rows = self._rows
        token = rows.begin_write(broker_id)
        _FIELDS.pack_into(self._data, rows.offset(broker_id) + 8, 0, 0, 0, EMPTY, 0)
        rows.end_write(broker_id, token)

    def read(self, broker_id: int) -> BrokerRow:
        _seq, pid, port, _hb, state, started_ms, _news = ROW.unpack(self._rows.snapshot(broker_id))
        # The heartbeat is outside the seqlock protocol (it is one word), so it is loaded
        # as one word rather than trusted from a bulk copy that might split it.
        heartbeat_ms = self._words[(self._rows.offset(broker_id) >> 3) + _HEARTBEAT_WORD]
        return BrokerRow(broker_id, pid, port, heartbeat_ms, state, started_ms)

    def registered(self) -> list[BrokerRow]:
        """Every row a broker has claimed and not cleared, by broker id."""
        return [row for row in map(self.read, range(self.capacity)) if row.state != EMPTY]
