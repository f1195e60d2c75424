"""The cluster's shared-memory region: broker table, offsets table and tail rings.

One POSIX shared-memory object per cluster, named after the data dir
(``region_name(data_dir)``). The supervisor creates it before spawning brokers and
unlinks it on clean shutdown; brokers and ``pybroker status`` attach to it. A region
left by a crashed run (its creator is gone) is unlinked and created afresh.

Region layout (native byte order; every part starts 8-aligned, rings page-aligned)::

    HEADER = "8s"  # magic        => b"PYBRSHM1", written last so a half-made region
                   #                 never looks valid
             "I"   # version      => 2
             "I"   # brokers      => broker-table rows (broker ids 0..brokers-1)
             "I"   # slots        => offsets-table rows
             "I"   # ring_count   => tail rings (ring i belongs to broker i)
             "Q"   # ring_bytes   => data bytes per ring
             "q"   # creator_pid  => the supervisor that created it
             "q"   # created_ms   => wall clock at creation
             "Q"   # brokers_at   => byte offset of the broker table
             "Q"   # offsets_at   => byte offset of the offsets table
             "Q"   # rings_at     => byte offset of ring 0
             "Q"   # total_bytes
    [page 0]          header, rest zero
    [brokers_at]      brokers x 64 bytes            (broker_table.py)
    [offsets_at]      slots x 352 bytes             (offsets_table.py)
    [rings_at + i*s]  64-byte ring header + ring_bytes, s page-aligned (tail_ring.py)

The broker table has a row for every possible broker id (``MAX_BROKERS``), rings only for
the brokers of the cluster when the region was made: a broker added while the cluster runs
(``pybroker scale``) heartbeats and publishes offsets here, and its followers fetch from it
over sockets until the next start makes the region again. A region is never resized in
place: every process maps it at attach, and a remap under running readers is not safe.

Owned by the supervisor (create/unlink); every attached process maps it read-write and
writes only the rows and ring it owns.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import struct
import time

import posix_ipc
import psutil

from pybroker.shm.broker_table import BrokerTable
from pybroker.shm.offsets_table import OffsetsTable
from pybroker.shm.seqlock import ShmError
from pybroker.shm.tail_ring import TailRing, stride_for

MAGIC = b"PYBRSHM1"
VERSION = 2  # 2: topic ids in offsets rows and ring entries
HEADER = struct.Struct(
    "<8s"  # magic
    "I"    # version
    "I"    # brokers
    "I"    # slots
    "I"    # ring_count
    "Q"    # ring_bytes
    "q"    # creator_pid
    "q"    # created_ms
    "Q"    # brokers_at
    "Q"    # offsets_at
    "Q"    # rings_at
    "Q"    # total_bytes
)
_PAGE = 4096
MAX_BROKERS = 64
MAX_SLOTS = 1 << 20
MAX_RING_BYTES = 1 << 30
DEFAULT_RING_BYTES = 16 << 20
# Offsets-table rows when the cluster has few partitions: room for 24,576 partitions at
# the table's load limit, 11.5 MB of address space of which only touched pages cost memory.
DEFAULT_SLOTS = 32768


def slots_for(partitions: int) -> int:
    """Offsets-table rows for a cluster that has ``partitions`` now: the default, or room
    for twice as many, up to MAX_SLOTS (beyond the limit partitions use sockets only)."""
    return min(MAX_SLOTS, max(DEFAULT_SLOTS, OffsetsTable.capacity_for(partitions)))


class RegionInUse(ShmError):
    """The region belongs to a supervisor that is still running."""


def region_name(data_dir: str) -> str:
    """The region's POSIX name for a data dir: stable for the dir, distinct across dirs."""
    digest = hashlib.sha256(os.path.abspath(data_dir).encode("utf-8")).hexdigest()
    return f"/pybroker-{digest[:16]}"


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def _layout(brokers: int, slots: int, ring_bytes: int, ring_count: int) -> tuple[int, int, int, int]:
    brokers_at = _PAGE
    offsets_at = brokers_at + BrokerTable.size_for(brokers)
    rings_at = _align(offsets_at + OffsetsTable.size_for(slots), _PAGE)
    return brokers_at, offsets_at, rings_at, rings_at + ring_count * stride_for(ring_bytes)


