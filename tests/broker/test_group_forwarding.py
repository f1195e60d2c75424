"""Group requests a broker forwards to the supervisor: they wait as long as the group
protocol allows, and when the supervisor cannot answer the client gets a Kafka error
code in the group protocol's words instead of a dropped connection."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from pybroker import errors
from pybroker.broker import controller_link
from pybroker.broker.apis import groups
from pybroker.broker.controller_link import RemoteController, group_wait_s
from pybroker.control.channel import Channel
from pybroker.protocol.api import Request


async def silent_supervisor(path: str):
    """A control socket that reads every request and answers none."""
    async def swallow(reader, writer):
        while await reader.read(65536):
            pass
    return await asyncio.start_unix_server(swallow, path)


async def linked_controller(path: str) -> tuple[RemoteController, asyncio.Task]:
    controller = RemoteController(path)
    controller.channel = await Channel.connect(path, name="supervisor")
    serving = asyncio.get_running_loop().create_task(controller.channel.serve(lambda doc: None))
    return controller, serving


def join_request(rebalance_timeout_ms: int) -> Request:
    body = {"group_id": "g", "member_id": "", "protocol_type": "consumer", "session_timeout_ms": 10_000,
            "rebalance_timeout_ms": rebalance_timeout_ms, "group_instance_id": None,
            "protocols": [{"name": "range", "metadata": b""}]}
    return Request(11, 5, 7, "test", body, 1)


def test_join_waits_for_the_rebalance_timeout_not_the_control_timeout():
    assert group_wait_s("join", {"rebalance_timeout_ms": 300_000, "session_timeout_ms": 10_000}) >= 300
    assert group_wait_s("join", {"rebalance_timeout_ms": -1, "session_timeout_ms": 45_000}) >= 45
    assert group_wait_s("sync", {}) >= 300
    assert group_wait_s("heartbeat", {}) == controller_link.CONTROL_TIMEOUT_S


@pytest.mark.parametrize("method, request_factory, code", [
    ("join", lambda: join_request(100), errors.RebalanceInProgress.code),
    ("heartbeat", lambda: Request(12, 3, 8, "test", {"group_id": "g", "member_id": "m", "generation_id": 1,
                                                    "group_instance_id": None}, 1),
     errors.CoordinatorNotAvailable.code),
    ("describe_groups", lambda: Request(15, 0, 9, "test", {"groups": ["g"]}, 1), errors.CoordinatorNotAvailable.code),
    ("list_groups", lambda: Request(16, 0, 10, "test", {}, 1), errors.CoordinatorNotAvailable.code),
])
def test_a_supervisor_that_does_not_answer_gets_a_kafka_error(tmp_path, monkeypatch, method, request_factory, code):
    monkeypatch.setattr(controller_link, "CONTROL_TIMEOUT_S", 0.2)
    monkeypatch.setattr(controller_link, "GROUP_WAIT_MARGIN_S", 0.1)
    handler = {"join": groups.join_group, "heartbeat": groups.heartbeat,
               "describe_groups": groups.describe_groups, "list_groups": groups.list_groups}[method]

    async def run():
        path = str(tmp_path / "s.sock")
        server = await silent_supervisor(path)
        controller, serving = await linked_controller(path)
        try:
            broker = SimpleNamespace(controller=controller, authorizer=None)
            return await asyncio.wait_for(handler(broker, request_factory()), 10)
        finally:
            serving.cancel()
            controller.channel.close()
            server.close()

    response = asyncio.run(run())
    found = response["error_code"] if "error_code" in response else response["groups"][0]["error_code"]
    assert found == code, response


def test_a_supervisor_that_went_away_means_coordinator_not_available():
    async def run():
        controller = RemoteController("/nonexistent")
        return await groups.heartbeat(SimpleNamespace(controller=controller, authorizer=None), Request(
            12, 3, 1, "test", {"group_id": "g", "member_id": "m", "generation_id": 1, "group_instance_id": None}, 1))

    assert asyncio.run(run())["error_code"] == errors.CoordinatorNotAvailable.code
