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
from pybroker.cluster.topics import TopicMetadata
from pybroker.config import BrokerConfig
from pybroker.errors import NotLeaderOrFollower, UnknownTopicOrPartition
from pybroker.log import cleaner
from pybroker.log.log import Log
from pybroker.log.record_file import write_atomically

log = logging.getLogger("pybroker.broker")

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
# Producer ids are handed out from blocks persisted ahead of use, like Kafka's
# ProducerIdManager: a restart skips the rest of a block but never reuses an id. The
# broker id in the top bits keeps the ids of different brokers apart.
PRODUCER_ID_BLOCK = 1000
PRODUCER_ID_NODE_SHIFT = 40
# Partitions closed at once at shutdown (their fsyncs overlap).
CLOSE_THREADS = 16
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
        self._next_producer_id = 0
        self._producer_id_limit = 0
        # The partition the log cleaner cleaned last (round robin from there).
        self._last_cleaned: tuple[str, int] | None = None

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
        """Flush and close every log, then mark the shutdown clean. The event loop no
        longer runs anything else here, so the partitions are closed on worker threads:
        each one's fsyncs are waits, and concurrent fsyncs share journal commits (one by one,
        a broker with thousands of partitions outlived the supervisor's stop timeout)."""
        partitions = list(self.partitions.values())
        for partition in partitions:
            partition.release_waiters()
        with ThreadPoolExecutor(max_workers=CLOSE_THREADS, thread_name_prefix="log-close") as pool:
            for done in [pool.submit(p.close_files) for p in partitions]:
                done.result()
        self.partitions.clear()
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

    def ensure_partition(self, topic: TopicMetadata, index: int) -> Partition:
        """Open (recovering) or create the log of a replica this broker hosts."""
        partition = self.partitions.get((topic.name, index))
        if partition is None:
            started = time.monotonic()
            directory = os.path.join(self.data_dir, f"{topic.name}-{index}")
            plog = Log.open(directory, topic.config, clean_shutdown=self.clean_shutdown)
            partition = Partition(topic.name, index, plog, node_id=self.config.broker_id)
            self.partitions[(topic.name, index)] = partition
            if plog.recovery_truncated_bytes:
                log.warning("%s-%d: recovery dropped %d bytes of torn or corrupt tail in %.0f ms",
                            topic.name, index, plog.recovery_truncated_bytes, (time.monotonic() - started) * 1000)
        elif partition.log.config != topic.config:
            partition.log.update_config(topic.config)
        return partition

    def drop_partition(self, topic: str, index: int) -> None:
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            partition.close()
            partition.log.delete()
        else:
            shutil.rmtree(os.path.join(self.data_dir, f"{topic}-{index}"), ignore_errors=True)
        log.info("deleted replica %s-%d", topic, index)

    def set_aside_partition(self, topic: str, index: int) -> str:
        """Close a replica the controller does not know and rename its directory
        ``<topic>-<partition>.<id>-stray``: out of service, still on disk for an operator."""
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            partition.close()
        source = os.path.join(self.data_dir, f"{topic}-{index}")
        target = f"{source}.{uuid.uuid4().hex}-stray"
        os.rename(source, target)
        log.warning("%s-%d is unknown to the controller: its log is set aside as %s (delete it when sure)",
                    topic, index, target)
        return target

    # -- producer ids ------------------------------------------------------------------

    def next_producer_id(self) -> int:
        if self._next_producer_id >= self._producer_id_limit:
            path = os.path.join(self.meta_dir, "producer-id-block")
            start = 0
            if os.path.exists(path):
                with open(path, "rb") as f:
                    start = int(f.read().strip() or 0)
            write_atomically(path, str(start + PRODUCER_ID_BLOCK).encode())
            self._next_producer_id, self._producer_id_limit = start, start + PRODUCER_ID_BLOCK
        pid = (self.config.broker_id << PRODUCER_ID_NODE_SHIFT) | self._next_producer_id
        self._next_producer_id += 1
        return pid

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

    def flush(self) -> None:
        for partition in self.partitions.values():
            partition.flush()
