"""DescribeConfigs (32): a topic's settings (overrides as DYNAMIC_TOPIC_CONFIG, the rest as
DEFAULT_CONFIG) and the broker's."""
from __future__ import annotations

import dataclasses

from pybroker.errors import InvalidRequest, UnknownTopicOrPartition

TOPIC = 2
BROKER = 4
# ConfigSource values of DescribeConfigs v1+.
DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
# ConfigType values (v3+).
_TYPES = {bool: 1, str: 2, int: 5, float: 6}


def _entry(name, value, source, typ, synonyms: bool) -> dict:
    entry = {
        "name": name,
        "value": value,
        "read_only": source != DYNAMIC_TOPIC_CONFIG and source != DEFAULT_CONFIG,
        "config_source": source,
        "is_default": source == DEFAULT_CONFIG,
        "is_sensitive": False,
        "synonyms": [],
        "config_type": _TYPES.get(typ, 0),
        "documentation": None,
    }
    if synonyms:
        entry["synonyms"] = [{"name": name, "value": value, "source": source}]
    return entry


def _topic_configs(broker, name: str, keys, synonyms: bool) -> list:
    from pybroker.config import TOPIC_CONFIGS

    topic = broker.logs.topics.get(name)
    if topic is None:
        raise UnknownTopicOrPartition(f"Topic {name} does not exist")
    values = topic.config.to_kafka()
    overridden = set(topic.config.overrides)
    out = []
    for key, value in values.items():
        if keys is not None and key not in keys:
            continue
        source = DYNAMIC_TOPIC_CONFIG if key in overridden else DEFAULT_CONFIG
        out.append(_entry(key, value, source, TOPIC_CONFIGS[key][1], synonyms))
    return out


def _broker_configs(broker, keys, synonyms: bool) -> list:
    out = []
    for f in dataclasses.fields(broker.config):
        value = getattr(broker.config, f.name)
        if dataclasses.is_dataclass(value):
            continue
        key = f.name.replace("_", ".")
        if keys is not None and key not in keys:
            continue
        out.append(_entry(key, None if value is None else str(value).lower() if isinstance(value, bool) else str(value),
                          STATIC_BROKER_CONFIG, type(value), synonyms))
    return out


def handle(broker, request) -> dict:
    body = request.body
    synonyms = body.get("include_synonyms", False)
    results = []
    for res in body["resources"]:
        keys = res.get("configuration_keys")
        keys = set(keys) if keys else None
        result = {
            "error_code": 0,
            "error_message": None,
            "resource_type": res["resource_type"],
            "resource_name": res["resource_name"],
            "configs": [],
        }
        try:
            if res["resource_type"] == TOPIC:
                result["configs"] = _topic_configs(broker, res["resource_name"], keys, synonyms)
            elif res["resource_type"] == BROKER:
                if res["resource_name"] not in ("", str(broker.node_id)):
                    raise InvalidRequest(f"Unexpected broker id, expected {broker.node_id} but received {res['resource_name']}")
                result["configs"] = _broker_configs(broker, keys, synonyms)
            else:
                raise InvalidRequest(f"Unsupported resource type {res['resource_type']}")
        except (UnknownTopicOrPartition, InvalidRequest) as exc:
            result.update(error_code=exc.code, error_message=exc.detail or exc.message)
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}
