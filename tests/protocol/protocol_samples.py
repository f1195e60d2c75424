"""Representative messages for every declared API version, built from the declarations:
every field present in the version gets a distinct non-default value (or null, in the
``nulls`` variant, where the version allows it), so a field dropped, reordered or
mistyped anywhere shows up in a comparison."""
from __future__ import annotations

import itertools
import uuid

from pybroker.protocol import schema as s


def sample(fields, version: int, nulls: bool = False, counter=None) -> dict:
    counter = counter or itertools.count(1)
    out = {}
    for f in fields:
        if not f.in_version(version):
            continue
        if nulls and f.nullable_in(version):
            out[f.name] = None
            continue
        out[f.name] = _value(f.type, version, nulls, counter, f.name)
    return out


def _value(t, version, nulls, counter, name):
    n = next(counter)
    if isinstance(t, s.Array):
        return [_value(t.element, version, nulls, counter, name) for _ in range(2)]
    if isinstance(t, s.Struct):
        return sample(t.fields, version, nulls, counter)
    if t is s.INT8:
        return n % 100
    if t is s.INT16:
        return 1000 + n
    if t is s.INT32:
        return 100000 + n
    if t is s.INT64:
        return (1 << 40) + n
    if t is s.UINT16:
        return 40000 + n
    if t is s.UINT32:
        return (1 << 31) + n
    if t is s.FLOAT64:
        return n + 0.5
    if t is s.BOOL:
        return True
    if t is s.STRING:
        return f"{name}-{n}-é"
    if t is s.BYTES:
        return bytes([n % 256]) * 3 + b"\x00\xff"
    if t is s.RECORDS:
        return bytes(range(n % 7, n % 7 + 20))
    if t is s.UUID:
        return uuid.UUID(int=(0xABCDEF << 64) + n)
    raise AssertionError(f"no sample for {t!r}")


def versions():
    """(api, version) for every declared version."""
    from pybroker.protocol import APIS
    for key in sorted(APIS):
        api = APIS[key]
        for v in range(api.min_version, api.max_version + 1):
            yield api, v


def normalize(value):
    """Records come back as memoryview slices; compare them as bytes."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def project(decoded, like):
    """``decoded`` cut down to the keys of ``like`` at every level (decoding also fills
    in fields the version lacks, with their defaults)."""
    if isinstance(like, dict) and isinstance(decoded, dict):
        return {k: project(decoded[k], v) for k, v in like.items() if k in decoded}
    if isinstance(like, list) and isinstance(decoded, list) and len(like) == len(decoded):
        return [project(d, v) for d, v in zip(decoded, like)]
    return normalize(decoded)
