"""The counters a broker reports to the supervisor: Kafka's BrokerTopicMetrics,
RequestMetrics and ReplicaManager ISR changes, kept as plain integers.

Updated per produced partition batch-set, per fetched partition and per request — never
per record: a produce adds the offsets its batches took (``last - base + 1``, read from
the batch headers the append already parsed). ``report()`` returns the cumulative values
since this process started, with ``boot`` naming the process, so the supervisor can turn
reports into deltas that survive a broker restart (a new boot starts from zero).

Report document (the ``report`` control message)::

    boot        str                      this broker process (random per start)
    topics      {topic: [messages_in, bytes_in, bytes_out,
                         replication_bytes_in, replication_bytes_out]}
    requests    {api_name: [count, latency_ms_sum, bucket_0 .. bucket_N]}
                (bucket i counts requests whose time was <= LATENCY_BUCKETS_MS[i],
                 not cumulative; the last bucket is everything slower)
    isr         [shrinks, expands]
    partitions  [[topic, partition, log_start, log_end, high_watermark, size_bytes], ...]
                (partitions this broker leads)

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import bisect
import uuid

# Upper bounds of the request-latency histogram, in milliseconds (Prometheus style; the
# last, implicit bucket is +Inf). Kafka's TotalTimeMs is a histogram of the same thing.
LATENCY_BUCKETS_MS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)

MESSAGES_IN, BYTES_IN, BYTES_OUT, REPLICATION_BYTES_IN, REPLICATION_BYTES_OUT = range(5)


class BrokerStats:
    def __init__(self) -> None:
        self.boot = uuid.uuid4().hex
        self.topics: dict[str, list[int]] = {}
        self.requests: dict[str, list[float]] = {}
        self.isr_shrinks = 0
        self.isr_expands = 0

    def _topic(self, topic: str) -> list[int]:
        row = self.topics.get(topic)
        if row is None:
            row = self.topics[topic] = [0, 0, 0, 0, 0]
        return row

    def on_produce(self, topic: str, messages: int, nbytes: int) -> None:
        row = self._topic(topic)
        row[MESSAGES_IN] += messages
        row[BYTES_IN] += nbytes

    def on_fetch(self, topic: str, nbytes: int, follower: bool) -> None:
        self._topic(topic)[REPLICATION_BYTES_OUT if follower else BYTES_OUT] += nbytes

    def on_replicated(self, topic: str, nbytes: int) -> None:
        self._topic(topic)[REPLICATION_BYTES_IN] += nbytes

    def on_request(self, api_name: str, elapsed_ms: float) -> None:
        row = self.requests.get(api_name)
        if row is None:
            row = self.requests[api_name] = [0, 0.0] + [0] * (len(LATENCY_BUCKETS_MS) + 1)
        row[0] += 1
        row[1] += elapsed_ms
        row[2 + bisect.bisect_left(LATENCY_BUCKETS_MS, elapsed_ms)] += 1

    def on_isr_change(self, old: list[int], new: list[int]) -> None:
        if len(new) < len(old):
            self.isr_shrinks += 1
        elif len(new) > len(old):
            self.isr_expands += 1

    def forget_topic(self, topic: str) -> None:
        """A deleted topic's counters go (a topic created again under its name counts
        from zero, which the supervisor reads as a restarted counter)."""
        self.topics.pop(topic, None)

    def report(self, partitions) -> dict:
        """The report document; ``partitions`` are this broker's Partition objects."""
        return {
            "boot": self.boot,
            "topics": {t: list(row) for t, row in self.topics.items()},
            "requests": {name: list(row) for name, row in self.requests.items()},
            "isr": [self.isr_shrinks, self.isr_expands],
            "partitions": [
                [p.topic, p.index, p.log_start_offset, p.log_end_offset, p.high_watermark, p.log.size_bytes]
                for p in partitions if p.is_leader
            ],
        }
