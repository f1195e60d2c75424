"""One share-partition of a share group (KIP-932): which records of a topic partition the
group's members hold, have acknowledged, or may be given again.

The state is a start offset (SPSO: everything below is done), an end offset (SPEO: the
first offset never handed out) and, between them, *ranges* of offsets with one state and
delivery count each — never an object per record::

    AVAILABLE     may be acquired (again)
    ACQUIRED      held by one member until its lock deadline
    ACKNOWLEDGED  accepted: done
    ARCHIVED      rejected, or delivered ``delivery_limit`` times: never again

A member acquires available ranges (their delivery count goes up) and then records past
SPEO, up to ``max_records``; it acknowledges what it holds: ACCEPT, RELEASE (available
again, or archived at the limit), REJECT, RENEW (a longer lock) or GAP (no record there).
An expired lock releases its range as RELEASE would. Leading done ranges fold into SPSO.

Pure logic: no I/O, no clock. Owned by the group coordinator's event loop thread.
"""
from __future__ import annotations

import itertools

AVAILABLE, ACQUIRED, ACKNOWLEDGED, ARCHIVED = 0, 2, 4, 5     # Kafka's RecordState numbers
GAP, ACCEPT, RELEASE, REJECT, RENEW = 0, 1, 2, 3, 4          # AcknowledgeTypes
STATE_NAMES = {AVAILABLE: "Available", ACQUIRED: "Acquired", ACKNOWLEDGED: "Acknowledged", ARCHIVED: "Archived"}


class InFlight:
    """Offsets ``first..last`` (inclusive) in one state."""

    __slots__ = ("first", "last", "state", "count", "member", "deadline")

    def __init__(self, first, last, state, count, member=None, deadline=0):
        self.first, self.last, self.state, self.count = first, last, state, count
        self.member, self.deadline = member, deadline

    def copy(self, first, last) -> "InFlight":
        return InFlight(first, last, self.state, self.count, self.member, self.deadline)

    def to_json(self) -> list:
        # Acquisitions are not durable: after a restart an acquired range is available again.
        state = AVAILABLE if self.state == ACQUIRED else self.state
        return [self.first, self.last, state, self.count]

    def __repr__(self):
        return f"InFlight({self.first}-{self.last} {STATE_NAMES[self.state]} x{self.count} {self.member})"


