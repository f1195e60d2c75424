"""Incremental fetch sessions (KIP-227): the broker remembers the partitions of a fetcher's
last full Fetch, so its following requests list only what changed and the answers only
the partitions with news.

A request's ``session_id`` and ``session_epoch`` say what it is:

- ``session_id`` 0, epoch -1: sessionless, a full request answered in full (session id 0).
- epoch 0: a full request that asks for a new session (closing ``session_id`` if given).
  The answer carries the new session's id, or 0 when the cache has no room for it.
- ``session_id`` X, epoch -1: close X, then answer as sessionless.
- ``session_id`` X, epoch N > 0: incremental. Its partitions are added to the session or
  update the cached fetch state, ``forgotten_topics_data`` leave it, and the answer holds
  only the session's partitions with records, a new high watermark or log start, an
  error or a diverging epoch (Kafka's rules: the last stable offset alone does not count).
  An unknown X is answered FETCH_SESSION_ID_NOT_FOUND, an epoch other than the one the
  session expects INVALID_FETCH_SESSION_EPOCH, both with no partitions. A session left
  with no partitions is closed and the request answered as sessionless.

The cache holds ``max.incremental.fetch.session.cache.slots`` sessions. When it is full, a
new session takes the slot of one unused for ``min.incremental.fetch.session.eviction.ms``
(the least recently used), else of the least valuable session older than that: followers'
sessions (privileged) outrank consumers', then more partitions outrank fewer; a follower's
may also displace a consumer's session however young. Failing that the request is answered
without a session. Kafka's FetchSessionCache rules, with one shard.

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import random

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
_MAX_EPOCH = 0x7FFFFFFF


def next_epoch(epoch: int) -> int:
    """The epoch after ``epoch`` (Kafka's FetchMetadata.nextEpoch: wraps to 1)."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _MAX_EPOCH else epoch + 1


def records_size(records) -> int:
    """Bytes of a response entry's records: a file region, bytes or None."""
    if records is None:
        return 0
    length = getattr(records, "length", None)
    return len(records) if length is None else length


class CachedPartition:
    """One partition of a session: the fetcher's last request for it and what it was last
    told (high watermark, log start)."""

    __slots__ = ("request", "high_watermark", "log_start_offset")

    def __init__(self, request: dict, high_watermark: int = -1, log_start_offset: int = -1):
        self.request = request
        self.high_watermark = high_watermark
        self.log_start_offset = log_start_offset

    def must_respond(self, entry: dict) -> bool:
        """Whether an incremental answer includes this partition's ``entry``; records what
        the fetcher is told."""
        must = records_size(entry["records"]) > 0
        if entry["high_watermark"] != self.high_watermark:
            must = True
            self.high_watermark = entry["high_watermark"]
        if entry["log_start_offset"] != self.log_start_offset:
            must = True
            self.log_start_offset = entry["log_start_offset"]
        if entry.get("preferred_read_replica", -1) >= 0 or "diverging_epoch" in entry:
            must = True
        if entry["error_code"]:
            # Sent again once the error is gone.
            self.high_watermark = -1
            must = True
        return must


class FetchSession:
    __slots__ = ("id", "privileged", "partitions", "created_ms", "last_used_ms", "epoch")

    def __init__(self, session_id: int, privileged: bool, partitions: dict, now_ms: int):
        self.id = session_id
        self.privileged = privileged
        # (topic, partition) -> CachedPartition, in the order answers are built: partitions
        # that returned records move to the end, so a full answer does not starve the rest.
        self.partitions = partitions
        self.created_ms = now_ms
        self.last_used_ms = now_ms
        # The epoch the next request must carry.
        self.epoch = next_epoch(INITIAL_EPOCH)

    def update(self, topics: list, forgotten: list) -> None:
        """Apply an incremental request: its partitions are added or update their cached
        request; forgotten ones leave (after the additions, as Kafka does)."""
        partitions = self.partitions
        for topic in topics:
            name = topic["topic"]
            for req in topic["partitions"]:
                cached = partitions.get((name, req["partition"]))
                if cached is None:
                    partitions[(name, req["partition"])] = CachedPartition(req)
                else:
                    cached.request = req
        for topic in forgotten:
            name = topic["topic"]
            for index in topic["partitions"]:
                partitions.pop((name, index), None)

    def request_topics(self) -> list:
        """The session's partitions as a Fetch request's ``topics`` (consecutive partitions
        of one topic in one entry)."""
        topics = []
        last = None
        parts = None
        for (name, _), cached in self.partitions.items():
            if name != last:
                parts = []
                topics.append({"topic": name, "partitions": parts})
                last = name
            parts.append(cached.request)
        return topics

    def filter_response(self, responses: list) -> list:
        """Keep the partitions an incremental answer must carry; moves those with records
        to the end of the session's order."""
        partitions = self.partitions
        out = []
        moved = []
        for topic in responses:
            name = topic["topic"]
            kept = []
            for entry in topic["partitions"]:
                key = (name, entry["partition_index"])
                cached = partitions.get(key)
                if cached is None or cached.must_respond(entry):
                    kept.append(entry)
                    if cached is not None and records_size(entry["records"]):
                        moved.append(key)
            if kept:
                out.append({"topic": name, "partitions": kept})
        for key in moved:
            partitions[key] = partitions.pop(key)
        return out


class FetchSessionCache:
    def __init__(self, max_slots: int, eviction_ms: int, rng: random.Random | None = None):
        self.max_slots = max_slots
        self.eviction_ms = eviction_ms
        self.sessions: dict[int, FetchSession] = {}
        self.evictions = 0
        self._rng = rng or random.SystemRandom()

    def __len__(self) -> int:
        return len(self.sessions)

    @property
    def partitions_cached(self) -> int:
        return sum(len(s.partitions) for s in self.sessions.values())

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def remove(self, session_id: int) -> FetchSession | None:
        return self.sessions.pop(session_id, None)

    def touch(self, session: FetchSession, now_ms: int) -> None:
        session.last_used_ms = now_ms

    def maybe_create(self, privileged: bool, responses: list, requests: dict, now_ms: int) -> int:
        """A new session for a full request's answer (``requests``: (topic, partition) ->
        request entry). Returns its id, or INVALID_SESSION_ID when there is no room."""
        size = sum(len(t["partitions"]) for t in responses)
        if self.max_slots <= 0:
            return INVALID_SESSION_ID
        if len(self.sessions) >= self.max_slots and not self._try_evict(privileged, size, now_ms):
            return INVALID_SESSION_ID
        partitions = {}
        for topic in responses:
            name = topic["topic"]
            for entry in topic["partitions"]:
                key = (name, entry["partition_index"])
                req = requests.get(key)
                if req is None:
                    continue
                hw = -1 if entry["error_code"] else entry["high_watermark"]
                partitions[key] = CachedPartition(req, hw, entry["log_start_offset"])
        session_id = self._new_id()
        self.sessions[session_id] = FetchSession(session_id, privileged, partitions, now_ms)
        return session_id

    def _new_id(self) -> int:
        while True:
            session_id = self._rng.randint(1, _MAX_EPOCH)
            if session_id not in self.sessions:
                return session_id

    def _try_evict(self, privileged: bool, size: int, now_ms: int) -> bool:
        """Make room (Kafka's tryEvict): the least recently used session if it is stale,
        else the least valuable evictable one if the new session is worth more."""
        stale = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - stale.last_used_ms > self.eviction_ms:
            self._evict(stale)
            return True
        victim = None
        for session in self.sessions.values():
            old = now_ms - session.created_ms > self.eviction_ms
            # A follower's session may displace any consumer's, or an old follower's; a
            # consumer's only an old one.
            if not (old or (privileged and not session.privileged)):
                continue
            key = (session.privileged, len(session.partitions), session.id)
            if victim is None or key < victim[0]:
                victim = (key, session)
        if victim is None or (privileged, size) <= victim[0][:2]:
            return False
        self._evict(victim[1])
        return True

    def _evict(self, session: FetchSession) -> None:
        del self.sessions[session.id]
        self.evictions += 1
