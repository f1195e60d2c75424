"""Topic config changes in the controller: AlterConfigs / IncrementalAlterConfigs
semantics, validation, the metadata record that replays them, the published delta."""
from __future__ import annotations

import random

import pytest

from pybroker import errors
from pybroker.cluster.controller import Controller, ControllerService
from pybroker.cluster.metadata import NO_LEADER, BrokerInfo
from pybroker.cluster.metadata_log import MetadataLog
from pybroker.config import OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT, TopicConfig


def _controller(n: int = 3, defaults: TopicConfig | None = None) -> Controller:
    c = Controller(rng=random.Random(7), topic_defaults=defaults)
    for i in range(n):
        c.register_broker(BrokerInfo(i, "127.0.0.1", 9092 + i))
    return c


def _replayed(c: Controller, records: list[dict]) -> Controller:
    fresh = Controller(topic_defaults=c.topic_defaults)
    for record in records:
        fresh.replay(record)
    return fresh


def test_incremental_set_keeps_other_overrides_and_is_recorded_and_published():
    c = _controller()
    c.create_topic("t", 2, 1, configs={"retention.ms": "1000"})
    created = c.take_records()
    topic, delta = c.alter_topic_config("t", [("segment.bytes", OP_SET, "4096")], incremental=True)
    assert topic.config.segment_bytes == 4096 and topic.config.retention_ms == 1000
    assert set(topic.config.overrides) == {"retention.ms", "segment.bytes"}
    assert delta.topics == [topic] and not delta.partitions
    records = c.take_records()
    assert [r["type"] for r in records] == ["topic"]
    again = _replayed(c, created + records)
    assert again.topics["t"].config == topic.config
    assert again.topics["t"].topic_id == topic.topic_id and again.topics["t"].partitions == 2


def test_delete_reverts_to_the_default_and_is_no_longer_an_override():
    c = _controller()
    c.create_topic("t", 1, 1, configs={"retention.ms": "1000", "retention.bytes": "10"})
    topic, _ = c.alter_topic_config("t", [("retention.ms", OP_DELETE, None)], incremental=True)
    assert topic.config.retention_ms == TopicConfig().retention_ms and topic.config.retention_bytes == 10
    assert "retention.ms" not in topic.config.overridden()


def test_delete_of_a_name_never_set_changes_nothing_but_is_accepted():
    c = _controller()
    c.create_topic("t", 1, 1)
    topic, _ = c.alter_topic_config("t", [("retention.ms", OP_DELETE, None)], incremental=True)
    assert topic.config == TopicConfig()


def test_append_and_subtract_work_on_list_configs_from_the_default():
    c = _controller()
    c.create_topic("t", 1, 1)
    topic, _ = c.alter_topic_config("t", [("cleanup.policy", OP_APPEND, "compact")], incremental=True)
    assert topic.config.cleanup_policy == "delete,compact"
    topic, _ = c.alter_topic_config("t", [("cleanup.policy", OP_APPEND, "compact,delete")], incremental=True)
    assert topic.config.cleanup_policy == "delete,compact"
    topic, _ = c.alter_topic_config("t", [("cleanup.policy", OP_SUBTRACT, "delete")], incremental=True)
    assert topic.config.cleanup_policy == "compact"


@pytest.mark.parametrize("op", [OP_APPEND, OP_SUBTRACT])
def test_append_and_subtract_are_refused_for_scalar_configs(op):
    c = _controller()
    c.create_topic("t", 1, 1)
    with pytest.raises(errors.InvalidConfig, match="not allowed for config key: retention.ms"):
        c.alter_topic_config("t", [("retention.ms", op, "5")], incremental=True)
    assert c.topics["t"].config == TopicConfig()


def test_legacy_alter_replaces_the_whole_set_of_overrides():
    c = _controller()
    c.create_topic("t", 1, 1, configs={"retention.ms": "1000"})
    topic, _ = c.alter_topic_config("t", [("segment.bytes", 0, "2048")], incremental=False)
    assert topic.config.segment_bytes == 2048
    assert topic.config.retention_ms == TopicConfig().retention_ms
    assert set(topic.config.overrides) == {"segment.bytes"}


@pytest.mark.parametrize("configs, message", [
    ([("no.such.config", OP_SET, "1")], "Unknown topic config name: no.such.config"),
    ([("retention.ms", OP_SET, "soon")], "Invalid value 'soon' for configuration retention.ms"),
    ([("segment.bytes", OP_SET, "10")], "segment.bytes must be at least 14"),
    ([("cleanup.policy", OP_SET, "shred")], "cleanup.policy"),
    ([("compression.type", OP_SET, "brotli")], "compression.type"),
    ([("min.insync.replicas", OP_SET, "2")], "larger than the replication factor 1"),
    ([("retention.ms", OP_SET, None)], "Null value"),
])
def test_invalid_changes_are_refused_and_change_nothing(configs, message):
    c = _controller()
    c.create_topic("t", 1, 1, configs={"retention.ms": "1000"})
    c.take_records()
    with pytest.raises(errors.InvalidConfig, match=message):
        c.alter_topic_config("t", configs, incremental=True)
    assert c.topics["t"].config.retention_ms == 1000 and c.take_records() == []


def test_unknown_topic_and_duplicate_names_are_refused():
    c = _controller()
    with pytest.raises(errors.UnknownTopicOrPartition):
        c.alter_topic_config("missing", [("retention.ms", OP_SET, "1")], incremental=True)
    c.create_topic("t", 1, 1)
    with pytest.raises(errors.InvalidRequest, match="duplicate config keys: retention.ms"):
        c.alter_topic_config("t", [("retention.ms", OP_SET, "1"), ("retention.ms", OP_DELETE, None)],
                             incremental=True)


