"""Cluster totals from the brokers' periodic reports (pure logic: no sockets, no clock).

Each broker reports cumulative counters since its process started (``broker/stats.py``),
named by a ``boot`` id. ``ClusterMetrics.ingest`` adds the difference from that broker's
previous report of the same boot, or the whole report for a new boot (a restarted
broker counts from zero again): the totals only grow, as Prometheus counters must, across
broker restarts. What a broker counted after its last report before dying is lost — at
most one report interval.

``sample(now)`` records the per-topic totals at a moment; ``throughput()`` turns
consecutive samples into rates for the console's charts (a bounded history).

Owned by the supervisor's event loop thread.
"""
from __future__ import annotations

from collections import deque

from pybroker.broker.stats import BYTES_IN, BYTES_OUT, LATENCY_BUCKETS_MS, MESSAGES_IN

HISTORY_SAMPLES = 150  # 5 minutes at one sample every 2 s


class ClusterMetrics:
    def __init__(self, history: int = HISTORY_SAMPLES):
        self.topics: dict[str, list[int]] = {}
        self.requests: dict[str, list[float]] = {}
        self.isr_shrinks = 0
        self.isr_expands = 0
        self.reports = 0
        self._last: dict[int, dict] = {}
        self._samples: deque[tuple[float, dict[str, tuple[int, int, int]]]] = deque(maxlen=history)

    def ingest(self, node_id: int, report: dict) -> None:
        last = self._last.get(node_id)
        base = last if last is not None and last["boot"] == report["boot"] else None
        _add_deltas(self.topics, report["topics"], base["topics"] if base else {})
        _add_deltas(self.requests, report["requests"], base["requests"] if base else {})
        shrinks, expands = report["isr"]
        old_shrinks, old_expands = base["isr"] if base else (0, 0)
        self.isr_shrinks += shrinks - old_shrinks
        self.isr_expands += expands - old_expands
        self._last[node_id] = report
        self.reports += 1

    def retain_topics(self, topics) -> None:
        """Forget the totals of topics no longer in the cluster (Kafka drops a deleted
        topic's metrics; one created again under the name starts from zero)."""
        for name in [t for t in self.topics if t not in topics]:
            del self.topics[name]

    def sample(self, now: float) -> None:
        self._samples.append((now, {t: (row[MESSAGES_IN], row[BYTES_IN], row[BYTES_OUT])
                                    for t, row in self.topics.items()}))

    def throughput(self) -> list[dict]:
        """Rates between consecutive samples: ``[{"t": seconds, "topics": {topic:
        [messages_in/s, bytes_in/s, bytes_out/s]}}, ...]``, oldest first."""
        out = []
        samples = list(self._samples)
        for (t0, before), (t1, after) in zip(samples, samples[1:]):
            dt = t1 - t0
            if dt <= 0:
                continue
            rates = {}
            for topic, now in after.items():
                then = before.get(topic, (0, 0, 0))
                rates[topic] = [round((a - b) / dt, 3) for a, b in zip(now, then)]
            out.append({"t": t1, "topics": rates})
        return out

    def latest_rates(self) -> dict[str, list[float]]:
        points = self.throughput()
        return points[-1]["topics"] if points else {}

    @staticmethod
    def cumulative_buckets(row: list[float]) -> list[tuple[str, float]]:
        """A request row's buckets as Prometheus wants them: cumulative, ending at +Inf."""
        out = []
        running = 0
        counts = row[2:]
        for bound, count in zip((*(f"{b:g}" for b in LATENCY_BUCKETS_MS), "+Inf"), counts):
            running += count
            out.append((bound, running))
        return out


def _add_deltas(totals: dict[str, list], rows: dict[str, list], previous: dict[str, list]) -> None:
    for key, row in rows.items():
        before = previous.get(key)
        total = totals.get(key)
        if total is None:
            total = totals[key] = [0] * len(row)
        for i, value in enumerate(row):
            # A row that went down started again (a topic deleted and created anew).
            old = before[i] if before is not None and i < len(before) else 0
            total[i] += value - old if value >= old else value
