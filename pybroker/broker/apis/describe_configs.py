"""DescribeConfigs (32): the configs of a topic, a broker, the cluster-wide broker default
(broker resource "") or a group, each with the source Kafka would name:

- topic: DYNAMIC_TOPIC_CONFIG for its overrides; otherwise the broker synonym's source
  (DYNAMIC_DEFAULT_BROKER_CONFIG when the cluster default sets it, STATIC_BROKER_CONFIG
  when ``pybroker up --config`` does), else DEFAULT_CONFIG.
- broker (its own id): each dynamic setting as DYNAMIC_BROKER_CONFIG (this broker),
  DYNAMIC_DEFAULT_BROKER_CONFIG (cluster default), STATIC_BROKER_CONFIG or DEFAULT_CONFIG;
  settings fixed at start are read-only STATIC_BROKER_CONFIG.
- broker "": only the cluster-wide dynamic defaults, as Kafka lists them.
- group: GROUP_CONFIG for a group's overrides, else DEFAULT_CONFIG.

Synonyms (v1+) list every source of a value in order of precedence; documentation (v3+)
is one line per config.
"""
from __future__ import annotations

import dataclasses

from pybroker.broker.authorization import require_config_access
from pybroker.config import (
    BROKER_SYNONYM_OF,
    DYNAMIC_BROKER_CONFIGS,
    GROUP_CONFIGS,
    GROUP_DEFAULT_SYNONYMS,
    RESOURCE_BROKER,
    RESOURCE_GROUP,
    RESOURCE_TOPIC,
    TOPIC_CONFIG_DOCS,
    TOPIC_CONFIG_SYNONYMS,
    TOPIC_CONFIGS,
    topic_config_key,
)
from pybroker.errors import (ClusterAuthorizationFailed, GroupAuthorizationFailed, InvalidRequest,
                             TopicAuthorizationFailed, UnknownTopicOrPartition)
from pybroker.security.acls import DESCRIBE_CONFIGS

TOPIC, BROKER, GROUP = RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP
# ConfigSource values of DescribeConfigs v1+ (Kafka's DescribeConfigsResponse.ConfigSource).
DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
GROUP_CONFIG = 8
# ConfigType values (v3+).
BOOLEAN, STRING, INT, LONG, DOUBLE, LIST = 1, 2, 3, 5, 6, 7
_TYPES = {bool: BOOLEAN, str: STRING, int: LONG, float: DOUBLE}
# Topic configs Kafka declares INT or LIST (the other integers are LONG).
_TOPIC_TYPES = {
    **{name: INT for name in ("segment.bytes", "segment.index.bytes", "index.interval.bytes", "max.message.bytes",
                              "min.insync.replicas", "compression.gzip.level", "compression.lz4.level",
                              "compression.zstd.level")},
    **{name: LIST for name in ("cleanup.policy", "follower.replication.throttled.replicas",
                               "leader.replication.throttled.replicas")},
}


# How Kafka 4.4 lists a topic config's built-in default among its synonyms, where that is
# not the broker synonym's name with the default value: under another broker config, or
# not at all (configs whose broker synonyms have no default, or that have none).
_DEFAULT_SYNONYM = {"retention.ms": ("log.retention.hours", "168")}
_NO_DEFAULT_SYNONYM = frozenset({
    "segment.ms", "segment.jitter.ms", "flush.ms", "errors.deadletterqueue.group.enable",
    "follower.replication.throttled.replicas", "leader.replication.throttled.replicas",
    "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable",
})


def _entry(name: str, sources: list[tuple[str | None, str | None, int]], config_type: int, doc: str | None,
           read_only: bool, synonyms: bool, value: str | None = None) -> dict:
    """One config: ``sources`` are (name, value, source) in order of precedence, the
    first names the source; the names are the config's own or its broker synonym's
    (None: not listed among the synonyms). ``value`` is the config's value when the
    first source states it under another unit (log.retention.hours)."""
    _, first, source = sources[0]
    value = first if value is None else value
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "config_source": source,
        "is_default": source == DEFAULT_CONFIG,
        "is_sensitive": False,
        "synonyms": [{"name": n, "value": v, "source": s} for n, v, s in sources if n is not None] if synonyms else [],
        "config_type": config_type,
        "documentation": doc,
    }


def _shown(value) -> str | None:
    return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _broker_default_sources(broker, broker_name: str, topic_key: str, default: str) -> list[tuple]:
    """The sources of a topic config's broker-level default: dynamic per broker (never,
    pybroker keeps topic defaults cluster-wide), dynamic cluster default, static, Kafka's."""
    cluster = broker.image.resource_configs.get((BROKER, ""), {})
    out = []
    if broker_name in cluster:
        out.append((broker_name, cluster[broker_name], DYNAMIC_DEFAULT_BROKER_CONFIG))
    static = broker.config.topic_defaults
    if topic_key in static.overrides:
        out.append((broker_name, static.overridden()[topic_key], STATIC_BROKER_CONFIG))
    if topic_key in _NO_DEFAULT_SYNONYM:
        out.append((None, default, DEFAULT_CONFIG))
    else:
        out.append(_DEFAULT_SYNONYM.get(topic_key, (broker_name, default)) + (DEFAULT_CONFIG,))
    return out


