"""Client quotas against a real broker process: DescribeClientQuotas / AlterClientQuotas
(match types, strict, validate_only, Kafka's errors, durability over a restart), and
enforcement seen by librdkafka: a producer or consumer over its byte rate is held near
it and told so (throttle events), while a client without a quota is not slowed.

Rates are Kafka's: a window of ``quota.window.num`` one-second samples counted as at
least ``num - 1`` seconds, so a new client may first burst that many seconds' worth of
its quota (ten with Kafka's default of 11). The enforcement tests run with
``quota.window.num=2`` so that a few seconds show the quota: the achieved rate over the
run is then the quota plus at most one second's burst."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from pybroker import errors
from pybroker.client.admin import Admin, NewTopic
from pybroker.cluster.client_quotas import MATCH_DEFAULT, MATCH_EXACT, MATCH_SPECIFIED

pytestmark = pytest.mark.timeout(90)

ALICE = (("user", "alice"),)
ALICE_ANY_CLIENT = (("user", "alice"), ("client-id", None))
CLIENT_C1 = (("client-id", "c1"),)


def test_alter_describe_match_types_and_strict(pybroker_cluster):
    with Admin(pybroker_cluster.bootstrap) as admin:
        admin.alter_client_quotas([(ALICE, {"producer_byte_rate": 1024}),
                                   (ALICE_ANY_CLIENT, {"consumer_byte_rate": 2048, "request_percentage": 12.5}),
                                   (CLIENT_C1, {"producer_byte_rate": 100})])
        assert admin.describe_client_quotas() == {
            ALICE: {"producer_byte_rate": 1024.0},
            ALICE_ANY_CLIENT: {"consumer_byte_rate": 2048.0, "request_percentage": 12.5},
            CLIENT_C1: {"producer_byte_rate": 100.0}}
        assert set(admin.describe_client_quotas([("user", MATCH_EXACT, "alice")])) == {ALICE, ALICE_ANY_CLIENT}
        assert set(admin.describe_client_quotas([("user", MATCH_EXACT, "alice")], strict=True)) == {ALICE}
        assert set(admin.describe_client_quotas([("client-id", MATCH_DEFAULT, None)])) == {ALICE_ANY_CLIENT}
        assert set(admin.describe_client_quotas([("client-id", MATCH_SPECIFIED, None)], strict=True)) == {CLIENT_C1}
        assert admin.describe_client_quotas([("user", MATCH_DEFAULT, None)]) == {}
        # validate_only changes nothing; remove takes one key, and the last key the entity.
        admin.alter_client_quotas([((("user", "val"),), {"producer_byte_rate": 5})], validate_only=True)
        assert admin.describe_client_quotas([("user", MATCH_EXACT, "val")]) == {}
        admin.alter_client_quotas([(ALICE_ANY_CLIENT, {"request_percentage": None})])
        admin.alter_client_quotas([(ALICE, {"producer_byte_rate": None})])
        quotas = admin.describe_client_quotas([("user", MATCH_EXACT, "alice")])
        assert quotas == {ALICE_ANY_CLIENT: {"consumer_byte_rate": 2048.0}}


@pytest.mark.parametrize("entity, ops, message", [
    ((("ip", "1.2.3.4"), ("user", "x")), {"producer_byte_rate": 1},
     "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"),
    ((("ip", "1.2.3.4"),), {"producer_byte_rate": 1}, "Invalid configuration key producer_byte_rate"),
    ((("user", "bob"),), {"bogus": 1}, "Invalid configuration key bogus"),
    ((("user", "bob"),), {"producer_byte_rate": 1.5}, "producer_byte_rate cannot be a fractional value."),
    ((("user", "bob"),), {"producer_byte_rate": 0}, "Quota producer_byte_rate must be greater than 0"),
    ((("user", ""),), {"producer_byte_rate": 5}, "Empty user not supported"),
    ((("foo", "x"),), {"producer_byte_rate": 5}, "Unhandled client quota entity type: foo"),
    ((("ip", "1.2.3.4"),), {"connection_creation_rate": 3e9},
     "Proposed value for connection_creation_rate is too large for an INT."),
])
def test_alter_errors_are_kafkas(pybroker_cluster, entity, ops, message):
    with Admin(pybroker_cluster.bootstrap) as admin:
        with pytest.raises(errors.InvalidRequest) as raised:
            admin.alter_client_quotas([(entity, ops)])
        assert str(raised.value) == message
        assert admin.describe_client_quotas() == {}


@pytest.mark.parametrize("components, error, message", [
    ([("foo", MATCH_EXACT, "x")], errors.UnsupportedVersion, "Unsupported entity type foo"),
    ([("ip", MATCH_SPECIFIED, None), ("user", MATCH_SPECIFIED, None)], errors.InvalidRequest,
     "Invalid entity filter component combination. IP filter component should not be used with user or "
     "clientId filter component."),
    ([("user", MATCH_EXACT, None)], errors.InvalidRequest,
     "Request specified MATCH_TYPE_EXACT, but set match string to null."),
    ([("user", 5, None)], errors.InvalidRequest, "Unknown match type 5"),
    ([("user", MATCH_EXACT, "a"), ("user", MATCH_EXACT, "b")], errors.InvalidRequest,
     "Entity type user cannot appear more than once in the filter."),
])
def test_describe_errors_are_kafkas(pybroker_cluster, components, error, message):
    with Admin(pybroker_cluster.bootstrap) as admin:
        with pytest.raises(error) as raised:
            admin.describe_client_quotas(components)
        assert str(raised.value) == message


def test_quotas_survive_a_full_restart(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=2)
    with Admin(cluster.bootstrap) as admin:
        admin.alter_client_quotas([(ALICE_ANY_CLIENT, {"producer_byte_rate": 4096}),
                                   ((("ip", "127.0.0.1"),), {"connection_creation_rate": 10})])
        admin.alter_client_quotas([(ALICE_ANY_CLIENT, {"consumer_byte_rate": 8192})])
        expected = admin.describe_client_quotas()
    cluster.restart()
    with Admin(cluster.bootstrap) as admin:
        assert admin.describe_client_quotas() == expected == {
            ALICE_ANY_CLIENT: {"producer_byte_rate": 4096.0, "consumer_byte_rate": 8192.0},
            (("ip", "127.0.0.1"),): {"connection_creation_rate": 10.0}}
        # Every broker has them, not only the one that took the change.
        for node_id in (0, 1):
            conn = admin.client.connection(node_id)
            from pybroker.protocol import api
            response = conn.request(api.DESCRIBE_CLIENT_QUOTAS, {"components": [], "strict": False})
            assert len(response["entries"]) == 2


QUOTA = 200 * 1024
PAYLOAD = b"x" * 1000


def _produce_for(bootstrap: str, topic: str, client_id: str, seconds: float) -> tuple[list, list]:
    """Produce as fast as librdkafka takes it for ``seconds``; returns the delivery
    times with their sizes and the throttle events."""
    delivered, throttles = [], []
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                         "batch.size": 16384, "acks": 1,
                         "throttle_cb": lambda event: throttles.append((time.monotonic(), event.throttle_time))})

    def on_delivery(err, msg):
        if err is None:
            delivered.append((time.monotonic(), len(msg.value())))

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            producer.produce(topic, PAYLOAD, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.purge()
    producer.flush(5)
    return delivered, throttles


# Short quota windows: the initial burst is one second's worth, not ten.
SHORT_WINDOWS = ["--broker-config", "quota.window.num=2"]


def _rate(events: list) -> float:
    """Bytes per second from the first event to the last."""
    if len(events) < 2:
        return 0.0
    return sum(n for _, n in events) / (events[-1][0] - events[0][0])


def test_producer_byte_rate_holds_a_producer_near_its_quota(pybroker_cluster_factory):
    bootstrap = pybroker_cluster_factory(extra_args=SHORT_WINDOWS).bootstrap
    topic = f"quota-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap) as admin:
        admin.create_topics([NewTopic(topic, 1, 1)])
        admin.alter_client_quotas([((("client-id", "quoted"),), {"producer_byte_rate": QUOTA})])
    delivered, throttles = _produce_for(bootstrap, topic, "quoted", 4.0)
    assert throttles and max(t for _, t in throttles) > 0, "no throttle reported to the producer"
    rate = _rate(delivered)
    assert 0.6 * QUOTA <= rate <= 1.4 * QUOTA, f"quoted producer achieved {rate / 1024:.0f} KiB/s"
    free, free_throttles = _produce_for(bootstrap, topic, "free", 1.5)
    free_rate = sum(n for _, n in free) / 1.5
    assert not free_throttles
    assert free_rate > 4 * QUOTA, f"unquoted producer achieved only {free_rate / 1024:.0f} KiB/s"


def test_consumer_byte_rate_holds_a_consumer_near_its_quota(pybroker_cluster_factory):
    bootstrap = pybroker_cluster_factory(extra_args=SHORT_WINDOWS).bootstrap
    topic = f"quota-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap) as admin:
        admin.create_topics([NewTopic(topic, 1, 1)])
        admin.alter_client_quotas([((("client-id", "slow-reader"),), {"consumer_byte_rate": QUOTA})])
    # Small batches: a fetch returns at least one whole batch, whatever its size.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 16384, "client.id": "loader"})
    for _ in range(4000):
        producer.produce(topic, PAYLOAD)
        producer.poll(0)
    assert producer.flush(20) == 0

    def consume(client_id: str, seconds: float) -> tuple[list, list]:
        got, throttles = [], []
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                             "client.id": client_id, "enable.auto.commit": False,
                             "fetch.max.bytes": 65536, "max.partition.fetch.bytes": 65536, "message.max.bytes": 65536,
                             "throttle_cb": lambda e: throttles.append((time.monotonic(), e.throttle_time))})
        consumer.assign([TopicPartition(topic, 0, 0)])
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(got) < 4000:
            for msg in consumer.consume(500, 0.2):
                if msg.error() is None:
                    got.append((time.monotonic(), len(msg.value())))
        consumer.close()
        return got, throttles

    got, throttles = consume("slow-reader", 4.0)
    assert throttles and max(t for _, t in throttles) > 0, "no throttle reported to the consumer"
    rate = _rate(got)
    assert 0.6 * QUOTA <= rate <= 1.4 * QUOTA, f"quoted consumer achieved {rate / 1024:.0f} KiB/s"
    assert len(got) < 4000, "the quoted consumer read everything: it was not held back"
    free, free_throttles = consume("fast-reader", 10.0)
    assert len(free) == 4000 and not free_throttles


def test_request_percentage_throttles_a_busy_client_only(pybroker_cluster, wire):
    """A client allowed 0.0001 % of a thread's time is throttled after a few Metadata
    requests; its connection is muted meanwhile (the next answer comes late); another
    client-id is not throttled; ApiVersions is exempt, as in Kafka."""
    bootstrap = pybroker_cluster.bootstrap
    with Admin(bootstrap) as admin:
        admin.alter_client_quotas([((("client-id", "busy"),), {"request_percentage": 0.0001})])
    with wire.RawClient(bootstrap, client_id="busy") as busy, wire.RawClient(bootstrap, client_id="idle") as idle:
        throttles = []
        while len(throttles) < 20 and not any(throttles):
            throttles.append(busy.metadata(None, version=4).throttle_time_ms)
        assert max(throttles) > 0, throttles
        assert max(throttles) <= 1000, "request_percentage throttles at most one window"
        began = time.monotonic()
        busy.metadata(None, version=4)
        assert time.monotonic() - began >= 0.8 * throttles[-1] / 1000.0
        assert all(idle.metadata(None, version=4).throttle_time_ms == 0 for _ in range(3))
        # A consumer fetch over request_percentage is answered empty, as Kafka's.
        topic = f"quota-{uuid.uuid4().hex[:8]}"
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": "loader"})
        producer.produce(topic, b"record")
        assert producer.flush(10) == 0
        fetched = busy.request(_fetch_request(wire, topic), 10)
        assert fetched.throttle_time_ms > 0 and fetched.responses == []
        fetched = idle.request(_fetch_request(wire, topic), 10)
        assert fetched.throttle_time_ms == 0 and fetched.responses[0].partitions[0].records


def _fetch_request(wire, topic: str):
    request = wire.FetchRequest
    return request(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0,
                   session_epoch=-1, topics=[request.FetchTopic(topic=topic, partitions=[
                       request.FetchTopic.FetchPartition(partition=0, current_leader_epoch=-1, fetch_offset=0,
                                                         log_start_offset=-1, partition_max_bytes=1 << 20)])],
                   forgotten_topics_data=[])


def test_java_admin_client_quotas(pybroker_cluster, java_program):
    import subprocess

    run = subprocess.run([*java_program, "QuotaInterop", pybroker_cluster.bootstrap],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    alice = "{client-id=null, user=alice}={producer_byte_rate=1024.0, request_percentage=50.0}"
    c1 = "{client-id=c1}={consumer_byte_rate=2048.0}"
    assert [line for line in run.stdout.splitlines() if line] == [
        "altered",
        "validated",
        "bogus: InvalidRequestException: Invalid configuration key bogus",
        f"all: [{c1}, {alice}]",
        f"user alice: [{alice}]",
        "user alice strict: []",
        f"default client-id: [{alice}]",
        f"any client-id strict: [{c1}]",
        "user val: []",
        f"after remove: [{c1}, {{client-id=null, user=alice}}={{producer_byte_rate=1024.0}}]",
    ]
