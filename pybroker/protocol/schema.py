"""Message schemas: fields declared once with the versions they live in, compiled into
one encoder/decoder per API version.

A declaration reads like Kafka's JSON message definitions::

    Field("transactional_id", STRING, "3+", nullable="3+", default=None)
    Field("topic_data", Array([Field("name", STRING), ...]))
    Field("current_leader", Struct([...]), "10+", tag=0)   # tagged field

Versions are "N+" (N and later), "N-M", "N" or "none". ``Schema`` compiles one
version: the fields present, their nullability, and whether the version is flexible
(compact lengths, tagged-field sections). An API version whose compiled layout equals
the previous version's reuses that very Schema object, so ``schemas[v] is
schemas[v - 1]`` says "unchanged".

Messages are dicts keyed by field name. Decoding fills fields the version lacks with
their defaults; encoding takes defaults for missing keys and ignores unknown keys, so a
handler builds one dict for every version. Records fields decode to a memoryview slice
of the frame (zero copy) and encode from bytes-like values or a *region* (any object with
``is_file_region = True`` and an int ``length``: a slice of a segment file the broker
sends with sendfile); encoding then yields a list of chunks around each region.
"""
from __future__ import annotations

import struct

from . import primitives as p
from .errors import MalformedFrame

MAX_VERSION = 0x7FFF


def parse_versions(spec: str | None) -> tuple[int, int] | None:
    """'3+' -> (3, MAX_VERSION), '0-12' -> (0, 12), '1' -> (1, 1), 'none'/None -> None."""
    if spec is None or spec == "none":
        return None
    if spec.endswith("+"):
        return int(spec[:-1]), MAX_VERSION
    if "-" in spec:
        lo, hi = spec.split("-")
        return int(lo), int(hi)
    return int(spec), int(spec)


def _in(rng, version: int) -> bool:
    return rng is not None and rng[0] <= version <= rng[1]


# -- types -------------------------------------------------------------------


class Primitive:
    """A scalar type. ``fmt`` is its struct code when fixed-width, else None."""

    def __init__(self, name: str, fmt: str | None, default):
        self.name = name
        self.fmt = fmt
        self.default = default

    def __repr__(self):
        return self.name


INT8 = Primitive("int8", "b", 0)
INT16 = Primitive("int16", "h", 0)
INT32 = Primitive("int32", "i", 0)
INT64 = Primitive("int64", "q", 0)
UINT16 = Primitive("uint16", "H", 0)
UINT32 = Primitive("uint32", "I", 0)
FLOAT64 = Primitive("float64", "d", 0.0)
# '?' packs True as 1 and unpacks any non-zero byte as True, which is Kafka's rule.
BOOL = Primitive("bool", "?", False)
UUID = Primitive("uuid", None, p.ZERO_UUID)
STRING = Primitive("string", None, "")
BYTES = Primitive("bytes", None, b"")
RECORDS = Primitive("records", None, None)


class Struct:
    """A nested structure: a single struct-typed field, or an Array's element."""

    def __init__(self, fields: list["Field"]):
        self.fields = fields
        names = [f.name for f in fields]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate field names in {names}")

    def default_value(self) -> dict:
        return {f.name: f.make_default() for f in self.fields}


class Array:
    """A counted sequence of a Primitive or a Struct (a list of fields is a Struct)."""

    def __init__(self, element):
        self.element = Struct(element) if isinstance(element, list) else element


_AUTO = object()


class Field:
    def __init__(self, name: str, type_, versions: str = "0+", *, nullable: str | None = None,
                 default=_AUTO, tag: int | None = None, tagged: str | None = None):
        self.name = name
        self.type = Struct(type_) if isinstance(type_, list) else type_
        self.versions = parse_versions(versions)
        self.nullable = parse_versions(nullable)
        self.tag = tag
        # A tagged field is tagged in all its versions unless told otherwise.
        self.tagged = parse_versions(tagged) if tagged else (self.versions if tag is not None else None)
        if self.tagged is not None and tag is None:
            raise ValueError(f"tagged field {name} needs a tag")
        self.explicit_default = default

    def make_default(self):
        if self.explicit_default is not _AUTO:
            return self.explicit_default
        t = self.type
        if isinstance(t, Array):
            return []
        if isinstance(t, Struct):
            return t.default_value()
        return t.default

    def in_version(self, version: int) -> bool:
        return _in(self.versions, version)

    def nullable_in(self, version: int) -> bool:
        return _in(self.nullable, version)

    def tagged_in(self, version: int) -> bool:
        return _in(self.tagged, version)

    @property
    def default_is_mutable(self) -> bool:
        return self.make_default().__class__ in (list, dict)


