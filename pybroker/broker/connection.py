"""One client connection: frame reading, in-order request handling, response writing.

Wire framing: every request and response is ``int32 size`` followed by ``size`` bytes.
A request frame is read straight into a ``bytearray`` of its exact size (BufferedProtocol),
so a Produce request's records are never copied before they reach the log: the handler
gets a writable memoryview of that buffer and the log rewrites offsets in place.

Kafka processes one request per connection at a time and answers in order; clients rely
on it (correlation ids are matched in sequence). Here a connection's requests go through
a queue into one task; reading pauses while too many requests are queued, so a client
that pipelines without reading cannot grow the broker's memory without bound.

Owned by the broker's event loop thread.
"""
from __future__ import annotations

import asyncio
import logging
import struct

from pybroker.broker.apis.fetch import release_regions

log = logging.getLogger("pybroker.broker")

SIZE = struct.Struct(">i")
MAX_QUEUED_REQUESTS = 16


class ShortSendfile(Exception):
    """sendfile moved fewer bytes than the response declared: the file shrank under us."""


class Connection(asyncio.BufferedProtocol):
    def __init__(self, server) -> None:
        self.server = server
        self.max_request_bytes = server.config.socket_request_max_bytes
        self.transport: asyncio.Transport | None = None
        self.peer = None
        self._size_buf = bytearray(4)
        self._frame: bytearray | None = None
        self._filled = 0
        self._queue: asyncio.Queue = asyncio.Queue()
        self._reading_paused = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._task: asyncio.Task | None = None
        self.closed = False

    # -- asyncio protocol callbacks -----------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.server.connections.add(self)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._can_write.set()
        self._queue.put_nowait(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        target = self._size_buf if self._frame is None else self._frame
        return memoryview(target)[self._filled:]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        if self._frame is None:
            if self._filled < 4:
                return
            (size,) = SIZE.unpack(self._size_buf)
            if size <= 0 or size > self.max_request_bytes:
                log.warning(
                    "closing connection from %s: request size %d outside 1..%d (socket.request.max.bytes)",
                    self.peer, size, self.max_request_bytes,
                )
                self.close()
                return
            self._frame = bytearray(size)
            self._filled = 0
            return
        if self._filled == len(self._frame):
            frame, self._frame, self._filled = self._frame, None, 0
            self._queue.put_nowait(frame)
            if self._queue.qsize() >= MAX_QUEUED_REQUESTS and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- request loop ------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                if frame is None or self.closed:
                    return
                if self._reading_paused and self._queue.qsize() < MAX_QUEUED_REQUESTS // 2:
                    self._reading_paused = False
                    self.transport.resume_reading()
                chunks = await self.server.handle_frame(self, memoryview(frame))
                del frame
                if chunks is None:
                    continue
                if chunks is False:
                    self.close()
                    return
                try:
                    await self._write(chunks)
                finally:
                    # Regions not sent (the connection closed midway) still hold an fd.
                    release_regions(chunks)
        except (ConnectionError, ShortSendfile) as exc:
            log.info("connection from %s ended: %s", self.peer, exc)
            self.close()
        except asyncio.CancelledError:
            self.close()
            raise
        except Exception:
            log.exception("unexpected error serving %s; closing the connection", self.peer)
            self.close()

    async def _write(self, chunks) -> None:
        loop = asyncio.get_running_loop()
        for chunk in chunks:
            if self.closed:
                return
            if isinstance(chunk, (bytes, bytearray, memoryview)):
                self.transport.write(chunk)
            else:
                sent = await loop.sendfile(self.transport, chunk.file, chunk.position, chunk.length)
                chunk.release()
                if sent != chunk.length:
                    # The response already declared its size; the only honest way out is
                    # to drop the connection, and the client refetches.
                    raise ShortSendfile(f"sent {sent} of {chunk.length} bytes of {chunk.file.name}")
            if not self._can_write.is_set():
                await self._can_write.wait()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self._queue.put_nowait(None)
