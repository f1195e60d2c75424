import random

import pytest
from kafka.protocol.consumer.metadata import (ConsumerProtocolAssignment as KAssignment,
                                              ConsumerProtocolSubscription as KSubscription)

from pybroker import errors
from pybroker.group.consumer_protocol import (Assignment, Subscription, decode_assignment,
                                              decode_subscription, encode_assignment,
                                              encode_subscription)


def _grouped(tps):
    by_topic = {}
    for t, p in tps:
        by_topic.setdefault(t, []).append(p)
    return list(by_topic.items())


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_subscription_bytes_match_kafka_python_both_ways(version):
    ours = Subscription(topics=["orders", "payments"], user_data=b"\x00\x01ud",
                        owned_partitions=[("orders", 0), ("orders", 2), ("payments", 1)],
                        generation_id=7, rack_id="rack-a", version=version)
    theirs = KSubscription(version=version, topics=["orders", "payments"], user_data=b"\x00\x01ud",
                           owned_partitions=_grouped(ours.owned_partitions), generation_id=7,
                           rack_id="rack-a")
    assert encode_subscription(ours) == theirs.encode()
    back = decode_subscription(theirs.encode())
    assert back.topics == ours.topics and back.user_data == ours.user_data
    if version >= 1:
        assert back.owned_partitions == ours.owned_partitions
    if version >= 2:
        assert back.generation_id == 7
    if version >= 3:
        assert back.rack_id == "rack-a"
    decoded = KSubscription.decode(encode_subscription(ours))
    assert decoded.topics == ours.topics


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_assignment_bytes_match_kafka_python_both_ways(version):
    tps = [("a", 0), ("a", 1), ("b", 5)]
    theirs = KAssignment(version=version, assigned_partitions=_grouped(tps), user_data=None)
    assert encode_assignment(Assignment(tps, None, version)) == theirs.encode()
    assert decode_assignment(theirs.encode()).partitions == tps
    assert KAssignment.decode(encode_assignment(Assignment(tps, b"x", version))).user_data == b"x"


def test_null_fields_round_trip():
    sub = Subscription(topics=[], user_data=None, rack_id=None)
    assert decode_subscription(encode_subscription(sub)) == sub


def test_newer_version_is_read_as_v3_ignoring_trailing_fields():
    raw = bytearray(encode_subscription(Subscription(topics=["t"], rack_id="r")))
    raw[0:2] = (9).to_bytes(2, "big")
    sub = decode_subscription(bytes(raw) + b"future-fields")
    assert sub.topics == ["t"] and sub.rack_id == "r" and sub.version == 3


def test_empty_assignment_bytes_mean_no_partitions():
    assert decode_assignment(b"").partitions == []


def test_truncated_or_hostile_input_raises_kafka_error():
    good = encode_subscription(Subscription(topics=["abc"], owned_partitions=[("abc", 1)]))
    for cut in range(1, len(good)):
        with pytest.raises(errors.KafkaError):
            decode_subscription(good[:cut])
    huge_count = b"\x00\x00" + (2**31 - 1).to_bytes(4, "big")
    with pytest.raises(errors.InvalidRequest):
        decode_subscription(huge_count)
    with pytest.raises(errors.UnsupportedVersion):
        decode_assignment(b"\xff\xff\x00\x00\x00\x00")
    with pytest.raises(errors.UnsupportedVersion):
        encode_assignment(Assignment([], version=4))


def test_random_subscriptions_round_trip():
    rng = random.Random(5)
    for _ in range(200):
        topics = [f"t{rng.randrange(100)}" for _ in range(rng.randrange(4))]
        owned = [(rng.choice(["x", "y"]), rng.randrange(2**31)) for _ in range(rng.randrange(5))]
        owned.sort(key=lambda tp: tp[0])  # grouping by topic keeps first-seen topic order
        sub = Subscription(topics, rng.choice([None, rng.randbytes(rng.randrange(8))]), owned,
                           rng.randrange(-1, 100), rng.choice([None, "r1"]))
        assert decode_subscription(encode_subscription(sub)) == sub
