"""The console's JSON API against a real cluster: every action round-trips through the
cluster and shows in what the page reads; writes are refused where they must be."""
from __future__ import annotations

import asyncio
import json

import pytest
from pybroker.http.server import HttpServer, is_loopback
from pybroker.testing import wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.interop]


def _topic(doc: dict, name: str) -> dict | None:
    return next((t for t in doc["topics"] if t["name"] == name), None)


def _group(doc: dict, name: str) -> dict | None:
    return next((g for g in doc["groups"] if g["group"] == name), None)


def test_create_produce_browse_reset_delete(pybroker_cluster_factory, http, topic):
    cluster = pybroker_cluster_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"])
    base = cluster.console_url

    code, answer = http.call(base + "api/topics", {"name": topic, "partitions": 2, "replication_factor": 1,
                                                   "configs": {"retention.ms": "3600000"}})
    assert (code, answer) == (200, {"result": f"created topic {topic}"})
    code, answer = http.call(base + "api/topics", {"name": topic, "partitions": 2})
    assert code == 400 and answer["error"].startswith("TOPIC_ALREADY_EXISTS")
    code, doc = http.call(base + "api/cluster")
    made = _topic(doc, topic)
    assert len(made["partitions"]) == 2 and made["configs"] == {"retention.ms": "3600000"}
    assert doc["read_only"] is False and doc["brokers"][0]["state"] == "up"

    code, stored = http.call(base + "api/produce", {"topic": topic, "partition": 1, "key": "order-7",
                                                    "value": '{"total": 12.5}', "headers": [["source", "console"]]})
    assert code == 200 and stored == {"topic": topic, "partition": 1, "offset": 0}
    code, read = http.call(base + f"api/messages?topic={topic}&partition=1&offset=0")
    assert code == 200 and read["high_watermark"] == 1
    (record,) = read["records"]
    assert record["offset"] == 0 and record["key"]["text"] == "order-7"
    assert json.loads(record["value"]["json"]) == {"total": 12.5}
    assert record["headers"] == [{"key": "source", "value": {"size": 7, "truncated": False, "hex": "63 6f 6e 73 6f 6c 65",
                                                             "text": "console", "json": None}}]
    code, read = http.call(base + f"api/messages?topic={topic}&partition=1&timestamp={record['timestamp']}")
    assert code == 200 and [r["offset"] for r in read["records"]] == [0]
    code, read = http.call(base + f"api/messages?topic={topic}&partition=1&timestamp={record['timestamp'] + 60_000}")
    assert code == 200 and read["records"] == [] and read["first"] == 1
    code, answer = http.call(base + "api/messages?topic=no-such-topic&partition=0")
    assert code == 400 and "no-such-topic" in answer["error"]

    # A group that committed everything, then an offset reset while it is active and after.
    http.produce(cluster.bootstrap, topic, 10, partition=0)
    consumer = http.consume(cluster.bootstrap, topic, "console-group", 11)
    code, answer = http.call(base + "api/groups/console-group/reset", {"scenario": "earliest", "topic": topic})
    assert code == 400 and "can only be reset if the group 'console-group' is inactive" in answer["error"]
    consumer.close()

    wait_until(lambda: (g := _group(http.call(base + "api/cluster")[1], "console-group")) and g["state"] == "Empty",
               15, "the group to become Empty")
    code, answer = http.call(base + "api/groups/console-group/reset", {"scenario": "earliest", "topic": topic})
    assert code == 200 and f"console-group {topic}" in " ".join(answer["output"].split())
    group = wait_until(lambda: (g := _group(http.call(base + "api/cluster")[1], "console-group")) and
                       g["lag"] == 11 and g, 15, "the reset lag in the console")
    assert {(o["partition"], o["current_offset"], o["lag"]) for o in group["offsets"]} == {(0, 0, 10), (1, 0, 1)}
    code, answer = http.call(base + "api/groups/console-group/reset", {"scenario": "offset", "topic": topic})
    assert code == 400 and "needs a value" in answer["error"]

    code, answer = http.call(base + f"api/topics/{topic}/delete", {})
    assert code == 200
    assert _topic(http.call(base + "api/cluster")[1], topic) is None


