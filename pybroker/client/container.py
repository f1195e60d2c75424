"""A listener container, as Spring Kafka's: it polls, calls your function per record,
and commits per an AckMode.

When each mode commits (the committed offset is always the next one to read, i.e. the
last processed record's offset + 1)::

    RECORD            after each record the listener returns from
    BATCH (default)   after every record of a poll() was processed
    TIME              after a poll's records, if ack_time_ms passed since the last commit
    COUNT             after a poll's records, if ack_count records were processed since
                      the last commit
    COUNT_TIME        after a poll's records, if either COUNT or TIME holds
    MANUAL            the listener calls ack.acknowledge(); acknowledged offsets are
                      queued and committed once the poll's records are done (before the
                      next poll)
    MANUAL_IMMEDIATE  ack.acknowledge() commits at once, on the listener's thread

Processed-but-uncommitted offsets (acknowledged ones under MANUAL) are also committed
when partitions are revoked and when the container stops. Auto commit is off, as Spring
forces it. The listener takes ``(record)`` or, under the MANUAL modes, ``(record, ack)``.

Errors: a record whose listener raises is retried in place per the error handler's
back-off (its position is kept: nothing after it runs first), then handed to the
recoverer — by default the error is logged; ``DeadLetterPublishingRecoverer`` sends
the record to ``<topic>.DLT`` (same partition when it exists) with Spring's
``kafka_dlt-*`` headers. A recovered record counts as processed.

Transactions (Spring's KafkaTransactionManager, EOS mode V2): with
``transactional_producer`` (Producer settings with a ``transactional.id`` prefix) each
worker owns a transactional Producer (id ``<prefix>-<worker index>``) and runs every poll
as one consume-process-produce transaction: the listener takes ``(record, producer)``,
sends what it produces through that producer, and the container commits the poll's
offsets inside the same transaction (``send_offsets_to_transaction``). A listener that
raises aborts the transaction: its sends never reach read_committed consumers, and the
batch is run again per the error handler's back-off; once that is spent, the recoverer
gets the failing record and the rest of the batch runs in a new transaction. The ack
mode does not apply.

Threads: ``concurrency`` workers, each a thread with its own Consumer in the same group.

Share-group mode (``share=True``, KIP-932): each worker is a ``ShareConsumer`` of the share
group ``group.id``, so the workers take records from the same partitions — a queue worker
pool, as many workers as you like whatever the partition count. Each record is
acknowledged on its own: ACCEPT when the listener returns; on a failure the worker waits
the back-off's next delay (the delivery count says which) and RELEASEs it, so any worker
may get it again; once the back-off is exhausted (or for an exception in the error
handler's ``not_retryable``) the recoverer runs and the record is REJECTed, never
delivered again. A recoverer that raises leaves the record RELEASEd. The group's
``group.share.delivery.count.limit`` (default 5) archives a record after that many
deliveries whatever the back-off says. The acknowledgements of a poll are committed before
the next one; ``ack_mode`` and the MANUAL listener form do not apply.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from pybroker import errors
from pybroker.client.consumer import Consumer, ConsumerRecord
from pybroker.client.producer import Producer
from pybroker.client.share_consumer import ACCEPT, REJECT, RELEASE, ShareConsumer, ShareRecord

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


class AckMode(enum.Enum):
    RECORD = "RECORD"
    BATCH = "BATCH"
    TIME = "TIME"
    COUNT = "COUNT"
    COUNT_TIME = "COUNT_TIME"
    MANUAL = "MANUAL"
    MANUAL_IMMEDIATE = "MANUAL_IMMEDIATE"


MANUAL_MODES = (AckMode.MANUAL, AckMode.MANUAL_IMMEDIATE)


@dataclass
class FixedBackOff:
    """``max_attempts`` retries after the first failure, ``interval_ms`` apart."""

    interval_ms: int = 0
    max_attempts: int = 9

    def delays(self):
        for _ in range(self.max_attempts):
            yield self.interval_ms / 1000.0


@dataclass
class ExponentialBackOff:
    initial_interval_ms: int = 2000
    multiplier: float = 1.5
    max_interval_ms: int = 30000
    max_elapsed_time_ms: int = 60000

    def delays(self):
        interval, spent = self.initial_interval_ms, 0
        while spent + interval <= self.max_elapsed_time_ms:
            yield interval / 1000.0
            spent += interval
            interval = min(interval * self.multiplier, self.max_interval_ms)


def log_recoverer(record: ConsumerRecord, exc: BaseException) -> None:
    log.error("giving up on %s-%d@%d after retries: %s", record.topic, record.partition, record.offset, exc)


class DeadLetterPublishingRecoverer:
    """Send a failed record to ``<topic><suffix>`` with headers saying where it came
    from and why (Spring's ``kafka_dlt-*`` names); waits for the send to succeed so
    the record's offset is committed only once it is safe elsewhere."""

    def __init__(self, producer: Producer, suffix: str = ".DLT", timeout: float = 30.0):
        self.producer = producer
        self.suffix = suffix
        self.timeout = timeout

    def __call__(self, record: ConsumerRecord, exc: BaseException) -> None:
        topic = record.topic + self.suffix
        partition = record.partition if record.partition < self.producer.partitions_for(topic) else None
        headers = list(record.headers) + [
            ("kafka_dlt-original-topic", record.topic.encode()),
            ("kafka_dlt-original-partition", record.partition.to_bytes(4, "big")),
            ("kafka_dlt-original-offset", record.offset.to_bytes(8, "big")),
            ("kafka_dlt-original-timestamp", record.timestamp.to_bytes(8, "big", signed=True)),
            ("kafka_dlt-exception-fqcn", f"{type(exc).__module__}.{type(exc).__qualname__}".encode()),
            ("kafka_dlt-exception-message", str(exc).encode()),
            ("kafka_dlt-exception-stacktrace", "".join(traceback.format_exception(exc)).encode()),
        ]
        self.producer.send(topic, record.value, key=record.key, partition=partition, headers=headers,
                           timestamp=record.timestamp).get(self.timeout)


class DefaultErrorHandler:
    """``not_retryable``: exception classes that go to the recoverer at once."""

    def __init__(self, recoverer: Callable[[ConsumerRecord, BaseException], None] = log_recoverer,
                 backoff=None, not_retryable: tuple[type[BaseException], ...] = ()):
        self.recoverer = recoverer
        self.backoff = backoff if backoff is not None else FixedBackOff(0, 9)
        self.not_retryable = tuple(not_retryable)

    def delay_after(self, failures: int) -> float | None:
        """The back-off before retry number ``failures`` (1 = the first retry), or None
        once it is exhausted."""
        for n, delay in enumerate(self.backoff.delays(), 1):
            if n == failures:
                return delay
        return None


class Acknowledgment:
    """Handed to MANUAL / MANUAL_IMMEDIATE listeners with each record."""

    __slots__ = ("_worker", "_record")

    def __init__(self, worker: "_Worker", record: ConsumerRecord):
        self._worker = worker
        self._record = record

    def acknowledge(self) -> None:
        self._worker.acknowledge(self._record)


class ListenerContainer:
    """Run ``listener`` over the records of ``topics`` for ``group_id``.

    ``consumer_config`` holds Consumer settings (Kafka names; bootstrap.servers and
    group.id included); ``enable.auto.commit`` is forced off."""

    def __init__(self, consumer_config: dict, topics, listener: Callable, *,
                 ack_mode: AckMode | str = AckMode.BATCH, ack_count: int = 1,
                 ack_time_ms: int = 5000, concurrency: int = 1,
                 error_handler: DefaultErrorHandler | None = None, poll_timeout_ms: int = 1000,
                 transactional_producer: dict | None = None, share: bool = False):
        self.share = share
        if share and transactional_producer is not None:
            raise ValueError("share mode has no offsets to commit in a transaction")
        self.ack_mode = AckMode(ack_mode) if isinstance(ack_mode, str) else ack_mode
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if ack_count < 1:
            raise ValueError("ack_count must be >= 1")
        config = {k.replace(".", "_"): v for k, v in consumer_config.items()}
        if not config.get("group_id"):
            raise ValueError("the container needs a group.id")
        if share:
            if self.ack_mode is not AckMode.BATCH:
                raise ValueError("share mode acknowledges each record itself: ack_mode does not apply")
            config["share_acknowledgement_mode"] = "explicit"
        else:
            config["enable_auto_commit"] = False
        self.consumer_config = config
        self.topics = topics
        self.listener = listener
        self.ack_count = ack_count
        self.ack_time = ack_time_ms / 1000.0
        self.concurrency = concurrency
        self.error_handler = error_handler or DefaultErrorHandler()
        self.poll_timeout_ms = poll_timeout_ms
        self.producer_config = None
        if transactional_producer is not None:
            producer_config = {k.replace(".", "_"): v for k, v in transactional_producer.items()}
            if not producer_config.get("transactional_id"):
                raise ValueError("transactional_producer needs a transactional.id (the prefix of the workers' ids)")
            self.producer_config = producer_config
        self._stop = threading.Event()
        self.workers: list[_Worker] = []

    def start(self) -> None:
        if self.workers:
            raise RuntimeError("container already started")
        self._stop.clear()
        for i in range(self.concurrency):
            worker = _Worker(self, i)
            self.workers.append(worker)
            worker.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the record in hand, commit what was processed, leave the group."""
        self._stop.set()
        for worker in self.workers:
            worker.thread.join(timeout)
        self.workers = []

    def run(self) -> None:
        """Start and block until ``stop`` is called from another thread."""
        self.start()
        while not self._stop.wait(0.5):
            pass
        self.stop()

    @property
    def errors(self) -> list[BaseException]:
        return [w.error for w in self.workers if w.error is not None]

    def __enter__(self) -> "ListenerContainer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class _Worker:
    """One consumer thread of a container; owns its consumer and pending offsets."""

    def __init__(self, container: ListenerContainer, index: int):
        self.container = container
        self.mode = container.ack_mode
        self.consumer: Consumer | None = None
        self.index = index
        self.producer: Producer | None = None
        self.pending: dict[TopicPartition, int] = {}  # processed (or acked), not committed
        self.since_commit = 0
        self.last_commit = time.monotonic()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"pybroker-listener-{index}", daemon=True)

    def _run(self) -> None:
        c = self.container
        try:
            if c.share:
                self._run_share()
                return
            if c.producer_config is not None:
                self.producer = Producer({**c.producer_config,
                                          "transactional_id": f"{c.producer_config['transactional_id']}-{self.index}"})
                self.producer.init_transactions()
            self.consumer = Consumer(c.consumer_config)
            self.consumer.subscribe(c.topics, on_revoked=self._on_revoked)
            while not c._stop.is_set():
                records = self.consumer.poll(c.poll_timeout_ms)
                if self.producer is not None:
                    if records:
                        self._process_in_transaction(records)
                    continue
                for record in records:
                    if c._stop.is_set():
                        break
                    self._process(record)
                    if self.mode is AckMode.RECORD:
                        self.commit()
                self._after_poll(bool(records))
            self.commit()
        except BaseException as exc:
            self.error = exc
            log.exception("listener container worker stopped")
        finally:
            if isinstance(self.consumer, ShareConsumer):
                self.consumer.close()
            elif self.consumer is not None:
                self.consumer.close(autocommit=False)
            if self.producer is not None:
                self.producer.close()

    def _process_in_transaction(self, records: list[ConsumerRecord]) -> None:
        """One transaction per poll; a failed listener aborts it and the batch runs again."""
        delays = iter(self.container.error_handler.backoff.delays())
        producer = self.producer
        while records:
            producer.begin_transaction()
            done = 0
            try:
                for record in records:
                    self.container.listener(record, producer)
                    done += 1
                offsets: dict[TopicPartition, int] = {}
                for record in records:
                    offsets[(record.topic, record.partition)] = record.offset + 1
                producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
                producer.commit_transaction()
                return
            except Exception as exc:
                producer.abort_transaction()
                delay = next(delays, None)
                if delay is None and done < len(records):
                    # Give up on the failing record; the rest go on in a new transaction
                    # that commits past it.
                    self.container.error_handler.recoverer(records[done], exc)
                    delays = iter(self.container.error_handler.backoff.delays())
                    skipped, records = records[done], records[done + 1:]
                    if not records:
                        self._commit_past(skipped)
                    continue
                if delay is None:
                    raise
                log.debug("transaction over %d records failed, running it again: %s", len(records), exc)
                if self.container._stop.wait(delay):
                    raise

    def _commit_past(self, record: ConsumerRecord) -> None:
        """A transaction of its own that only moves the group past a recovered record."""
        self.producer.begin_transaction()
        self.producer.send_offsets_to_transaction({(record.topic, record.partition): record.offset + 1},
                                                  self.consumer.group_metadata())
        self.producer.commit_transaction()

    # -- share-group mode -----------------------------------------------------------

    def _run_share(self) -> None:
        c = self.container
        self.consumer = ShareConsumer(c.consumer_config)
        self.consumer.subscribe(c.topics)
        while not c._stop.is_set():
            records = self.consumer.poll(c.poll_timeout_ms)
            for record in records:
                if c._stop.is_set():
                    break     # the rest are released when the consumer closes
                self.consumer.acknowledge(record, self._process_share(record))
            if records:
                for tp, exc in self.consumer.commit_sync().items():
                    if exc is not None:
                        log.warning("acknowledging records of %s-%d failed: %s", tp[0], tp[1], exc)

    def _process_share(self, record: ShareRecord) -> int:
        """The listener over one delivery of ``record``; how to acknowledge it."""
        handler = self.container.error_handler
        try:
            self.container.listener(record)
            return ACCEPT
        except Exception as exc:
            delay = None if isinstance(exc, handler.not_retryable) else handler.delay_after(record.delivery_count)
            if delay is not None:
                log.debug("listener failed on %s-%d@%d (delivery %d), releasing: %s", record.topic,
                          record.partition, record.offset, record.delivery_count, exc)
                self.container._stop.wait(delay)
                return RELEASE
            try:
                handler.recoverer(record, exc)
            except Exception:
                log.exception("recoverer failed on %s-%d@%d; releasing it", record.topic, record.partition,
                              record.offset)
                return RELEASE
            return REJECT

    def _process(self, record: ConsumerRecord) -> None:
        manual = self.mode in MANUAL_MODES
        delays = iter(self.container.error_handler.backoff.delays())
        while True:
            try:
                if manual:
                    self.container.listener(record, Acknowledgment(self, record))
                else:
                    self.container.listener(record)
                break
            except Exception as exc:
                delay = next(delays, None)
                if delay is None:
                    self.container.error_handler.recoverer(record, exc)
                    if manual:
                        self.acknowledge(record)
                    break
                log.debug("listener failed on %s-%d@%d, retrying: %s",
                          record.topic, record.partition, record.offset, exc)
                if self.container._stop.wait(delay):
                    raise
        if not manual:
            self.pending[(record.topic, record.partition)] = record.offset + 1
            self.since_commit += 1

    def acknowledge(self, record: ConsumerRecord) -> None:
        self.pending[(record.topic, record.partition)] = record.offset + 1
        self.since_commit += 1
        if self.mode is AckMode.MANUAL_IMMEDIATE:
            self.commit()

    def _after_poll(self, had_records: bool) -> None:
        mode = self.mode
        if mode in (AckMode.BATCH, AckMode.MANUAL):
            if had_records:
                self.commit()
            return
        count_due = self.since_commit >= self.container.ack_count
        time_due = time.monotonic() - self.last_commit >= self.container.ack_time
        if (mode is AckMode.COUNT and count_due) or (mode is AckMode.TIME and time_due) or \
                (mode is AckMode.COUNT_TIME and (count_due or time_due)):
            self.commit()

    def commit(self) -> None:
        if not self.pending:
            return
        offsets, self.pending = self.pending, {}
        try:
            self.consumer.commit_sync(offsets)
        except errors.KafkaError as exc:
            log.warning("commit of %s failed: %s", offsets, exc)
            for tp, offset in offsets.items():
                self.pending.setdefault(tp, offset)
            return
        self.since_commit = 0
        self.last_commit = time.monotonic()

    def _on_revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.commit()
        for tp in partitions:
            self.pending.pop(tp, None)
