import os

import cramjam
import pytest

from pybroker import errors
from pybroker.record import compression as codecs

DATA = os.urandom(512) * 200  # compressible and larger than one xerial block


@pytest.mark.parametrize("codec", [codecs.NONE, codecs.GZIP, codecs.SNAPPY, codecs.LZ4, codecs.ZSTD])
def test_every_codec_round_trips(codec):
    assert codecs.decompress(codec, codecs.compress(codec, DATA)) == DATA


def test_snappy_compress_writes_xerial_framing():
    assert codecs.compress(codecs.SNAPPY, DATA).startswith(codecs.XERIAL_MAGIC)


def test_snappy_decompress_accepts_raw_blocks_as_librdkafka_sends():
    raw = bytes(cramjam.snappy.compress_raw(DATA))
    assert codecs.decompress(codecs.SNAPPY, raw) == DATA


def test_snappy_decompress_accepts_kafka_python_xerial_output():
    from kafka.codec import snappy_encode

    framed = snappy_encode(DATA, xerial_compatible=True, xerial_blocksize=4096)
    assert framed.startswith(codecs.XERIAL_MAGIC)
    assert codecs.decompress(codecs.SNAPPY, framed) == DATA


def test_kafka_python_reads_our_xerial_snappy():
    from kafka.codec import snappy_decode

    assert snappy_decode(codecs.compress(codecs.SNAPPY, DATA)) == DATA


@pytest.mark.parametrize("codec", [codecs.GZIP, codecs.SNAPPY, codecs.LZ4, codecs.ZSTD])
def test_garbage_is_corrupt_message(codec):
    with pytest.raises(errors.CorruptMessage):
        codecs.decompress(codec, b"\x00garbage" * 10)


def test_truncated_xerial_block_is_corrupt_message():
    framed = codecs.compress(codecs.SNAPPY, DATA)
    with pytest.raises(errors.CorruptMessage):
        codecs.decompress(codecs.SNAPPY, framed[:-10])


def test_unknown_codec_is_unsupported_compression_type():
    with pytest.raises(errors.UnsupportedCompressionType):
        codecs.compress(5, DATA)
    with pytest.raises(errors.UnsupportedCompressionType):
        codecs.decompress(7, DATA)
    with pytest.raises(errors.UnsupportedCompressionType):
        codecs.codec_by_name("brotli")


@pytest.mark.parametrize("codec", [codecs.GZIP, codecs.SNAPPY, codecs.LZ4, codecs.ZSTD])
def test_bounded_decompress_stops_at_the_limit(codec):
    data = bytes(range(256)) * 400
    packed = codecs.compress(codec, data)
    assert codecs.decompress(codec, packed, limit=len(data)) == data
    with pytest.raises(errors.MessageTooLarge):
        codecs.decompress(codec, packed, limit=len(data) - 1)


def test_bounded_gunzip_reads_concatenated_members_and_refuses_a_torn_one():
    import gzip
    two = gzip.compress(b"x" * 10) + gzip.compress(b"y" * 10)
    assert codecs.decompress(codecs.GZIP, two, limit=20) == b"x" * 10 + b"y" * 10
    with pytest.raises(errors.CorruptMessage):
        codecs.decompress(codecs.GZIP, gzip.compress(b"x" * 100)[:-5], limit=1000)
