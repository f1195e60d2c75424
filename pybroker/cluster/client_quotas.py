"""Client quotas as data (KIP-546): which entities may carry which quota keys, how an
AlterClientQuotas entry is validated, and how a DescribeClientQuotas filter matches —
Kafka's ClientQuotaControlManager and ClientQuotasImage, pure logic.

An entity is a tuple of ``(entity_type, entity_name)`` pairs in a fixed order (user,
client-id, ip); a ``None`` name is that type's default entity (``--entity-default``).
Allowed combinations: user, client-id, user + client-id (keys ``producer_byte_rate``,
``consumer_byte_rate``, ``request_percentage``, ``controller_mutation_rate``), or ip alone
(``connection_creation_rate``). Quotas are stored as ``{entity: {key: value}}``; an entity
with no key left is gone.

Errors are Kafka's words, codes INVALID_REQUEST, and UNSUPPORTED_VERSION for an unknown
entity type in a describe filter.
"""
from __future__ import annotations

import ipaddress
import socket

from pybroker import errors

USER, CLIENT_ID, IP = "user", "client-id", "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"

# Kafka's QuotaConfig: key -> ConfigDef type, which decides what a value may be.
USER_CLIENT_KEYS = {PRODUCER_BYTE_RATE: "LONG", CONSUMER_BYTE_RATE: "LONG",
                    REQUEST_PERCENTAGE: "DOUBLE", CONTROLLER_MUTATION_RATE: "DOUBLE"}
IP_KEYS = {CONNECTION_CREATION_RATE: "INT"}

MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2

_LIMITS = {"SHORT": (2 ** 15 - 1, "a SHORT"), "INT": (2 ** 31 - 1, "an INT"), "LONG": (2 ** 63 - 1, "a LONG")}
_ORDER = {t: n for n, t in enumerate(ENTITY_TYPES)}

Entity = tuple  # ((entity_type, entity_name | None), ...)


def make_entity(pairs) -> Entity:
    """An entity from request pairs. As Kafka builds it (a map of type to name), a type
    given twice keeps its last name; unknown types sort last, in their order."""
    found: dict[str, str | None] = {}
    for entity_type, name in pairs:
        found[entity_type] = name
    return tuple(sorted(found.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))


def entity_text(entity: Entity) -> str:
    """Java's ClientQuotaEntity.toString, as Kafka's messages quote it."""
    inner = ", ".join(f"{t}={'null' if n is None else n}" for t, n in entity)
    return f"ClientQuotaEntity(entries={{{inner}}})"


def entity_to_json(entity: Entity) -> list[list]:
    return [[t, n] for t, n in entity]


def entity_from_json(doc: list) -> Entity:
    return make_entity((t, n) for t, n in doc)


def _valid_ip_entity(name: str | None) -> bool:
    if name is None:
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    try:
        socket.getaddrinfo(name, None)
        return True
    except (OSError, UnicodeError):
        return False


def keys_for(entity: Entity) -> dict[str, str]:
    """The keys ``entity`` may carry, or INVALID_REQUEST for a type or combination
    Kafka refuses (ClientQuotaControlManager.validateEntity / configKeysForEntityType)."""
    if not entity:
        raise errors.InvalidRequest("Invalid empty client quota entity")
    for entity_type, name in entity:
        if entity_type not in _ORDER:
            raise errors.InvalidRequest(f"Unhandled client quota entity type: {entity_type}")
        if name is not None and name == "":
            raise errors.InvalidRequest(f"Empty {entity_type} not supported")
    types = {t for t, _ in entity}
    if IP in types:
        if USER in types or CLIENT_ID in types:
            # Kafka's message lacks the space between "should" and "not".
            raise errors.InvalidRequest("Invalid quota entity combination, IP entity should"
                                        "not be combined with User or ClientId")
        name = dict(entity)[IP]
        if not _valid_ip_entity(name):
            raise errors.InvalidRequest(f"{name} is not a valid IP or resolvable host.")
        return IP_KEYS
    return USER_CLIENT_KEYS


def check_value(keys: dict[str, str], key: str, value: float) -> None:
    kind = keys.get(key)
    if kind is None:
        raise errors.InvalidRequest(f"Invalid configuration key {key}")
    if not value > 0.0:
        raise errors.InvalidRequest(f"Quota {key} must be greater than 0")
    if kind == "DOUBLE":
        return
    limit, name = _LIMITS[kind]
    if value > limit:
        raise errors.InvalidRequest(f"Proposed value for {key} is too large for {name}.")
    if abs(value % 1.0) > 1e-6:
        raise errors.InvalidRequest(f"{key} cannot be a fractional value.")


