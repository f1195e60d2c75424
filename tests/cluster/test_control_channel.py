"""The control channel between supervisor and brokers: an answer's snapshot is applied
before the messages the peer sent after it."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from pybroker.control.channel import Channel

REGISTER = {"type": "register", "node_id": 0, "host": "127.0.0.1", "port": 1, "pid": 1}
UPDATE = {"type": "update", "brokers": [1], "topics": [], "deleted_topics": [], "partitions": []}


@contextlib.asynccontextmanager
async def connected(tmp_path, server_handler, client_handler):
    """A 'supervisor' serving ``server_handler`` and a 'broker' channel to it."""
    path = str(tmp_path / "control.sock")
    served = []

    async def on_connection(reader, writer):
        channel = Channel(reader, writer, name="supervisor-side")
        served.append(asyncio.current_task())
        await channel.serve(lambda doc: server_handler(channel, doc))

    server = await asyncio.start_unix_server(on_connection, path)
    client = await Channel.connect(path, name="broker-side")
    serving = asyncio.get_running_loop().create_task(client.serve(client_handler))
    try:
        yield client
    finally:
        client.close()
        await asyncio.wait_for(asyncio.gather(serving, *served), 5)
        server.close()
        await server.wait_closed()


async def _exchange(tmp_path, use_on_reply: bool) -> list[str]:
    """The supervisor answers a register with a snapshot and, straight after, pushes an
    update (as when another broker registers); returns the order the broker applied them."""
    applied: list[str] = []

    def answer_then_push(channel, doc):
        asyncio.get_running_loop().call_soon(channel.send, dict(UPDATE))
        return {"image": "snapshot"}

    async with connected(tmp_path, answer_then_push, lambda doc: applied.append(doc["type"])) as client:
        if use_on_reply:
            await client.request(REGISTER, timeout=5, on_reply=lambda reply: applied.append(reply["image"]))
        else:
            applied.append((await client.request(REGISTER, timeout=5))["image"])
        for _ in range(100):
            if len(applied) == 2:
                break
            await asyncio.sleep(0.01)
    return applied


def test_snapshot_in_an_answer_is_applied_before_later_updates(tmp_path):
    assert asyncio.run(_exchange(tmp_path, use_on_reply=True)) == ["snapshot", "update"]


def test_a_caller_applying_the_snapshot_after_await_sees_the_update_first(tmp_path):
    # Why on_reply exists: applied after ``await``, the older snapshot would overwrite
    # the newer update (a broker then missed a broker that registered just after it).
    assert asyncio.run(_exchange(tmp_path, use_on_reply=False)) == ["update", "snapshot"]


def test_an_error_answer_skips_on_reply(tmp_path):
    called = []

    def fail(channel, doc):
        raise ValueError("boom")

    async def run():
        async with connected(tmp_path, fail, lambda doc: None) as client:
            with pytest.raises(Exception, match="boom"):
                await client.request(REGISTER, timeout=5, on_reply=called.append)

    asyncio.run(run())
    assert called == []
