from collections import Counter

from pybroker.client.partitioner import murmur2, partition_for_key, sticky_partition


def test_murmur2_matches_kafka_java_values():
    # Expected values from Kafka's own UtilsTest.testMurmur2.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, expected in cases.items():
        assert murmur2(data) == expected, data


def test_partition_for_key_is_stable_and_in_range():
    for n in (1, 3, 7):
        for i in range(50):
            key = f"key-{i}".encode()
            p = partition_for_key(key, n)
            assert 0 <= p < n
            assert p == partition_for_key(key, n)


def test_sticky_partition_moves_off_previous_choice():
    seen = Counter(sticky_partition(3, previous=1) for _ in range(300))
    assert 1 not in seen
    assert set(seen) == {0, 2}
    assert sticky_partition(1, previous=0) == 0
