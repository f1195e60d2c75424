"""Compression codecs of a record batch's records section.

The codec id is bits 0-2 of the batch attributes. Clients and tools compress and
decompress; the broker stores batches as received and calls this only for topics whose
``compression.type`` names a codec (Kafka's default, ``producer``, keeps it off the path).

Snappy arrives in two shapes: librdkafka sends one raw snappy block, while the Java client,
kafka-python and aiokafka wrap it in xerial's framing::

    magic   8 bytes  b"\\x82SNAPPY\\x00"
    version int32    (1)
    compat  int32    (1)
    blocks  [int32 compressed length][raw snappy block] ...

Decompression accepts both; compression writes the xerial form, as the Java client does,
because every Kafka consumer understands it.
"""
from __future__ import annotations

import gzip
import io
import struct
import zlib

import cramjam
import lz4.frame
import zstandard

from pybroker import errors

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

CODEC_MASK = 0x07

NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
BY_NAME = {name: codec for codec, name in NAMES.items()}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(
    ">8s"  # magic
    "i"    # version => Int32 (1)
    "i"    # compatible version => Int32 (1)
)
_INT32 = struct.Struct(">i")
# The Java client's xerial block size; smaller blocks would only cost ratio.
_XERIAL_BLOCK = 32 * 1024


def codec_by_name(name: str) -> int:
    try:
        return BY_NAME[name.lower()]
    except KeyError:
        raise errors.UnsupportedCompressionType(f"unknown compression type {name!r}") from None


def compress(codec: int, data: bytes) -> bytes:
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        # Level 6 is the JDK Deflater default the Java producer uses; mtime=0 keeps output
        # deterministic.
        return gzip.compress(data, compresslevel=6, mtime=0)
    if codec == SNAPPY:
        return _xerial_compress(data)
    if codec == LZ4:
        return lz4.frame.compress(data)
    if codec == ZSTD:
        return zstandard.ZstdCompressor(level=3).compress(data)
    raise errors.UnsupportedCompressionType(f"unknown compression codec id {codec}")


def decompress(codec: int, data, limit: int | None = None) -> bytes:
    """Inflate a records section. Garbage raises CorruptMessage, an unknown codec
    UnsupportedCompressionType. With ``limit``, output beyond ``limit`` bytes raises
    MessageTooLarge before more than that is held (a small batch may inflate a thousandfold)."""
    if codec == NONE:
        return bytes(data)
    if codec not in NAMES:
        raise errors.UnsupportedCompressionType(f"unknown compression codec id {codec}")
    try:
        if codec == GZIP:
            out = gzip.decompress(data) if limit is None else _gunzip_bounded(data, limit)
        elif codec == SNAPPY:
            out = _snappy_decompress(data)  # snappy inflates at most ~22x: bounded by its input
        elif codec == LZ4:
            out = lz4.frame.decompress(data) if limit is None else \
                lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=limit + 1)
        else:
            # Frames from librdkafka may omit the content size, so stream instead of the
            # one-shot API that needs it.
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
            with reader:
                out = reader.read() if limit is None else reader.read(limit + 1)
        if limit is not None and len(out) > limit:
            raise errors.MessageTooLarge(f"{NAMES[codec]} records inflate beyond {limit} bytes")
        return out
    except errors.KafkaError:
        raise
    except (OSError, EOFError, ValueError, RuntimeError, zlib.error, zstandard.ZstdError,
            cramjam.DecompressionError) as exc:
        raise errors.CorruptMessage(f"cannot decompress {NAMES[codec]} records: {exc}") from None


def _gunzip_bounded(data, limit: int) -> bytes:
    """gzip.decompress (concatenated members too) that stops after ``limit`` + 1 bytes."""
    data, out = bytes(data), bytearray()
    while data and len(out) <= limit:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += inflater.decompress(data, limit + 1 - len(out))
        if not inflater.eof:
            if inflater.unconsumed_tail:
                break  # the limit was reached mid-member
            raise EOFError("compressed gzip member ended before the end-of-stream marker")
        data = inflater.unused_data
    return bytes(out)


def _xerial_compress(data: bytes) -> bytes:
    out = bytearray(_XERIAL_HEADER.pack(XERIAL_MAGIC, 1, 1))
    view = memoryview(data)
    for start in range(0, len(data), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start:start + _XERIAL_BLOCK]))
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _snappy_decompress(data) -> bytes:
    data = bytes(data)
    if not data.startswith(XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    if len(data) < _XERIAL_HEADER.size:
        raise errors.CorruptMessage("truncated xerial snappy header")
    pos = _XERIAL_HEADER.size
    out = bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise errors.CorruptMessage("truncated xerial snappy block length")
        (length,) = _INT32.unpack_from(data, pos)
        pos += 4
        if length < 0 or pos + length > len(data):
            raise errors.CorruptMessage("xerial snappy block overruns the data")
        out += cramjam.snappy.decompress_raw(data[pos:pos + length])
        pos += length
    return bytes(out)
