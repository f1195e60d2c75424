"""Membership of KIP-848 consumer groups and KIP-932 share groups kept durable, so a
restarted coordinator host knows every member at its epoch with its assignment, and
members carry on without a rebalance (Kafka writes the same state as ConsumerGroup*
records to ``__consumer_offsets``).

``<directory>/group-membership.log`` holds CRC-framed records (record_file.py), each a
JSON object::

    {"g": group, "t": "consumer" | "share", "m": null,      "s": {...}}  group metadata
    {"g": group, "t": ...,                  "m": null,      "s": null}   group gone, members too
    {"g": group, "t": ...,                  "m": member id, "s": {...}}  one member
    {"g": group, "t": ...,                  "m": member id, "s": null}   member gone

with ``s`` as ConsumerGroup.metadata_json / member_json write them. Later records win.
Only what changed is written: a heartbeat that moves nobody writes nothing. Written
through the page cache like committed offsets (a write survives the death of any
process once made); the file is rewritten with only live records once it holds four
times as many.

Owned by the group coordinator host; one thread.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from pybroker.log.record_file import RecordFile

FILE_NAME = "group-membership.log"
COMPACT_FACTOR = 4


@dataclass
class StoredGroup:
    kind: str                                   # "consumer" or "share"
    metadata: dict
    members: dict[str, dict] = field(default_factory=dict)


def _payload(group_id: str, kind: str, member_id: str | None, state: dict | None) -> bytes:
    return json.dumps({"g": group_id, "t": kind, "m": member_id, "s": state}, separators=(",", ":")).encode()


class MembershipStore:
    def __init__(self, directory: str, fsync: bool = False):
        os.makedirs(directory, exist_ok=True)
        self.file = RecordFile(os.path.join(directory, FILE_NAME), fsync=fsync)
        self.groups: dict[str, StoredGroup] = {}
        self._records = 0
        self._check_at = 0
        self.dropped_bytes = self.file.load(self._load)

    def _load(self, payload) -> None:
        doc = json.loads(bytes(payload))
        self._apply(doc["g"], doc["t"], doc["m"], doc["s"])
        self._records += 1

    def _apply(self, group_id: str, kind: str, member_id: str | None, state: dict | None) -> None:
        if member_id is None:
            if state is None:
                self.groups.pop(group_id, None)
            else:
                stored = self.groups.get(group_id)
                if stored is None or stored.kind != kind:
                    self.groups[group_id] = StoredGroup(kind, state)
                else:
                    stored.metadata = state
            return
        stored = self.groups.get(group_id)
        if stored is None:
            raise ValueError(f"member record of group {group_id} before its metadata")
        if state is None:
            stored.members.pop(member_id, None)
        else:
            stored.members[member_id] = state

    def write(self, group_id: str, kind: str, metadata: dict, members: dict[str, dict],
              removed: set[str] | frozenset = frozenset()) -> int:
        """Stores the group's metadata, the members given and the removal of those in
        ``removed``, writing only what differs from what is stored. Returns the records
        written."""
        stored = self.groups.get(group_id)
        records = []
        if stored is None or stored.kind != kind:
            records.append((group_id, kind, None, metadata))
            stored = None
        elif stored.metadata != metadata:
            records.append((group_id, kind, None, metadata))
        for member_id, state in members.items():
            if stored is None or stored.members.get(member_id) != state:
                records.append((group_id, kind, member_id, state))
        if stored is not None:
            records.extend((group_id, kind, m, None) for m in sorted(removed) if m in stored.members)
        self._append(records)
        return len(records)

    def drop(self, group_id: str) -> bool:
        """The group is no longer a consumer or share group (deleted, expired, or a
        classic group again)."""
        stored = self.groups.get(group_id)
        if stored is None:
            return False
        self._append([(group_id, stored.kind, None, None)])
        return True

    def _append(self, records: list[tuple]) -> None:
        if not records:
            return
        self.file.append(_payload(*r) for r in records)
        for r in records:
            self._apply(*r)
        self._records += len(records)
        if self._records > self._check_at:
            # Counting live records is O(groups): done again only after as many writes.
            live = sum(1 + len(g.members) for g in self.groups.values())
            if self._records > COMPACT_FACTOR * max(live, 64):
                self.file.rewrite(self._live_payloads())
                self._records = live
            self._check_at = self._records + max(live, 64)

    def _live_payloads(self):
        for group_id, stored in self.groups.items():
            yield _payload(group_id, stored.kind, None, stored.metadata)
            for member_id, state in stored.members.items():
                yield _payload(group_id, stored.kind, member_id, state)

    def close(self) -> None:
        self.file.close()
