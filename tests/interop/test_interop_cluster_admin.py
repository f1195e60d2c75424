"""The cluster APIs Kafka 4's tools and UIs ask first, from unmodified admin clients on a
three-broker cluster: DescribeCluster (60), DescribeTopicPartitions (75, cursor paging),
DescribeLogDirs (35), ElectLeaders (43), ApiVersions' finalized features, and client
telemetry (71/72)."""
from __future__ import annotations

import socket
import struct
import uuid

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

from pybroker.protocol import api
from pybroker.testing import BrokerCluster, wait_until

pytestmark = pytest.mark.interop

TIMEOUT = 20.0


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    with BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=3, start_timeout=40.0) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        for name, partitions in (("cadmin-a", 5), ("cadmin-b", 2)):
            admin.create_topics([NewTopic(name, partitions, 3)])[name].result(TIMEOUT)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        for i in range(50):
            producer.produce("cadmin-a", b"x" * 100, partition=i % 5)
        assert producer.flush(TIMEOUT) == 0
        yield cluster


@pytest.fixture
def kp_admin(cluster3):
    admin = KafkaAdminClient(bootstrap_servers=cluster3.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    yield admin
    admin.close()


def test_confluent_describe_cluster(cluster3):
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    described = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert sorted(n.id for n in described.nodes) == [0, 1, 2]
    assert described.cluster_id and described.controller.id in (0, 1, 2)
    ports = {n.id: n.port for n in described.nodes}
    assert sorted(ports.values()) == sorted(cluster3.ports)


def test_kafka_python_describe_cluster(kp_admin, cluster3):
    described = kp_admin.describe_cluster()
    assert sorted(b["broker_id"] for b in described["brokers"]) == [0, 1, 2]
    assert described["controller_id"] in (0, 1, 2) and described["cluster_id"]


def test_describe_topic_partitions_pages_with_a_cursor(kp_admin):
    first = kp_admin.describe_topic_partitions(["cadmin-b", "cadmin-a"], response_partition_limit=3)
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in first["topics"]] == \
        [("cadmin-a", [0, 1, 2])]
    assert first["next_cursor"] == {"topic_name": "cadmin-a", "partition_index": 3}
    second = kp_admin.describe_topic_partitions(["cadmin-b", "cadmin-a"], response_partition_limit=3,
                                                cursor=first["next_cursor"])
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in second["topics"]] == \
        [("cadmin-a", [3, 4]), ("cadmin-b", [0])]
    assert second["next_cursor"] == {"topic_name": "cadmin-b", "partition_index": 1}
    partition = second["topics"][0]["partitions"][0]
    assert len(partition["replica_nodes"]) == 3 and partition["leader_id"] in partition["isr_nodes"]
    # kafka-python shows an empty list as None; the wire carries [] (checked below).
    assert not partition["eligible_leader_replicas"] and not partition["last_known_elr"]
    missing = kp_admin.describe_topic_partitions(["no-such-topic"])
    assert missing["topics"][0]["error_code"] == 3


def test_describe_log_dirs_reports_partition_sizes_on_every_broker(kp_admin, cluster3):
    described = kp_admin.describe_log_dirs()
    sizes = {}
    for broker_id, dirs in _by_broker(described).items():
        for log_dir in dirs:
            assert log_dir["error_code"] == 0 and log_dir["log_dir"].startswith(str(cluster3.data_dir))
            assert log_dir["total_bytes"] > 0 and 0 <= log_dir["usable_bytes"] <= log_dir["total_bytes"]
            for topic in log_dir["topics"]:
                for p in topic["partitions"]:
                    sizes[(broker_id, topic["name"], p["partition_index"])] = p["partition_size"]
    # Replication factor 3: every broker hosts every partition, and has replicated the records.
    assert {(t, i) for _, t, i in sizes} >= {("cadmin-a", i) for i in range(5)} | {("cadmin-b", i) for i in range(2)}
    wait_until(lambda: all(s > 0 for (b, t, i), s in _sizes(kp_admin).items() if t == "cadmin-a"), TIMEOUT,
               what="replicated partitions with bytes on every broker")