def test_actions_refuse_cross_origin_and_non_json(pybroker_cluster_factory, http, topic):
    cluster = pybroker_cluster_factory()
    url = cluster.console_url + "api/topics"
    code, answer = http.call(url, {"name": topic}, headers={"Origin": "http://evil.example"})
    assert code == 403 and "cross-origin" in answer["error"]
    code, answer = http.call(url, {"name": topic}, headers={"Content-Type": "text/plain"})
    assert code == 415
    assert _topic(http.call(cluster.console_url + "api/cluster")[1], topic) is None


class _FakeSocket:
    def __init__(self, host: str):
        self.host = host

    def getsockname(self):
        return (self.host, 9644)


def test_read_only_beyond_loopback_unless_enabled():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7")
    assert HttpServer(_FakeSocket("127.0.0.1")).allow_writes
    assert not HttpServer(_FakeSocket("0.0.0.0")).allow_writes
    assert HttpServer(_FakeSocket("0.0.0.0"), allow_writes=True).allow_writes

    async def post_to_read_only() -> tuple[int, dict]:
        from aiohttp.test_utils import TestClient, TestServer

        server = HttpServer(_FakeSocket("0.0.0.0"))
        async with TestClient(TestServer(server.app())) as client:
            res = await client.post("/api/topics", json={"name": "t"})
            return res.status, await res.json()

    status, answer = asyncio.run(post_to_read_only())
    assert status == 403 and "read-only" in answer["error"] and "--console-actions" in answer["error"]


def test_a_kip848_consumer_group_shows_its_members_assignment_and_lag(pybroker_cluster_factory, http, topic):
    from confluent_kafka import Consumer

    cluster = pybroker_cluster_factory(extra_args=["--num-partitions", "2"])
    http.produce(cluster.bootstrap, topic, 20, partition=0)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "modern", "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    try:
        got = 0
        while got < 5:
            msg = consumer.poll(10)
            assert msg is not None and msg.error() is None
            got += 1
        consumer.commit(message=msg, asynchronous=False)

        def shown():
            group = _group(http.call(cluster.console_url + "api/cluster")[1], "modern")
            return group if group and group["members"] and group["offsets"] and group["lag"] == 15 else None

        group = wait_until(shown, 20, "the consumer group with its member and lag")
        assert group["type"] == "consumer" and group["state"] == "Stable"
        assert sorted(map(tuple, group["members"][0]["assignment"])) == [(topic, 0), (topic, 1)]
        row = next(o for o in group["offsets"] if o["partition"] == 0)
        assert (row["current_offset"], row["log_end_offset"], row["lag"]) == (5, 20, 15)
    finally:
        consumer.close()


def test_console_actions_and_status_work_on_a_sasl_only_cluster(pybroker_cluster_factory, http, topic):
    """No PLAINTEXT listener: the console reaches the brokers on their private sockets,
    status reads the supervisor, and both see what a SASL client produced."""
    import subprocess
    import sys

    cluster = pybroker_cluster_factory(brokers=2, extra_args=["--listener", "SASL_PLAINTEXT",
                                                              "--super-user", "admin:admin-secret"])
    base = cluster.console_url
    code, answer = http.call(base + "api/topics", {"name": topic, "partitions": 2, "replication_factor": 2})
    assert (code, answer) == (200, {"result": f"created topic {topic}"})
    code, stored = http.call(base + "api/produce", {"topic": topic, "partition": 1, "value": "v"})
    assert code == 200 and stored == {"topic": topic, "partition": 1, "offset": 0}
    code, read = http.call(base + f"api/messages?topic={topic}&partition=1&offset=0")
    assert code == 200 and [r["value"]["text"] for r in read["records"]] == ["v"]
    status = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "status", "--data", str(cluster.data_dir),
                             "--json"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert [b["listeners"]["SASL_PLAINTEXT"] for b in doc["brokers"]] == \
        [int(a.rsplit(":", 1)[1]) for a in cluster.bootstrap.split(",")]
    assert {p["partition"]: p["high_watermark"] for p in doc["partitions"] if p["topic"] == topic} == {0: 0, 1: 1}
