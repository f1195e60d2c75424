"""A connection reads ahead between frames: one recv takes the next size, a small frame
whole and whatever the client pipelined after it. Frames still reach the handler whole,
in order and byte for byte (a large one spans reads), each reserved from the memory pool;
what is read while reading is paused waits and is handled after; the responses of
pipelined requests share sends."""
from __future__ import annotations

import asyncio
import socket
import struct
import types

from pybroker.broker.connection import READ_AHEAD_BYTES, Connection
from pybroker.broker.memory_pool import MemoryPool
from test_connection_response_writes import CountingTransport


def frame(i: int, size: int) -> bytes:
    body = struct.pack(">i", i) + bytes((i + k) % 251 for k in range(size - 4))
    return struct.pack(">i", len(body)) + body


async def _serve(payload: bytes, expect: int, memory: MemoryPool | None = None, slow_first: bool = False):
    """Send ``payload`` (frames back to back) to a Connection in one sendall; returns the
    frames its handler saw, the responses the client got, and the transport's writes."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    seen: list[bytes] = []
    gate = asyncio.Event()

    async def handle_frame(conn, data):
        if slow_first and not seen:
            await gate.wait()
        seen.append(bytes(data))
        (i,) = struct.unpack_from(">i", data)
        return [struct.pack(">ii", 4, i)]

    server = types.SimpleNamespace(config=types.SimpleNamespace(socket_request_max_bytes=1 << 24),
                                   connections=set(), handle_frame=handle_frame)
    conn = Connection(server, memory=memory)
    transport, _ = await loop.connect_accepted_socket(lambda: conn, ours)
    counting = CountingTransport(transport)
    conn.transport = counting
    theirs.setblocking(False)
    await loop.sock_sendall(theirs, payload)
    received = bytearray()
    try:
        async def read_all():
            while len(received) < 8 * expect:
                if slow_first and len(seen) == 0:
                    await asyncio.sleep(0.05)
                    gate.set()
                data = await loop.sock_recv(theirs, 1 << 20)
                if not data:
                    return
                received.extend(data)
        await asyncio.wait_for(read_all(), 10)
    finally:
        transport.close()
        conn._task.cancel()
        theirs.close()
    answers = [struct.unpack_from(">ii", received, k)[1] for k in range(0, len(received), 8)]
    return seen, answers, counting.writes


def test_pipelined_frames_arrive_whole_in_order_and_share_sends():
    sizes = [40, 150, 3, 4, READ_AHEAD_BYTES * 3 + 7, 60, READ_AHEAD_BYTES - 10, 90] + [30] * 40
    frames = [frame(i, max(size, 4)) for i, size in enumerate(sizes)]
    seen, answers, writes = asyncio.run(_serve(b"".join(frames), len(frames)))
    assert seen == [f[4:] for f in frames]
    assert answers == list(range(len(frames)))
    assert writes < len(frames) // 2, writes


def test_bytes_read_while_paused_are_handled_after_in_order():
    # A pool that holds one small frame at a time: every later frame waits for memory,
    # and the first handler waits too, so the queue and the pool both pause reading.
    frames = [frame(i, 200) for i in range(30)]
    seen, answers, _ = asyncio.run(_serve(b"".join(frames), len(frames), memory=MemoryPool(300), slow_first=True))
    assert seen == [f[4:] for f in frames]
    assert answers == list(range(len(frames)))
