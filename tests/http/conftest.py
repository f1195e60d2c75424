"""Helpers for the HTTP tests: scrape /metrics into a dict, call the console's JSON API."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families


class Http:
    @staticmethod
    def scrape(console_url: str) -> dict:
        """``{(sample name, ((label, value), ...)): value}`` of one /metrics scrape."""
        with urllib.request.urlopen(console_url + "metrics", timeout=10) as res:
            assert res.headers["Content-Type"].startswith("text/plain")
            text = res.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    @staticmethod
    def call(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        """GET (no body) or POST a JSON body; (status, decoded answer)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


    @staticmethod
    def produce(bootstrap: str, topic: str, count: int, partition: int = -1) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        for i in range(count):
            producer.produce(topic, b"v%04d" % i, partition=partition)
        assert producer.flush(20) == 0

    @staticmethod
    def consume(bootstrap: str, topic: str, group: str, count: int):
        """A subscribed confluent-kafka consumer that read ``count`` records and committed
        them; still a member of ``group`` (close it to leave)."""
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        for _ in range(count):
            msg = consumer.poll(10)
            assert msg is not None, "no message within 10 s"
            assert msg.error() is None, msg.error()
        consumer.commit(asynchronous=False)
        return consumer


@pytest.fixture
def http() -> type[Http]:
    return Http
