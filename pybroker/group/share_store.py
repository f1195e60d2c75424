"""Share-group state (KIP-932) kept durable: per share-partition its start offset, end
offset and in-flight ranges with their states and delivery counts, so a restarted
supervisor neither redelivers what was acknowledged nor forgets a delivery count.

``<directory>/share-state.log`` holds CRC-framed records (record_file.py), each a JSON
object: ``{"g": group, "t": topic, "p": partition, "s": state}`` (the partition's whole
state, as SharePartition.to_json) or with ``"s": null`` for a partition dropped (group or
offsets deleted). Later records win. Acquisitions are not written (they do not outlive
the coordinator, as in Kafka): after a restart acquired records are available again with
their delivery counts. Written through the page cache like committed offsets; the file is
rewritten with only live records once it holds four times as many.

Owned by the group coordinator host; one thread.
"""
from __future__ import annotations

import json
import os

from pybroker.log.record_file import RecordFile

FILE_NAME = "share-state.log"
COMPACT_FACTOR = 4


class ShareStateStore:
    def __init__(self, directory: str, fsync: bool = False):
        os.makedirs(directory, exist_ok=True)
        self.file = RecordFile(os.path.join(directory, FILE_NAME), fsync=fsync)
        self.states: dict[tuple[str, str, int], dict] = {}
        self._records = 0
        self.dropped_bytes = self.file.load(self._apply)

    def _apply(self, payload) -> None:
        doc = json.loads(bytes(payload))
        key = (doc["g"], doc["t"], int(doc["p"]))
        if doc["s"] is None:
            self.states.pop(key, None)
        else:
            self.states[key] = doc["s"]
        self._records += 1

    @staticmethod
    def _payload(key, state) -> bytes:
        group, topic, partition = key
        return json.dumps({"g": group, "t": topic, "p": partition, "s": state}, separators=(",", ":")).encode()

    def write(self, changes: dict[tuple[str, str, int], dict | None]) -> None:
        if not changes:
            return
        self.file.append(self._payload(k, s) for k, s in changes.items())
        for key, state in changes.items():
            if state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = state
        self._records += len(changes)
        if self._records > COMPACT_FACTOR * max(len(self.states), 64):
            self.file.rewrite(self._payload(k, s) for k, s in self.states.items())
            self._records = len(self.states)

    def close(self) -> None:
        self.file.close()
