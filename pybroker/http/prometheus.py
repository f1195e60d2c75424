"""``GET /metrics``: the cluster in Prometheus text, named as Kafka's JMX metrics come out
of the Prometheus JMX exporter (its standard Kafka rules: ``kafka.server<type=
BrokerTopicMetrics, name=MessagesInPerSec, topic=t><>Count`` becomes
``kafka_server_brokertopicmetrics_messagesin_total{topic="t"}``) and, for consumer lag and
partition offsets, as kafka_exporter names them, so existing dashboards work.

One endpoint serves the whole cluster (Kafka has one per broker): counters are cluster
totals of what the brokers reported (``aggregate.py``); per-broker gauges carry a
``broker`` label. Values are read on scrape from the supervisor's state (a custom
Collector); nothing here is computed per record.

Runs on the supervisor's event loop thread.
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

from pybroker.broker.stats import BYTES_IN, BYTES_OUT, MESSAGES_IN, REPLICATION_BYTES_IN, REPLICATION_BYTES_OUT
from pybroker.http import view

TOPIC_COUNTERS = (
    ("messagesin", MESSAGES_IN, "Messages appended by leaders (MessagesInPerSec)"),
    ("bytesin", BYTES_IN, "Bytes produced by clients (BytesInPerSec)"),
    ("bytesout", BYTES_OUT, "Bytes fetched by consumers (BytesOutPerSec)"),
    ("replicationbytesin", REPLICATION_BYTES_IN, "Bytes appended by followers (ReplicationBytesInPerSec)"),
    ("replicationbytesout", REPLICATION_BYTES_OUT, "Bytes fetched by followers (ReplicationBytesOutPerSec)"),
)


class ClusterCollector:
    def __init__(self, supervisor, metrics):
        self.supervisor = supervisor
        self.metrics = metrics

    def collect(self):
        sup, m = self.supervisor, self.metrics
        live_topics = set(sup.controller.topics)
        for name, index, doc in TOPIC_COUNTERS:
            family = CounterMetricFamily(f"kafka_server_brokertopicmetrics_{name}", doc, labels=["topic"])
            for topic, row in sorted(m.topics.items()):
                if topic in live_topics:
                    family.add_metric([topic], row[index])
            yield family

        requests = CounterMetricFamily("kafka_network_requestmetrics_requests",
                                       "Requests handled, per API (RequestsPerSec)", labels=["request"])
        latency = HistogramMetricFamily("kafka_network_requestmetrics_totaltimems",
                                        "Time from a request's arrival to its response, in ms (TotalTimeMs)",
                                        labels=["request"])
        for api, row in sorted(m.requests.items()):
            requests.add_metric([api], row[0])
            latency.add_metric([api], buckets=m.cumulative_buckets(row), sum_value=row[1])
        yield requests
        yield latency

        yield CounterMetricFamily("kafka_server_replicamanager_isrshrinks",
                                  "ISR shrinks proposed by leaders and accepted (IsrShrinksPerSec)",
                                  value=m.isr_shrinks)
        yield CounterMetricFamily("kafka_server_replicamanager_isrexpands",
                                  "ISR expansions proposed by leaders and accepted (IsrExpandsPerSec)",
                                  value=m.isr_expands)

        states = list(sup.controller.partitions.values())
        yield GaugeMetricFamily("kafka_server_replicamanager_underreplicatedpartitions",
                                "Partitions whose ISR is smaller than their replica set",
                                value=sum(1 for s in states if len(s.isr) < len(s.replicas)))
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_offlinepartitionscount",
                                "Partitions without a leader", value=sum(1 for s in states if s.leader < 0))
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_activecontrollercount",
                                "Active controllers (the supervisor)", value=1)
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_globaltopiccount", "Topics",
                                value=len(sup.controller.topics))
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions",
                                value=len(states))

        brokers = view.brokers(sup)
        leaders = GaugeMetricFamily("kafka_server_replicamanager_leadercount", "Partitions led by the broker",
                                    labels=["broker"])
        replicas = GaugeMetricFamily("kafka_server_replicamanager_partitioncount",
                                     "Partition replicas on the broker", labels=["broker"])
        up = GaugeMetricFamily("pybroker_broker_up", "1 if the broker is registered and not fenced",
                               labels=["broker"])
        restarts = CounterMetricFamily("pybroker_broker_restarts", "Times the supervisor restarted the broker",
                                       labels=["broker"])
        for b in brokers:
            label = [str(b["id"])]
            leaders.add_metric(label, b["leaders"])
            replicas.add_metric(label, b["replicas"])
            up.add_metric(label, 1 if b["state"] == "up" else 0)
            restarts.add_metric(label, b["restarts"])
        yield from (leaders, replicas, up, restarts)
        yield from _fetch_session_metrics(sup)
        yield GaugeMetricFamily("kafka_brokers", "Brokers registered and not fenced",
                                value=sum(1 for b in brokers if b["state"] == "up"))

        positions = sup.positions()
        current = GaugeMetricFamily("kafka_topic_partition_current_offset", "High watermark of the partition",
                                    labels=["topic", "partition"])
        oldest = GaugeMetricFamily("kafka_topic_partition_oldest_offset", "Log start offset of the partition",
                                   labels=["topic", "partition"])
        in_sync = GaugeMetricFamily("kafka_topic_partition_in_sync_replica", "ISR size of the partition",
                                    labels=["topic", "partition"])
        under = GaugeMetricFamily("kafka_topic_partition_under_replicated_partition",
                                  "1 if the partition is under-replicated", labels=["topic", "partition"])
        for s in sorted(states, key=lambda s: s.key):
            label = [s.topic, str(s.partition)]
            pos = positions.get(s.key)
            if pos is not None:
                current.add_metric(label, pos["high_watermark"])
                oldest.add_metric(label, pos["log_start_offset"])
            in_sync.add_metric(label, len(s.isr))
            under.add_metric(label, 1 if len(s.isr) < len(s.replicas) else 0)
        yield from (current, oldest, in_sync, under)

        # kafka_exporter's label is ``consumergroup``; ``group`` carries the same value.
        labels = ["consumergroup", "group", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Committed offset behind the high watermark",
                                labels=labels)
        committed = GaugeMetricFamily("kafka_consumergroup_current_offset", "Committed offset of the group",
                                      labels=labels)
        members = GaugeMetricFamily("kafka_consumergroup_members", "Members of the group",
                                    labels=["consumergroup", "group"])
        for g in view.groups(sup, positions):
            members.add_metric([g["group"], g["group"]], len(g["members"]))
            for o in g["offsets"]:
                label = [g["group"], g["group"], o["topic"], str(o["partition"])]
                if o["current_offset"] is not None:
                    committed.add_metric(label, o["current_offset"])
                if o["lag"] is not None:
                    lag.add_metric(label, o["lag"])
        yield from (lag, committed, members)


def registry(supervisor, metrics) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ClusterCollector(supervisor, metrics))
    return reg


def _fetch_session_metrics(sup):
    """Kafka's FetchSessionCache metrics, per broker, from its last report."""
    sessions = GaugeMetricFamily("kafka_server_fetchsessioncache_numincrementalfetchsessions",
                                 "Incremental fetch sessions the broker holds", labels=["broker"])
    partitions = GaugeMetricFamily("kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
                                   "Partitions in the broker's incremental fetch sessions", labels=["broker"])
    evictions = CounterMetricFamily("kafka_server_fetchsessioncache_incrementalfetchsessionevictions",
                                    "Fetch sessions evicted to make room (IncrementalFetchSessionEvictionsPerSec)",
                                    labels=["broker"])
    for node_id, doc in sorted(sup.reports.items()):
        row = doc.get("fetch_sessions")
        if row is None:
            continue
        label = [str(node_id)]
        sessions.add_metric(label, row[0])
        partitions.add_metric(label, row[1])
        evictions.add_metric(label, row[2])
    yield from (sessions, partitions, evictions)
