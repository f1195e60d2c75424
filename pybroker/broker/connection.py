"""One client connection: frame reading, in-order request handling, response writing.

Wire framing: every request and response is ``int32 size`` followed by ``size`` bytes.
A request frame is read into a ``bytearray`` of its own (BufferedProtocol): the handler
gets a writable memoryview of that buffer and the log rewrites offsets in place. Between
frames a read takes up to ``READ_AHEAD_BYTES`` into a scratch buffer shared by the event
loop's connections, and the bytes are copied into the frames they belong to: a small
request costs one copy and no second recv, several pipelined ones one recv in all; the
rest of a large frame is read straight into its buffer, never copied.

The buffer grows as the frame's bytes arrive, never from the declared size alone: a
frame of up to ``EAGER_FRAME_BYTES`` gets its exact-size buffer at once (most requests;
they are read with no copy at all), a larger one starts there; when that fills, a frame
arriving at full speed gets its whole buffer (one 64 KiB copy), a slower one grows
``GROWTH``-fold each time it fills, capped at the declared size. A client that declares
100 MiB and sends a byte a second holds 64 KiB, not 100 MiB. Every byte of buffer is reserved from
the broker's ``MemoryPool`` (``queued.max.request.bytes``) until the request has been
handled; when the pool is spent the connection stops reading until memory comes back.

Kafka processes one request per connection at a time and answers in order; clients rely
on it (correlation ids are matched in sequence). Here a connection's requests go through
a queue into one task; reading pauses while too many requests are queued, so a client
that pipelines without reading cannot grow the broker's memory without bound.

A client over a quota is answered at once and then muted (KIP-219): reading pauses and
no queued request is handled until its throttle time has passed (``throttle``).

Timeouts (checked by the acceptor, ``expired``): a connection with nothing in flight and
no traffic for ``connections.max.idle.ms`` is idle; a frame begun but not completed
within ``socket.request.read.timeout.ms`` (time spent waiting for the memory pool does
not count) is a stalled sender. Both are closed.

Owned by the broker's event loop thread.
"""
from __future__ import annotations

import asyncio
import logging
import os
import struct
import time

from pybroker.broker.apis.fetch import release_regions
from pybroker.broker.log_limit import RateLimitedLog
from pybroker.broker.memory_pool import MemoryPool
from pybroker.security import ANONYMOUS, INTER_BROKER_PRINCIPAL
from pybroker.security.listener import INTERNAL
from pybroker.security.tls import principal_of

log = logging.getLogger("pybroker.broker")

SIZE = struct.Struct(">i")
MAX_QUEUED_REQUESTS = 16
# Frames up to this size are read into an exact-size buffer at once: one allocation, no
# copy. Larger ones grow GROWTH-fold from here as their bytes arrive (a 1 MiB produce
# request copies 320 KiB on the way).
EAGER_FRAME_BYTES = 64 * 1024
GROWTH = 4
# A frame whose first EAGER_FRAME_BYTES arrived within this time is being sent at full
# speed: it gets its whole buffer at the first growth (the memory pool still bounds it).
FAST_FILL_S = 0.005
# A file region of a response up to this size is read and sent with the bytes around it
# in one write instead of by sendfile: asyncio's loop.sendfile costs a dozen syscalls and
# several callbacks per call (pause the transport, wait for its buffer to drain, a writer
# callback, resume), which dwarfs copying a few KiB; a long-polling consumer's fetch
# mostly answers with a small tail. Larger regions keep the zero-copy path.
SMALL_REGION_BYTES = 64 * 1024
# Between frames a connection reads up to this much at once (into a buffer its event loop
# shares): the size, a small request whole and the requests pipelined after it, in one
# recv instead of two per request, and their responses can then share one send.
READ_AHEAD_BYTES = 16 * 1024
# Reasons reading is paused.
_QUEUE, _MEMORY, _THROTTLE = "queue", "memory", "throttle"

_bad_size_log = RateLimitedLog(log)


class ShortSendfile(Exception):
    """sendfile moved fewer bytes than the response declared: the file shrank under us."""


# TLS connections cannot sendfile: a segment range goes out in reads of this size.
TLS_READ_BYTES = 1024 * 1024


