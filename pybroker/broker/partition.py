"""One partition replica hosted by this broker: its log, high watermark, producer state and
the fetches waiting for new data.

Owned by the broker's event loop thread (not thread-safe). The produce path works per
batch: ``parse_batches`` validates sizes and CRCs (one crc32c call per batch), the
producer table is checked per batch, and the request's own buffer is written to the log
with its offsets rewritten in place — records are never decoded or decompressed here.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pybroker.config import TopicConfig
from pybroker.errors import KafkaError, NotEnoughReplicas
from pybroker.broker.producer_state import BatchMetadata, ProducerStateManager, last_sequence
from pybroker.log.log import Log
from pybroker.record.batch import parse_batches

log = logging.getLogger("pybroker.broker")


@dataclass
class AppendResult:
    base_offset: int
    log_append_time: int
    log_start_offset: int


class Partition:
    def __init__(self, topic: str, index: int, log_: Log, leader_epoch: int = 0):
        self.topic = topic
        self.index = index
        self.log = log_
        self.leader_epoch = leader_epoch
        # The in-sync replicas: this broker alone until replication joins.
        self.isr = [0]
        self.replicas = [0]
        self.producers = ProducerStateManager()
        self._waiters: set[asyncio.Future] = set()
        self._rebuild_producer_state()

    # -- offsets -----------------------------------------------------------------------

    @property
    def config(self) -> TopicConfig:
        return self.log.config

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def high_watermark(self) -> int:
        # With a single replica in the ISR every appended offset is committed.
        return self.log.log_end_offset

    # -- produce -----------------------------------------------------------------------

    def append(self, records: memoryview, acks: int, now_ms: int | None = None) -> AppendResult:
        """Validate and append the records field of one Produce partition."""
        if acks == -1 and len(self.isr) < self.config.min_insync_replicas:
            raise NotEnoughReplicas(
                f"The size of the current ISR {set(self.isr)} is insufficient to satisfy the "
                f"min.isr requirement of {self.config.min_insync_replicas} for partition {self.topic}-{self.index}"
            )
        headers = parse_batches(records, self.config.max_message_bytes)
        producer_id = headers[0].producer_id
        if producer_id >= 0:
            duplicate = self._check_producer(headers)
            if duplicate is not None:
                return AppendResult(duplicate.first_offset, -1, self.log.log_start_offset)
        info = self.log.append(records, headers, self.leader_epoch, now_ms)
        if producer_id >= 0:
            self._record_producer(headers, info.first_offset)
        self._wake_fetchers()
        return AppendResult(info.first_offset, info.log_append_time, info.log_start_offset)

    def _check_producer(self, headers) -> BatchMetadata | None:
        # Idempotent producers send one batch per partition per request; if a request
        # carries several, each must follow the previous, and a retry repeats all of them.
        duplicate = None
        for h in headers:
            if h.producer_id < 0 or h.base_sequence < 0:
                continue
            found = self.producers.check(
                h.producer_id, h.producer_epoch, h.base_sequence, last_sequence(h.base_sequence, h.last_offset_delta)
            )
            if found is not None and duplicate is None:
                duplicate = found
        return duplicate

    def _record_producer(self, headers, first_offset: int) -> None:
        offset = first_offset
        for h in headers:
            count = h.last_offset_delta + 1
            if h.producer_id >= 0 and h.base_sequence >= 0:
                self.producers.update(
                    h.producer_id,
                    h.producer_epoch,
                    BatchMetadata(
                        h.base_sequence,
                        last_sequence(h.base_sequence, h.last_offset_delta),
                        offset,
                        offset + count - 1,
                        h.max_timestamp,
                    ),
                )
            offset += count

    def _rebuild_producer_state(self) -> None:
        """Rebuild the producer table from the batch headers of the active segment (headers
        only, no record bytes), so a producer retrying across a broker restart is still
        deduplicated. Older producers are unknown afterwards and may start at any sequence,
        which is Kafka's rule for producers whose state went with retention."""
        segment = self.log.active_segment
        for h in segment.batches_from(0):
            if h.producer_id >= 0 and h.base_sequence >= 0 and h.base_offset >= self.log.log_start_offset:
                self._record_producer([h], h.base_offset)

    # -- fetch -------------------------------------------------------------------------

    def register_waiter(self, fut: asyncio.Future) -> None:
        self._waiters.add(fut)

    def unregister_waiter(self, fut: asyncio.Future) -> None:
        self._waiters.discard(fut)

    def _wake_fetchers(self) -> None:
        if self._waiters:
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(None)
            self._waiters.clear()

    def close(self) -> None:
        self._wake_fetchers()
        self.log.close()


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["Partition", "AppendResult", "KafkaError", "now_ms"]