def _topic_configs(broker, name: str, keys, synonyms: bool, docs: bool) -> list:
    topic = broker.logs.topics.get(name)
    if topic is None:
        raise UnknownTopicOrPartition(f"Topic {name} does not exist")
    values = topic.config.to_kafka()
    overridden = set(topic.config.overrides)
    out = []
    for key, value in values.items():
        if keys is not None and key not in keys:
            continue
        sources = [(key, value, DYNAMIC_TOPIC_CONFIG)] if key in overridden else []
        _attr, typ, default = TOPIC_CONFIGS[key]
        sources += _broker_default_sources(broker, BROKER_SYNONYM_OF.get(key, key), key, _shown(default))
        out.append(_entry(key, sources, _TOPIC_TYPES.get(key, _TYPES[typ]),
                          TOPIC_CONFIG_DOCS[key] if docs else None, False, synonyms, value=value))
    return out


def _dynamic_sources(broker, name: str, key, static: str | None) -> list[tuple]:
    own = broker.image.resource_configs.get((BROKER, str(broker.node_id)), {})
    cluster = broker.image.resource_configs.get((BROKER, ""), {})
    out = [(name, own[name], DYNAMIC_BROKER_CONFIG)] if name in own else []
    if name in cluster:
        out.append((name, cluster[name], DYNAMIC_DEFAULT_BROKER_CONFIG))
    if static is not None and static != key.default:
        out.append((name, static, STATIC_BROKER_CONFIG))
    out.append((name, key.default, DEFAULT_CONFIG))
    return out


def _broker_configs(broker, keys, synonyms: bool, docs: bool) -> list:
    static = {}
    for f in dataclasses.fields(broker.config):
        value = getattr(broker.config, f.name)
        if not dataclasses.is_dataclass(value):
            static[f.name.replace("_", ".")] = _shown(value)
    out = []
    dynamic_names = {**DYNAMIC_BROKER_CONFIGS, **{b: None for b in TOPIC_CONFIG_SYNONYMS}}
    for name in sorted(set(static) | set(dynamic_names)):
        if keys is not None and name not in keys:
            continue
        if name in TOPIC_CONFIG_SYNONYMS:
            topic_key = TOPIC_CONFIG_SYNONYMS[name]
            key = topic_config_key(topic_key)
            sources = _broker_default_sources(broker, name, topic_key, key.default)
            value = key.default if sources[0][2] == DEFAULT_CONFIG else sources[0][1]
            out.append(_entry(name, sources, _TOPIC_TYPES.get(topic_key, _TYPES[key.type]),
                              key.doc if docs else None, False, synonyms, value=value))
        elif name in DYNAMIC_BROKER_CONFIGS:
            key = DYNAMIC_BROKER_CONFIGS[name]
            out.append(_entry(name, _dynamic_sources(broker, name, key, static.get(name)), _TYPES[key.type],
                              key.doc if docs else None, False, synonyms))
        else:
            typ = type(getattr(broker.config, name.replace(".", "_")))
            out.append(_entry(name, [(name, static[name], STATIC_BROKER_CONFIG)], _TYPES.get(typ, 0), None, True,
                              synonyms))
    return out


def _cluster_default_configs(broker, keys, synonyms: bool, docs: bool) -> list:
    out = []
    for name, value in sorted(broker.image.resource_configs.get((BROKER, ""), {}).items()):
        if keys is not None and name not in keys:
            continue
        key = DYNAMIC_BROKER_CONFIGS.get(name) or topic_config_key(TOPIC_CONFIG_SYNONYMS[name])
        out.append(_entry(name, [(name, value, DYNAMIC_DEFAULT_BROKER_CONFIG)], _TYPES[key.type],
                          key.doc if docs else None, False, synonyms))
    return out


def _group_configs(broker, group_id: str, keys, synonyms: bool, docs: bool) -> list:
    if not group_id:
        raise InvalidRequest("A group config resource needs a group id")
    overrides = broker.image.resource_configs.get((GROUP, group_id), {})
    out = []
    for name, key in GROUP_CONFIGS.items():
        if keys is not None and name not in keys:
            continue
        sources = [(name, overrides[name], GROUP_CONFIG)] if name in overrides else []
        sources.append((GROUP_DEFAULT_SYNONYMS.get(name, name), key.default, DEFAULT_CONFIG))
        out.append(_entry(name, sources, INT if key.type is int else _TYPES[key.type],
                          key.doc if docs else None, False, synonyms))
    return out


def handle(broker, request) -> dict:
    body = request.body
    synonyms = body.get("include_synonyms", False)
    docs = body.get("include_documentation", False)
    results = []
    for res in body["resources"]:
        keys = res.get("configuration_keys")
        keys = set(keys) if keys else None
        kind, name = res["resource_type"], res["resource_name"]
        result = {"error_code": 0, "error_message": None, "resource_type": kind, "resource_name": name,
                  "configs": []}
        try:
            require_config_access(broker, request, DESCRIBE_CONFIGS, kind, name)
            if kind == TOPIC:
                result["configs"] = _topic_configs(broker, name, keys, synonyms, docs)
            elif kind == BROKER and name == "":
                result["configs"] = _cluster_default_configs(broker, keys, synonyms, docs)
            elif kind == BROKER:
                if name != str(broker.node_id):
                    raise InvalidRequest(f"Unexpected broker id, expected {broker.node_id} but received {name}")
                result["configs"] = _broker_configs(broker, keys, synonyms, docs)
            elif kind == GROUP:
                result["configs"] = _group_configs(broker, name, keys, synonyms, docs)
            else:
                raise InvalidRequest(f"Unsupported resource type {kind}")
        except (UnknownTopicOrPartition, InvalidRequest, TopicAuthorizationFailed, ClusterAuthorizationFailed,
                GroupAuthorizationFailed) as exc:
            result.update(error_code=exc.code, error_message=exc.detail or exc.message)
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}
