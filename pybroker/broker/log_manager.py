"""The broker's data directory: the logs of the partition replicas it hosts.

Layout of ``<data>/`` (one broker's directory)::

    .lock                      flock()ed while a broker owns the directory
    .kafka_cleanshutdown       written on clean shutdown, removed at start (absent after a crash)
    meta/producer-id-block     next free producer-id block (ids survive restarts, never reused)
    <topic>-<partition>/       one Log per hosted replica (see pybroker.log)

Which topics exist and which replicas live here is the controller's word (the cluster
image); this class opens, creates and deletes logs to match it.

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import asyncio
import bisect
import errno
import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor

from pybroker.broker.partition import Partition
from pybroker.cluster.producer_ids import ProducerIdBlock
from pybroker.cluster.topics import TopicMetadata
from pybroker.config import BrokerConfig
from pybroker.errors import NotLeaderOrFollower, UnknownTopicOrPartition
from pybroker.log import cleaner, damage
from pybroker.log.flusher import Flusher
from pybroker.log.log import DELETE_DIR_SUFFIX, Log
from pybroker.log.record_file import write_atomically

log = logging.getLogger("pybroker.broker")

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
# Threads opening logs for ``open_logs``: creating a partition is a mkdir and three file
# creations, reopening one reads a few small files, and each such call waits on the
# filesystem journal (1-2 ms each on a loaded disk), not on the CPU, so a few in parallel
# overlap their waits; more would take the GIL from the event loop.
OPEN_WORKERS = 2
_PARTITION_DIR = re.compile(r"^(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>\d+)$")


class DataDirLocked(RuntimeError):
    pass


class LogManager:
    def __init__(self, config: BrokerConfig):
        self.config = config
        self.data_dir = os.path.abspath(config.data_dir)
        self.meta_dir = os.path.join(self.data_dir, "meta")
        os.makedirs(self.meta_dir, exist_ok=True)
        self._lock_fd = self._lock()
        marker = os.path.join(self.data_dir, CLEAN_SHUTDOWN_FILE)
        self.clean_shutdown = os.path.exists(marker)
        if self.clean_shutdown:
            os.unlink(marker)
        # The cluster's topics (the broker keeps this dict in step with the controller).
        self.topics: dict[str, TopicMetadata] = {}
        self.partitions: dict[tuple[str, int], Partition] = {}
        # Idempotent producers' ids; the broker id in the top bits keeps brokers apart.
        self._producer_ids = ProducerIdBlock(os.path.join(self.meta_dir, "producer-id-block"), config.broker_id)
        # The partition the log cleaner cleaned last (round robin from there).
        self._last_cleaned: tuple[str, int] | None = None
        # Where the logs' fsyncs and checkpoint writes run: inline until the broker's
        # event loop starts a worker thread for them (start_flusher).
        self.flusher = Flusher()
        # (partition, base offset, size) of closed segments the scrubber found whole.
        self._scrubbed: set[tuple] = set()
        # Replicas opened on worker threads (open_logs) that ensure_partition has not taken yet.
        self._opened: dict[tuple[str, int], Partition] = {}
        self._open_pool: ThreadPoolExecutor | None = None
        self._remove_deleted_dirs()

    def start_flusher(self, deliver) -> None:
        """Move fsyncs and checkpoint writes to a worker thread; results come back
        through ``deliver`` (the event loop's call_soon_threadsafe)."""
        self.flusher = Flusher(deliver)
        for partition in self.partitions.values():
            partition.log.flusher = self.flusher

    def _remove_deleted_dirs(self) -> None:
        """Partition directories renamed for deletion before a crash: finish the job."""
        for entry in os.listdir(self.data_dir):
            if entry.endswith(DELETE_DIR_SUFFIX):
                log.info("removing %s, deleted before the last shutdown", entry)
                shutil.rmtree(os.path.join(self.data_dir, entry), ignore_errors=True)

    def _lock(self) -> int:
        fd = os.open(os.path.join(self.data_dir, ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirLocked(f"data directory {self.data_dir} is in use by another broker") from None
            raise
        return fd

    def local_partition_dirs(self) -> set[tuple[str, int]]:
        found = set()
        for entry in os.listdir(self.data_dir):
            match = _PARTITION_DIR.match(entry)
            if match and os.path.isdir(os.path.join(self.data_dir, entry)):
                found.add((match["topic"], int(match["partition"])))
        return found

    def close(self) -> None:
        """Flush and close every log, wait for the background writes, then mark the
        shutdown clean."""
        for partition in self.partitions.values():
            partition.close()
        self.partitions.clear()
        if self._open_pool is not None:
            self._open_pool.shutdown(wait=True)
        self.close_unused_opened()
        self.flusher.drain()
        with open(os.path.join(self.data_dir, CLEAN_SHUTDOWN_FILE), "wb") as f:
            f.flush()
            os.fsync(f.fileno())
        os.close(self._lock_fd)

    # -- replicas ----------------------------------------------------------------------

    def get_partition(self, topic: str, index: int) -> Partition:
        partition = self.partitions.get((topic, index))
        if partition is not None:
            return partition
        meta = self.topics.get(topic)
        if meta is None or index >= meta.partitions or index < 0:
            raise UnknownTopicOrPartition(f"This server does not host this topic-partition: {topic}-{index}")
        raise NotLeaderOrFollower(f"Broker {self.config.broker_id} hosts no replica of {topic}-{index}")

    async def open_logs(self, replicas: list[tuple[TopicMetadata, int]]) -> None:
        """Open (recovering) or create, on worker threads, the logs of replicas not open
        yet, for ``ensure_partition`` to take: the event loop keeps serving meanwhile
        (thousands of new partitions take seconds of file creation). A log touches only
        its own directory while it opens. One that fails to open is left for
        ``ensure_partition``, which opens it again and raises as it would have."""
        todo = [(topic, index) for topic, index in replicas
                if (topic.name, index) not in self.partitions and (topic.name, index) not in self._opened]
        if not todo:
            return
        if self._open_pool is None:
            self._open_pool = ThreadPoolExecutor(max_workers=OPEN_WORKERS, thread_name_prefix="log-open")
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._open_pool, self._open_partition, topic, index) for topic, index in todo]
        for (topic, index), result in zip(todo, await asyncio.gather(*futures, return_exceptions=True)):
            if isinstance(result, Partition):
                self._opened[(topic.name, index)] = result

    def close_unused_opened(self) -> None:
        """Close logs ``open_logs`` opened that no partition took (its state was replaced
        or its topic deleted meanwhile)."""
        for partition in self._opened.values():
            partition.log.close()
        self._opened.clear()

    def _open_partition(self, topic: TopicMetadata, index: int) -> Partition:
        """Open (recovering) or create one replica's log; touches only its directory, so
        worker threads may run it side by side."""
        directory = os.path.join(self.data_dir, f"{topic.name}-{index}")
        return Partition(topic.name, index, Log.open(directory, topic.config, clean_shutdown=self.clean_shutdown),
                         node_id=self.config.broker_id)

    def ensure_partition(self, topic: TopicMetadata, index: int) -> Partition:
        """Open (recovering) or create the log of a replica this broker hosts."""
        partition = self.partitions.get((topic.name, index))
        if partition is None:
            started = time.monotonic()
            partition = self._opened.pop((topic.name, index), None)
            if partition is None:
                partition = self._open_partition(topic, index)
            elif partition.log.config != topic.config:
                partition.log.update_config(topic.config)
            plog = partition.log
            plog.flusher = self.flusher
            self.partitions[(topic.name, index)] = partition
            if plog.recovery_truncated_bytes:
                log.warning("%s-%d: recovery dropped %d bytes of torn or corrupt tail in %.0f ms",
                            topic.name, index, plog.recovery_truncated_bytes, (time.monotonic() - started) * 1000)
        elif partition.log.config != topic.config:
            partition.log.update_config(topic.config)
        return partition

    def drop_partition(self, topic: str, index: int) -> None:
        """Delete a replica's log. Nothing is written first (no checkpoint, no flush): on
        a full disk a write would fail and keep the files, and the point of deleting is
        often to get that space back."""
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            partition.abandon()
            partition.log.delete()
        else:
            directory = os.path.join(self.data_dir, f"{topic}-{index}")
            if os.path.isdir(directory):
                doomed = f"{directory}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
                os.rename(directory, doomed)
                self.flusher.submit(lambda: shutil.rmtree(doomed, ignore_errors=True))
        log.info("deleted replica %s-%d", topic, index)

    def set_aside_partition(self, topic: str, index: int) -> str:
        """Close a replica the controller does not know and rename its directory
        ``<topic>-<partition>.<id>-stray``: out of service, still on disk for an operator."""
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            partition.close()
            self.flusher.wait()  # its last checkpoints go to this name, not a later log's
        source = os.path.join(self.data_dir, f"{topic}-{index}")
        target = f"{source}.{uuid.uuid4().hex}-stray"
        os.rename(source, target)
        log.warning("%s-%d is unknown to the controller: its log is set aside as %s (delete it when sure)",
                    topic, index, target)
        return target

    # -- producer ids ------------------------------------------------------------------

    def next_producer_id(self) -> int:
        return self._producer_ids.next_id()

    # -- housekeeping ------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        deleted = 0
        for partition in self.partitions.values():
            deleted += partition.log.apply_retention(now_ms, high_watermark=partition.high_watermark)
        return deleted

    async def clean_next(self, executor: Executor) -> bool:
        """Compact one partition that needs it (Kafka's log cleaner thread, one partition
        at a time): the partitions are taken round robin from the last one cleaned. The
        cleaned segments are built on ``executor``; the swap into the log happens here,
        on the event loop that owns it. Returns whether a partition was cleaned (the caller
        backs off when not)."""
        now_ms = int(time.time() * 1000)
        keys = sorted(self.partitions)
        start = bisect.bisect_right(keys, self._last_cleaned) if self._last_cleaned else 0
        for key in keys[start:] + keys[:start]:
            partition = self.partitions.get(key)
            if partition is None or not partition.config.compact:
                continue
            plan = partition.cleaning_plan(now_ms)
            if plan is None:
                continue
            self._last_cleaned = key
            log_ = partition.log
            future = asyncio.get_running_loop().run_in_executor(executor, cleaner.build, plan)
            try:
                cleaned = await asyncio.shield(future)
            except asyncio.CancelledError:
                # The worker may still read the plan's fds: they close when it is done.
                future.add_done_callback(lambda _f: plan.release())
                raise
            except Exception as exc:  # a log the cleaner cannot read must not stop it
                plan.release()
                log.warning("cleaning %s-%d failed: %s", key[0], key[1], exc)
                return False  # back off before trying again
            # Nothing replaced: the log changed meanwhile; back off rather than spin.
            return log_.replace_cleaned(plan, cleaned) > 0
        return False

    async def scrub(self, executor: Executor, max_bytes_per_s: float) -> tuple[int, int]:
        """One pass of the background scrubber: re-read every closed segment not checked
        since it closed (a CRC per batch, at most ``max_bytes_per_s``, on ``executor``)
        and quarantine what is damaged (pybroker.log.damage), swapping the repaired
        segment in here, on the event loop. Returns (bytes checked, ranges quarantined)."""
        loop = asyncio.get_running_loop()
        pacer = damage.Pacer(max_bytes_per_s)
        checked = found = 0
        seen = set()
        for key in sorted(self.partitions):
            partition = self.partitions.get(key)
            if partition is None or partition.log.closed:
                continue
            plog = partition.log
            for segment, next_base in plog.closed_segments():
                mark = (key, segment.base_offset, segment.size)
                seen.add(mark)
                if mark in self._scrubbed or segment.fd < 0:
                    continue
                job = damage.ScrubJob(plog.directory, os.dup(segment.fd), segment.size, segment.base_offset,
                                      next_base, plog.config.index_interval_bytes,
                                      plog.config.segment_index_bytes, pacer)
                ranges, paths = await loop.run_in_executor(executor, job.run)
                checked += job.size
                if ranges and not plog.closed and plog.replace_damaged(segment, job.size, paths, ranges):
                    found += len(ranges)
                self._scrubbed.add(mark)
        self._scrubbed &= seen
        return checked, found

    async def flush(self, yield_every: int = 256) -> None:
        """The periodic flush (Kafka's log.flush.offset.checkpoint): every partition's
        fsyncs and checkpoints are queued on the flusher; the event loop only collects
        them, and yields every ``yield_every`` partitions so requests and heartbeats go
        on."""
        for n, partition in enumerate(list(self.partitions.values()), 1):
            if partition.log.closed:
                continue
            partition.flush()
            if n % yield_every == 0:
                await asyncio.sleep(0)
