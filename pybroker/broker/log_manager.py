"""The broker's data directory: topics, their partition logs, and the markers around them.

Layout of ``<data>/``::

    .lock                      flock()ed while a broker owns the directory
    .kafka_cleanshutdown       written on clean shutdown, removed at start (absent after a crash)
    meta/topics.json           topic name -> partitions, topic id, config overrides
    meta/producer-id-block     next free producer-id block (ids survive restarts, never reused)
    <topic>-<partition>/       one Log per partition (see pybroker.log)

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time

from pybroker.cluster.topics import TopicMetadata, validate_topic_name
from pybroker.config import BrokerConfig, TopicConfig
from pybroker.errors import (
    InvalidPartitions,
    InvalidReplicationFactor,
    TopicAlreadyExists,
    UnknownTopicOrPartition,
)
from pybroker.broker.partition import Partition
from pybroker.log.log import Log

log = logging.getLogger("pybroker.broker")

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
# Producer ids are handed out from blocks persisted ahead of use, like Kafka's
# ProducerIdManager: a restart skips the rest of a block but never reuses an id.
PRODUCER_ID_BLOCK = 1000


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
        self.topics: dict[str, TopicMetadata] = {}
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._next_producer_id = 0
        self._producer_id_limit = 0
        self._load()

    # -- start and stop ----------------------------------------------------------------

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

    def _load(self) -> None:
        path = os.path.join(self.meta_dir, "topics.json")
        if os.path.exists(path):
            with open(path, "rb") as f:
                docs = json.load(f)
            for doc in docs:
                topic = TopicMetadata.from_json(doc, self.config.topic_defaults)
                self.topics[topic.name] = topic
        started = time.monotonic()
        dropped = 0
        for topic in self.topics.values():
            for index in range(topic.partitions):
                partition = self._open_partition(topic, index)
                dropped += partition.log.recovery_truncated_bytes
        if self.partitions:
            log.info(
                "loaded %d partitions of %d topics in %.0f ms (%s shutdown, %d bytes of torn or corrupt tail dropped)",
                len(self.partitions), len(self.topics), (time.monotonic() - started) * 1000,
                "clean" if self.clean_shutdown else "unclean", dropped,
            )
        self._remove_orphans()

    def _open_partition(self, topic: TopicMetadata, index: int) -> Partition:
        directory = os.path.join(self.data_dir, f"{topic.name}-{index}")
        plog = Log.open(directory, topic.config, clean_shutdown=self.clean_shutdown)
        partition = Partition(topic.name, index, plog)
        self.partitions[(topic.name, index)] = partition
        return partition

    def _remove_orphans(self) -> None:
        """Partition directories of topics that were deleted while the broker was down
        (deletion renames them first)."""
        for entry in os.listdir(self.data_dir):
            if entry.endswith("-delete"):
                shutil.rmtree(os.path.join(self.data_dir, entry), ignore_errors=True)

    def _save_topics(self) -> None:
        docs = [t.to_json() for t in sorted(self.topics.values(), key=lambda t: t.name)]
        write_atomically(os.path.join(self.meta_dir, "topics.json"), json.dumps(docs, indent=1).encode())

    def close(self) -> None:
        """Flush and close every log, then mark the shutdown clean."""
        for partition in self.partitions.values():
            partition.close()
        self.partitions.clear()
        with open(os.path.join(self.data_dir, CLEAN_SHUTDOWN_FILE), "wb") as f:
            f.flush()
            os.fsync(f.fileno())
        os.close(self._lock_fd)

    # -- topics ------------------------------------------------------------------------

    def get_partition(self, topic: str, index: int) -> Partition:
        partition = self.partitions.get((topic, index))
        if partition is None:
            raise UnknownTopicOrPartition(f"This server does not host this topic-partition: {topic}-{index}")
        return partition

    def create_topic(
        self,
        name: str,
        partitions: int = -1,
        replication_factor: int = -1,
        configs: dict | None = None,
        validate_only: bool = False,
        live_brokers: int = 1,
    ) -> TopicMetadata:
        validate_topic_name(name)
        if name in self.topics:
            raise TopicAlreadyExists(f"Topic '{name}' already exists.")
        if partitions == -1:
            partitions = self.config.num_partitions
        if replication_factor == -1:
            replication_factor = self.config.default_replication_factor
        if partitions < 1:
            raise InvalidPartitions("Number of partitions must be larger than 0.")
        if replication_factor < 1:
            raise InvalidReplicationFactor("Replication factor must be larger than 0.")
        if replication_factor > live_brokers:
            raise InvalidReplicationFactor(
                f"Replication factor: {replication_factor} larger than available brokers: {live_brokers}."
            )
        config = TopicConfig.parse(configs or {}, self.config.topic_defaults)
        topic = TopicMetadata(name, partitions, replication_factor, config=config)
        if validate_only:
            return topic
        self.topics[name] = topic
        self._save_topics()
        for index in range(partitions):
            self._open_partition(topic, index)
        log.info("created topic %s with %d partitions", name, partitions)
        return topic

    def delete_topic(self, name: str) -> None:
        topic = self.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartition(f"Topic '{name}' does not exist.")
        del self.topics[name]
        self._save_topics()
        for index in range(topic.partitions):
            partition = self.partitions.pop((name, index), None)
            if partition is not None:
                partition.close()
                partition.log.delete()
        log.info("deleted topic %s", name)

    def create_partitions(self, name: str, count: int, validate_only: bool = False) -> None:
        topic = self.topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartition(f"The topic '{name}' does not exist.")
        if count < topic.partitions:
            raise InvalidPartitions(
                f"Topic currently has {topic.partitions} partitions, which is higher than the "
                f"requested {count}. Partitions can never be reduced."
            )
        if count == topic.partitions:
            raise InvalidPartitions(f"Topic already has {topic.partitions} partitions.")
        if validate_only:
            return
        old = topic.partitions
        topic.partitions = count
        self._save_topics()
        for index in range(old, count):
            self._open_partition(topic, index)
        log.info("grew topic %s from %d to %d partitions", name, old, count)

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
        pid = self._next_producer_id
        self._next_producer_id += 1
        return pid

    # -- housekeeping ------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        deleted = 0
        for partition in self.partitions.values():
            deleted += partition.log.apply_retention(now_ms)
        return deleted

    def flush(self) -> None:
        for partition in self.partitions.values():
            partition.log.flush()