def _sizes(admin) -> dict:
    out = {}
    for broker_id, dirs in _by_broker(admin.describe_log_dirs()).items():
        for log_dir in dirs:
            for topic in log_dir["topics"]:
                for p in topic["partitions"]:
                    out[(broker_id, topic["name"], p["partition_index"])] = p["partition_size"]
    return out


def _by_broker(described) -> dict:
    """kafka-python answers [{broker, log_dirs}], one per broker."""
    return {entry["broker"]: entry["log_dirs"] for entry in described}


def test_elect_preferred_leaders(cluster3):
    from confluent_kafka import ElectionType

    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    partitions = [TopicPartition("cadmin-b", 0), TopicPartition("cadmin-b", 1), TopicPartition("cadmin-b", 9)]
    result = admin.elect_leaders(ElectionType.PREFERRED, partitions).result(TIMEOUT)
    codes = {(tp.topic, tp.partition): (err.code() if err is not None else 0) for tp, err in result.items()}
    # Leaders start on their preferred replica: nothing to do; an unknown partition is named.
    assert codes == {("cadmin-b", 0): 84, ("cadmin-b", 1): 84, ("cadmin-b", 9): 3}


def test_kafka_python_elect_unclean_on_healthy_partitions_is_not_needed(kp_admin):
    from kafka.protocol.admin.topics import ElectionType

    result = kp_admin.elect_leaders(ElectionType.UNCLEAN, {"cadmin-a": [0]}, raise_errors=False)
    assert _election_codes(result) == {("cadmin-a", 0): 84}


def _election_codes(result) -> dict:
    out = {}
    for topic in result.replica_election_results:
        for p in topic.partition_result:
            out[(topic.topic, p.partition_id)] = p.error_code
    return out


def test_api_versions_finalized_features(kp_admin):
    features = kp_admin.describe_features()
    assert features["metadata.version"]["finalized"] == (25, 25)
    assert features["metadata.version"]["supported"] == (7, 25)
    # KIP-848 and share groups are on (level 1); transactions use the classic protocol
    # (level 0: supported at 0..0, never finalized).
    for name in ("group.version", "share.version"):
        assert features[name]["supported"] == (0, 1) and features[name]["finalized"] == (1, 1)
    assert features["transaction.version"] == {"supported": (0, 0)}


def _caller(cluster, sock):
    def call(key, body):
        sock.sendall(api.encode_request(key, 0, 7, "cluster-admin-test", body))
        size = struct.unpack(">i", _recv(sock, 4))[0]
        return api.decode_response(key, 0, _recv(sock, size))[1]
    return call


def _connect(cluster) -> socket.socket:
    host, port = cluster.bootstrap.split(",")[0].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=TIMEOUT)


def test_describe_topic_partitions_sends_empty_elr_lists(cluster3):
    with _connect(cluster3) as sock:
        answer = _caller(cluster3, sock)(api.DESCRIBE_TOPIC_PARTITIONS, {"topics": [{"name": "cadmin-b"}]})
    partition = answer["topics"][0]["partitions"][0]
    assert partition["eligible_leader_replicas"] == [] and partition["last_known_elr"] == []
    assert answer["next_cursor"] is None


def test_telemetry_subscription_is_empty_and_pushes_are_checked(cluster3):
    with _connect(cluster3) as sock:
        call = _caller(cluster3, sock)
        first = call(api.GET_TELEMETRY_SUBSCRIPTIONS, {"client_instance_id": uuid.UUID(int=0)})
        assert first["error_code"] == 0 and first["requested_metrics"] == []
        assert str(first["client_instance_id"]) != str(uuid.UUID(int=0))
        again = call(api.GET_TELEMETRY_SUBSCRIPTIONS, {"client_instance_id": first["client_instance_id"]})
        assert str(again["client_instance_id"]) == str(first["client_instance_id"])
        assert again["subscription_id"] == first["subscription_id"]
        push = {"client_instance_id": first["client_instance_id"], "subscription_id": first["subscription_id"],
                "terminating": True, "compression_type": 0, "metrics": b""}
        assert call(api.PUSH_TELEMETRY, push)["error_code"] == 0
        assert call(api.PUSH_TELEMETRY, {**push, "subscription_id": first["subscription_id"] + 1})["error_code"] == 117


def _recv(sock, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("EOF")
        out += chunk
    return out
