"""Changing topic configs at runtime (AlterConfigs 33, IncrementalAlterConfigs 44) from
unmodified clients against real broker processes: DescribeConfigs shows the change, the
logs obey it without a restart, and the controller keeps it across restarts."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)

from pybroker.client.admin import Admin
from pybroker.testing import wait_until

pytestmark = pytest.mark.interop

TIMEOUT = 15.0
DEFAULT_RETENTION_MS = str(7 * 24 * 3600 * 1000)


def _admin(cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap})


def _create(admin: AdminClient, topic: str, partitions: int = 1, replication: int = 1, **configs) -> None:
    futures = admin.create_topics([NewTopic(topic, partitions, replication, config=configs)])
    futures[topic].result(TIMEOUT)


def _describe(admin: AdminClient, topic: str) -> dict:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def _incremental(admin: AdminClient, topic: str, entries: list[ConfigEntry], validate_only: bool = False):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    return admin.incremental_alter_configs([resource], validate_only=validate_only)[resource].result(TIMEOUT)


def _error_code(call) -> int:
    with pytest.raises(KafkaException) as info:
        call()
    return info.value.args[0].code()


def test_confluent_incremental_set_delete_append_and_describe_sources(pybroker_cluster, topic):
    admin = _admin(pybroker_cluster)
    _create(admin, topic, **{"retention.ms": "60000", "max.message.bytes": "50000"})
    _incremental(admin, topic, [
        ConfigEntry("retention.bytes", "123456", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    configs = _describe(admin, topic)
    assert configs["retention.bytes"].value == "123456"
    assert configs["retention.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].value == DEFAULT_RETENTION_MS
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["max.message.bytes"].value == "50000"  # untouched overrides stay
    assert configs["cleanup.policy"].value == "delete,compact"


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_confluent_alter_configs_replaces_the_whole_set(pybroker_cluster, topic):
    admin = _admin(pybroker_cluster)
    _create(admin, topic, **{"retention.ms": "60000"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"segment.bytes": "1048576"})
    admin.alter_configs([resource])[resource].result(TIMEOUT)
    configs = _describe(admin, topic)
    assert configs["segment.bytes"].value == "1048576"
    assert configs["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].value == DEFAULT_RETENTION_MS
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value


def test_validate_only_changes_nothing_but_still_validates(pybroker_cluster, topic):
    admin = _admin(pybroker_cluster)
    _create(admin, topic)
    _incremental(admin, topic, [ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)],
                 validate_only=True)
    assert _describe(admin, topic)["retention.ms"].value == DEFAULT_RETENTION_MS
    code = _error_code(lambda: _incremental(
        admin, topic, [ConfigEntry("retention.ms", "never", incremental_operation=AlterConfigOpType.SET)],
        validate_only=True))
    assert code == KafkaError.INVALID_CONFIG


@pytest.mark.parametrize("name, value, op, expected", [
    ("no.such.config", "1", AlterConfigOpType.SET, KafkaError.INVALID_CONFIG),
    ("retention.ms", "tomorrow", AlterConfigOpType.SET, KafkaError.INVALID_CONFIG),
    ("segment.bytes", "1", AlterConfigOpType.SET, KafkaError.INVALID_CONFIG),
    ("retention.ms", "5", AlterConfigOpType.APPEND, KafkaError.INVALID_CONFIG),
])
def test_invalid_changes_are_refused_per_resource(pybroker_cluster, topic, name, value, op, expected):
    admin = _admin(pybroker_cluster)
    _create(admin, topic)
    code = _error_code(lambda: _incremental(admin, topic, [ConfigEntry(name, value, incremental_operation=op)]))
    assert code == expected
    assert _describe(admin, topic)["retention.ms"].value == DEFAULT_RETENTION_MS


def test_unknown_topic_and_per_broker_topic_defaults_are_refused(pybroker_cluster, topic):
    admin = _admin(pybroker_cluster)
    code = _error_code(lambda: _incremental(
        admin, topic + "-missing", [ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)]))
    assert code == KafkaError.UNKNOWN_TOPIC_OR_PART
    broker = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=[
        ConfigEntry("log.retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([broker])[broker].result(TIMEOUT)
    assert info.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert "cluster-wide" in info.value.args[0].str()


def test_kafka_python_alter_configs_both_apis(pybroker_cluster, topic):
    from kafka.admin import ConfigResource as KpResource, ConfigResourceType, KafkaAdminClient

    _create(_admin(pybroker_cluster), topic, **{"retention.ms": "60000"})
    client = KafkaAdminClient(bootstrap_servers=pybroker_cluster.bootstrap, request_timeout_ms=10_000)
    try:
        client.alter_configs([KpResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "4242"})],
                             incremental=True)
        with Admin(pybroker_cluster.bootstrap) as admin:
            configs = admin.describe_configs(topic)
        assert configs["retention.bytes"].value == "4242" and configs["retention.ms"].value == "60000"
        # AlterConfigs replaces the whole set; kafka-python reads the modified keys first
        # and sends them along, so they survive.
        client.alter_configs([KpResource(ConfigResourceType.TOPIC, topic, configs={"segment.ms": "3600000"})],
                             incremental=False)
        with Admin(pybroker_cluster.bootstrap) as admin:
            configs = admin.describe_configs(topic)
        assert configs["segment.ms"].value == "3600000" and configs["segment.ms"].source == "DYNAMIC_TOPIC_CONFIG"
        assert configs["retention.bytes"].value == "4242" and configs["retention.ms"].value == "60000"
    finally:
        client.close()


def test_pybroker_admin_alter_topic_configs(pybroker_cluster, topic):
    from pybroker import errors

    from pybroker.protocol import api

    with Admin(pybroker_cluster.bootstrap) as admin:
        conn = admin.client.any_connection()
        assert conn.version_for(api.ALTER_CONFIGS) == 2 and conn.version_for(api.INCREMENTAL_ALTER_CONFIGS) == 1
        admin.create_topics([_new_topic(topic, {"retention.ms": "60000"})])
        admin.alter_topic_configs(topic, set={"retention.bytes": "1000"}, delete=["retention.ms"])
        configs = admin.describe_configs(topic)
        assert configs["retention.bytes"].value == "1000" and configs["retention.ms"].is_default
        admin.alter_topic_configs(topic, set={"retention.bytes": "5"}, validate_only=True)
        assert admin.describe_configs(topic)["retention.bytes"].value == "1000"
        with pytest.raises(errors.InvalidConfig, match="Unknown topic config name: bogus"):
            admin.alter_topic_configs(topic, set={"bogus": "1"})
        with pytest.raises(errors.UnknownTopicOrPartition):
            admin.alter_topic_configs(topic + "-missing", set={"retention.bytes": "1"})


def _new_topic(name: str, configs: dict):
    from pybroker.client.admin import NewTopic as PbNewTopic

    return PbNewTopic(name, 1, 1, configs)


# -- the change takes effect in the logs, without a restart ----------------------------


def _segment_files(cluster, topic: str) -> list[Path]:
    return sorted(Path(cluster.data_dir).glob(f"broker-*/{topic}-0/*.log"))


def _produce(cluster, topic: str, count: int, size: int = 200) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 0, "batch.num.messages": 1,
                         "message.timeout.ms": int(TIMEOUT * 1000)})
    failures = []
    for i in range(count):
        producer.produce(topic, b"x" * size, on_delivery=lambda err, _msg: err and failures.append(err))
        producer.flush(TIMEOUT)  # one batch per message: segments fill predictably
    assert producer.flush(TIMEOUT) == 0 and not failures


def _low_watermark(cluster, topic: str) -> int:
    with Admin(cluster.bootstrap) as admin:
        return admin.list_offsets({(topic, 0): -2})[(topic, 0)][0]


def test_lowered_segment_bytes_and_retention_take_effect_at_once(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(extra_args=["--broker-config", "log_retention_check_interval_ms=200"])
    admin = _admin(cluster)
    _create(admin, topic)
    _produce(cluster, topic, 20)
    assert len(_segment_files(cluster, topic)) == 1  # 1 GiB segments: nothing rolled
    _incremental(admin, topic, [ConfigEntry("segment.bytes", "1024", incremental_operation=AlterConfigOpType.SET)])
    _produce(cluster, topic, 20)
    assert len(_segment_files(cluster, topic)) >= 4, "segment.bytes lowered: the log rolls small segments"
    assert _low_watermark(cluster, topic) == 0
    _incremental(admin, topic, [ConfigEntry("retention.bytes", "1024", incremental_operation=AlterConfigOpType.SET)])
    wait_until(lambda: _low_watermark(cluster, topic) > 0, TIMEOUT, "retention.bytes to delete old segments")
    wait_until(lambda: len(_segment_files(cluster, topic)) <= 3, TIMEOUT, "old segment files to go")
    _incremental(admin, topic, [ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
    wait_until(lambda: _low_watermark(cluster, topic) == 40, TIMEOUT, "retention.ms to expire every record")


# -- the controller keeps the change --------------------------------------------------


def test_change_survives_supervisor_sigkill_and_full_cluster_restart(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(brokers=2, extra_args=["--replication-factor", "2"])
    first_group = cluster.pid
    try:
        admin = _admin(cluster)
        _create(admin, topic, 2, 2)
        _incremental(admin, topic, [
            ConfigEntry("retention.ms", "90000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("min.insync.replicas", "2", incremental_operation=AlterConfigOpType.SET),
        ])
        # The supervisor dies; its brokers keep serving. The new one replays its metadata
        # log and hands registering brokers its image: a lost change would revert them.
        cluster.kill(whole_group=False)
        cluster.start()
        configs = _describe(_admin(cluster), topic)
        assert configs["retention.ms"].value == "90000" and configs["min.insync.replicas"].value == "2"
        _incremental(_admin(cluster), topic, [
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry("retention.bytes", "777777", incremental_operation=AlterConfigOpType.SET),
        ])
        cluster.restart()
        configs = _describe(_admin(cluster), topic)
        assert configs["retention.ms"].value == DEFAULT_RETENTION_MS
        assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
        assert configs["retention.bytes"].value == "777777"
        assert configs["min.insync.replicas"].value == "2"
        assert configs["min.insync.replicas"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    finally:
        # Brokers adopted across the supervisor restart stay in the first process group.
        try:
            cluster.stop()
        finally:
            _kill_group(first_group)


def _kill_group(pgid: int | None) -> None:
    if pgid is None:
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0)
