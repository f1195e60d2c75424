"""Every Kafka 4 topic config, group configs (resource type 32) and dynamic broker configs
(a broker id, and the cluster-wide default "") from unmodified admin clients: validated,
described with Kafka's sources, applied where they mean something, and kept in the
metadata log across a restart."""
from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic
from kafka.admin import ConfigResource as KpResource, ConfigResourceType, KafkaAdminClient

from pybroker.client.admin import RESOURCE_BROKER, RESOURCE_GROUP, Admin
from pybroker.config import TOPIC_CONFIGS
from pybroker.errors import InvalidConfig
from pybroker.testing import wait_until

pytestmark = pytest.mark.interop

TIMEOUT = 15.0
SET = AlterConfigOpType.SET


def _admin(cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap})


def _describe(admin: AdminClient, kind, name: str) -> dict:
    resource = ConfigResource(kind, name)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def _alter(admin: AdminClient, kind, name: str, *entries: ConfigEntry):
    resource = ConfigResource(kind, name, incremental_configs=list(entries))
    return admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)


def _error_code(call) -> int:
    with pytest.raises(KafkaException) as info:
        call()
    return info.value.args[0].code()


def test_every_kafka_topic_config_is_accepted_and_described(pybroker_cluster, topic):
    admin = _admin(pybroker_cluster)
    configs = {"file.delete.delay.ms": "1000", "preallocate": "true", "segment.jitter.ms": "5",
               "compression.zstd.level": "7", "leader.replication.throttled.replicas": "0:0",
               "message.timestamp.after.max.ms": "86400000", "local.retention.ms": "-2"}
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(TIMEOUT)
    described = _describe(admin, ConfigResource.Type.TOPIC, topic)
    assert set(TOPIC_CONFIGS) <= set(described)
    for name, value in configs.items():
        assert (described[name].value, described[name].source) == (value, ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert described["remote.storage.enable"].value == "false"
    assert described["remote.storage.enable"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["file.delete.delay.ms"].is_default is False


@pytest.mark.parametrize("name,value", [("compression.lz4.level", "99"), ("file.delete.delay.ms", "-1"),
                                        ("leader.replication.throttled.replicas", "zero"),
                                        ("remote.storage.enable", "true"), ("no.such.config", "1")])
def test_bad_topic_config_values_are_refused(pybroker_cluster, topic, name, value):
    admin = _admin(pybroker_cluster)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    assert _error_code(lambda: _alter(admin, ConfigResource.Type.TOPIC, topic,
                                      ConfigEntry(name, value, incremental_operation=SET))) == \
        KafkaError.INVALID_CONFIG


def test_group_configs_described_altered_and_validated(pybroker_cluster):
    client = KafkaAdminClient(bootstrap_servers=pybroker_cluster.bootstrap, request_timeout_ms=10_000)
    resource = KpResource(ConfigResourceType.GROUP, "grp")
    try:
        def described() -> dict:
            configs = client.describe_configs([resource], config_filter="all")["group"]["grp"]
            return {name: (c["value"], c["config_source"]) for name, c in configs.items()}
        before = described()
        assert before["consumer.session.timeout.ms"] == ("45000", ConfigSource.DEFAULT_CONFIG.name)
        assert before["share.record.lock.duration.ms"] == ("30000", ConfigSource.DEFAULT_CONFIG.name)
        client.alter_configs([KpResource(ConfigResourceType.GROUP, "grp",
                                         configs={"consumer.session.timeout.ms": "60000"})], incremental=True)
        assert described()["consumer.session.timeout.ms"] == ("60000", "DYNAMIC_GROUP_CONFIG")
        with Admin(pybroker_cluster.bootstrap) as own, pytest.raises(InvalidConfig):
            own.alter_resource_configs(RESOURCE_GROUP, "grp", set={"share.record.lock.duration.ms": "5"})
        assert described()["share.record.lock.duration.ms"][0] == "30000"
    finally:
        client.close()


def test_dynamic_broker_defaults_apply_to_topics_and_survive_restart(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(brokers=2, start_timeout=40.0)
    admin = _admin(cluster)
    admin.create_topics([NewTopic(topic, 2, 2)])[topic].result(TIMEOUT)
    pinned = topic + "-pinned"
    admin.create_topics([NewTopic(pinned, 1, 1, config={"retention.ms": "120000"})])[pinned].result(TIMEOUT)

    # librdkafka and kafka-python cannot name the cluster-default resource "": pybroker's
    # own admin client sends what the Java AdminClient and kafka-configs --entity-default do.
    with Admin(cluster.bootstrap) as own:
        own.alter_resource_configs(RESOURCE_BROKER, "", set={"log.retention.ms": "3600000", "num.io.threads": "4"})
    _alter(admin, ConfigResource.Type.BROKER, "1",
           ConfigEntry("log.cleaner.backoff.ms", "2000", incremental_operation=SET))

    def check():
        described = _describe(admin, ConfigResource.Type.TOPIC, topic)["retention.ms"]
        assert (described.value, described.source) == ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
        kept = _describe(admin, ConfigResource.Type.TOPIC, pinned)["retention.ms"]
        assert (kept.value, kept.source) == ("120000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
        with Admin(cluster.bootstrap) as own:
            defaults = own.describe_resource_configs(RESOURCE_BROKER, "")
        assert {k: (v.value, v.source) for k, v in defaults.items()} == {
            "log.retention.ms": ("3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
            "num.io.threads": ("4", "DYNAMIC_DEFAULT_BROKER_CONFIG")}
        one = _describe(admin, ConfigResource.Type.BROKER, "1")
        assert (one["log.cleaner.backoff.ms"].value, one["log.cleaner.backoff.ms"].source) == \
            ("2000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        assert (one["num.io.threads"].value, one["num.io.threads"].source) == \
            ("4", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
        assert one["log.retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        zero = _describe(admin, ConfigResource.Type.BROKER, "0")
        assert zero["log.cleaner.backoff.ms"].source == ConfigSource.DEFAULT_CONFIG.value
        assert zero["broker.id"].is_read_only
        return True
    wait_until(_passes(check), TIMEOUT, what="dynamic configs described")

    cluster.restart()
    admin = _admin(cluster)
    wait_until(_passes(check), 30.0, what="dynamic configs after a restart")

    with Admin(cluster.bootstrap) as own:
        own.alter_resource_configs(RESOURCE_BROKER, "", delete=["log.retention.ms"])
    wait_until(lambda: _describe(admin, ConfigResource.Type.TOPIC, topic)["retention.ms"].source ==
               ConfigSource.DEFAULT_CONFIG.value, TIMEOUT, what="the default back")


def _passes(check):
    def attempt():
        try:
            return check()
        except (AssertionError, KafkaException):
            return False
    return attempt


def test_static_broker_settings_cannot_change(pybroker_cluster):
    admin = _admin(pybroker_cluster)
    code = _error_code(lambda: _alter(admin, ConfigResource.Type.BROKER, "0",
                                      ConfigEntry("broker.id", "7", incremental_operation=SET)))
    assert code == KafkaError.INVALID_REQUEST
    code = _error_code(lambda: _alter(admin, ConfigResource.Type.BROKER, "0",
                                      ConfigEntry("num.io.threads", "0", incremental_operation=SET)))
    assert code == KafkaError.INVALID_CONFIG
    with Admin(pybroker_cluster.bootstrap) as own, pytest.raises(InvalidConfig):
        own.alter_resource_configs(RESOURCE_BROKER, "", set={"log.retention.ms": "soon"})


def test_a_default_named_in_other_units_keeps_its_own_value(pybroker_cluster, topic):
    """Kafka lists retention.ms' built-in default as log.retention.hours=168 among its
    synonyms; the config's value stays in milliseconds, for the topic and the broker."""
    admin = _admin(pybroker_cluster)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entry = admin.describe_configs([resource])[resource].result(TIMEOUT)["retention.ms"]
    assert (entry.value, entry.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)
    assert [(s.name, s.value) for s in entry.synonyms.values()] == [("log.retention.hours", "168")]
    broker = _describe(admin, ConfigResource.Type.BROKER, "0")["log.retention.ms"]
    assert broker.value == "604800000"
