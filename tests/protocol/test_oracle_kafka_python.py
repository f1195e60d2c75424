"""pybroker's codec against kafka-python's, an independent codec driven by Kafka's own
JSON message definitions: for every declared API version, request and response, our
bytes must decode to the same message under theirs, their bytes must equal ours, and
ours must decode their bytes back to the message."""
from __future__ import annotations

import pytest
import kafka.protocol.admin  # noqa: F401  (registers the admin messages)
import kafka.protocol.consumer  # noqa: F401
import kafka.protocol.metadata  # noqa: F401
import kafka.protocol.producer  # noqa: F401
from kafka.protocol.api_message import ApiMessage

from protocol_samples import normalize, project, sample, versions


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


THEIRS = {(c.API_KEY, c.type): c for c in _subclasses(ApiMessage)
          if getattr(c, "_class_version", 0) is None and getattr(c, "_json", None) is not None}

CASES = [(api, v, kind, nulls) for api, v in versions()
         for kind in ("request", "response") for nulls in (False, True)]


def _ids(case):
    api, v, kind, nulls = case
    return f"{api.name}-v{v}-{kind}{'-nulls' if nulls else ''}"


def _to_theirs(container_cls, struct_field, value, version):
    """Build kafka-python's object for one of our message dicts."""
    kwargs = {}
    for name, v in value.items():
        field = struct_field.fields[name]
        if v is not None and field.is_struct_array():
            v = [_to_theirs(field.data_class, field, item, version) for item in v]
        elif v is not None and field.is_struct():
            v = _to_theirs(field.data_class, field, v, version)
        kwargs[name] = v
    return container_cls(version=version, **kwargs)


def _from_theirs(obj):
    return obj.to_dict(json=False)


# kafka-python patches two things into Kafka's definitions for its own API's sake:
# Metadata's TopicAuthorizedOperations / ClusterAuthorizedOperations are renamed
# authorized_operations, and authorized-operations int32 fields become sets of bit
# numbers. Same bytes on the wire; translate our message into their view.
_RENAMES = {"topic_authorized_operations": "authorized_operations",
            "cluster_authorized_operations": "authorized_operations"}
_BITFIELD_APIS = {3, 15, 60}


def _bits(value: int):
    bits = {b for b in range(32) if value & (1 << b)}
    return None if bits == {31} else bits


def _their_view(api_key, kind, value):
    if kind != "response" or api_key not in _BITFIELD_APIS:
        return value
    if isinstance(value, list):
        return [_their_view(api_key, kind, v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in _RENAMES or k == "authorized_operations":
            out[_RENAMES.get(k, k)] = _bits(v)
        else:
            out[k] = _their_view(api_key, kind, v)
    return out


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_codec_agrees_with_kafka_python(case):
    api, version, kind, nulls = case
    ours = (api.request if kind == "request" else api.response)[version]
    if (api.key, kind) not in THEIRS:
        pytest.skip(f"kafka-python ships no {api.name} schema; real clients check it "
                    "(tests/interop, tests/groups, tests/protocol/test_telemetry_codec.py)")
    theirs = THEIRS[(api.key, kind)]
    message = sample(ours.fields, version, nulls)
    if api.key == 18 and kind == "response":
        # kafka-python decodes any ApiVersions response with an error as v0 (the
        # fallback rule); that path has its own test.
        message["error_code"] = 0
    their_message = _their_view(api.key, kind, message)

    our_bytes = ours.encode(message)
    decoded_by_them = normalize(_from_theirs(theirs[version].decode(our_bytes)))
    assert decoded_by_them == normalize(their_message)

    their_bytes = bytes(_to_theirs(theirs[version], theirs._struct, their_message, version).encode(version=version))
    assert their_bytes == our_bytes

    decoded_by_us, end = ours.decode(memoryview(their_bytes))
    assert end == len(their_bytes)
    assert project(decoded_by_us, message) == normalize(message)
