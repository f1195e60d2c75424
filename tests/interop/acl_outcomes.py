"""What a confluent-kafka client meets under the authorizer: the name of the error one
produce or one consume ends with, or what it got."""
from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer

TIMEOUT = 15.0


def produce(conf: dict, topic: str, value: bytes = b"v") -> str | None:
    """The delivery error's name, or None when acknowledged."""
    reports = []
    producer = Producer({**conf, "acks": "all", "message.timeout.ms": 8000})
    producer.produce(topic, value, on_delivery=lambda err, msg: reports.append(err))
    producer.flush(TIMEOUT)
    assert len(reports) == 1
    return reports[0].name() if reports[0] else None


def consume(conf: dict, topic: str, group: str) -> str:
    """The first record's value, or the name of the first error the consumer reports."""
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                return msg.error().name() if msg.error() else msg.value().decode()
        return "nothing"
    finally:
        consumer.close()
