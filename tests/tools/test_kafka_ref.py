"""tools/kafka_ref.py starts a real Apache Kafka that real clients use, and stops it by pid.

Skipped where java or mvn is missing. The first run downloads Kafka's jars (~100 MB)
into the cache (``~/.cache/pybroker-kafka-ref``); later runs start from the cache."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools import kafka_ref  # noqa: E402

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(kafka_ref.available() is not None, reason=f"kafka_ref needs {kafka_ref.available()}"),
    pytest.mark.timeout(400),
]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_single_node_lists_created_topic_and_stops_by_pid(tmp_path):
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"ref-{uuid.uuid4().hex[:8]}"
    with kafka_ref.KafkaCluster(nodes=1, data_dir=str(tmp_path / "kafka")) as kafka:
        assert kafka.bootstrap.startswith("127.0.0.1:")
        pids = list(kafka.pids)
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(60)
        topics = admin.list_topics(timeout=30).topics
        assert topic in topics and len(topics[topic].partitions) == 3
    assert not any(_pid_alive(pid) for pid in pids)
    assert not list((tmp_path / "kafka").glob("node-*.pid"))


def test_sasl_listener_refuses_a_wrong_password_and_serves_the_right_one(tmp_path):
    from confluent_kafka.admin import AdminClient

    with kafka_ref.KafkaCluster(nodes=1, sasl_users={"admin": "admin-secret"}, acl=True) as kafka:
        def admin(password):
            return AdminClient({"bootstrap.servers": kafka.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                                "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "admin",
                                "sasl.password": password})

        assert admin("admin-secret").list_topics(timeout=30).brokers
        with pytest.raises(Exception):
            admin("wrong").list_topics(timeout=5)


def test_node_properties_follow_the_node_count():
    one = kafka_ref.node_properties(0, 1, "127.0.0.1", [1], [2], [3], "/d", None, False, {})
    assert one["transaction.state.log.replication.factor"] == "1"
    assert one["share.coordinator.state.topic.min.isr"] == "1"
    three = kafka_ref.node_properties(2, 3, "127.0.0.1", [1, 2, 3], [4, 5, 6], [7, 8, 9], "/d", None, False,
                                      {"num.partitions": "4"})
    assert three["controller.quorum.voters"] == "0@127.0.0.1:7,1@127.0.0.1:8,2@127.0.0.1:9"
    assert three["listeners"].startswith("CLIENT://127.0.0.1:3,")
    assert three["offsets.topic.replication.factor"] == "3" and three["num.partitions"] == "4"
