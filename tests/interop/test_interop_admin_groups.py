"""Group administration as unmodified admin clients see it on a three-broker cluster:
ListGroups answered per coordinator (each group listed once), offset commits to unknown
topics or partitions refused, and a group that empties keeps its protocol type."""
from __future__ import annotations

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

from pybroker.testing import BrokerCluster, wait_until

pytestmark = pytest.mark.interop

TIMEOUT = 20.0
GROUPS = [f"fidelity-group-{i}" for i in range(6)]


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):


    with BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=3, start_timeout=40.0) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("fidelity", 2, 1)])["fidelity"].result(TIMEOUT)
        for group in GROUPS:
            offsets = [TopicPartition("fidelity", 0, 1), TopicPartition("fidelity", 1, 2)]

            admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group].result(TIMEOUT)
        yield cluster


def test_confluent_lists_each_group_once_across_brokers(cluster3):
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    ids = sorted(g.group_id for g in listed.valid)
    assert ids == sorted(GROUPS), f"errors: {listed.errors}"
    assert all(g.is_simple_consumer_group for g in listed.valid)


def test_kafka_python_lists_each_group_once_across_brokers(cluster3):
    admin = KafkaAdminClient(bootstrap_servers=cluster3.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        listed = admin.list_groups()
    finally:
        admin.close()
    ids = sorted(g["group_id"] for g in listed)
    assert ids == sorted(GROUPS)
    assert {g["protocol_type"] for g in listed} == {""}


def test_commit_to_unknown_topic_or_partition_is_refused(cluster3):

    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    for tp in (TopicPartition("no-such-topic", 0, 5), TopicPartition("fidelity", 7, 5)):
        future = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("fidelity-unknown", [tp])])
        with pytest.raises(KafkaException) as info:
            result = future["fidelity-unknown"].result(TIMEOUT)
            # librdkafka reports per-partition errors inside the result.
            for p in result.topic_partitions:
                if p.error is not None:
                    raise KafkaException(p.error)
        assert info.value.args[0].code() == 3, info.value  # UNKNOWN_TOPIC_OR_PARTITION


def test_group_that_empties_still_lists_as_a_consumer_group(cluster3):
    group = "fidelity-consumer"
    consumer = Consumer({"bootstrap.servers": cluster3.bootstrap, "group.id": group,
                         "session.timeout.ms": 6000, "auto.offset.reset": "earliest"})
    consumer.subscribe(["fidelity"])
    wait_until(lambda: consumer.poll(0.2) is None and consumer.assignment(), TIMEOUT, what="assignment")
    consumer.close()
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})

    def listed():
        groups = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT).valid
        return next((g for g in groups if g.group_id == group and str(g.state).endswith("EMPTY")), None)
    entry = wait_until(listed, TIMEOUT, what="the group listed Empty")
    assert not entry.is_simple_consumer_group
