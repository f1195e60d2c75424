"""aiokafka against a real pybroker process.

Each test body is a coroutine run with asyncio.run (no async plugin needed). Consumers
use assign() without a group id, so no group coordination is exercised.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as aerrors
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.interop

TIMEOUT = 15.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT * 3))


@contextlib.asynccontextmanager
async def producer(cluster, **conf):
    conf.setdefault("linger_ms", 5)
    conf.setdefault("request_timeout_ms", int(TIMEOUT * 1000))
    prod = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, **conf)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


@contextlib.asynccontextmanager
async def consumer(cluster, partitions, from_beginning: bool = True, **conf):
    conf.setdefault("request_timeout_ms", int(TIMEOUT * 1000) + 1000)
    cons = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None,
                            enable_auto_commit=False, **conf)
    await cons.start()
    try:
        cons.assign(partitions)
        if from_beginning:
            await cons.seek_to_beginning(*partitions)
        yield cons
    finally:
        await cons.stop()


@contextlib.asynccontextmanager
async def admin(cluster):
    client = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap,
                                 request_timeout_ms=int(TIMEOUT * 1000))
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def send_all(prod, topic: str, items, partition: int = 0, **kwargs) -> list:
    """Send (key, value) items concurrently and wait for every acknowledgement."""
    futures = [await prod.send(topic, value=v, key=k, partition=partition, **kwargs)
               for k, v in items]
    return list(await asyncio.gather(*futures))


async def consume(cons, count: int, timeout: float = TIMEOUT) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for records in (await cons.getmany(timeout_ms=200)).values():
            out.extend(records)
    return out


async def create_topic(cluster, topic: str, partitions: int = 1, configs: dict | None = None):
    async with admin(cluster) as client:
        resp = await client.create_topics([NewTopic(topic, partitions, 1,
                                                    topic_configs=configs or {})])
        assert [e[1] for e in resp.topic_errors] == [0], resp.topic_errors


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_with_acks_then_consume_everything(pybroker_cluster, topic, acks):
    # acks=0 carries no delivery guarantee; on loopback with a healthy broker nothing is
    # lost, so all records are required: a loss here is a broker bug worth seeing.
    values = [f"acks-{acks}-{i}".encode() for i in range(200)]

    async def body():
        async with producer(pybroker_cluster, acks=acks) as prod:
            metas = await send_all(prod, topic, [(None, v) for v in values])
        if acks != 0:
            assert [m.offset for m in metas] == list(range(200))
        async with consumer(pybroker_cluster, [TopicPartition(topic, 0)]) as cons:
            return await consume(cons, len(values))

    got = run(body())
    assert [r.value for r in got] == values
    assert [r.offset for r in got] == list(range(200))


def test_idempotent_producer_delivers_each_record_once(pybroker_cluster, topic):
    values = [f"idem-{i}".encode() for i in range(300)]

    async def body():
        async with producer(pybroker_cluster, acks="all", enable_idempotence=True) as prod:
            metas = await send_all(prod, topic, [(None, v) for v in values])
        assert [m.offset for m in metas] == list(range(300))
        async with consumer(pybroker_cluster, [TopicPartition(topic, 0)]) as cons:
            return await consume(cons, len(values) + 1, timeout=3.0)

    assert [r.value for r in run(body())] == values


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip_and_stay_compressed(pybroker_cluster, topic, codec, wire):
    values = [(f"record {i} " * 40).encode() for i in range(100)]

    async def body():
        async with producer(pybroker_cluster, compression_type=codec, linger_ms=50) as prod:
            await send_all(prod, topic, [(None, v) for v in values])
        async with consumer(pybroker_cluster, [TopicPartition(topic, 0)]) as cons:
            return await consume(cons, len(values))

    assert [r.value for r in run(body())] == values
    stored = wire.stored_codecs(pybroker_cluster, topic)
    assert stored["fetched"] == {wire.CODEC_NAMES[codec]}
    assert stored["on_disk"] == {wire.CODEC_NAMES[codec]}


def test_consume_from_earliest_reads_existing_records(pybroker_cluster, topic):
    async def body():
        async with producer(pybroker_cluster) as prod:
            await send_all(prod, topic, [(None, b"old-%d" % i) for i in range(10)])
        # No committed offset and no seek: auto_offset_reset applies.
        async with consumer(pybroker_cluster, [TopicPartition(topic, 0)], from_beginning=False,
                            auto_offset_reset="earliest") as cons:
            return await consume(cons, 10)

    assert [r.value for r in run(body())] == [b"old-%d" % i for i in range(10)]


def test_consume_from_latest_sees_only_records_produced_after(pybroker_cluster, topic):
    tp = TopicPartition(topic, 0)

    async def body():
        async with producer(pybroker_cluster) as prod:
            await send_all(prod, topic, [(None, b"before-%d" % i) for i in range(10)])
            async with consumer(pybroker_cluster, [tp], from_beginning=False) as cons:
                await cons.seek_to_end(tp)
                assert await cons.position(tp) == 10  # positioned before producing more
                await send_all(prod, topic, [(None, b"after-%d" % i) for i in range(5)])
                got = await consume(cons, 5)
                return got + await consume(cons, 1, timeout=1.0)

    assert [r.value for r in run(body())] == [b"after-%d" % i for i in range(5)]


def test_offsets_for_times_returns_first_offset_at_or_after_timestamp(pybroker_cluster, topic):
    base = int(time.time() * 1000) - 100_000
    tp = TopicPartition(topic, 0)

    async def body():
        async with producer(pybroker_cluster, linger_ms=0) as prod:
            for i in range(10):
                # One batch per record so the broker's time index sees each timestamp.
                await prod.send_and_wait(topic, b"ts-%d" % i, partition=0,
                                         timestamp_ms=base + i * 1000)
        async with consumer(pybroker_cluster, [tp], from_beginning=False) as cons:
            return [(await cons.offsets_for_times({tp: ts}))[tp]
                    for ts in (base + 3500, base + 7000, base + 60_000)]

    found, exact, beyond = run(body())
    assert (found.offset, found.timestamp) == (4, base + 4000)
    assert (exact.offset, exact.timestamp) == (7, base + 7000)
    assert beyond is None  # nothing at or after: Kafka answers offset -1


def test_admin_topic_lifecycle(pybroker_cluster, topic):
    async def body():
        await create_topic(pybroker_cluster, topic, 3, {"retention.ms": "3600000"})
        async with admin(pybroker_cluster) as client:
            described = await client.describe_topics([topic])
            assert len(described[0]["partitions"]) == 3

            responses = await client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)])
            resource = responses[0].to_object()["resources"][0]
            assert resource["error_code"] == 0
            entries = {e["config_names"]: e for e in resource["config_entries"]}
            assert entries["retention.ms"]["config_value"] == "3600000"

            await client.create_partitions({topic: NewPartitions(5)})
            assert len((await client.describe_topics([topic]))[0]["partitions"]) == 5

            with pytest.raises(aerrors.InvalidPartitionsError) as shrink:
                await client.create_partitions({topic: NewPartitions(2)})
            assert re.search(r"reduc|decreas|shrink", str(shrink.value), re.I), str(shrink.value)

            resp = await client.delete_topics([topic])
            assert [e[1] for e in resp.topic_error_codes] == [0]
            deadline = time.monotonic() + TIMEOUT
            while topic in await client.list_topics() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return await client.list_topics()

    assert topic not in run(body())


def test_keys_and_headers_survive(pybroker_cluster, topic):
    headers = [("trace", b"abc"), ("empty", b""), ("dup", b"1"), ("dup", b"2"), ("none", None)]

    async def body():
        async with producer(pybroker_cluster) as prod:
            await send_all(prod, topic, [(b"key-1", b"v1"), (None, b"v2"), (b"", None)],
                           headers=headers)
        async with consumer(pybroker_cluster, [TopicPartition(topic, 0)]) as cons:
            return await consume(cons, 3)

    got = run(body())
    assert [(r.key, r.value) for r in got] == [(b"key-1", b"v1"), (None, b"v2"), (b"", None)]
    for r in got:
        assert list(r.headers) == headers


def test_many_partitions_each_keep_their_records(pybroker_cluster, topic):
    partitions = 24
    tps = [TopicPartition(topic, p) for p in range(partitions)]

    async def body():
        await create_topic(pybroker_cluster, topic, partitions)
        async with producer(pybroker_cluster) as prod:
            for p in range(partitions):
                await send_all(prod, topic, [(None, b"p%d-%d" % (p, i)) for i in range(5)],
                               partition=p)
        async with consumer(pybroker_cluster, tps) as cons:
            return await consume(cons, partitions * 5)

    by_partition: dict[int, list] = {}
    for r in run(body()):
        by_partition.setdefault(r.partition, []).append(r.value)
    assert by_partition == {p: [b"p%d-%d" % (p, i) for i in range(5)] for p in range(partitions)}


def test_message_near_max_size_accepted_and_above_rejected(pybroker_cluster, topic):
    limit = 200_000
    near = b"n" * (limit - 200)  # a one-record batch adds ~80 bytes of framing

    async def body():
        await create_topic(pybroker_cluster, topic, 1, {"max.message.bytes": str(limit)})
        async with producer(pybroker_cluster, linger_ms=0) as prod:
            ok = await prod.send_and_wait(topic, near, partition=0)
            assert ok.offset == 0
            with pytest.raises(aerrors.MessageSizeTooLargeError):
                await prod.send_and_wait(topic, b"x" * (limit + 1000), partition=0)
        async with consumer(pybroker_cluster, [TopicPartition(topic, 0)],
                            max_partition_fetch_bytes=4 * limit, fetch_max_bytes=4 * limit) as cons:
            return await consume(cons, 2, timeout=3.0)

    assert [r.value for r in run(body())] == [near]
