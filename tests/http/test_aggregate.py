"""Broker counters and their cluster totals (pure: no processes)."""
from __future__ import annotations

from pybroker.broker.stats import LATENCY_BUCKETS_MS, BrokerStats
from pybroker.http.aggregate import ClusterMetrics


def _report(stats: BrokerStats) -> dict:
    return stats.report([])


def test_stats_count_per_batch_set_and_bucket_latencies():
    stats = BrokerStats()
    stats.on_produce("orders", 500, 40_000)
    stats.on_produce("orders", 1, 80)
    stats.on_fetch("orders", 1000, follower=False)
    stats.on_fetch("orders", 3000, follower=True)
    stats.on_replicated("orders", 3000)
    stats.on_request("Produce", 0.2)
    stats.on_request("Produce", 7.0)
    stats.on_request("Produce", 99_999.0)
    stats.on_isr_change([0, 1, 2], [0, 1])
    stats.on_isr_change([0, 1], [0, 1, 2])
    stats.on_isr_change([0, 1], [1, 0])
    report = _report(stats)
    assert report["topics"]["orders"] == [501, 40_080, 1000, 3000, 3000]
    count, total_ms, *buckets = report["requests"]["Produce"]
    assert count == 3 and abs(total_ms - 100_006.2) < 1e-6
    assert len(buckets) == len(LATENCY_BUCKETS_MS) + 1
    assert buckets[0] == 1 and buckets[LATENCY_BUCKETS_MS.index(10.0)] == 1 and buckets[-1] == 1
    assert report["isr"] == [1, 1]


def test_totals_add_deltas_of_one_boot_and_all_of_a_new_boot():
    metrics = ClusterMetrics()
    first = BrokerStats()
    first.on_produce("t", 10, 100)
    metrics.ingest(0, _report(first))
    first.on_produce("t", 5, 50)
    metrics.ingest(0, _report(first))
    assert metrics.topics["t"][:2] == [15, 150]
    # The broker restarted: its new process counts from zero, the total keeps growing.
    second = BrokerStats()
    second.on_produce("t", 3, 30)
    metrics.ingest(0, _report(second))
    assert metrics.topics["t"][:2] == [18, 180]
    # Another broker's counts add up with the first's.
    other = BrokerStats()
    other.on_produce("t", 2, 20)
    other.on_isr_change([1, 2], [1])
    metrics.ingest(1, _report(other))
    assert metrics.topics["t"][:2] == [20, 200]
    assert metrics.isr_shrinks == 1
    # The same report twice adds nothing.
    metrics.ingest(1, _report(other))
    assert metrics.topics["t"][:2] == [20, 200]


def test_throughput_is_the_rate_between_samples():
    metrics = ClusterMetrics(history=3)
    stats = BrokerStats()
    metrics.sample(100.0)
    stats.on_produce("t", 200, 2000)
    metrics.ingest(0, _report(stats))
    metrics.sample(102.0)
    stats.on_produce("t", 100, 1000)
    stats.on_fetch("t", 4000, follower=False)
    metrics.ingest(0, _report(stats))
    metrics.sample(104.0)
    points = metrics.throughput()
    assert [p["t"] for p in points] == [102.0, 104.0]
    assert points[0]["topics"]["t"] == [100.0, 1000.0, 0.0]
    assert points[1]["topics"]["t"] == [50.0, 500.0, 2000.0]
    assert metrics.latest_rates() == {"t": [50.0, 500.0, 2000.0]}
    metrics.sample(106.0)  # the history is bounded: the oldest sample goes
    assert [p["t"] for p in metrics.throughput()] == [104.0, 106.0]


def test_cumulative_buckets_end_at_inf_with_the_count():
    stats = BrokerStats()
    for ms in (0.1, 0.7, 3.0, 3.0, 20_000.0):
        stats.on_request("Metadata", ms)
    row = _report(stats)["requests"]["Metadata"]
    buckets = ClusterMetrics.cumulative_buckets(row)
    assert buckets[0] == ("0.5", 1) and buckets[1] == ("1", 2) and buckets[3] == ("5", 4)
    assert buckets[-1] == ("+Inf", 5) and buckets[-2] == ("10000", 4)


def test_a_topic_deleted_and_created_again_counts_from_zero():
    metrics = ClusterMetrics()
    stats = BrokerStats()
    stats.on_produce("t", 100, 1000)
    metrics.ingest(0, _report(stats))
    stats.forget_topic("t")
    metrics.retain_topics(set())
    assert metrics.topics == {}
    stats.on_produce("t", 4, 40)
    metrics.ingest(0, _report(stats))
    assert metrics.topics["t"][:2] == [4, 40]
    # Even before the supervisor forgot it, a counter that went down is read as restarted.
    stats.forget_topic("t")
    stats.on_produce("t", 1, 10)
    metrics.ingest(0, _report(stats))
    assert metrics.topics["t"][:2] == [5, 50]
