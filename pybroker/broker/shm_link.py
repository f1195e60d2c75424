"""A broker's link to the cluster's shared-memory region (``pybroker.shm``).

What this broker publishes there, and when:

- its **broker row** (pid, port, state) at start, and a heartbeat word every
  ``HEARTBEAT_INTERVAL_S`` from an asyncio task, so the supervisor sees a stuck process
  even while it has not exited;
- an **offsets row** (leader, epoch, log start, log end, high watermark) for every
  partition it leads. Appends and high-watermark moves only mark the partition dirty; the
  rows are written once per burst (``FLUSH_INTERVAL_S`` apart at most), never per record;
- its **news word** (in its broker row): changed and futex-woken after each write of
  its offsets rows, so tail consumers wait for news instead of polling;
- its **tail ring**: after a successful leader append, the request's batches for that
  partition as one entry, exactly as written to the log (offsets and leader epoch
  assigned). The ring entry is written before the row is: a follower that reads the row's
  log end first and then misses in the ring knows the ring really lacks the batch.

And what it reads: as a follower, the leader's row and ring (``read_replica_tail``),
which the replica fetcher validates and appends exactly as it would socket bytes.

Identity: a partition's ring entries and row writes carry its ``RingKey`` (slot, topic
id, index), the topic id taken from this broker's own cluster metadata. A slot whose row
names another topic id (a deleted topic's slot reused, or a name recreated) is not this
partition's: the broker neither writes into it nor reads through it, and looks the
partition up again later. A partition the supervisor found no row for (table full) uses
sockets only; it is looked up again with a back-off.

Without a region (``config.shm_name`` unset, or attaching failed) every method is a
no-op and replication runs over sockets only. ``config.replica_shm_enabled`` False keeps
the rows and heartbeats but turns the ring path off on both sides.

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from pybroker import shm

log = logging.getLogger("pybroker.shm")

# The supervisor judges liveness by this heartbeat against the session timeout (seconds):
# ten beats a second leaves plenty of slack on a loaded machine.
HEARTBEAT_INTERVAL_S = 0.1
# Rows of a busy partition are rewritten at most this often (a burst of produce requests
# costs one seqlocked store per partition, not one per request).
FLUSH_INTERVAL_S = 0.001
# Every this many heartbeats, all led partitions are republished: log start moves with
# retention, which no append or fetch announces.
REPUBLISH_EVERY = 10
# A partition without a row (not allocated yet, or the table is full) is looked up again
# after this long, doubling up to the maximum: a full table costs each broker one probe
# per such partition every half minute, not one per append.
MISSING_SLOT_RETRY_S = 1.0
MISSING_SLOT_RETRY_MAX_S = 30.0


def _wall_ms() -> int:
    return int(time.time() * 1000)


class ShmLink:
    """``replication`` overrides ``config.replica_shm_enabled`` (None: use the config)."""

    def __init__(self, broker, replication: bool | None = None):
        self.broker = broker
        self._replication = replication
        # Follower-side counters (benchmarks and tests): record bytes appended from tail
        # rings, and reads the rings could not answer (served by a socket Fetch instead).
        self.ring_bytes = 0
        self.ring_misses = 0
        self.region: shm.SharedRegion | None = None
        self.ring: shm.TailRing | None = None
        self._keys: dict[tuple[str, int], shm.RingKey] = {}
        # (topic, index) -> (monotonic retry time, back-off) of a partition without a row
        self._missing: dict[tuple[str, int], tuple[float, float]] = {}
        self._dirty: dict[tuple[str, int], object] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = 0.0
        self._heartbeat_task: asyncio.Task | None = None
        self._readers: dict[int, shm.TailReader] = {}

    def __repr__(self) -> str:
        return f"ShmLink(broker {self.broker.node_id}, {self.region.name if self.region else 'detached'})"

    @property
    def attached(self) -> bool:
        return self.region is not None

    @property
    def replication_enabled(self) -> bool:
        """Whether followers read and leaders write the tail rings (rows are kept either way)."""
        if self.region is None:
            return False
        if self._replication is not None:
            return self._replication
        return getattr(self.broker.config, "replica_shm_enabled", True)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Attach and register; a region that cannot be used leaves the broker on sockets."""
        name = getattr(self.broker.config, "shm_name", None)
        if not name or self.region is not None:
            return
        node_id = self.broker.node_id
        try:
            region = shm.SharedRegion.attach(name)
        except (shm.ShmError, OSError) as exc:
            log.warning("broker %d: shared memory %s unusable, replicating over sockets only: %s",
                        node_id, name, exc)
            return
        if not 0 <= node_id < region.broker_capacity:
            log.warning("broker %d: region %s has rows for broker ids 0..%d only; not using it",
                        node_id, name, region.broker_capacity - 1)
            region.close()
            return
        self.region = region
        now = _wall_ms()
        region.brokers.register(node_id, os.getpid(), self.broker.port, now)
        region.brokers.set_state(node_id, shm.ALIVE)
        if node_id < region.ring_count:
            self.ring = region.ring(node_id)
        else:
            log.warning("broker %d: region %s has %d tail rings; this broker's leader "
                        "partitions are replicated over sockets", node_id, name, region.ring_count)
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat())
        log.info("broker %d attached to shared memory %s", node_id, name)

    async def stop(self) -> None:
        region = self.region
        if region is None:
            return
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.flush()
        region.brokers.set_state(self.broker.node_id, shm.STOPPING)
        self.region = self.ring = None
        self._readers.clear()
        region.close()

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            region = self.region
            if region is None:
                return
            region.brokers.heartbeat(self.broker.node_id, _wall_ms())
            beats += 1
            if beats % REPUBLISH_EVERY == 0:
                for partition in list(self.broker.logs.partitions.values()):
                    if partition.is_leader:
                        self.mark_dirty(partition)

    # -- slots -------------------------------------------------------------------------

    def ring_key(self, topic: str, index: int) -> shm.RingKey | None:
        """The partition's slot and identity (cached), None when it has no row of its
        own: not allocated (yet), no room in the table, or the row under its name belongs
        to another incarnation of the topic than this broker's metadata names."""
        key = (topic, index)
        ring_key = self._keys.get(key)
        if ring_key is not None or self.region is None:
            return ring_key
        now = time.monotonic()
        retry_at, backoff = self._missing.get(key, (0.0, MISSING_SLOT_RETRY_S / 2))
        if retry_at > now:
            return None
        meta = self.broker.logs.topics.get(topic)
        topic_id = shm.topic_id_bytes(meta.topic_id if meta is not None else None)
        slot = self.region.offsets.find(topic, index) if topic_id is not None else None
        row = self.region.offsets.read(slot) if slot is not None else None
        if row is None or row.topic_id != topic_id:
            backoff = min(backoff * 2, MISSING_SLOT_RETRY_MAX_S)
            self._missing[key] = (now + backoff, backoff)
            return None
        self._missing.pop(key, None)
        ring_key = self._keys[key] = shm.RingKey(slot, topic_id, index)
        return ring_key

    def forget(self, topic: str, index: int) -> None:
        """The partition left this broker (deleted topic), or its row is no longer its
        own: drop the cached slot, which may go to another partition."""
        key = (topic, index)
        self._keys.pop(key, None)
        self._missing.pop(key, None)
        self._dirty.pop(key, None)

    # -- leader side -------------------------------------------------------------------

    def on_leader_append(self, partition, records, base_offset: int, last_offset: int) -> None:
        """Publish one produce request's batches for ``partition`` (as written, offsets
        assigned) to the tail ring, then mark its row dirty."""
        if self.region is None:
            return
        if self.ring is not None and self.replication_enabled:
            key = self.ring_key(partition.topic, partition.index)
            if key is not None:
                self.ring.append(key, base_offset, last_offset, records)
        self.mark_dirty(partition)

    def mark_dirty(self, partition) -> None:
        """The partition's offsets changed; its row is rewritten within FLUSH_INTERVAL_S."""
        if self.region is None:
            return
        self._dirty[(partition.topic, partition.index)] = partition
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            wait = self._last_flush + FLUSH_INTERVAL_S - loop.time()
            if wait > 0:
                self._flush_handle = loop.call_later(wait, self._scheduled_flush)
            else:
                # The end of this loop iteration: every request handled in it shares one write.
                self._flush_handle = loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_handle = None
        self._last_flush = asyncio.get_running_loop().time()
        self.flush()

    def flush(self) -> None:
        """Write the rows of every dirty partition this broker still leads."""
        region = self.region
        dirty, self._dirty = self._dirty, {}
        if region is None or not dirty:
            return
        now = _wall_ms()
        node_id = self.broker.node_id
        offsets = region.offsets
        hosted = self.broker.logs.partitions
        written = False
        for key, partition in dirty.items():
            if hosted.get(key) is not partition:
                self.forget(*key)  # deleted meanwhile: its slot may go to another partition
                continue
            if not partition.is_leader:
                continue  # the new leader writes the row now
            ring_key = self.ring_key(*key)
            if ring_key is not None and not offsets.write(
                    ring_key.slot, ring_key.topic_id, node_id, partition.leader_epoch,
                    partition.log_start_offset, partition.log_end_offset, partition.high_watermark, now):
                self.forget(*key)  # the row went to another partition: look it up again
                self._missing[key] = (time.monotonic() + MISSING_SLOT_RETRY_S, MISSING_SLOT_RETRY_S)
            elif ring_key is not None:
                written = True
        if written:
            # Tail readers waiting for news of this broker's partitions wake now, not
            # at the end of a sleep.
            region.brokers.announce(node_id)

    # -- follower side -----------------------------------------------------------------

    def read_replica_tail(self, partition, leader_id: int, offset: int, max_bytes: int) -> bytes | None:
        """What the leader's ring holds of ``partition`` from ``offset`` on.

        bytes: whole batches (the first may start below ``offset``), to validate and
        append; b"": the leader's published log end is ``offset`` and nothing newer is in
        its ring (caught up); None: the ring cannot answer, fetch over the socket."""
        if not self.replication_enabled:
            return None
        key = self.ring_key(partition.topic, partition.index)
        if key is None:
            return None
        reader = self._readers.get(leader_id)
        if reader is None:
            try:
                reader = self._readers[leader_id] = shm.TailReader(self.region.ring(leader_id))
            except shm.ShmError:
                return None
        try:
            row = self.region.offsets.read(key.slot)
            # The row first: the leader writes its ring before its row (module docstring).
            if row is None or row.topic_id != key.topic_id or row.partition != partition.index:
                self.forget(partition.topic, partition.index)  # the slot is another partition's now
                self.ring_misses += 1
                return None
            if row.leader_id != leader_id or row.leader_epoch != partition.leader_epoch:
                self.ring_misses += 1
                return None  # not (yet) published by this leader in this epoch
            data = reader.read_from(key, offset, max_bytes)
        except shm.ShmError as exc:
            log.warning("%r: reading ring %d for %s-%d: %s", self, leader_id,
                        partition.topic, partition.index, exc)
            return None
        if data is None:
            if offset >= row.log_end_offset:
                return b""
        elif data or offset >= row.log_end_offset:
            return data
        # Missed: not in the ring, or the leader has more than its ring shows.
        self.ring_misses += 1
        return None