# -- compilation ---------------------------------------------------------------


def _signature(fields, version: int, flexible: bool):
    """What decides a version's wire layout; equal signatures mean an unchanged version."""
    sig = [flexible]
    for f in fields:
        if not _in(f.versions, version):
            continue
        sig.append((f.name, _type_signature(f.type, version, flexible), _in(f.nullable, version),
                    f.tag if _in(f.tagged, version) else None))
    return tuple(sig)


def _type_signature(t, version, flexible):
    if isinstance(t, Array):
        return ("array", _type_signature(t.element, version, flexible))
    if isinstance(t, Struct):
        return ("struct", _signature(t.fields, version, flexible))
    return t.name


class _Codec:
    """Decoder/encoder pair for one type at one version; ``min_size`` bounds array counts."""

    __slots__ = ("decode", "encode", "min_size")

    def __init__(self, decode, encode, min_size):
        self.decode = decode
        self.encode = encode
        self.min_size = min_size


# type -> (reader, writer, classic length reader, classic length writer)
_LENGTH_PREFIXED = {
    STRING: (p.read_string, p.write_string, p.read_len16, p.write_len16),
    BYTES: (p.read_bytes, p.write_bytes, p.read_len32, p.write_len32),
    RECORDS: (p.read_records, p.write_bytes, p.read_len32, p.write_len32),
}


def _compile_type(t, version: int, flexible: bool, nullable: bool, what: str) -> _Codec:
    if isinstance(t, Struct):
        inner = _compile_struct(t.fields, version, flexible, what)
        return _nullable_struct(inner, what) if nullable else inner
    if isinstance(t, Array):
        return _compile_array(t, version, flexible, nullable, what)
    if t in _LENGTH_PREFIXED:
        read, write, classic_read_len, classic_write_len = _LENGTH_PREFIXED[t]
        rl = p.read_compact_len if flexible else classic_read_len
        wl = p.write_compact_len if flexible else classic_write_len

        def dec(buf, pos):
            return read(buf, pos, rl, nullable)

        if t is RECORDS:
            def enc(out, chunks, v):
                if getattr(v, "is_file_region", False):
                    # The region's bytes go out by sendfile: cut the byte stream here.
                    wl(out, v.length)
                    chunks.append(bytes(out))
                    out.clear()
                    chunks.append(v)
                else:
                    write(out, v, wl, nullable)
        else:
            def enc(out, chunks, v):
                write(out, v, wl, nullable)
        return _Codec(dec, enc, 1 if flexible else (2 if t is STRING else 4))
    if t is UUID:
        def enc_uuid(out, chunks, v):
            p.write_uuid(out, v)
        return _Codec(p.read_uuid, enc_uuid, 16)
    if t.fmt is not None:
        s = struct.Struct(">" + t.fmt)

        def dec(buf, pos):
            if pos + s.size > len(buf):
                raise MalformedFrame(f"{what} runs past the end of the frame")
            return s.unpack_from(buf, pos)[0], pos + s.size

        def enc(out, chunks, v):
            out += s.pack(v)
        return _Codec(dec, enc, s.size)
    raise ValueError(f"{what}: unknown type {t!r}")


def _nullable_struct(inner: _Codec, what: str) -> _Codec:
    """A nullable struct is one marker byte, -1 for null or 1, before the struct (Kafka's
    generated code writes exactly that; a reader takes any negative byte as null)."""
    def dec(buf, pos):
        if pos >= len(buf):
            raise MalformedFrame(f"{what} runs past the end of the frame")
        if buf[pos] >= 0x80:
            return None, pos + 1
        return inner.decode(buf, pos + 1)

    def enc(out, chunks, v):
        if v is None:
            out.append(0xFF)
        else:
            out.append(1)
            inner.encode(out, chunks, v)
    return _Codec(dec, enc, 1)


