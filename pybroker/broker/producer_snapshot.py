"""Producer-state snapshots: the idempotent-producer table of a partition, saved so a
restart need not rebuild it from the log (Kafka's ``<offset>.snapshot`` files).

File: ``<partition dir>/<offset, 20 digits>.snapshot``, written atomically, one CRC-framed
JSON record ``{"offset": N, "producers": ProducerStateManager.to_json(), "unreplicated":
[[first offset, marker offset], ...]}`` (closed transactions not yet below the high
watermark). The state covers
every batch below ``offset``; loading replays the batch headers from ``offset`` to the log
end. Written when a segment rolls (so a producer whose last batch lies in an older
segment is still known after a restart) and at clean shutdown (so the broker starts
without scanning). A snapshot beyond the log end (the log lost a tail it covered) or one
that fails its CRC is ignored.
"""
from __future__ import annotations

import json
import os
import re

from pybroker.broker.producer_state import ProducerStateManager
from pybroker.log.record_file import frame, valid_frames, write_atomically

SUFFIX = ".snapshot"
_NAME = re.compile(r"^(\d{20})\.snapshot$")
KEEP = 2


def path_of(directory: str, offset: int) -> str:
    return os.path.join(directory, f"{offset:020d}{SUFFIX}")


def offsets(directory: str) -> list[int]:
    """Offsets of the snapshots in ``directory``, ascending."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m[1]) for m in map(_NAME.match, names) if m)


def exists(directory: str, offset: int) -> bool:
    return os.path.exists(path_of(directory, offset))


def write(directory: str, offset: int, state: ProducerStateManager) -> None:
    """Save ``state`` as of ``offset``; keep only the newest ``KEEP`` snapshots."""
    payload = json.dumps({"offset": offset, "producers": state.to_json(), "unreplicated": state.unreplicated},
                         separators=(",", ":")).encode()
    write_atomically(path_of(directory, offset), frame(payload))
    for old in offsets(directory)[:-KEEP]:
        _remove(path_of(directory, old))


def delete_above(directory: str, offset: int) -> None:
    """Drop snapshots that describe batches at or above ``offset`` (the log was cut there)."""
    for found in offsets(directory):
        if found > offset:
            _remove(path_of(directory, found))


def load_latest(directory: str, log_start_offset: int, log_end_offset: int
                ) -> tuple[int, ProducerStateManager] | None:
    """The newest usable snapshot as (offset, state), or None."""
    for found in reversed(offsets(directory)):
        if found > log_end_offset:
            continue
        state = _read(path_of(directory, found), found, log_start_offset)
        if state is not None:
            return found, state
    return None


def _read(path: str, offset: int, log_start_offset: int) -> ProducerStateManager | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
        payloads, end = valid_frames(data, max_record_bytes=len(data))
        if len(payloads) != 1 or end != len(data):
            return None
        doc = json.loads(bytes(payloads[0]))
        if doc["offset"] != offset:
            return None
        return ProducerStateManager.from_json(doc["producers"], log_start_offset, doc.get("unreplicated", ()))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
