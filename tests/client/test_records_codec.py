"""The C accelerator and its pure-Python twin: same bytes, same errors, Kafka's layout.

One suite, parametrized over the implementations; the native one is skipped when the
extension is not built (``pip install -e .`` builds it)."""
import pytest
from kafka.record.default_records import DefaultRecordBatch

from pybroker.client import _records_py
from pybroker.client.records import build_batch_from_columns
from pybroker.record.batch import build_batch, decode_batch

try:
    from pybroker import _native
except ImportError:
    _native = None

IMPLS = [pytest.param(_records_py, id="python"),
         pytest.param(_native, id="native",
                      marks=pytest.mark.skipif(_native is None, reason="pybroker._native not built"))]


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


KAFKA_MURMUR2 = {  # Kafka's UtilsTest.testMurmur2
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_matches_kafka_vectors(impl):
    for data, expected in KAFKA_MURMUR2.items():
        assert impl.murmur2(data) == expected


def test_keyed_partition_matches_kafka_python(impl):
    from kafka.partitioner.default import murmur2 as kp_murmur2
    for i in range(300):
        key = b"key-%d" % i * (i % 7 + 1)
        for n in (1, 3, 12):
            expected = (kp_murmur2(key) & 0x7FFFFFFF) % n
            assert (impl.murmur2(key) & 0x7FFFFFFF) % n == expected


@pytest.mark.parametrize("value", [0, 1, -1, 63, -64, 64, 300, -300, 2**31 - 1, -2**31])
def test_varint_bytes_equal_reference(impl, value):
    from pybroker.record.varint import encode_varint
    assert impl.encode_varint(value) == encode_varint(value)


@pytest.mark.parametrize("value", [0, -1, 2**40, -2**40, 2**63 - 1, -2**63])
def test_varlong_bytes_equal_reference(impl, value):
    from pybroker.record.varint import encode_varlong
    assert impl.encode_varlong(value) == encode_varlong(value)


@pytest.mark.parametrize("value", [2**31, -2**31 - 1])
def test_varint_out_of_range_is_refused(impl, value):
    with pytest.raises(ValueError):
        impl.encode_varint(value)


MIXED = dict(
    keys=[None, b"", b"k" * 5000, "h\u00e9llo", bytearray(b"ab"), b"x"],
    values=[b"v", None, b"x" * 200, b"", memoryview(b"mv"), b"y" * 70000],
    headers=[None, [("a", b"1"), ("b", None)], [], [("k" * 300, b"v" * 5000)], None, [("z", "s")]],
    timestamps=[1000, 999, 2**40, 0, -5, 1000],
)


def test_records_section_identical_across_implementations():
    if _native is None:
        pytest.skip("pybroker._native not built")
    for headers in (MIXED["headers"], None):
        args = (MIXED["keys"], MIXED["values"], headers, MIXED["timestamps"], 1000)
        assert _native.encode_records(*args) == _records_py.encode_records(*args)


def test_batch_equals_reference_builder_and_decodes(impl):
    keys, values, headers, ts = MIXED["keys"], MIXED["values"], MIXED["headers"], MIXED["timestamps"]
    ours = build_batch_from_columns(keys, values, headers, ts, encode=impl.encode_records)
    reference = build_batch([(k, v, h or [], t) for k, v, h, t in zip(keys, values, headers, ts)])
    assert ours == reference
    records = decode_batch(ours)
    assert [r.key for r in records] == [None, b"", b"k" * 5000, "h\u00e9llo".encode(), b"ab", b"x"]
    assert records[1].headers == [("a", b"1"), ("b", None)]
    # An independent decoder agrees (kafka-python's).
    kp = list(DefaultRecordBatch(bytearray(ours)))
    assert [r.value for r in kp] == [b"v", None, b"x" * 200, b"", b"mv", b"y" * 70000]
    assert [r.timestamp for r in kp] == ts


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batch_decodes(impl, codec):
    data = build_batch_from_columns([b"k"] * 50, [b"value"] * 50, None, list(range(50)),
                                    compression=codec, producer_id=7, producer_epoch=0,
                                    base_sequence=10, encode=impl.encode_records)
    kp = DefaultRecordBatch(bytearray(data))
    assert kp.compression_type == codec and kp.producer_id == 7 and kp.base_sequence == 10
    assert [r.value for r in kp] == [b"value"] * 50


@pytest.mark.parametrize("bad, message", [
    (dict(keys=[1]), "key"),
    (dict(values=[object()]), "value"),
    (dict(headers=[[("k",)]]), "pair"),
    (dict(headers=[[(None, b"v")]]), "null key"),
    (dict(headers=[5]), "sequence"),
])
def test_bad_fields_raise_type_error(impl, bad, message):
    args = dict(keys=[b"k"], values=[b"v"], headers=None, timestamps=[0])
    args.update(bad)
    with pytest.raises(TypeError, match=message):
        impl.encode_records(args["keys"], args["values"], args["headers"], args["timestamps"], 0)


def test_mismatched_column_lengths_raise_value_error(impl):
    with pytest.raises(ValueError):
        impl.encode_records([b"k", b"k"], [b"v"], None, [0, 0], 0)
