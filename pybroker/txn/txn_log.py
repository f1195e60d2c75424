"""The transaction log: every transition of every transactional id, kept in one append-only
file (Kafka's __transaction_state topic, for a coordinator that lives in one process).

On-disk format of ``<directory>/transactions.log``: CRC-framed records
(pybroker.log.record_file), each the UTF-8 JSON of one ``TransactionMetadata.to_json()``.
Opening replays the file; the last record of a transactional id is its state. A torn
tail (SIGKILL mid-write) is truncated. ``compact()`` rewrites only the latest record of
each id, atomically, once the file is mostly superseded records.

Writes go through the page cache (``fsync=False`` by default, as Kafka's and the committed
offsets' do): a transition survives the death of any process once written.

Owned by the transaction coordinator host; one thread, not thread-safe.
"""
from __future__ import annotations

import json
import os

from pybroker.log.record_file import RECORD_HEADER, RecordFile
from pybroker.txn.state_machine import TransactionMetadata

FILE_NAME = "transactions.log"
MAX_RECORD_BYTES = 4 << 20
COMPACT_MIN_BYTES = 256 * 1024
COMPACT_LIVE_RATIO = 0.25


def _encode(meta: TransactionMetadata) -> bytes:
    return json.dumps(meta.to_json(), separators=(",", ":")).encode()


class TransactionLog:
    def __init__(self, directory: str | os.PathLike, fsync: bool = False):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, FILE_NAME)
        self.states: dict[str, TransactionMetadata] = {}
        self._live_bytes: dict[str, int] = {}
        self._file = RecordFile(self.path, fsync, MAX_RECORD_BYTES)
        self.dropped_bytes = self._file.load(self._apply)

    def _apply(self, payload) -> None:
        try:
            meta = TransactionMetadata.from_json(json.loads(bytes(payload)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"unreadable transaction record: {exc}") from None
        self.states[meta.transactional_id] = meta
        self._live_bytes[meta.transactional_id] = RECORD_HEADER.size + len(payload)

    def write(self, meta: TransactionMetadata) -> None:
        """Make ``meta`` durable, then current."""
        payload = _encode(meta)
        self._file.append([payload])
        self.states[meta.transactional_id] = meta
        self._live_bytes[meta.transactional_id] = RECORD_HEADER.size + len(payload)

    def compact(self, force: bool = False) -> bool:
        live = sum(self._live_bytes.values())
        if not force and (self._file.size < COMPACT_MIN_BYTES or live >= self._file.size * COMPACT_LIVE_RATIO):
            return False
        self._file.rewrite(_encode(m) for m in self.states.values())
        return True

    def close(self) -> None:
        self._file.close()
