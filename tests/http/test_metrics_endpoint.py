"""/metrics of a real cluster: what real clients did shows up under Kafka's JMX-exporter
names, aggregated by the supervisor from the brokers' reports."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from confluent_kafka import Producer

from pybroker.cli.status import fetch_status
from pybroker.testing import wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.interop]

LAG_MS = 1000


def _value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_count_produced_and_fetched_messages_and_group_lag(pybroker_cluster_factory, http, topic):
    cluster = pybroker_cluster_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"])
    assert cluster.console_url.startswith("http://127.0.0.1:")
    http.produce(cluster.bootstrap, topic, 1000)
    http.consume(cluster.bootstrap, topic, "billing", 400).close()

    def scraped():
        samples = http.scrape(cluster.console_url)
        return samples if _value(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 1000 \
            and _value(samples, "kafka_consumergroup_lag", consumergroup="billing", group="billing",
                       topic=topic, partition="0") is not None else None

    samples = wait_until(scraped, 15, "the brokers' reports to reach /metrics")
    assert _value(samples, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) > 1000 * 5
    assert _value(samples, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) > 400 * 5
    assert _value(samples, "kafka_network_requestmetrics_requests_total", request="Produce") >= 1
    assert _value(samples, "kafka_network_requestmetrics_requests_total", request="FetchConsumer") >= 1
    count = _value(samples, "kafka_network_requestmetrics_totaltimems_count", request="Produce")
    assert count == _value(samples, "kafka_network_requestmetrics_totaltimems_bucket", request="Produce", le="+Inf")
    assert _value(samples, "kafka_consumergroup_current_offset", consumergroup="billing", group="billing",
                  topic=topic, partition="0") == 400
    assert _value(samples, "kafka_consumergroup_lag", consumergroup="billing", group="billing",
                  topic=topic, partition="0") == 600
    assert _value(samples, "kafka_topic_partition_current_offset", topic=topic, partition="0") == 1000
    assert _value(samples, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert _value(samples, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert _value(samples, "kafka_server_replicamanager_leadercount", broker="0") >= 1
    assert _value(samples, "kafka_brokers") == 1


def test_isr_shrink_and_expand_of_a_stopped_follower(pybroker_cluster_factory, http, topic):
    cluster = pybroker_cluster_factory(brokers=2, start_timeout=60, extra_args=[
        "--replication-factor", "2", "--broker-config", f"replica_lag_time_max_ms={LAG_MS}",
        "--session-timeout-ms", "120000"])
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    producer.produce(topic, b"first")
    assert producer.flush(20) == 0
    status = wait_until(lambda: _full_isr(cluster, topic), 20, "both replicas in the ISR")
    leader = next(p["leader"] for p in status["partitions"] if p["topic"] == topic)
    follower = next(b for b in status["brokers"] if b["id"] != leader)
    os.kill(follower["pid"], signal.SIGSTOP)
    try:
        samples = wait_until(lambda: (s := http.scrape(cluster.console_url)) and
                             _value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 1 and
                             (_value(s, "kafka_server_replicamanager_isrshrinks_total") or 0) >= 1 and s,
                             LAG_MS / 1000 + 15, "the ISR shrink in /metrics")
        assert _value(samples, "kafka_topic_partition_under_replicated_partition", topic=topic, partition="0") == 1
        assert _value(samples, "kafka_topic_partition_in_sync_replica", topic=topic, partition="0") == 1
    finally:
        os.kill(follower["pid"], signal.SIGCONT)
    wait_until(lambda: (s := http.scrape(cluster.console_url)) and
               _value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0 and
               (_value(s, "kafka_server_replicamanager_isrexpands_total") or 0) >= 1,
               20, "the ISR expand in /metrics")


def _full_isr(cluster, topic):
    import asyncio

    status = asyncio.run(fetch_status(str(cluster.data_dir)))
    parts = [p for p in status["partitions"] if p["topic"] == topic]
    return status if parts and all(len(p["isr"]) == 2 for p in parts) else None


@pytest.mark.parametrize("mode", [[], ["--daemon"]], ids=["foreground", "daemon"])
def test_taken_http_port_fails_up_at_once(tmp_path, mode):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pybroker.cli.main", "up", *mode, "--brokers", "1", "--port", "0",
             "--http-port", str(port), "--data", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"cannot serve the console on 127.0.0.1:{port}" in result.stderr
    assert "--http-port" in result.stderr
    assert not (tmp_path / "data" / "logs" / "broker-0.log").exists()
    assert not (tmp_path / "data" / "run" / "supervisor.pid").exists()


def test_daemon_prints_the_console_line_right_after_bootstrap(tmp_path, http):
    data = tmp_path / "data"
    cli = [sys.executable, "-m", "pybroker.cli.main"]
    started = subprocess.run([*cli, "up", "--daemon", "--brokers", "1", "--port", "0", "--http-port", "0",
                              "--data", str(data)], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        lines = started.stdout.splitlines()
        assert lines[0].startswith("bootstrap: 127.0.0.1:")
        assert lines[1].startswith("console: http://127.0.0.1:") and lines[1].endswith("/")
        samples = http.scrape(lines[1].split(": ", 1)[1])
        assert _value(samples, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    finally:
        subprocess.run([*cli, "down", "--data", str(data)], capture_output=True, timeout=60)
