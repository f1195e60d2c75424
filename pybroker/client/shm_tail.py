"""Tail reads from the cluster's shared-memory region, for a consumer on the brokers' machine.

A leader copies every produce request's batches (offsets assigned, bytes as in its log)
into its tail ring and publishes an offsets row per partition (``pybroker.shm``). A
consumer that runs on the same machine and keeps up with the tail can take those bytes
from the ring instead of a Fetch round trip. It is opt-in (``pybroker.shm.data.dir`` =
the cluster's data dir, or ``pybroker.shm.region`` = the region's name) because only
processes on the brokers' host can map the region; every other client uses sockets.

The read rule, per partition, from the consumer's position P:

1. read the leader's offsets row first (the leader writes its ring before its row, so
   "below the row's log end but not in the ring" really means "not in the ring");
2. use it only if the row's leader and leader epoch are the ones the consumer's metadata
   names, and its topic id too when the consumer's Metadata carries topic ids; otherwise
   the consumer's view is stale or the leader moved: socket;
3. P below the log start or past the log end: socket (it answers OffsetOutOfRange);
   P at or past the high watermark: nothing to read yet;
4. read whole batches from the one holding P, taking only ring entries of the row's
   topic id and partition (a slot is reused after its topic is deleted; an old entry under
   the same slot belongs to the deleted topic and is skipped); cut every batch whose last offset is at or
   above the high watermark (consumers never see uncommitted records; a batch straddling
   the high watermark waits whole). The broker has no transaction coordinator, so its last
   stable offset is its high watermark and this bound serves both isolation levels, as
   the Fetch path does;
5. the ring cannot answer (overwritten, lapped, never held the batch): socket.

The bytes returned are decoded by the consumer exactly as a Fetch response's records.

Waiting: a consumer that finds nothing new waits on the leader's news word (a futex in
its broker row, changed after each write of the leader's offsets rows) with the value it
read before looking, so it wakes the moment the leader publishes, as a long-polling Fetch
would, instead of sleeping and polling.

Owned by the consumer's polling thread (not thread-safe); the region is mapped read-write
by ``SharedRegion`` but this module only reads it.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

from pybroker import shm
from pybroker.record.batch import iter_batches

log = logging.getLogger(__name__)

DATA_DIR_SETTING = "pybroker.shm.data.dir"
REGION_SETTING = "pybroker.shm.region"


class TailRead(NamedTuple):
    """What the ring served: ``records`` holds whole batches below ``high_watermark``
    (b"" when nothing is committed past the position yet)."""

    records: bytes
    high_watermark: int
    log_start_offset: int


class ShmTail:
    """Per-partition tail reads from one attached region; see the module docstring.

    Counters (read them through ``Consumer.metrics()``): ``reads`` (ring reads that
    returned records), ``idle_reads`` (caught up: nothing new below the high watermark),
    ``fallbacks`` (the ring could not answer; a Fetch served the partition), ``bytes``
    (record-batch bytes taken from rings)."""

    def __init__(self, region: shm.SharedRegion):
        self.region = region
        self._slots: dict[tuple[str, int], int] = {}
        self._readers: dict[int, shm.TailReader] = {}
        self.reads = 0
        self.idle_reads = 0
        self.fallbacks = 0
        self.bytes = 0

    @classmethod
    def open(cls, data_dir: str | None, region_name: str | None) -> "ShmTail | None":
        """Attach to the region named directly or derived from the cluster's data dir.
        None when neither is set, or when the region cannot be used (logged): the consumer
        then reads over sockets only."""
        if data_dir and region_name:
            raise ValueError(f"set {DATA_DIR_SETTING} or {REGION_SETTING}, not both")
        name = region_name or (shm.region_name(str(data_dir)) if data_dir else None)
        if not name:
            return None
        try:
            region = shm.SharedRegion.attach(name)
        except (shm.ShmError, OSError) as exc:
            log.warning("shared-memory tail reads disabled, consuming over sockets: %s", exc)
            return None
        return cls(region)

    def close(self) -> None:
        self._readers.clear()
        self.region.close()

    def _slot(self, topic: str, partition: int) -> int | None:
        key = (topic, partition)
        slot = self._slots.get(key)
        if slot is None:
            # Not cached negatively: a partition the supervisor has not allocated yet
            # costs one probe per poll, and only until it appears.
            slot = self.region.offsets.find(topic, partition)
            if slot is not None:
                self._slots[key] = slot
        return slot

    def _reader(self, leader: int) -> shm.TailReader:
        reader = self._readers.get(leader)
        if reader is None:
            reader = self._readers[leader] = shm.TailReader(self.region.ring(leader))
        return reader

    def news(self, leader: int) -> int:
        """The value of ``leader``'s news word: take it before reading, and
        ``wait_for_news`` with it when the reads found nothing."""
        return self.region.brokers.news_word(leader).value()

    def wait_for_news(self, leader: int, seen: int, timeout_s: float) -> bool:
        """Sleep until ``leader`` publishes new offsets (its news word leaves ``seen``)
        or ``timeout_s`` passes. False at once where futexes are unsupported."""
        return self.region.brokers.news_word(leader).wait(seen, timeout_s)

    def read(self, topic: str, partition: int, leader: int, leader_epoch: int,
             position: int, max_bytes: int, topic_id=None) -> TailRead | None:
        """Committed batches of ``topic``-``partition`` from ``position``, as the leader
        ``leader`` in ``leader_epoch`` published them; None: fetch over the socket.
        ``topic_id`` (a UUID, when the consumer's metadata has one) must be the row's."""
        try:
            slot = self._slot(topic, partition)
            if slot is None or leader < 0 or leader_epoch < 0:
                self.fallbacks += 1
                return None
            row = self.region.offsets.read(slot)
            wanted_id = shm.topic_id_bytes(topic_id)
            if row is None or row.topic != topic or row.partition != partition or (
                    wanted_id is not None and row.topic_id != wanted_id):
                self._slots.pop((topic, partition), None)  # deleted; the slot may be reused
                self.fallbacks += 1
                return None
            if (row.leader_id != leader or row.leader_epoch != leader_epoch
                    or not row.log_start_offset <= position <= row.log_end_offset):
                self.fallbacks += 1
                return None
            hw = row.high_watermark
            if position >= hw:
                self.idle_reads += 1
                return TailRead(b"", hw, row.log_start_offset)
            data = self._reader(leader).read_from(shm.RingKey(slot, row.topic_id, partition),
                                                  position, max_bytes)
        except shm.ShmError as exc:
            log.warning("tail ring of broker %d unreadable for %s-%d, using the socket: %s",
                        leader, topic, partition, exc)
            self.fallbacks += 1
            return None
        if not data:
            # None: not in the ring. b"": the ring ends before ``position`` although the
            # row's log end is past it (the leader's ring path is off): the socket has it.
            self.fallbacks += 1
            return None
        cut = 0
        for header, view in iter_batches(data):
            if header.last_offset >= hw:
                break
            cut += len(view)
        if cut == 0:
            self.idle_reads += 1  # the batch holding ``position`` is not committed yet
            return TailRead(b"", hw, row.log_start_offset)
        self.reads += 1
        self.bytes += cut
        return TailRead(data if cut == len(data) else data[:cut], hw, row.log_start_offset)
