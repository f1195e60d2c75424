"""Length-prefixed, typed, versioned messages over a Unix socket (no pickle).

Frame::

    FRAME = struct.Struct(">I")   # length of the JSON document that follows (UTF-8)

A document is a JSON object with ``type`` (a name from ``messages.TYPES``) and ``v`` (its
version). A request carries an ``id``; its answer carries ``reply_to`` with that id and
either the result fields or ``error_code``/``error_message``. Bytes values travel as
``{"$b": "<base64>"}`` and come back as bytes.

One ``Channel`` per connection, both directions: either side may send requests
(``request``), one-way messages (``send``), and answer the other's requests (the
``handler`` passed to ``serve``). Owned by one event loop.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import struct

from pybroker import errors
from pybroker.control import messages

log = logging.getLogger("pybroker.control")

FRAME = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


class ControlError(Exception):
    """A malformed or unknown control message: the connection is not to be trusted."""


def _default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} on the control plane")


def _hook(doc: dict):
    if len(doc) == 1 and "$b" in doc:
        return base64.b64decode(doc["$b"])
    return doc


def encode(doc: dict) -> bytes:
    body = json.dumps(doc, default=_default, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ControlError(f"control message of {len(body)} bytes exceeds {MAX_FRAME}")
    return FRAME.pack(len(body)) + body


def decode(body: bytes) -> dict:
    try:
        doc = json.loads(body, object_hook=_hook)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(f"undecodable control message: {exc}") from None
    if not isinstance(doc, dict):
        raise ControlError("a control message must be a JSON object")
    if "reply_to" not in doc:
        messages.check(doc)
    return doc


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str = ""):
        self.reader = reader
        self.writer = writer
        self.name = name
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future, object]] = {}  # id -> (future, on_reply)
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, path: str, name: str = "") -> "Channel":
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_FRAME)
        return cls(reader, writer, name)

    async def _read(self) -> dict:
        (size,) = FRAME.unpack(await self.reader.readexactly(FRAME.size))
        if size > MAX_FRAME:
            raise ControlError(f"control frame of {size} bytes exceeds {MAX_FRAME}")
        return decode(await self.reader.readexactly(size))

    def send(self, doc: dict) -> None:
        if self.closed.is_set():
            raise ConnectionError(f"control channel {self.name} is closed")
        doc.setdefault("v", 1)
        self.writer.write(encode(doc))

    async def request(self, doc: dict, timeout: float = 30.0, on_reply=None) -> dict:
        """Send a request and wait for its answer; a Kafka error in the answer is raised.

        ``on_reply(answer)``, if given, runs as the answer is read, before any message the
        peer sent after it is handled: a state snapshot in an answer must not overwrite
        updates that follow it on the wire (the caller resumes only later)."""
        request_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (fut, on_reply)
        try:
            self.send({**doc, "id": request_id})
            await self.writer.drain()
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(request_id, None)
        code = reply.get("error_code", 0)
        if code:
            raise errors.for_code(code)(reply.get("error_message"))
        return reply

    async def serve(self, handler) -> None:
        """Read until the peer goes away; answers go back for requests with an id.
        ``handler(doc)`` returns a dict (the answer), None, or an awaitable of either."""
        try:
            while True:
                doc = await self._read()
                if "reply_to" in doc:
                    fut, on_reply = self._pending.get(doc["reply_to"], (None, None))
                    if fut is not None and not fut.done():
                        self._settle(fut, on_reply, doc)
                    continue
                asyncio.get_running_loop().create_task(self._answer(handler, doc))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ControlError as exc:
            log.warning("closing control channel %s: %s", self.name, exc)
        finally:
            self.close()

    @staticmethod
    def _settle(fut: asyncio.Future, on_reply, doc: dict) -> None:
        if on_reply is not None and not doc.get("error_code"):
            try:
                on_reply(doc)
            except Exception as exc:  # the requester sees it, as if the answer were bad
                fut.set_exception(exc)
                return
        fut.set_result(doc)

    async def _answer(self, handler, doc: dict) -> None:
        try:
            result = handler(doc)
            if asyncio.iscoroutine(result):
                result = await result
        except errors.KafkaError as exc:
            result = {"error_code": exc.code, "error_message": exc.detail or exc.message}
        except Exception as exc:  # the peer gets an answer, and the log the trace
            log.exception("control request %s failed", doc.get("type"))
            result = {"error_code": errors.UnknownServerError.code, "error_message": str(exc)}
        if "id" in doc and not self.closed.is_set():
            self.send({**(result or {}), "reply_to": doc["id"]})

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            for fut, _ in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"control channel {self.name} closed"))
            self.writer.close()
