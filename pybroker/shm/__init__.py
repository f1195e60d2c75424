"""Shared-memory page cache: what brokers on one machine publish for each other.

A POSIX shared-memory region per cluster (named after the data dir) holds

* a **broker table** — per broker id: pid, port, heartbeat (wall-clock ms), state — so the
  supervisor judges liveness without talking to brokers;
* an **offsets table** — per partition slot: topic, topic id, partition, leader, leader
  epoch, log start, log end, high watermark — consistent snapshots through a per-row
  seqlock. Sized from the cluster; a partition the table has no room for has no row and
  uses sockets only;
* **tail rings** — per leader broker, the batches it appended most recently, so a
  co-located follower or tail consumer skips the socket round trip. The socket path stays
  the fallback and yields the same bytes. Every entry names its partition by slot, topic
  id and index (``RingKey``): a slot is reused after its topic is deleted, and only an
  entry whose whole key matches the reader's is ever served.

No cross-process locks anywhere: every row and ring has one writer, readers detect
concurrent writes (seqlock words, ring cursors) and retry or fall back. That relies on
x86-64 ordering and aligned 8-byte stores (seqlock.py explains).

Usage::

    from pybroker import shm

    # supervisor
    region = shm.SharedRegion.create(shm.region_name(data_dir), brokers=64, slots=32768,
                                     ring_bytes=16 << 20, ring_count=n_brokers)
    slot = region.offsets.allocate("orders", 0, topic_id)  # on partition creation;
                                                         # None: no room, sockets only
    row = region.brokers.read(1)                         # -> BrokerRow
    alive = row.is_fresh(now_ms, timeout_ms=1000)
    lag = region.offsets.read(slot)                      # -> OffsetsRow | None
    region.offsets.release("orders", 0)                  # on topic deletion
    region.close(); region.unlink()                      # clean shutdown

    # broker 1
    region = shm.SharedRegion.attach(shm.region_name(data_dir))
    region.brokers.register(1, os.getpid(), port, now_ms)
    region.brokers.set_state(1, shm.ALIVE)
    region.brokers.heartbeat(1, now_ms)                  # every ~100 ms
    slot = region.offsets.find("orders", 0)              # once per led partition
    key = shm.RingKey(slot, topic_id, 0)                 # topic_id: the topic's UUID bytes
    region.offsets.write(slot, topic_id, leader_id=1, leader_epoch=3, log_start_offset=0,
                         log_end_offset=leo, high_watermark=hw, now_ms=now_ms)
    region.ring(1).append(key, base_offset, last_offset, batch_bytes)   # as leader

    # broker 2, following broker 1 on "orders"-0
    reader = shm.TailReader(region.ring(1))
    row = region.offsets.read(slot)                      # before the ring: see below
    # use it only if row.topic_id is the topic id your metadata names
    data = reader.read_from(key, fetch_offset, max_bytes)
    # bytes: whole batches from the one holding fetch_offset; b"": nothing new yet;
    # None: not in the ring (overwritten, too large, lapped, or an empty ring that
    # vouches for nothing) -> Fetch over the socket, unless fetch_offset >= log_end
    # (the leader appends to the ring before publishing its log end, so reading the log
    # end first makes "below log_end but None" mean "really not in the ring").

Errors: ``ShmError`` (missing or foreign region), ``RegionInUse`` (create
while the old creator still runs), ``StaleRow`` (a row's writer died mid-update),
``errors.InvalidTopicException`` for a topic name Kafka would reject.
"""
from pybroker.shm.broker_table import ALIVE, EMPTY, STARTING, STOPPING, BrokerRow, BrokerTable
from pybroker.shm.offsets_table import OffsetsRow, OffsetsTable, topic_id_bytes
from pybroker.shm.region import MAX_BROKERS, RegionInUse, SharedRegion, region_name, slots_for
from pybroker.shm.seqlock import ShmError, StaleRow
from pybroker.shm.tail_ring import RingKey, TailReader, TailRing

__all__ = [
    "MAX_BROKERS", "ALIVE", "EMPTY", "STARTING", "STOPPING", "BrokerRow", "BrokerTable", "OffsetsRow",
    "OffsetsTable", "RegionInUse", "SharedRegion", "region_name", "slots_for", "ShmError", "StaleRow",
    "RingKey", "TailReader", "TailRing", "topic_id_bytes",
]