class SharePartition:
    def __init__(self, start: int, delivery_limit: int = 5):
        self.start = start
        self.end = start
        self.delivery_limit = delivery_limit
        self.ranges: list[InFlight] = []

    # ------------------------------------------------------------------ state

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "ranges": [r.to_json() for r in self.ranges]}

    @classmethod
    def from_json(cls, doc: dict, delivery_limit: int = 5) -> "SharePartition":
        sp = cls(int(doc["start"]), delivery_limit)
        sp.end = int(doc["end"])
        sp.ranges = [InFlight(f, last, state, count) for f, last, state, count in doc["ranges"]]
        return sp

    def next_deadline(self) -> int | None:
        deadlines = [r.deadline for r in self.ranges if r.state == ACQUIRED]
        return min(deadlines) if deadlines else None

    def in_flight(self) -> int:
        """Records between SPSO and SPEO not yet done (a share group's lag-like figure)."""
        return sum(r.last - r.first + 1 for r in self.ranges if r.state in (AVAILABLE, ACQUIRED))

    def done(self) -> int:
        """Records past SPSO acknowledged or archived (they count in no lag)."""
        return sum(r.last - r.first + 1 for r in self.ranges if r.state in (ACKNOWLEDGED, ARCHIVED))

    # ------------------------------------------------------------------ acquire

    def acquire(self, member: str, now_ms: int, log_start: int, end_offset: int, max_records: int,
                lock_ms: int, align: tuple[int, int] | None = None) -> list[tuple[int, int, int]]:
        """Hands ``member`` up to ``max_records`` records below ``end_offset`` (the high
        watermark): available ranges first, then new ones. Returns (first, last,
        delivery count) ranges.

        ``align`` is (SPEO as the partition leader last saw it, the last offset of the
        batch holding SPEO + ``max_records`` - 1): when SPEO is still there, new records
        are acquired up to that batch's end, past ``max_records`` (Kafka's batch-optimized
        acquisition), so the whole batches a ShareFetch answer carries are acquired once
        instead of being sent again for every ``max_records`` slice of them."""
        self.move_start(log_start)
        got: list[tuple[int, int, int]] = []
        budget = max_records
        for r in list(self.ranges):
            if budget <= 0:
                break
            if r.state != AVAILABLE:
                continue
            if r.last - r.first + 1 > budget:
                self._split(r.first + budget)
            r.state, r.count, r.member, r.deadline = ACQUIRED, r.count + 1, member, now_ms + lock_ms
            got.append((r.first, r.last, r.count))
            budget -= r.last - r.first + 1
        if budget > 0 and self.end < end_offset:
            first, last = self.end, min(end_offset, self.end + budget) - 1
            if align is not None and align[0] == self.end and align[1] > last:
                last = min(end_offset - 1, align[1])
            self.ranges.append(InFlight(first, last, ACQUIRED, 1, member, now_ms + lock_ms))
            self.end = last + 1
            got.append((first, last, 1))
        self._merge()
        return sorted(got)

    def unacquire(self, member: str, first: int, last: int) -> None:
        """Undo an acquisition that was never sent (the records did not fit the answer)."""
        self._split(first)
        self._split(last + 1)
        for r in self.ranges:
            if first <= r.first and r.last <= last and r.state == ACQUIRED and r.member == member:
                r.state, r.count, r.member = AVAILABLE, r.count - 1, None
        self._merge()

    # ------------------------------------------------------------------ acknowledge

    def acknowledge(self, member: str, first: int, last: int, types: list[int], now_ms: int,
                    lock_ms: int) -> bool:
        """Applies one acknowledgement batch; False (nothing changed) when any of its
        offsets is not held by ``member`` (Kafka's INVALID_RECORD_STATE)."""
        if last < first or not types or (len(types) != 1 and len(types) != last - first + 1):
            return False
        self._split(first)
        self._split(last + 1)
        held = [r for r in self.ranges if first <= r.first and r.last <= last]
        if sum(r.last - r.first + 1 for r in held) != last - first + 1 or \
                any(r.state != ACQUIRED or r.member != member for r in held):
            self._merge()
            return False
        runs = [(first, last, types[0])] if len(types) == 1 else self._runs(first, types)
        for run_first, run_last, kind in runs:
            self._split(run_first)
            self._split(run_last + 1)
            for r in self.ranges:
                if run_first <= r.first and r.last <= run_last:
                    self._apply(r, kind, now_ms, lock_ms)
        self._merge()
        return True

    @staticmethod
    def _runs(first: int, types: list[int]):
        offset = first
        for kind, group in itertools.groupby(types):
            n = sum(1 for _ in group)
            yield offset, offset + n - 1, kind
            offset += n

    def _apply(self, r: InFlight, kind: int, now_ms: int, lock_ms: int) -> None:
        if kind == RENEW:
            r.deadline = now_ms + lock_ms
        elif kind in (ACCEPT, GAP):
            r.state, r.member = ACKNOWLEDGED, None
        elif kind == REJECT:
            r.state, r.member = ARCHIVED, None
        else:
            self._release(r)

    def _release(self, r: InFlight) -> None:
        r.state = ARCHIVED if r.count >= self.delivery_limit else AVAILABLE
        r.member = None

    def expire(self, now_ms: int) -> bool:
        """Releases ranges whose lock has run out; True when any did."""
        changed = False
        for r in self.ranges:
            if r.state == ACQUIRED and r.deadline <= now_ms:
                self._release(r)
                changed = True
        if changed:
            self._merge()
        return changed

    def release_member(self, member: str) -> bool:
        """A member left or was fenced: what it holds is released."""
        changed = False
        for r in self.ranges:
            if r.state == ACQUIRED and r.member == member:
                self._release(r)
                changed = True
        if changed:
            self._merge()
        return changed

    # ------------------------------------------------------------------ bookkeeping

    def move_start(self, offset: int) -> None:
        """Records below ``offset`` are gone from the log (retention, DeleteRecords) or
        reset away: nothing below it is delivered again."""
        if offset <= self.start:
            return
        self.start = offset
        self.end = max(self.end, offset)
        self._split(offset)
        self.ranges = [r for r in self.ranges if r.first >= offset]
        self._merge()

    def reset(self, offset: int) -> None:
        """AlterShareGroupOffsets: start again at ``offset``, forgetting everything."""
        self.start = self.end = offset
        self.ranges = []

    def _split(self, offset: int) -> None:
        for i, r in enumerate(self.ranges):
            if r.first < offset <= r.last:
                self.ranges[i:i + 1] = [r.copy(r.first, offset - 1), r.copy(offset, r.last)]
                return

    def _merge(self) -> None:
        merged: list[InFlight] = []
        for r in self.ranges:
            prev = merged[-1] if merged else None
            if prev is not None and prev.last + 1 == r.first and \
                    (prev.state, prev.count, prev.member, prev.deadline) == (r.state, r.count, r.member, r.deadline):
                prev.last = r.last
            else:
                merged.append(r)
        while merged and merged[0].state in (ACKNOWLEDGED, ARCHIVED):
            self.start = merged.pop(0).last + 1
        if not merged:
            self.start = max(self.start, self.end)
        self.ranges = merged