def test_validate_only_checks_without_recording_or_publishing():
    c = _controller()
    c.create_topic("t", 1, 1)
    c.take_records()
    topic, delta = c.alter_topic_config("t", [("retention.ms", OP_SET, "5")], incremental=True, validate_only=True)
    assert topic.config.retention_ms == 5
    assert not delta and c.take_records() == [] and c.topics["t"].config == TopicConfig()
    with pytest.raises(errors.InvalidConfig):
        c.alter_topic_config("t", [("retention.ms", OP_SET, "x")], incremental=True, validate_only=True)


def test_allowing_unclean_election_elects_an_offline_partition():
    c = _controller()
    c.create_topic("t", 1, 3)
    state = c.partitions[("t", 0)]
    c.alter_partition("t", 0, state.leader, state.leader_epoch, state.partition_epoch, [state.leader])
    c.broker_failed(state.leader)
    assert c.partitions[("t", 0)].leader == NO_LEADER
    _topic, delta = c.alter_topic_config("t", [("unclean.leader.election.enable", OP_SET, "true")],
                                         incremental=True)
    assert c.partitions[("t", 0)].leader not in (NO_LEADER, state.leader)
    assert c.partitions[("t", 0)] in delta.partitions


def test_service_answers_per_resource_persists_then_publishes(tmp_path):
    c = _controller()
    log = MetadataLog(str(tmp_path / "meta"))
    log.load_into(Controller())  # opens it for appending, as the supervisor's start does
    published = []
    service = ControllerService(c, persist=log.append, publish=published.append)
    service.create_topics([{"name": "t", "num_partitions": 1, "replication_factor": 1}])
    published.clear()
    results = service.alter_configs([
        {"name": "t", "configs": [{"name": "retention.bytes", "op": OP_SET, "value": "100"}]},
        {"name": "missing", "configs": [{"name": "retention.bytes", "op": OP_SET, "value": "100"}]},
        {"name": "t", "configs": [{"name": "bogus", "op": OP_SET, "value": "1"}]},
    ], incremental=True)
    assert [r["error_code"] for r in results] == [0, errors.UnknownTopicOrPartition.code, errors.InvalidConfig.code]
    assert "bogus" in results[2]["error_message"]
    assert len(published) == 1 and [t.name for t in published[0].topics] == ["t"]
    log.close()
    restarted = Controller(topic_defaults=c.topic_defaults)
    reopened = MetadataLog(str(tmp_path / "meta"))
    reopened.load_into(restarted)
    reopened.close()
    assert restarted.topics["t"].config.retention_bytes == 100
    assert restarted.topics["t"].config.overridden() == {"retention.bytes": "100"}


def test_snapshot_keeps_altered_configs(tmp_path, monkeypatch):
    import pybroker.cluster.metadata_log as metadata_log

    c = _controller()
    c.create_topic("t", 1, 1)
    c.alter_topic_config("t", [("segment.ms", OP_SET, "60000")], incremental=True)
    log = MetadataLog(str(tmp_path / "meta"))
    log.load_into(Controller())
    log.append(c.take_records())
    monkeypatch.setattr(metadata_log, "SNAPSHOT_BYTES", 0)
    assert log.maybe_snapshot(c)
    log.close()
    restarted = Controller()
    reopened = MetadataLog(str(tmp_path / "meta"))
    reopened.load_into(restarted)
    reopened.close()
    assert restarted.topics["t"].config.segment_ms == 60000


def test_cluster_default_broker_config_changes_every_topic_without_an_override_and_replays(tmp_path):
    c = _controller(defaults=TopicConfig.parse({"segment.bytes": "100000"}))
    c.create_topic("plain", 1, 1)
    c.create_topic("pinned", 1, 1, configs={"retention.ms": "5000"})
    delta = c.alter_resource_config(4, "", [("log.retention.ms", OP_SET, "60000")], incremental=True)
    assert sorted(t.name for t in delta.topics) == ["plain"] and delta.resource_configs == [(4, "")]
    assert c.topics["plain"].config.retention_ms == 60000
    assert c.topics["plain"].config.segment_bytes == 100000  # the static default stays
    assert c.topics["plain"].config.overrides == ()
    assert c.topics["pinned"].config.retention_ms == 5000
    log = MetadataLog(str(tmp_path))
    log.load_into(Controller())
    log.append(c.take_records())
    log.close()
    fresh = Controller(topic_defaults=c.static_topic_defaults)
    reopened = MetadataLog(str(tmp_path))
    reopened.load_into(fresh)
    reopened.close()
    assert fresh.topics["plain"].config.retention_ms == 60000
    assert fresh.resource_configs == {(4, ""): {"log.retention.ms": "60000"}}


def test_broker_and_group_configs_are_validated_whole():
    c = _controller()
    with pytest.raises(errors.InvalidRequest, match="dynamically"):
        c.alter_resource_config(4, "0", [("broker.id", OP_SET, "3")], incremental=True)
    with pytest.raises(errors.InvalidRequest, match="cluster-wide"):
        c.alter_resource_config(4, "0", [("log.retention.ms", OP_SET, "3")], incremental=True)
    with pytest.raises(errors.InvalidConfig):
        c.alter_resource_config(32, "g", [("consumer.session.timeout.ms", OP_SET, "x")], incremental=True)
    with pytest.raises(errors.InvalidConfig, match="Unknown group config"):
        c.alter_resource_config(32, "g", [("retention.ms", OP_SET, "1")], incremental=False)
    c.alter_resource_config(4, "0", [("num.io.threads", OP_SET, "2")], incremental=True)
    c.alter_resource_config(4, "0", [("num.io.threads", OP_DELETE, None)], incremental=True)
    assert c.resource_configs == {}
