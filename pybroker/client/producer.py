"""A Kafka producer: an accumulator filled by ``send`` and a background sender thread.

``send`` picks the partition (explicit; murmur2 of the key; sticky for null keys),
appends the record to that partition's open batch (columns: keys, values, headers,
timestamps) and returns at once. A batch closes when it reaches ``batch.size`` bytes;
the sender thread ships closed batches, and open ones once ``linger.ms`` has passed
since their first record (or on ``flush``). The sender groups batches by partition
leader into Produce requests (one batch per partition per request, at most
``max.in.flight.requests.per.connection`` requests in flight per broker), builds them
with the C accelerator when present (``pybroker.client.records``) and resolves one
future per batch: a record's future is a view (batch future, index) onto it.

Delivery: retriable errors are retried with exponential backoff until
``delivery.timeout.ms`` after the record's batch was created; NOT_LEADER_OR_FOLLOWER and
UNKNOWN_TOPIC_OR_PARTITION refresh metadata first. Idempotence (the default, as in
Kafka 3+) gets a producer id from InitProducerId and numbers each partition's batches;
a retried batch keeps its sequence, so the broker drops what it already has.

Transactions: with ``transactional.id`` the producer is idempotent and transactional
(KIP-98): ``init_transactions`` gets its id and epoch from the transaction coordinator
(fencing any earlier producer of that id), records are sent only between
``begin_transaction`` and ``commit_transaction``/``abort_transaction``, each partition is
enlisted (AddPartitionsToTxn) before its first batch goes out, and
``send_offsets_to_transaction`` commits a consumer group's offsets with the transaction
(pybroker.client.transaction_manager).

Memory: records waiting in the accumulator count against ``buffer.memory``; ``send``
blocks while the buffer is full and raises ``errors.RequestTimedOut`` after
``max.block.ms``.

Configuration uses Kafka's names, either as a dict (``Producer({"bootstrap.servers":
..., "linger.ms": 5})``) or as keyword arguments with underscores
(``Producer("host:9092", linger_ms=5)``); both may be mixed, keywords win.

Threads: any number of threads may call ``send``/``flush``; the sender thread alone
owns the network ``Client``. Callbacks run on the sender thread.
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from typing import Callable, NamedTuple

from pybroker import errors
from pybroker.client.cluster import REFRESH_CODES, Client
from pybroker.client.security import ClientSecurity
from pybroker.client.partitioner import sticky_partition
from pybroker.client.records import build_batch_from_columns, murmur2
from pybroker.client.transaction_manager import GroupMetadata, TransactionManager
from pybroker.protocol import api
from pybroker.record import compression as codecs

log = logging.getLogger(__name__)

COMPRESSION_NAMES = codecs.BY_NAME  # "none", "gzip", "snappy", "lz4", "zstd"
# Bytes a record adds to a batch beyond its key, value and headers (varint lengths,
# deltas, attributes): an upper bound used to decide when a batch is full.
RECORD_OVERHEAD = 21
SEQUENCE_WRAP = 1 << 31  # sequences are int32 and wrap to 0, as in Kafka

DEFAULTS = {
    "bootstrap_servers": None,
    "client_id": "pybroker-producer",
    "acks": None,  # "all", or 1 when enable.idempotence is explicitly False
    "compression_type": "none",
    "batch_size": 16384,
    "linger_ms": 5,
    "buffer_memory": 32 * 1024 * 1024,
    "max_block_ms": 60_000,
    "retries": 2147483647,
    "retry_backoff_ms": 100,
    "retry_backoff_max_ms": 1000,
    "delivery_timeout_ms": 120_000,
    "request_timeout_ms": 30_000,
    "enable_idempotence": None,  # on unless acks/retries/in-flight forbid it
    "max_in_flight_requests_per_connection": 5,
    "max_request_size": 1024 * 1024,
    "metadata_max_age_ms": 300_000,
    "on_batch_error": None,
    "transactional_id": None,
    "transaction_timeout_ms": 60_000,
}
ALIASES = {"compression": "compression_type", "compression_codec": "compression_type"}


def normalize_config(config: dict | None, kwargs: dict, defaults: dict, aliases: dict) -> dict:
    """Merge Kafka-style ``config`` (dots) and keyword arguments (underscores) over
    ``defaults``; an unknown name raises ValueError naming it."""
    out = dict(defaults)
    for source in (config or {}), kwargs:
        for name, value in source.items():
            key = name.replace(".", "_")
            key = aliases.get(key, key)
            if key not in defaults:
                raise ValueError(f"unknown configuration {name!r}")
            out[key] = value
    return out


class RecordMetadata(NamedTuple):
    topic: str
    partition: int
    offset: int  # -1 with acks=0: the broker does not say
    timestamp: int


class RecordFuture:
    """Where one record ended up: a view onto its batch's future."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: "_Batch", index: int):
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        return self._batch.future.done()

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for the batch; raise its error or return this record's metadata."""
        self._batch.future.result(timeout)
        return self._batch.metadata(self._index)

    result = get

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._batch.future.exception(timeout)

    def add_done_callback(self, fn: Callable[["RecordFuture"], None]) -> None:
        self._batch.future.add_done_callback(lambda _f: fn(self))