def _creator_alive(pid: int, created_ms: int) -> bool:
    """Whether ``pid`` is still the process that created the region (not a reused pid)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        started_ms = psutil.Process(pid).create_time() * 1000
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    # Process start times are rounded to clock ticks; a second of slack is plenty.
    return started_ms <= created_ms + 1000


class SharedRegion:
    """An attached region. Use ``create`` (supervisor) or ``attach`` (everyone else)."""

    def __init__(self, name: str, shm: posix_ipc.SharedMemory):
        self.name = name
        size = shm.size  # read through the fd, so before it is closed
        try:
            self._mmap = mmap.mmap(shm.fd, size)
        finally:
            shm.close_fd()
        self._data = memoryview(self._mmap)
        self._words = self._data.cast("q")
        self._rings: dict[int, TailRing] = {}
        (magic, version, self.broker_capacity, self.slot_capacity, self.ring_count,
         self.ring_bytes, self.creator_pid, self.created_ms, brokers_at, offsets_at,
         self._rings_at, total) = HEADER.unpack_from(self._data, 0)
        self._check(magic, version, total, size)
        self.brokers = BrokerTable(self._data, self._words, brokers_at, self.broker_capacity)
        self.offsets = OffsetsTable(self._data, self._words, offsets_at, self.slot_capacity)

    def _check(self, magic: bytes, version: int, total: int, size: int) -> None:
        problem = None
        if magic != MAGIC:
            problem = f"bad magic {magic!r} (not a pybroker region, or still being created)"
        elif version != VERSION:
            problem = f"format version {version}, this pybroker reads {VERSION}"
        elif total > size or total != _layout(self.broker_capacity, self.slot_capacity,
                                              self.ring_bytes, self.ring_count)[3]:
            problem = f"header says {total} bytes but the object has {size}"
        if problem:
            self.close()
            raise ShmError(f"shared-memory region {self.name}: {problem}")

    @classmethod
    def create(cls, name: str, brokers: int = MAX_BROKERS, slots: int = DEFAULT_SLOTS,
               ring_bytes: int = DEFAULT_RING_BYTES, ring_count: int = 3) -> "SharedRegion":
        """Create the region, replacing a stale one whose creator is gone.

        Raises RegionInUse if the creator of an existing region still runs."""
        if not 1 <= brokers <= MAX_BROKERS:
            raise ValueError(f"brokers must be 1..{MAX_BROKERS}, got {brokers}")
        if not 1 <= slots <= MAX_SLOTS:
            raise ValueError(f"slots must be 1..{MAX_SLOTS}, got {slots}")
        if not 0 <= ring_count <= brokers:
            raise ValueError(f"ring_count must be 0..brokers ({brokers}), got {ring_count}")
        if ring_bytes % 8 or not _PAGE <= ring_bytes <= MAX_RING_BYTES:
            raise ValueError(f"ring_bytes must be a multiple of 8 in {_PAGE}..{MAX_RING_BYTES}, "
                             f"got {ring_bytes}")
        brokers_at, offsets_at, rings_at, total = _layout(brokers, slots, ring_bytes, ring_count)
        try:
            shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=total)
        except posix_ipc.ExistentialError:
            cls._remove_stale(name)
            shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=total)
        try:
            mm = mmap.mmap(shm.fd, total)
        except OSError:
            shm.close_fd()
            posix_ipc.unlink_shared_memory(name)
            raise
        data = memoryview(mm)
        words = data.cast("q")
        try:
            for ring_id in range(ring_count):
                TailRing(data, words, rings_at + ring_id * stride_for(ring_bytes), ring_bytes,
                         ring_id).init()
            HEADER.pack_into(mm, 0, b"\0" * 8, VERSION, brokers, slots, ring_count, ring_bytes,
                             os.getpid(), int(time.time() * 1000), brokers_at, offsets_at,
                             rings_at, total)
            mm[0:8] = MAGIC
        finally:
            words.release()
            data.release()
            mm.close()
        return cls(name, shm)

    @staticmethod
    def _remove_stale(name: str) -> None:
        try:
            old = SharedRegion.attach(name)
        except ShmError:
            old = None  # unreadable or half-made: nobody can be using it
        if old is not None:
            creator, created_ms = old.creator_pid, old.created_ms
            old.close()
            if _creator_alive(creator, created_ms):
                raise RegionInUse(f"shared-memory region {name} belongs to running process "
                                  f"{creator}; stop it first (pybroker down)")
        try:
            posix_ipc.unlink_shared_memory(name)
        except posix_ipc.ExistentialError:
            pass  # removed meanwhile; the caller's O_CREX create decides the race

    @classmethod
    def attach(cls, name: str) -> "SharedRegion":
        try:
            shm = posix_ipc.SharedMemory(name)
        except posix_ipc.ExistentialError:
            raise ShmError(f"no shared-memory region {name}: is the supervisor running?") from None
        if shm.size < _PAGE or shm.size % 8:
            shm.close_fd()
            raise ShmError(f"shared-memory region {name} is {shm.size} bytes: not a pybroker region")
        return cls(name, shm)

    def ring(self, broker_id: int) -> TailRing:
        """The tail ring of ``broker_id`` (its leader partitions' recent batches)."""
        ring = self._rings.get(broker_id)
        if ring is None:
            if not 0 <= broker_id < self.ring_count:
                raise ShmError(f"no tail ring for broker {broker_id}: the region has "
                               f"{self.ring_count} rings")
            ring = TailRing(self._data, self._words,
                            self._rings_at + broker_id * stride_for(self.ring_bytes),
                            self.ring_bytes, broker_id)
            self._rings[broker_id] = ring
        return ring

    def close(self) -> None:
        """Unmap (idempotent). Tables and rings of this region are unusable afterwards."""
        if self._mmap.closed:
            return
        self._words.release()
        self._data.release()
        self._mmap.close()

    def unlink(self) -> None:
        """Remove the region's name (supervisor, on clean shutdown); mappings stay valid
        until each process closes its own."""
        try:
            posix_ipc.unlink_shared_memory(self.name)
        except posix_ipc.ExistentialError:
            pass  # already gone: a clean shutdown after someone else's cleanup

    def __enter__(self) -> "SharedRegion":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