def _compile_array(t: Array, version, flexible, nullable, what) -> _Codec:
    read_len = p.read_compact_len if flexible else p.read_len32
    write_len = p.write_compact_len if flexible else p.write_len32
    elem = t.element
    fmt = getattr(elem, "fmt", None) if not isinstance(elem, Struct) else None

    if fmt is not None:
        size = struct.calcsize(">" + fmt)

        def dec(buf, pos):
            n, pos = read_len(buf, pos)
            if n < 0:
                if n == -1 and nullable:
                    return None, pos
                raise MalformedFrame(f"{what} has invalid count {n}")
            if n * size > len(buf) - pos:
                raise MalformedFrame(f"{what} count {n} exceeds the bytes left")
            return list(struct.unpack_from(f">{n}{fmt}", buf, pos)), pos + n * size

        def enc(out, chunks, v):
            if v is None:
                if not nullable:
                    raise ValueError(f"{what}: null given for a non-nullable array")
                write_len(out, -1)
                return
            write_len(out, len(v))
            out += struct.pack(f">{len(v)}{fmt}", *v)
        return _Codec(dec, enc, 1 if flexible else 4)

    inner = _compile_type(elem, version, flexible, False, what + "[]")
    elem_dec, elem_enc = inner.decode, inner.encode
    elem_min = max(1, inner.min_size)

    def dec(buf, pos):
        n, pos = read_len(buf, pos)
        if n < 0:
            if n == -1 and nullable:
                return None, pos
            raise MalformedFrame(f"{what} has invalid count {n}")
        # Every element takes at least elem_min bytes: a count the frame cannot
        # hold is refused before the loop, whatever it claims.
        if n * elem_min > len(buf) - pos:
            raise MalformedFrame(f"{what} count {n} exceeds the bytes left")
        items = []
        append = items.append
        for _ in range(n):
            item, pos = elem_dec(buf, pos)
            append(item)
        return items, pos

    def enc(out, chunks, v):
        if v is None:
            if not nullable:
                raise ValueError(f"{what}: null given for a non-nullable array")
            write_len(out, -1)
            return
        write_len(out, len(v))
        for item in v:
            elem_enc(out, chunks, item)
    return _Codec(dec, enc, 1 if flexible else 4)


def _compile_struct(fields, version: int, flexible: bool, what: str) -> _Codec:
    present = [f for f in fields if _in(f.versions, version)]
    untagged = [f for f in present if not (flexible and _in(f.tagged, version))]
    tagged = sorted((f for f in present if flexible and _in(f.tagged, version)), key=lambda f: f.tag)
    # Fields the version does not carry on the wire (absent or tagged) start at default.
    unset = [f for f in fields if f not in untagged]
    base = {f.name: f.make_default() for f in unset if not f.default_is_mutable}
    mutable = [(f.name, f.make_default) for f in unset if f.default_is_mutable]

    # Consecutive fixed-width fields are read and written with one struct format.
    dsteps = []  # (names, Struct) for a fixed run, or (name, decode) for one field
    esteps = []  # (pairs of (name, default), Struct) or (name, default, encode)
    min_size = 1 if flexible else 0
    run: list[Field] = []

    def flush_run():
        if run:
            s = struct.Struct(">" + "".join(f.type.fmt for f in run))
            dsteps.append((tuple(f.name for f in run), s))
            esteps.append((tuple((f.name, f.make_default()) for f in run), s))
            run.clear()

    for f in untagged:
        if isinstance(f.type, Primitive) and f.type.fmt is not None:
            run.append(f)
            min_size += struct.calcsize(">" + f.type.fmt)
            continue
        flush_run()
        codec = _compile_type(f.type, version, flexible, _in(f.nullable, version), f"{what}.{f.name}")
        min_size += codec.min_size
        dsteps.append((f.name, codec.decode))
        esteps.append((f.name, f.make_default(), codec.encode))
    flush_run()

    tag_codecs = {}
    for f in tagged:
        codec = _compile_type(f.type, version, flexible, _in(f.nullable, version), f"{what}.{f.name}")
        tag_codecs[f.tag] = (f.name, codec.decode, codec.encode, f.make_default())

    def decode(buf, pos):
        d = base.copy()
        for name, make in mutable:
            d[name] = make()
        for key, step in dsteps:
            if key.__class__ is tuple:
                end = pos + step.size
                if end > len(buf):
                    raise MalformedFrame(f"{what} runs past the end of the frame")
                d.update(zip(key, step.unpack_from(buf, pos)))
                pos = end
            else:
                d[key], pos = step(buf, pos)
        if flexible:
            pos = _decode_tags(buf, pos, d, tag_codecs, what)
        return d, pos

    def encode(out, chunks, d):
        if d.__class__ is PreEncoded:
            out += d
            return
        for step in esteps:
            if len(step) == 2:
                pairs, s = step
                try:
                    out += s.pack(*[d.get(n, dflt) for n, dflt in pairs])
                except struct.error as exc:
                    raise ValueError(f"{what} {[n for n, _ in pairs]}: {exc}") from None
            else:
                name, dflt, enc = step
                enc(out, chunks, d.get(name, dflt))
        if flexible:
            _encode_tags(out, d, tag_codecs)

    return _Codec(decode, encode, min_size)