class _Batch:
    """One partition's batch: the records as columns, then its wire bytes and fate."""

    __slots__ = ("topic", "partition", "keys", "values", "headers", "timestamps", "size",
                 "created", "future", "callbacks", "data", "sequence", "attempts",
                 "retry_at", "base_offset", "log_append_time", "error")

    def __init__(self, topic: str, partition: int, now: float):
        self.topic = topic
        self.partition = partition
        self.keys: list = []
        self.values: list = []
        self.headers: list | None = None
        self.timestamps: list[int] = []
        self.size = 0
        self.created = now
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.callbacks: list | None = None
        self.data: bytes | None = None
        self.sequence = -1
        self.attempts = 0
        self.retry_at = 0.0
        self.base_offset = -1
        self.log_append_time = -1
        self.error: BaseException | None = None

    def metadata(self, index: int) -> RecordMetadata:
        offset = self.base_offset + index if self.base_offset >= 0 else -1
        ts = self.log_append_time if self.log_append_time >= 0 else self.timestamps[index]
        return RecordMetadata(self.topic, self.partition, offset, ts)


class Producer:
    """Send records to Kafka topics. See the module docstring for the configuration.

    ``on_batch_error(topic, partition, record_count, exc)`` is called (on the sender
    thread) for each batch that finally failed, so tools can report failures without
    holding per-record futures.
    """

    def __init__(self, bootstrap_servers=None, config: dict | None = None, **kwargs):
        if isinstance(bootstrap_servers, dict):
            config, bootstrap_servers = bootstrap_servers, None
        if bootstrap_servers is not None:
            kwargs["bootstrap_servers"] = bootstrap_servers
        cfg = normalize_config(config, kwargs, DEFAULTS, ALIASES)
        if not cfg["bootstrap_servers"]:
            raise ValueError("bootstrap.servers is required")
        self.config = cfg
        acks = cfg["acks"]
        idempotence = cfg["enable_idempotence"]
        if acks is None:
            acks = "all" if idempotence is not False else 1
        self.acks = -1 if acks in ("all", "-1", -1) else int(acks)
        if self.acks not in (-1, 0, 1):
            raise ValueError(f"acks must be 0, 1 or all, not {acks!r}")
        in_flight = int(cfg["max_in_flight_requests_per_connection"])
        if in_flight < 1:
            raise ValueError("max.in.flight.requests.per.connection must be >= 1")
        if cfg["transactional_id"] is not None:
            if idempotence is False:
                raise ValueError("a transactional producer is idempotent: enable.idempotence cannot be false")
            idempotence = True
        if idempotence is None:
            # Kafka 3.2+: idempotence is the default unless other settings exclude it.
            idempotence = self.acks == -1 and in_flight <= 5 and int(cfg["retries"]) > 0
        elif idempotence and (self.acks != -1 or in_flight > 5):
            raise ValueError("enable.idempotence needs acks=all and max.in.flight.requests.per.connection <= 5")
        self.idempotent = bool(idempotence)
        compression = cfg["compression_type"]
        if isinstance(compression, str):
            if compression.lower() not in COMPRESSION_NAMES:
                raise ValueError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESSION_NAMES)}")
            compression = COMPRESSION_NAMES[compression.lower()]
        if compression not in codecs.NAMES:
            raise ValueError(f"unknown compression codec id {compression!r}")
        self.compression = compression
        self.batch_size = max(1, int(cfg["batch_size"]))
        self.linger = int(cfg["linger_ms"]) / 1000.0
        self.buffer_memory = int(cfg["buffer_memory"])
        self.max_block = int(cfg["max_block_ms"]) / 1000.0
        self.retries = int(cfg["retries"])
        self.retry_backoff = int(cfg["retry_backoff_ms"]) / 1000.0
        self.retry_backoff_max = max(self.retry_backoff, int(cfg["retry_backoff_max_ms"]) / 1000.0)
        self.delivery_timeout = int(cfg["delivery_timeout_ms"]) / 1000.0
        self.request_timeout_ms = int(cfg["request_timeout_ms"])
        self.max_in_flight = in_flight
        self.max_request_size = int(cfg["max_request_size"])
        self.metadata_max_age = int(cfg["metadata_max_age_ms"]) / 1000.0
        self.on_batch_error = cfg["on_batch_error"]
        self.security = ClientSecurity.from_options(cfg)
        self.client = Client(cfg["bootstrap_servers"], client_id=cfg["client_id"],
                             timeout=self.request_timeout_ms / 1000.0 + 5, security=self.security)

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._max_record_size = min(self.max_request_size - 61, self.buffer_memory)
        self._open: dict[tuple[str, int], _Batch] = {}
        # Closed batches per partition, in send order (retries go back to the front).
        self._ready: dict[tuple[str, int], collections.deque] = {}
        self._partition_counts: dict[str, int] = {}
        self._topic_errors: dict[str, BaseException] = {}
        self._wanted_topics: set[str] = set()
        self._sticky: dict[str, int] = {}
        self._buffered = 0
        self._incomplete = 0  # batches created and not yet resolved
        self._flushing = 0
        self._closing = False
        self._closed = False
        self._producer_id = -1
        self._producer_epoch = -1
        self._sequences: dict[tuple[str, int], int] = {}
        self._metadata_time = 0.0
        self.txn: TransactionManager | None = None
        if cfg["transactional_id"] is not None:
            self.txn = TransactionManager(
                Client(cfg["bootstrap_servers"], client_id=cfg["client_id"], timeout=self.request_timeout_ms / 1000.0 + 5,
                       security=self.security),
                cfg["transactional_id"], int(cfg["transaction_timeout_ms"]), self.retry_backoff)
        self._sender = threading.Thread(target=self._run, name="pybroker-producer-sender", daemon=True)
        self._sender.start()

    # -- public API --------------------------------------------------------------

    def partitions_for(self, topic: str) -> int:
        """The topic's partition count, waiting up to ``max.block.ms`` for metadata."""
        count = self._partition_counts.get(topic)
        if count is None:
            count = self._wait_for_topic(topic, time.monotonic() + self.max_block)
        return count

    def send(self, topic: str, value=None, key=None, partition: int | None = None,
             headers: list[tuple[str, bytes | None]] | None = None, timestamp: int | None = None,
             callback: Callable[[RecordMetadata | None, BaseException | None], None] | None = None,
             *, timestamp_ms: int | None = None) -> RecordFuture:
        """Queue one record; returns its future. ``callback(metadata, exception)`` runs on
        the sender thread once the record's batch is resolved."""
        if self._closing:
            raise RuntimeError("producer is closed")
        if self.txn is not None:
            self.txn.check_can_send()
        count = self._partition_counts.get(topic)
        if count is None:
            count = self.partitions_for(topic)
        if key is not None and key.__class__ is not bytes:
            key = key.encode() if isinstance(key, str) else bytes(key)
        if value is not None and value.__class__ is not bytes:
            value = value.encode() if isinstance(value, str) else bytes(value)
        if partition is None:
            if key is not None:
                partition = (murmur2(key) & 0x7FFFFFFF) % count
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
        if timestamp is None:
            timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        size = RECORD_OVERHEAD + (len(key) if key is not None else 0) + (len(value) if value is not None else 0)
        if headers:
            size += sum(len(k) + (len(v) if v is not None else 0) + 4 for k, v in headers)
        if size > self._max_record_size:
            raise errors.MessageTooLarge(
                f"a record of {size} bytes exceeds max.request.size {self.max_request_size} "
                f"or buffer.memory {self.buffer_memory}")
        tp = (topic, partition)
        # The plain lock, not the Condition wrapper: entering it costs no Python frame.
        with self._lock:
            if self._buffered + size > self.buffer_memory:
                self._wait_for_buffer(size)
            batch = self._open.get(tp)
            if batch is None:
                batch = self._open[tp] = _Batch(topic, partition, time.monotonic())
                self._incomplete += 1
                self._cond.notify_all()  # the sender now has a linger deadline to watch
            index = len(batch.timestamps)
            batch.keys.append(key)
            batch.values.append(value)
            batch.timestamps.append(timestamp)
            if headers:
                if batch.headers is None:
                    batch.headers = [None] * index
                batch.headers.append(headers)
            elif batch.headers is not None:
                batch.headers.append(None)
            if callback is not None:
                if batch.callbacks is None:
                    batch.callbacks = []
                batch.callbacks.append((index, callback))
            batch.size += size
            self._buffered += size
            if batch.size >= self.batch_size:
                self._close_batch(tp, batch)
                self._cond.notify_all()
        return RecordFuture(batch, index)

    produce = send

    # -- transactions ------------------------------------------------------------

    def _transaction(self) -> TransactionManager:
        if self.txn is None:
            raise RuntimeError("transactions need transactional.id")
        return self.txn

    def init_transactions(self, timeout: float | None = None) -> None:
        """Get the transactional id's producer id and epoch; an earlier producer of the
        id is fenced and its open transaction aborted (retried until done)."""
        pid, epoch = self._transaction().init(timeout)
        with self._cond:
            self._producer_id, self._producer_epoch = pid, epoch
            self._sequences.clear()

    def begin_transaction(self) -> None:
        self._transaction().begin()

    def send_offsets_to_transaction(self, offsets: dict[tuple[str, int], int], group_metadata,
                                    timeout: float | None = None) -> None:
        """Commit ``offsets`` ({(topic, partition): next offset}) for a consumer group as
        part of the transaction. ``group_metadata``: a group id, or the consumer's
        ``group_metadata()`` (the generation then fences a consumer that lost its
        partitions)."""
        if isinstance(group_metadata, str):
            group_metadata = GroupMetadata(group_metadata)
        self._transaction().send_offsets(dict(offsets), group_metadata, timeout)

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Deliver every record of the transaction, then commit it. A failed record makes
        the transaction abortable: this raises and ``abort_transaction`` must follow."""
        txn = self._transaction()
        if self.flush(timeout):
            raise errors.RequestTimedOut("records of the transaction were not delivered in time")
        txn.end(True, timeout)

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Wait for the batches already sent (what is still queued goes too), then abort:
        read_committed consumers never see the transaction's records."""
        txn = self._transaction()
        self.flush(timeout)
        txn.end(False, timeout)

    def flush(self, timeout: float | None = None) -> int:
        """Ship everything queued and wait until every batch is resolved; returns how
        many batches are still unresolved (0 unless ``timeout`` ran out)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._incomplete:
                    if not self._sender.is_alive():
                        break
                    wait = None if deadline is None else deadline - time.monotonic()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait if wait is not None else 1.0)
                return self._incomplete
            finally:
                self._flushing -= 1

    def poll(self, timeout: float = 0) -> None:
        """Kept for callers of the earlier synchronous producer: the sender thread does
        the work now, so this only yields for ``timeout`` seconds."""
        if timeout:
            time.sleep(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (within ``timeout``), stop the sender, close sockets."""
        if self._closed:
            return
        self._closing = True
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._sender.join(5 if timeout is None else max(timeout, 0.1))
            if not self._sender.is_alive():
                self.client.close()
                if self.txn is not None:
                    self.txn.close()
                    self.txn.client.close()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- caller-side helpers (hold no lock unless said) --------------------------

    def _wait_for_topic(self, topic: str, deadline: float) -> int:
        with self._cond:
            self._topic_errors.pop(topic, None)
            self._wanted_topics.add(topic)
            self._cond.notify_all()
            while True:
                count = self._partition_counts.get(topic)
                if count is not None:
                    return count
                exc = self._topic_errors.pop(topic, None)
                if exc is not None:
                    raise exc
                if self._closed or not self._sender.is_alive():
                    raise RuntimeError("producer is closed")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.RequestTimedOut(
                        f"topic {topic!r} not present in metadata after {self.max_block * 1000:.0f} ms")
                self._cond.wait(left)

    def _wait_for_buffer(self, size: int) -> None:
        """Called with the lock held while buffer.memory is exhausted."""
        deadline = time.monotonic() + self.max_block
        self._cond.notify_all()
        while self._buffered + size > self.buffer_memory:
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.RequestTimedOut(
                    f"buffer.memory ({self.buffer_memory} bytes) stayed full for "
                    f"max.block.ms ({self.max_block * 1000:.0f} ms)")
            self._cond.wait(left)

    def _close_batch(self, tp: tuple[str, int], batch: _Batch) -> None:
        """Lock held: move the open batch to the ready queue; a full batch of the sticky
        partition moves the sticky choice on (KIP-480)."""
        del self._open[tp]
        self._ready.setdefault(tp, collections.deque()).append(batch)
        topic = tp[0]
        if self._sticky.get(topic) == tp[1]:
            self._sticky[topic] = sticky_partition(self._partition_counts.get(topic, 1), tp[1])

    # -- sender thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._closed and not self._incomplete:
                        return
                    self._collect_ready(time.monotonic())
                    wanted = set(self._wanted_topics)
                    if not wanted and not self._sendable():
                        self._cond.wait(self._idle_wait())
                        continue
                try:
                    if wanted or time.monotonic() - self._metadata_time > self.metadata_max_age:
                        self._refresh_metadata(wanted)
                    self._send_round()
                except errors.KafkaError as exc:
                    # The cluster is unreachable for now: back off, batches expire on
                    # their own delivery timeout.
                    log.debug("sender round failed: %s", exc)
                    self._expire_all(exc)
                    time.sleep(self.retry_backoff)
        except BaseException as exc:  # the thread must not die silently: fail everything
            log.exception("producer sender thread stopped")
            with self._cond:
                batches = list(self._open.values()) + [b for q in self._ready.values() for b in q]
                self._open.clear()
                self._ready.clear()
            for batch in batches:
                self._fail(batch, exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            with self._cond:
                self._cond.notify_all()
            if not isinstance(exc, Exception):
                raise

    def _idle_wait(self) -> float:
        """Lock held: how long the sender may sleep before a linger or retry is due."""
        now = time.monotonic()
        wait = 1.0
        for batch in self._open.values():
            wait = min(wait, batch.created + self.linger - now)
        for queue in self._ready.values():
            if queue:
                wait = min(wait, queue[0].retry_at - now)
        return max(wait, 0.0005)

    def _collect_ready(self, now: float) -> None:
        """Lock held: close open batches whose linger passed (all when flushing)."""
        force = self._flushing or self._closing
        for tp, batch in list(self._open.items()):
            if force or now - batch.created >= self.linger:
                self._close_batch(tp, batch)

    def _sendable(self) -> bool:
        now = time.monotonic()
        return any(q and q[0].retry_at <= now for q in self._ready.values())

    def _refresh_metadata(self, wanted: set[str]) -> None:
        topics = sorted(wanted | set(self._partition_counts))
        meta = self.client.refresh(topics, allow_auto_create=True)
        self._metadata_time = time.monotonic()
        with self._cond:
            for topic in wanted:
                info = meta.topics.get(topic)
                code = errors.UnknownTopicOrPartition.code if info is None else info.error_code
                if not code and info.partitions:
                    self._partition_counts[topic] = len(info.partitions)
                    self._wanted_topics.discard(topic)
                elif code and not errors.for_code(code).retriable:
                    self._topic_errors[topic] = errors.for_code(code)(
                        f"topic {topic!r} is not available: {errors.name_of(code)}")
                    self._wanted_topics.discard(topic)
            for topic in set(self._partition_counts) - wanted:
                info = meta.topics.get(topic)
                if info is not None and not info.error_code and info.partitions:
                    self._partition_counts[topic] = len(info.partitions)
            self._cond.notify_all()
        if self._wanted_topics:
            time.sleep(self.retry_backoff)

    def _ensure_producer_id(self) -> None:
        if not self.idempotent or self._producer_id >= 0 or self.txn is not None:
            return
        response = self.client.request_any(api.INIT_PRODUCER_ID, {
            "transactional_id": None, "transaction_timeout_ms": 60000,
            "producer_id": -1, "producer_epoch": -1,
        })
        if response["error_code"]:
            errors.raise_for_code(response["error_code"], "InitProducerId failed")
        self._producer_id = response["producer_id"]
        self._producer_epoch = response["producer_epoch"]
        self._sequences.clear()

    def _drain(self) -> dict[int, list[list[_Batch]]]:
        """Take sendable batches: per leader, up to max-in-flight requests of at most one
        batch per partition each, each request within max.request.size."""
        now = time.monotonic()
        plan: dict[int, list[list[_Batch]]] = {}
        sizes: dict[int, list[int]] = {}
        with self._cond:
            for tp, queue in self._ready.items():
                slot = 0
                while queue and queue[0].retry_at <= now:
                    leader = self.client.metadata.leader_for(*tp)
                    if leader < 0:
                        self._wanted_topics.add(tp[0])
                        break
                    requests = plan.setdefault(leader, [])
                    req_sizes = sizes.setdefault(leader, [])
                    while slot < len(requests) and req_sizes[slot] + queue[0].size > self.max_request_size \
                            and req_sizes[slot]:
                        slot += 1
                    if slot >= self.max_in_flight:
                        break
                    if slot == len(requests):
                        requests.append([])
                        req_sizes.append(0)
                    batch = queue.popleft()
                    requests[slot].append(batch)
                    req_sizes[slot] += batch.size
                    slot += 1
        return plan

    def _build(self, batch: _Batch) -> None:
        if batch.data is not None:
            return
        if self.idempotent:
            tp = (batch.topic, batch.partition)
            seq = self._sequences.get(tp, 0)
            batch.sequence = seq
            self._sequences[tp] = (seq + len(batch.keys)) % SEQUENCE_WRAP
        batch.data = build_batch_from_columns(
            batch.keys, batch.values, batch.headers, batch.timestamps,
            compression=self.compression,
            producer_id=self._producer_id if self.idempotent else -1,
            producer_epoch=self._producer_epoch if self.idempotent else -1,
            base_sequence=batch.sequence, transactional=self.txn is not None)

    def _send_round(self) -> None:
        self._ensure_producer_id()
        self._expire(time.monotonic())
        plan = self._drain()
        if not plan:
            with self._cond:
                if self._wanted_topics:
                    return
                self._cond.wait(self._idle_wait())
            return
        if self.txn is not None and not self._enlist(plan):
            return
        in_flight: list[tuple[int, object, list[_Batch], object]] = []
        for leader, requests in plan.items():
            for batches in requests:
                for batch in batches:
                    self._build(batch)
                topics: dict[str, list] = {}
                for batch in batches:
                    topics.setdefault(batch.topic, []).append(
                        {"index": batch.partition, "records": batch.data})
                body = {
                    "transactional_id": None if self.txn is None else self.txn.transactional_id,
                    "acks": self.acks,
                    "timeout_ms": self.request_timeout_ms,
                    "topic_data": [{"name": t, "partition_data": ps} for t, ps in topics.items()],
                }
                try:
                    conn = self.client.connection(leader)
                    pending = conn.send_request(api.PRODUCE, body)
                except errors.KafkaError as exc:
                    self._request_failed(batches, exc)
                    continue
                if pending is None:  # acks=0: no answer will come
                    for batch in batches:
                        self._complete(batch, -1, -1)
                    continue
                in_flight.append((leader, conn, batches, pending))
        for leader, conn, batches, pending in in_flight:
            try:
                response = conn.read_response(api.PRODUCE, pending)
            except errors.KafkaError as exc:
                self._request_failed(batches, exc)
                continue
            self._handle_response(leader, batches, response)

    def _enlist(self, plan: dict[int, list[list[_Batch]]]) -> bool:
        """Add the plan's partitions to the transaction before sending; if the coordinator
        refuses, the plan's batches fail (the transaction becomes abortable)."""
        batches = [b for requests in plan.values() for batch_list in requests for b in batch_list]
        try:
            self.txn.add_partitions({(b.topic, b.partition) for b in batches})
        except (errors.KafkaError, RuntimeError) as exc:
            for batch in batches:
                self._fail(batch, exc)
            return False
        return True

    def _request_failed(self, batches: list[_Batch], exc: errors.KafkaError) -> None:
        """A request that got no answer: connection-level trouble is retried after a
        metadata refresh, anything else fails its batches."""
        if isinstance(exc, (errors.NetworkException, errors.RequestTimedOut, errors.BrokerNotAvailable)):
            self._retry(batches, exc, refresh=True)
        else:
            for batch in batches:
                self._fail(batch, exc)

    def _handle_response(self, leader: int, batches: list[_Batch], response: dict) -> None:
        by_tp = {(b.topic, b.partition): b for b in batches}
        for t in response["responses"]:
            for p in t["partition_responses"]:
                batch = by_tp.pop((t["name"], p["index"]), None)
                if batch is None:
                    continue
                code = p["error_code"]
                if not code:
                    self._complete(batch, p["base_offset"], p.get("log_append_time_ms", -1))
                    continue
                exc = errors.for_code(code)(p.get("error_message") or None)
                if code == errors.DuplicateSequenceNumber.code:
                    self._complete(batch, -1, -1)  # already written by an earlier attempt
                elif code == errors.OutOfOrderSequenceNumber.code and self._earlier_retrying(batch):
                    self._retry([batch], exc, refresh=False)
                elif code in REFRESH_CODES or errors.for_code(code).retriable:
                    self._retry([batch], exc, refresh=code in REFRESH_CODES)
                else:
                    self._fail(batch, exc)
        for batch in by_tp.values():
            self._fail(batch, errors.UnknownServerError(
                f"broker {leader} did not answer for {batch.topic}-{batch.partition}"))

    def _earlier_retrying(self, batch: _Batch) -> bool:
        """An earlier batch of the partition went back to the queue: this one was
        refused only because of the gap, so it is retried after it."""
        with self._cond:
            queue = self._ready.get((batch.topic, batch.partition))
            return bool(queue) and any(0 <= b.sequence < batch.sequence or
                                       (b.sequence > batch.sequence + SEQUENCE_WRAP // 2)
                                       for b in queue if b.sequence >= 0)

    def _retry(self, batches: list[_Batch], exc: BaseException, refresh: bool) -> None:
        now = time.monotonic()
        requeue = []
        for batch in batches:
            batch.attempts += 1
            batch.error = exc
            if batch.attempts > self.retries or now - batch.created >= self.delivery_timeout:
                self._fail(batch, exc)
                continue
            backoff = min(self.retry_backoff * (2 ** (batch.attempts - 1)), self.retry_backoff_max)
            batch.retry_at = now + backoff
            requeue.append(batch)
        with self._cond:
            for batch in requeue:
                queue = self._ready.setdefault((batch.topic, batch.partition), collections.deque())
                queue.appendleft(batch)
                if batch.sequence >= 0 and len(queue) > 1:
                    # Keep a partition's batches in sequence order whatever failed first.
                    ordered = sorted(queue, key=lambda b: (b.sequence < 0, b.sequence))
                    queue.clear()
                    queue.extend(ordered)
                if refresh:
                    self._wanted_topics.add(batch.topic)

    def _expire(self, now: float) -> None:
        expired = []
        with self._cond:
            for queue in self._ready.values():
                while queue and now - queue[0].created >= self.delivery_timeout:
                    expired.append(queue.popleft())
        for batch in expired:
            self._fail(batch, batch.error or errors.RequestTimedOut(
                f"batch for {batch.topic}-{batch.partition} expired after "
                f"delivery.timeout.ms ({self.delivery_timeout * 1000:.0f} ms)"))

    def _expire_all(self, exc: BaseException) -> None:
        with self._cond:
            for queue in self._ready.values():
                for batch in queue:
                    batch.error = batch.error or exc
            self._collect_ready(time.monotonic())
        self._expire(time.monotonic())

    def _complete(self, batch: _Batch, base_offset: int, log_append_time: int) -> None:
        batch.base_offset = base_offset
        batch.log_append_time = log_append_time
        batch.error = None
        self._resolve(batch)

    def _fail(self, batch: _Batch, exc: BaseException) -> None:
        if batch.future.done():
            return
        count = len(batch.timestamps)
        batch.error = exc
        if self.txn is not None:
            self.txn.batch_failed(exc)
        self._resolve(batch)
        if self.on_batch_error is not None:
            try:
                self.on_batch_error(batch.topic, batch.partition, count, exc)
            except Exception:
                log.exception("on_batch_error callback failed")

    def _resolve(self, batch: _Batch) -> None:
        if batch.future.done():
            return
        with self._cond:
            self._buffered -= batch.size
            self._incomplete -= 1
            self._cond.notify_all()
        if batch.error is None:
            batch.future.set_result(None)
        else:
            batch.future.set_exception(batch.error)
        for index, callback in batch.callbacks or ():
            try:
                if batch.error is None:
                    callback(batch.metadata(index), None)
                else:
                    callback(None, batch.error)
            except Exception:
                log.exception("delivery callback failed")
        # The columns are no longer needed once resolved; keep timestamps for metadata.
        batch.keys = batch.values = batch.data = None
        batch.headers = None
