"""Metadata's answer for a requested topic that this broker's image does not hold yet."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from pybroker.broker.apis import metadata
from pybroker.cluster.metadata import BrokerInfo, ClusterImage
from pybroker.errors import InvalidReplicationFactor, LeaderNotAvailable, TopicAlreadyExists
from pybroker.protocol.api import Request


def answer(create_error: int, auto_create: bool = True) -> dict:
    """One broker whose image lags the controller: the topic is unknown locally and the
    controller answers the auto-create with ``create_error``."""
    calls = []

    async def create_topic_now(name):
        calls.append(name)
        return {"name": name, "error_code": create_error}

    broker = SimpleNamespace(
        image=ClusterImage(brokers={0: BrokerInfo(0, "127.0.0.1", 9092)}),
        config=SimpleNamespace(auto_create_topics_enable=True),
        create_topic_now=create_topic_now, authorizer=None,
    )
    body = {"topics": [{"name": "orders"}], "allow_auto_topic_creation": auto_create}
    response = asyncio.run(metadata.handle(broker, Request(3, 9, 1, "test", body, 2)))
    assert calls == (["orders"] if auto_create else [])
    [topic] = response["topics"]
    assert topic["name"] == "orders" and topic["partitions"] == []
    return topic


@pytest.mark.parametrize("create_error", [0, TopicAlreadyExists.code], ids=["created-now", "created-by-another"])
def test_topic_created_but_not_yet_in_the_image_is_retriable(create_error):
    # A non-retriable code here (TOPIC_ALREADY_EXISTS) stops kafka-python refreshing
    # metadata for minutes: its group leader then assigns nothing and never rejoins.
    assert answer(create_error)["error_code"] == LeaderNotAvailable.code


def test_a_failed_auto_create_reports_the_controllers_error():
    assert answer(InvalidReplicationFactor.code)["error_code"] == InvalidReplicationFactor.code


def test_no_auto_create_answers_unknown_topic():
    assert answer(0, auto_create=False)["error_code"] == 3