def _decode_tags(buf, pos, d, tag_codecs, what):
    count, pos = p.read_uvarint(buf, pos)
    for _ in range(count):
        tag, pos = p.read_uvarint(buf, pos)
        size, pos = p.read_uvarint(buf, pos)
        p.check_length(buf, pos, size, False, "tagged field")
        known = tag_codecs.get(tag)
        if known is not None:
            name, dec = known[0], known[1]
            # Decode within the declared size, so a lying field cannot read on.
            value, end = dec(buf[:pos + size], pos)
            if end != pos + size:
                raise MalformedFrame(f"{what} tagged field {tag} size {size} does not match its content")
            d[name] = value
        pos += size
    return pos


def _encode_tags(out, d, tag_codecs):
    # Kafka writes a tagged field only when it differs from its default.
    present = []
    for tag, (name, _dec, enc, dflt) in tag_codecs.items():
        v = d.get(name)
        if v is None or v == dflt:
            continue
        tmp = bytearray()
        no_regions: list = []
        enc(tmp, no_regions, v)
        if no_regions:
            raise ValueError(f"tagged field {name} cannot carry a file region")
        present.append((tag, tmp))
    p.write_uvarint(out, len(present))
    for tag, data in present:
        p.write_uvarint(out, tag)
        p.write_uvarint(out, len(data))
        out += data


class PreEncoded(bytes):
    """A struct's bytes, encoded beforehand with ``Schema.element_schema``'s schema of the
    same version, given where the struct's dict would go: a part of a response that
    rarely changes (a topic's Metadata entry) is then encoded once, not per request."""


class Schema:
    """One API version of a request or response body, compiled."""

    def __init__(self, name: str, version: int, fields: list[Field], flexible: bool):
        self.name = name
        self.version = version  # the first version with this layout
        self.fields = fields
        self.flexible = flexible
        codec = _compile_struct(fields, version, flexible, name)
        self._decode = codec.decode
        self._encode = codec.encode

    def element_schema(self, field_name: str) -> "Schema":
        """The schema of one element of the struct-array field ``field_name``, at this
        version (to build ``PreEncoded`` elements)."""
        field = next((f for f in self.fields if f.name == field_name), None)
        if field is None or not isinstance(field.type, Array) or not isinstance(field.type.element, Struct):
            raise ValueError(f"{self.name}.{field_name} is not an array of structs")
        return Schema(f"{self.name}.{field_name}[]", self.version, field.type.element.fields, self.flexible)

    def decode(self, buf, pos: int = 0) -> tuple[dict, int]:
        return self._decode(buf, pos)

    def encode_into(self, out: bytearray, chunks: list, body: dict) -> None:
        """Append the body to ``out``; at a region, ``out`` is flushed into ``chunks``
        as bytes, the region appended, and ``out`` cleared."""
        self._encode(out, chunks, body)

    def encode(self, body: dict) -> bytes:
        out = bytearray()
        chunks: list = []
        self._encode(out, chunks, body)
        if chunks:
            raise ValueError(f"{self.name}: encode() cannot hold a file region; use encode_into")
        return bytes(out)

    def __repr__(self):
        return f"<Schema {self.name} v{self.version}{' flexible' if self.flexible else ''}>"


class Api:
    """One Kafka API: its key, the versions we declare, and a request and response
    Schema per version (shared between versions whose layout did not change)."""

    def __init__(self, key: int, name: str, versions: tuple[int, int], flexible: int | None,
                 request: list[Field], response: list[Field]):
        self.key = key
        self.name = name
        self.min_version, self.max_version = versions
        self.flexible_from = flexible
        self.request = self._compile(name + "Request", request)
        self.response = self._compile(name + "Response", response)

    def is_flexible(self, version: int) -> bool:
        return self.flexible_from is not None and version >= self.flexible_from

    def _compile(self, name, fields) -> dict[int, Schema]:
        schemas: dict[int, Schema] = {}
        prev_sig = prev = None
        for v in range(self.min_version, self.max_version + 1):
            flexible = self.is_flexible(v)
            sig = _signature(fields, v, flexible)
            if sig == prev_sig:
                schemas[v] = prev
            else:
                prev = schemas[v] = Schema(name, v, fields, flexible)
                prev_sig = sig
        return schemas
