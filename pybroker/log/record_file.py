"""Small durable files: an atomic whole-file write, and an append-only file of
CRC-framed records (the supervisor's metadata log, the committed-offsets store).

Record framing::

    RECORD_HEADER = struct.Struct(
        ">i"  # length => Int32 (crc + payload)
        "I"   # crc => Uint32 (CRC-32C of payload)
    )

Loading replays the valid prefix; a record that is short, oversized or fails its CRC ends
it (a SIGKILL mid-write leaves such a torn tail), the file is truncated there and the
number of bytes dropped is returned. ``rewrite`` replaces the whole file atomically, so a
crash at any point leaves the old or the new file whole.

Not thread-safe: one owner.
"""
from __future__ import annotations

import os
import struct
from typing import Callable, Iterable

import crc32c

from pybroker import errors

RECORD_HEADER = struct.Struct(
    ">i"  # length => Int32 (crc + payload)
    "I"   # crc => Uint32 (CRC-32C of payload)
)


def fsync_dir(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes, durable: bool = True) -> None:
    """Write a temp file, fsync it, rename it over ``path``, fsync the directory. Not
    ``durable``: the same without the two fsyncs, for a file whose absence after a power
    loss is as good as its content (readers rebuild it)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(os.path.dirname(path))


def frame(payload: bytes) -> bytes:
    return RECORD_HEADER.pack(len(payload) + 4, crc32c.crc32c(payload)) + payload


def valid_frames(data, max_record_bytes: int = 1 << 20) -> tuple[list[memoryview], int]:
    """The payloads of the valid prefix of ``data`` (framed records), and the byte where
    that prefix ends: a record that is short, oversized or fails its CRC ends it."""
    view = memoryview(data)
    payloads = []
    pos = 0
    while pos + RECORD_HEADER.size <= len(view):
        length, crc = RECORD_HEADER.unpack_from(view, pos)
        end = pos + 4 + length
        if length < 4 or length > max_record_bytes or end > len(view):
            break
        payload = view[pos + RECORD_HEADER.size:end]
        if crc32c.crc32c(payload) != crc:
            break
        payloads.append(payload)
        pos = end
    return payloads, pos


class RecordFile:
    def __init__(self, path: str, fsync: bool = True, max_record_bytes: int = 1 << 20):
        self.path = path
        self.fsync = fsync
        self.max_record_bytes = max_record_bytes
        self._fd = -1
        self.size = 0

    def load(self, apply: Callable[[memoryview], None]) -> int:
        """Replay every valid record through ``apply`` (which raises ValueError or
        struct.error for a payload it cannot read: that ends the valid prefix too), then
        open for appends. Returns the bytes dropped from the tail."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        payloads, _ = valid_frames(data, self.max_record_bytes)
        pos = 0
        for payload in payloads:
            try:
                apply(payload)
            except (ValueError, struct.error):
                break  # a CRC collision on garbage: treat it as the torn tail
            pos += RECORD_HEADER.size + len(payload)
        dropped = len(data) - pos
        if dropped:
            os.truncate(self.path, pos)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = pos
        return dropped

    def append(self, payloads: Iterable[bytes]) -> None:
        data = b"".join(frame(p) for p in payloads)
        if not data:
            return
        written = os.write(self._fd, data)
        if written != len(data):
            raise errors.KafkaStorageError(f"short write to {self.path}: {written} of {len(data)}")
        if self.fsync:
            os.fsync(self._fd)
        self.size += len(data)

    def rewrite(self, payloads: Iterable[bytes]) -> None:
        data = b"".join(frame(p) for p in payloads)
        write_atomically(self.path, data)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
