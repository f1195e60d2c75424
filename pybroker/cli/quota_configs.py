"""Client quotas in `pybroker configs` (``--entity-type users|clients|ips``), in
kafka-configs' words::

    $ pybroker configs --alter --entity-type users --entity-name alice \\
        --entity-type clients --entity-default --add-config producer_byte_rate=1024
    Completed updating config for user alice.
    $ pybroker configs --describe --entity-type users --entity-name alice --entity-type clients
    Quota configs for user-principal 'alice', the default client-id are producer_byte_rate=1024.0

An entity is one ``--entity-type`` per part, each with an ``--entity-name`` or
``--entity-default`` in the same order; describing without a name lists every entity of
that type. Describe is strict, as kafka-configs' is: ``--entity-type users`` shows user
entities, not user + client-id ones; for users alone it also lists their SCRAM
credentials (``SCRAM credential configs for user-principal 'alice' are
SCRAM-SHA-256=iterations=4096``).
"""
from __future__ import annotations

from decimal import Decimal

from pybroker import errors
from pybroker.cli.common import UsageError
from pybroker.cluster.client_quotas import (CLIENT_ID, IP, IP_KEYS, MATCH_DEFAULT, MATCH_EXACT, MATCH_SPECIFIED, USER,
                                            USER_CLIENT_KEYS)

QUOTA_ENTITY_TYPES = {"users": USER, "clients": CLIENT_ID, "ips": IP}
_DESCRIBED = {USER: "user-principal", CLIENT_ID: "client-id", IP: "ip"}
_ORDER = (USER, CLIENT_ID, IP)


def entity_parts(entity_types: list[str], entity_names: list[str]) -> list[tuple[str, str | None]]:
    """(type, name) pairs of the command line; name "" is the default entity, None any."""
    if len(entity_names) > len(entity_types):
        raise UsageError("More entity names specified than entity types")
    types = [QUOTA_ENTITY_TYPES[t] for t in entity_types]
    if IP in types and len(types) > 1:
        raise UsageError("--entity-type ips cannot be combined with users or clients")
    if len(set(types)) != len(types):
        raise UsageError("an --entity-type may appear only once")
    names: list[str | None] = list(entity_names) + [None] * (len(types) - len(entity_names))
    return list(zip(types, names))


def describe(admin, parts: list[tuple[str, str | None]], out) -> int:
    components = [(t, MATCH_SPECIFIED, None) if name is None else
                  (t, MATCH_DEFAULT, None) if name == "" else (t, MATCH_EXACT, name) for t, name in parts]
    quotas = admin.describe_client_quotas(components, strict=True)
    for entity in sorted(quotas, key=lambda e: [(t, n is not None, n or "") for t, n in e]):
        names = dict(entity)
        described = ", ".join(f"{_DESCRIBED[t]} '{names[t]}'" if names[t] is not None else f"the default {_DESCRIBED[t]}"
                              for t in _ORDER if t in names)
        values = ", ".join(f"{k}={java_double(v)}" for k, v in sorted(quotas[entity].items()))
        out.write(f"Quota configs for {described} are {values}\n")
    if [t for t, _ in parts] == [USER] and "" not in [n for _, n in parts]:
        # As kafka-configs: users named (or all users) also show their SCRAM credentials.
        _describe_scram(admin, [n for _, n in parts if n is not None], out)
    return 0


def _describe_scram(admin, names: list[str], out) -> None:
    if names:
        found = {}
        for name in names:
            try:
                found.update(admin.describe_user_scram_credentials([name]))
            except errors.ResourceNotFound:
                continue
    else:
        found = admin.describe_user_scram_credentials(None)
    for user, mechanisms in found.items():
        text = ", ".join(f"{mechanism}=iterations={iterations}" for mechanism, iterations in mechanisms.items())
        out.write(f"SCRAM credential configs for user-principal '{user}' are {text}\n")


def check_alter(entity_types: list[str], parts: list[tuple[str, str | None]], add: dict[str, str],
                delete: list[str]) -> dict[str, float | None]:
    """The ops of an --alter (key -> value, None to remove), or the UsageError
    kafka-configs gives before it connects."""
    if any(name is None for _, name in parts):
        raise UsageError("Exactly one entity name must be specified for every entity type")
    known = IP_KEYS if parts[0][0] == IP else USER_CLIENT_KEYS
    unknown = [k for k in list(add) + list(delete) if k not in known]
    if unknown:
        what = "connection quota" if parts[0][0] == IP else "quota"
        raise UsageError(f"Only {what} configs can be added for '{entity_types[0]}' using --bootstrap-server. "
                         f"Unexpected config names: {','.join(unknown)}")
    ops: dict[str, float | None] = {}
    for key, value in add.items():
        try:
            ops[key] = float(value)
        except ValueError:
            raise UsageError(f"Cannot parse quota configuration value for {key}: {value}") from None
    ops.update({key: None for key in delete})
    return ops


def alter(admin, entity_types: list[str], parts: list[tuple[str, str | None]], ops: dict[str, float | None],
          out) -> int:
    """Remove keys only if set (kafka-configs' "Invalid config(s)"), then alter."""
    entity = tuple((t, name or None) for t, name in parts)
    current = admin.describe_client_quotas(
        [(t, MATCH_EXACT, n) if n is not None else (t, MATCH_DEFAULT, None) for t, n in entity], strict=True)
    current = next(iter(current.values()), {})
    missing = [k for k, v in ops.items() if v is None and k not in current]
    if missing:
        raise errors.InvalidConfig(f"Invalid config(s): {','.join(missing)}")
    admin.alter_client_quotas([(entity, ops)])
    head_type, head_name = entity_types[0], parts[0][1]
    if head_name:
        out.write(f"Completed updating config for {head_type[:-1]} {head_name}.\n")
    else:
        out.write(f"Completed updating default config for {head_type} in the cluster.\n")
    return 0


def java_double(value: float) -> str:
    """Java's Double.toString: plain between 1e-3 and 1e7, else computerized scientific
    (``1.0E7``), with the shortest digits that round-trip."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(float(value))
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{len(text) - 1 + exponent}"