def plan_alter(current: dict[Entity, dict[str, float]], entries: list[tuple[Entity, list[tuple[str, float | None]]]]
               ) -> tuple[dict[Entity, errors.KafkaError | None], dict[Entity, dict[str, float]]]:
    """AlterClientQuotas as Kafka's controller decides it: per entity its result (None:
    done) and, for the entities that change, their whole new set of quotas (empty: all
    removed). ``entries`` are ``(entity, [(key, value or None to remove)])``. An entry
    whose entity came before, or that names a key twice, is refused as a duplicate
    entity (Kafka answers both cases that way); the entities that pass change even when
    others fail."""
    results: dict[Entity, errors.KafkaError | None] = {}
    changes: dict[Entity, dict[str, float]] = {}
    for entity, ops in entries:
        alterations: dict[str, float | None] = {}
        for key, value in ops:
            if key in alterations:
                results[entity] = errors.InvalidRequest(
                    f"Duplicate quota key {key} not updating quota for this entity {entity_text(entity)}")
            else:
                alterations[key] = value
        if entity in results:
            results[entity] = errors.InvalidRequest(f"Ignoring duplicate entity {entity_text(entity)}")
            continue
        try:
            keys = keys_for(entity)
            quotas = dict(changes.get(entity, current.get(entity, {})))
            for key, value in alterations.items():
                if value is None:
                    quotas.pop(key, None)
                else:
                    check_value(keys, key, value)
                    quotas[key] = float(value)
        except errors.KafkaError as exc:
            results[entity] = exc
            continue
        results[entity] = None
        if quotas != current.get(entity, {}):
            changes[entity] = quotas
    return results, changes


def parse_filter(components: list[dict]) -> tuple[dict[str, str | None], set[str]]:
    """A DescribeClientQuotas filter as (exact: type -> name or None for the default,
    specified: types that must be present), checked as Kafka's ClientQuotasImage does."""
    exact: dict[str, str | None] = {}
    specified: set[str] = set()
    for component in components:
        entity_type, match_type, match = component["entity_type"], component["match_type"], component.get("match")
        if entity_type == "":
            raise errors.InvalidRequest("Invalid empty entity type.")
        if entity_type in exact or entity_type in specified:
            raise errors.InvalidRequest(f"Entity type {entity_type} cannot appear more than once in the filter.")
        if entity_type not in _ORDER:
            raise errors.UnsupportedVersion(f"Unsupported entity type {entity_type}")
        if match_type == MATCH_EXACT:
            if match is None:
                raise errors.InvalidRequest("Request specified MATCH_TYPE_EXACT, but set match string to null.")
            exact[entity_type] = match
        elif match_type == MATCH_DEFAULT:
            if match is not None:
                raise errors.InvalidRequest("Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
            exact[entity_type] = None
        elif match_type == MATCH_SPECIFIED:
            if match is not None:
                raise errors.InvalidRequest("Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
            specified.add(entity_type)
        else:
            raise errors.InvalidRequest(f"Unknown match type {match_type}")
    if IP in exact or IP in specified:
        if USER in exact or USER in specified or CLIENT_ID in exact or CLIENT_ID in specified:
            raise errors.InvalidRequest("Invalid entity filter component combination. IP filter component should "
                                        "not be used with user or clientId filter component.")
    return exact, specified


def matches(entity: Entity, exact: dict[str, str | None], specified: set[str], strict: bool) -> bool:
    names = dict(entity)
    if strict and len(names) != len(exact) + len(specified):
        return False
    for entity_type, name in exact.items():
        if entity_type not in names or names[entity_type] != name:
            return False
    return all(t in names for t in specified)


def describe(quotas: dict[Entity, dict[str, float]], components: list[dict], strict: bool) -> list[dict]:
    """DescribeClientQuotas entries for a filter (raises its error)."""
    exact, specified = parse_filter(components)
    return [{"entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
             "values": [{"key": k, "value": v} for k, v in sorted(values.items())]}
            for entity, values in sorted(quotas.items(), key=lambda kv: _sort_key(kv[0]))
            if matches(entity, exact, specified, strict)]


def _sort_key(entity: Entity) -> tuple:
    return tuple((t, n is not None, n or "") for t, n in entity)
