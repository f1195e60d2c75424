"""Checkpoint files of a partition directory: ``recovery-point``, ``log-start-offset``
and ``cleaner-offset-checkpoint``.

Format: the offset as decimal text and a newline. Written atomically (write a temp file,
fsync it, rename over the old one, fsync the directory) so a crash leaves the old or the
new value, never a torn one.
"""
from __future__ import annotations

import logging
import os

from pybroker.log.record_file import write_atomically

log = logging.getLogger("pybroker.log")

RECOVERY_POINT = "recovery-point"
LOG_START_OFFSET = "log-start-offset"
# Kafka's cleaner-offset-checkpoint, kept per partition: the first offset the log cleaner
# has not yet compacted (where the dirty part of a compacted log begins).
CLEANER_OFFSET = "cleaner-offset-checkpoint"
TMP_SUFFIX = ".tmp"


def write_offset(directory: str, name: str, offset: int) -> None:
    write_atomically(os.path.join(directory, name), f"{offset}\n".encode())


def read_offset(directory: str, name: str) -> int | None:
    """The stored offset, or None when absent or unreadable (logged: recovery then scans
    more, which is safe)."""
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            text = f.read(64)
    except FileNotFoundError:
        return None
    try:
        value = int(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        log.warning("ignoring unreadable checkpoint %s: %r", path, text)
        return None
    if value < 0:
        log.warning("ignoring negative checkpoint %s: %d", path, value)
        return None
    return value
