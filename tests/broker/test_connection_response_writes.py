"""How a connection writes a response holding file regions: small regions go out with
the bytes around them in one write, large ones by sendfile, and a region whose file was
cut short underneath ends the connection (ShortSendfile) instead of sending less than the
response declared."""
from __future__ import annotations

import asyncio
import os
import socket
import types

import pytest

from pybroker.broker.apis.fetch import SendfileRegion
from pybroker.broker.connection import SMALL_REGION_BYTES, Connection, ShortSendfile
from pybroker.log.file_slice import FileSlice


class CountingTransport:
    """Wraps the real transport to count write() calls."""

    def __init__(self, transport):
        self._transport = transport
        self.writes = 0

    def write(self, data):
        self.writes += 1
        self._transport.write(data)

    def __getattr__(self, name):
        return getattr(self._transport, name)


def _region(path, position: int, length: int) -> SendfileRegion:
    fd = os.open(path, os.O_RDONLY)
    return SendfileRegion(FileSlice(fd, position, length, 0, 0), os.path.basename(path))


async def _send(chunks) -> tuple[bytes, int]:
    """Write ``chunks`` through a Connection on one end of a socket pair; return what the
    other end received and how many transport writes it took."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    server = types.SimpleNamespace(config=types.SimpleNamespace(socket_request_max_bytes=1 << 20),
                                   connections=set(), handle_frame=None)
    conn = Connection(server)
    transport, _ = await loop.connect_accepted_socket(lambda: conn, ours)
    counting = CountingTransport(transport)
    conn.transport = counting
    theirs.setblocking(False)
    received = bytearray()
    expected = sum(c.length if getattr(c, "is_file_region", False) else len(c) for c in chunks)

    async def read_all():
        while len(received) < expected:
            data = await loop.sock_recv(theirs, 1 << 20)
            if not data:
                return
            received.extend(data)

    reader = loop.create_task(read_all())
    try:
        await asyncio.wait_for(conn._write(chunks), 10)
        await asyncio.wait_for(reader, 10)
    finally:
        reader.cancel()
        transport.close()
        conn._task.cancel()
        theirs.close()
    return bytes(received), counting.writes


@pytest.fixture
def segment(tmp_path):
    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    return str(path)


def test_small_regions_go_out_with_the_bytes_around_them_in_one_write(segment):
    chunks = [b"head", _region(segment, 10, 100), b"mid", _region(segment, 1000, 2000), b"tail"]
    data, writes = asyncio.run(_send(chunks))
    with open(segment, "rb") as f:
        raw = f.read()
    assert data == b"head" + raw[10:110] + b"mid" + raw[1000:3000] + b"tail"
    assert writes == 1
    assert all(c._released for c in chunks if isinstance(c, SendfileRegion))


def test_large_region_is_sent_with_sendfile_between_the_bytes(segment):
    big = SMALL_REGION_BYTES + 1
    chunks = [b"head", _region(segment, 0, 50), _region(segment, 100, big), b"tail"]
    data, writes = asyncio.run(_send(chunks))
    with open(segment, "rb") as f:
        raw = f.read()
    assert data == b"head" + raw[0:50] + raw[100:100 + big] + b"tail"
    assert writes == 2  # the bytes before the big region, then the tail


def test_small_region_of_a_truncated_file_ends_the_connection(segment):
    region = _region(segment, 1000, 4000)
    os.truncate(segment, 2000)
    with pytest.raises(ShortSendfile):
        asyncio.run(_send([b"head", region, b"tail"]))
    assert region._released