def _read_region(region) -> bytes:
    """The bytes of a small file region, released after; ShortSendfile if the file was
    truncated underneath (as a sendfile that stops early)."""
    try:
        data = os.pread(region.file.fileno(), region.length, region.position)
    finally:
        region.release()
    if len(data) != region.length:
        raise ShortSendfile(f"read {len(data)} of {region.length} bytes of {region.file.name}")
    return data


class _Scratch:
    """The read-ahead buffer of one event loop's connections: a read lands here only
    between frames and is copied out before the next read, so one buffer serves them all."""

    __slots__ = ("view",)

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_AHEAD_BYTES))


def _scratch_of(server) -> _Scratch:
    scratch = getattr(server, "_read_scratch", None)
    if scratch is None:
        scratch = _Scratch()
        try:
            server._read_scratch = scratch
        except AttributeError:
            pass
    return scratch


class Connection(asyncio.BufferedProtocol):
    def __init__(self, server, memory: MemoryPool | None = None, on_lost=None, listener=None) -> None:
        self.server = server
        # The listener it came in on (pybroker.security.listener.Listener; None: the
        # PLAINTEXT listener of an embedded broker). Which protocol it speaks is decided
        # here, once per connection: a SASL listener's frames pass its gate first, the
        # others go straight to the broker.
        self.listener = listener
        self.listener_name = listener.name if listener is not None else None
        self.tls = listener is not None and listener.uses_tls
        gate = server.sasl_gate() if listener is not None and listener.uses_sasl else None
        self._handle_frame = gate.handle_frame if gate is not None else server.handle_frame
        self.max_request_bytes = server.config.socket_request_max_bytes
        self.memory = memory if memory is not None else MemoryPool()
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.peer = None
        # Who this connection speaks for (Kafka's KafkaPrincipal, "User:name"): anonymous
        # until a listener authenticates it.
        self.principal = ANONYMOUS if self.listener_name != INTERNAL else INTER_BROKER_PRINCIPAL
        self._scratch = _scratch_of(server)
        self._in_scratch = False
        self._stash = b""                    # read ahead while reading was paused
        self._size_buf = bytearray(4)
        self._size = 0                       # declared size of the frame being read; 0: reading the size
        self._frame: bytearray | None = None
        self._filled = 0
        self._want = 0                       # buffer capacity waiting for the memory pool
        self._queue: asyncio.Queue = asyncio.Queue()
        self._paused: set[str] = set()
        self._in_flight = 0                  # frames queued or being handled
        self.last_active = time.monotonic()
        self.frame_started: float | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        # Responses held while more requests of this connection are already read: they
        # leave in one send with the next one, or at the loop's next turn at the latest.
        self._out: list = []
        self._out_scheduled = False
        self._task: asyncio.Task | None = None
        # A quota's throttle time (s) to mute this connection for once the current
        # response is out (KIP-219); 0: none.
        self._throttle_s = 0.0
        self.closed = False

    # -- asyncio protocol callbacks -----------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        if self.tls:
            # mTLS: the client certificate names the principal (SASL, if any, replaces it).
            principal = principal_of(transport.get_extra_info("ssl_object"))
            if principal is not None:
                self.principal = principal
        self.server.connections.add(self)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._can_write.set()
        self._drop_partial()
        self._queue.put_nowait(None)
        if self._on_lost is not None:
            on_lost, self._on_lost = self._on_lost, None
            on_lost()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._size == 0 and self._filled == 0:
            # Between frames: read ahead into the loop's scratch buffer, so one recv
            # takes the next size, a small frame whole and whatever the client
            # pipelined after it.
            self._in_scratch = True
            return self._scratch.view
        self._in_scratch = False
        target = self._size_buf if self._frame is None else self._frame
        return memoryview(target)[self._filled:]

    def buffer_updated(self, nbytes: int) -> None:
        if self._in_scratch:
            self._in_scratch = False
            self._consume(self._scratch.view[:nbytes])
        else:
            self._advance(nbytes)

    def _consume(self, data) -> None:
        """Bytes read ahead: copied into the size buffer and the frames they belong to
        (each frame's buffer is reserved from the memory pool as when read directly);
        what arrives while reading is paused (memory, queue, throttle) is kept in
        ``_stash`` (at most one read's worth) and consumed when reading resumes."""
        if self._stash:
            data, self._stash = memoryview(self._stash + bytes(data)), b""
        pos, n = 0, len(data)
        while pos < n and not self.closed:
            if self._paused:
                self._stash = bytes(data[pos:])
                return
            if self._size == 0:
                target, room = self._size_buf, 4 - self._filled
            else:
                target, room = self._frame, len(self._frame) - self._filled
            take = min(room, n - pos)
            target[self._filled:self._filled + take] = data[pos:pos + take]
            pos += take
            self._advance(take)

    def _advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes are in the size buffer or the frame buffer."""
        if self.frame_started is None:
            # Once per frame, not per read: a frame in progress is never idle.
            self.frame_started = self.last_active = time.monotonic()
        self._filled += nbytes
        if self._frame is None:
            if self._filled < 4:
                return
            (size,) = SIZE.unpack(self._size_buf)
            if size <= 0 or size > self.max_request_bytes:
                _bad_size_log(
                    "closing connection from %s: request size %d outside 1..%d (socket.request.max.bytes)",
                    self.peer, size, self.max_request_bytes,
                )
                self.close()
                return
            self._size, self._filled = size, 0
            self._grow(min(size, EAGER_FRAME_BYTES))
            return
        if self._filled == self._size:
            frame, self._frame, self._filled, self._size = self._frame, None, 0, 0
            self.frame_started = None
            if self.memory.overdrawn:
                self.memory.request_read(id(self))
            self._in_flight += 1
            self._queue.put_nowait(frame)
            if self._queue.qsize() >= MAX_QUEUED_REQUESTS:
                self._pause(_QUEUE)
        elif self._filled == len(self._frame):
            if time.monotonic() - self.frame_started < FAST_FILL_S:
                # The client sends as fast as we read: its buffer at once (one copy).
                self._grow(self._size)
            else:
                self._grow(min(self._size, len(self._frame) * GROWTH))

    def _grow(self, capacity: int) -> None:
        """Make the frame buffer ``capacity`` bytes, reserving the difference from the
        memory pool; if the pool is spent, stop reading until it is not."""
        held = 0 if self._frame is None else len(self._frame)
        if not self.memory.try_reserve(capacity - held, id(self)):
            self._want = capacity
            self._pause(_MEMORY)
            self.memory.wait(id(self), self._memory_released)
            return
        if self._frame is None:
            self._frame = bytearray(capacity)
        else:
            grown = bytearray(capacity)
            grown[:self._filled] = memoryview(self._frame)[:self._filled]
            self._frame = grown

    def _memory_released(self) -> None:
        if self.closed:
            return
        capacity, self._want = self._want, 0
        self._grow(capacity)
        if not self._want:
            self._resume(_MEMORY)
            if self.frame_started is not None:
                # Waiting for memory is the broker's doing, not a stalled sender.
                self.frame_started = time.monotonic()

    def _drop_partial(self) -> None:
        """Give back the buffer of a frame that will never complete."""
        self.memory.cancel(id(self))
        if self._frame is not None:
            self.memory.release(len(self._frame))
            self._frame = None
        self.memory.request_read(id(self))

    def _pause(self, reason: str) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and not self.closed and self._stash:
            self._consume(b"")             # what was read ahead first; it may pause again
        if not self._paused and not self.closed:
            self.transport.resume_reading()

    def expired(self, now: float, idle_s: float, read_timeout_s: float) -> str | None:
        """Why this connection should be closed now, or None."""
        if self.frame_started is not None:
            if not self._paused and now - self.frame_started > read_timeout_s:
                return f"request not completed within {read_timeout_s * 1000:.0f} ms (socket.request.read.timeout.ms)"
            return None
        if self._in_flight == 0 and now - self.last_active > idle_s:
            return f"idle for more than {idle_s * 1000:.0f} ms (connections.max.idle.ms)"
        return None

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
                if self._paused and self._queue.qsize() < MAX_QUEUED_REQUESTS // 2:
                    self._resume(_QUEUE)
                try:
                    chunks = await self._handle_frame(self, memoryview(frame))
                finally:
                    self._in_flight -= 1
                    self.memory.release(len(frame))
                    del frame
                if chunks is False:
                    self.close()
                    return
                if chunks is not None:
                    try:
                        await self._write(chunks)
                    finally:
                        # Regions not sent (the connection closed midway) still hold an fd.
                        release_regions(chunks)
                if self._throttle_s:
                    await self._mute()
                self.last_active = time.monotonic()
        except (ConnectionError, ShortSendfile) as exc:
            log.info("connection from %s ended: %s", self.peer, exc)
            self.close()
        except asyncio.CancelledError:
            self.close()
            raise
        except Exception:
            log.exception("unexpected error serving %s; closing the connection", self.peer)
            self.close()
        finally:
            self._release_queued()

    def throttle(self, throttle_ms: int) -> None:
        """Mute this connection for ``throttle_ms`` once the response being made is sent."""
        self._throttle_s = max(self._throttle_s, throttle_ms / 1000.0)

    async def _mute(self) -> None:
        """Kafka's channel mute for a throttled client: no request is read or handled
        until the throttle time has passed (what is already queued waits too)."""
        delay, self._throttle_s = self._throttle_s, 0.0
        self._pause(_THROTTLE)
        try:
            await asyncio.sleep(delay)
        finally:
            self._resume(_THROTTLE)

    def _release_queued(self) -> None:
        """Frames read but never to be handled (the connection closed) give their memory back."""
        while not self._queue.empty():
            frame = self._queue.get_nowait()
            if frame is not None:
                self._in_flight -= 1
                self.memory.release(len(frame))

    async def _write(self, chunks) -> None:
        if len(chunks) == 1 and not getattr(chunks[0], "is_file_region", False):
            if self._queue.qsize() and self._can_write.is_set():
                # The client pipelines: the next request is handled now, without a
                # suspension, so its response can share this one's send syscall.
                self._out.append(chunks[0])
                if not self._out_scheduled:
                    self._out_scheduled = True
                    asyncio.get_running_loop().call_soon(self.flush_responses)
                return
            if self._out:
                self._out.append(chunks[0])
                self.flush_responses()
            else:
                self.transport.write(chunks[0])
        else:
            self.flush_responses()
            await self._write_with_regions(chunks)
        if not self._can_write.is_set():
            await self._can_write.wait()

    def flush_responses(self) -> None:
        """Send the held responses (in order, before anything written after them)."""
        self._out_scheduled = False
        if not self._out:
            return
        out, self._out = self._out, []
        if not self.closed:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def _write_with_regions(self, chunks) -> None:
        """A response holding file regions: the small ones are read (one pread each)
        and joined with the bytes around them into one write; a large one goes with
        ``loop.sendfile``."""
        loop = asyncio.get_running_loop()
        pending: list = []
        for chunk in chunks:
            if self.closed:
                return
            if not getattr(chunk, "is_file_region", False):
                pending.append(chunk)
                continue
            if chunk.length <= SMALL_REGION_BYTES:
                pending.append(_read_region(chunk))
                continue
            if pending:
                self.transport.write(b"".join(pending))
                pending = []
                if not self._can_write.is_set():
                    await self._can_write.wait()
            if self.tls:
                await self._write_region(chunk)
                continue
            sent = await loop.sendfile(self.transport, chunk.file, chunk.position, chunk.length)
            chunk.release()
            if sent != chunk.length:
                # The response already declared its size; the only honest way out is
                # to drop the connection, and the client refetches.
                raise ShortSendfile(f"sent {sent} of {chunk.length} bytes of {chunk.file.name}")
        if pending and not self.closed:
            self.transport.write(b"".join(pending))

    async def _write_region(self, region) -> None:
        """A segment range over TLS: read in TLS_READ_BYTES pieces (the page cache
        serves them) and written through the TLS transport, which encrypts; the range is
        whole batches, so this is per batch set, never per record."""
        fd = region.file.fileno()
        position, left = region.position, region.length
        try:
            while left > 0 and not self.closed:
                data = os.pread(fd, min(left, TLS_READ_BYTES), position)
                if not data:
                    raise ShortSendfile(f"read {region.length - left} of {region.length} bytes of {region.file.name}")
                self.transport.write(data)
                position += len(data)
                left -= len(data)
                if not self._can_write.is_set():
                    await self._can_write.wait()
        finally:
            region.release()

    def close(self) -> None:
        if not self.closed:
            self.flush_responses()            # answers already made go out before the close
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self._queue.put_nowait(None)
