"""A synchronous Kafka producer.

``send`` only appends the record to its partition's open batch; a batch is sent once
it reaches ``batch_size`` bytes, when ``linger_ms`` has passed since its first record
(checked on ``send``/``poll``), or on ``flush``. Each flush groups the ready batches by
partition leader into one Produce request per broker. Results are resolved per batch:
the per-record future only points into its batch's result.

Not thread-safe: one thread calls send/flush/close.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

from pybroker import errors
from pybroker.client.cluster import Client
from pybroker.client.partitioner import partition_for_key, sticky_partition
from pybroker.protocol import api
from pybroker.record import compression as codecs
from pybroker.record.batch import build_batch

COMPRESSION_NAMES = codecs.BY_NAME  # "none", "gzip", "snappy", "lz4", "zstd"
# Bytes a record adds to a batch beyond its key and value (varint lengths, deltas,
# attributes): a bound used only to decide when a batch is full.
RECORD_OVERHEAD = 21
# Errors after which a batch is retried once metadata is refreshed.
REFRESH_CODES = {
    errors.NotLeaderOrFollower.code,
    errors.LeaderNotAvailable.code,
    errors.UnknownTopicOrPartition.code,
    errors.FencedLeaderEpoch.code,
}


class RecordMetadata(NamedTuple):
    topic: str
    partition: int
    offset: int  # -1 with acks=0: the broker does not say
    timestamp: int


class BatchResult:
    """The outcome of one batch, shared by the futures of its records."""

    __slots__ = ("topic", "partition", "done", "base_offset", "log_append_time", "error", "timestamps")

    def __init__(self, topic: str, partition: int):
        self.topic = topic
        self.partition = partition
        self.done = False
        self.base_offset = -1
        self.log_append_time = -1
        self.error: Exception | None = None
        self.timestamps: list[int] = []


class RecordFuture:
    """Where one sent record ended up; ``get`` flushes the producer if needed."""

    __slots__ = ("_producer", "_batch", "_index")

    def __init__(self, producer: "Producer", batch: BatchResult, index: int):
        self._producer = producer
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        return self._batch.done

    def get(self) -> RecordMetadata:
        if not self._batch.done:
            self._producer.flush()
        b = self._batch
        if b.error is not None:
            raise b.error
        offset = b.base_offset + self._index if b.base_offset >= 0 else -1
        ts = b.log_append_time if b.log_append_time >= 0 else b.timestamps[self._index]
        return RecordMetadata(b.topic, b.partition, offset, ts)


class _OpenBatch:
    __slots__ = ("records", "size", "created", "result")

    def __init__(self, topic: str, partition: int):
        self.records: list[tuple] = []
        self.size = 0
        self.created = time.monotonic()
        self.result = BatchResult(topic, partition)


class Producer:
    """Send records to Kafka topics.

    ``acks``: 0 (no response), 1 (leader wrote it), -1/"all" (the ISR has it).
    ``on_batch_error(topic, partition, record_count, exc)`` is called for each batch
    that finally failed, so tools can report without holding per-record futures.
    """

    def __init__(
        self,
        bootstrap_servers,
        *,
        acks: int | str = 1,
        compression: str | int = "none",
        batch_size: int = 16384,
        linger_ms: int = 0,
        retries: int = 5,
        retry_backoff_ms: int = 100,
        request_timeout_ms: int = 30_000,
        client_id: str = "pybroker-producer",
        on_batch_error: Callable[[str, int, int, Exception], None] | None = None,
    ):
        self.acks = -1 if acks in ("all", "-1", -1) else int(acks)
        if self.acks not in (-1, 0, 1):
            raise ValueError(f"acks must be 0, 1 or all, not {acks!r}")
        if isinstance(compression, str):
            if compression.lower() not in COMPRESSION_NAMES:
                raise ValueError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESSION_NAMES)}")
            compression = COMPRESSION_NAMES[compression.lower()]
        self.compression = compression
        self.batch_size = batch_size
        self.linger = linger_ms / 1000.0
        self.retries = retries
        self.retry_backoff = retry_backoff_ms / 1000.0
        self.request_timeout_ms = request_timeout_ms
        self.on_batch_error = on_batch_error
        self.client = Client(bootstrap_servers, client_id=client_id, timeout=request_timeout_ms / 1000.0 + 5)
        self._open: dict[tuple[str, int], _OpenBatch] = {}
        self._ready: list[tuple[tuple[str, int], _OpenBatch]] = []
        self._partition_counts: dict[str, int] = {}
        self._sticky: dict[str, int] = {}
        self._closed = False

    # -- public API --------------------------------------------------------------

    def partitions_for(self, topic: str) -> int:
        count = self._partition_counts.get(topic)
        if count is None:
            count = self._discover(topic)
            self._partition_counts[topic] = count
        return count

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes | None]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordFuture:
        if self._closed:
            raise RuntimeError("producer is closed")
        count = self.partitions_for(topic)
        if partition is None:
            if key is not None:
                partition = partition_for_key(key, count)
            else:
                partition = self._sticky.get(topic)
                if partition is None or partition >= count:
                    partition = self._sticky[topic] = sticky_partition(count)
        elif not 0 <= partition < count:
            # The topic may have grown since we looked: look again before refusing.
            self._partition_counts.pop(topic, None)
            count = self.partitions_for(topic)
            if not 0 <= partition < count:
                raise errors.UnknownTopicOrPartition(
                    f"partition {partition} is not in the range [0...{count}) of topic {topic!r}")
        if timestamp_ms is None:
            timestamp_ms = int(time.time() * 1000)
        tp = (topic, partition)
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = _OpenBatch(topic, partition)
        index = len(batch.records)
        batch.records.append((key, value, headers or [], timestamp_ms))
        batch.result.timestamps.append(timestamp_ms)
        batch.size += RECORD_OVERHEAD + (len(key) if key else 0) + (len(value) if value else 0)
        future = RecordFuture(self, batch.result, index)
        if batch.size >= self.batch_size:
            self._seal(tp)
        if self._ready:
            self._send_ready()
        elif self.linger and time.monotonic() - batch.created >= self.linger:
            self.poll()
        return future

    def poll(self) -> None:
        """Send full batches and those older than linger_ms."""
        now = time.monotonic()
        for tp, batch in list(self._open.items()):
            if now - batch.created >= self.linger:
                self._seal(tp)
        if self._ready:
            self._send_ready()

    def flush(self) -> None:
        """Send everything pending and wait for the broker's answers."""
        for tp in list(self._open):
            self._seal(tp)
        self._send_ready()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self.client.close()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------

    def _discover(self, topic: str) -> int:
        """Partition count of ``topic``, waiting while a just-created (or auto-created)
        topic gets its leaders."""
        deadline = time.monotonic() + self.request_timeout_ms / 1000.0
        backoff = self.retry_backoff
        while True:
            meta = self.client.refresh([topic], allow_auto_create=True)
            info = meta.topics.get(topic)
            code = errors.UnknownTopicOrPartition.code if info is None else info.error_code
            if not code and info.partitions:
                return len(info.partitions)
            if not errors.for_code(code).retriable or time.monotonic() >= deadline:
                raise errors.for_code(code)(f"topic {topic!r} is not available: {errors.name_of(code)}")
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _seal(self, tp: tuple[str, int]) -> None:
        batch = self._open.pop(tp, None)
        if batch is not None and batch.records:
            self._ready.append((tp, batch))
            if tp[0] in self._sticky and self._sticky[tp[0]] == tp[1]:
                self._sticky[tp[0]] = sticky_partition(self._partition_counts.get(tp[0], 1), tp[1])

    def _send_ready(self) -> None:
        pending = [(tp, batch, build_batch(batch.records, compression=self.compression))
                   for tp, batch in self._ready]
        self._ready = []
        attempt = 0
        while pending:
            retry = self._produce(pending)
            if not retry:
                return
            attempt += 1
            if attempt > self.retries:
                for tp, batch, _ in retry:
                    self._fail(batch, batch.result.error or errors.RequestTimedOut("retries exhausted"))
                return
            time.sleep(self.retry_backoff * attempt)
            self.client.refresh(sorted({tp[0] for tp, _, _ in retry}))
            pending = retry

    def _produce(self, pending: list) -> list:
        """One Produce per leader; returns the batches worth retrying."""
        retry = []
        by_leader: dict[int, list] = {}
        for item in pending:
            (topic, partition), batch, _ = item
            leader = self.client.leader_for(topic, partition)
            if leader < 0:
                info = self.client.metadata.topics.get(topic)
                if info is not None and not info.error_code and partition not in info.partitions:
                    self._fail(batch, errors.UnknownTopicOrPartition(f"{topic}-{partition} does not exist"))
                    continue
                batch.result.error = errors.LeaderNotAvailable(f"no leader for {topic}-{partition}")
                retry.append(item)
                continue
            by_leader.setdefault(leader, []).append(item)
        for leader, items in by_leader.items():
            topics: dict[str, list] = {}
            index = {}
            for item in items:
                (topic, partition), batch, data = item
                topics.setdefault(topic, []).append({"index": partition, "records": data})
                index[(topic, partition)] = item
            body = {
                "transactional_id": None,
                "acks": self.acks,
                "timeout_ms": self.request_timeout_ms,
                "topic_data": [{"name": t, "partition_data": ps} for t, ps in topics.items()],
            }
            try:
                response = self.client.connection(leader).request(api.PRODUCE, body)
            except (errors.NetworkException, errors.RequestTimedOut) as exc:
                for item in items:
                    item[1].result.error = exc
                retry.extend(items)
                continue
            except errors.KafkaError as exc:
                for item in items:
                    self._fail(item[1], exc)
                continue
            if response is None:  # acks=0
                for item in items:
                    item[1].result.done = True
                continue
            for t in response["responses"]:
                for p in t["partition_responses"]:
                    item = index.pop((t["name"], p["index"]), None)
                    if item is None:
                        continue
                    result = item[1].result
                    code = p["error_code"]
                    if code:
                        exc = errors.for_code(code)(p.get("error_message") or None)
                        if code in REFRESH_CODES or errors.for_code(code).retriable:
                            result.error = exc
                            retry.append(item)
                        else:
                            self._fail(item[1], exc)
                        continue
                    result.base_offset = p["base_offset"]
                    result.log_append_time = p.get("log_append_time_ms", -1)
                    result.error = None
                    result.done = True
            for item in index.values():
                self._fail(item[1], errors.UnknownServerError(
                    f"broker {leader} did not answer for {item[0][0]}-{item[0][1]}"))
        return retry

    def _fail(self, batch: _OpenBatch, exc: Exception) -> None:
        batch.result.error = exc
        batch.result.done = True
        if self.on_batch_error is not None:
            self.on_batch_error(batch.result.topic, batch.result.partition, len(batch.records), exc)
