"""The controller's metadata log: ``<data>/meta/metadata.log``, one JSON record per change
(topic created or grown, partition state, topic deleted, broker port, broker count,
broker unregistered, dynamic config set, ACL created or deleted, client quotas of an
entity), CRC-framed
(pybroker.log.record_file). Replaying it rebuilds the controller exactly; when it grows
past ``SNAPSHOT_BYTES`` it is rewritten as a snapshot of the current state.

Owned by the controller's host (the supervisor's event loop).
"""
from __future__ import annotations

import json
import logging
import os

from pybroker.cluster.controller import Controller, broker_port_record, client_quota_record, resource_config_record
from pybroker.log.record_file import RecordFile

log = logging.getLogger("pybroker.controller")

SNAPSHOT_BYTES = 16 * 1024 * 1024


class MetadataLog:
    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        self.file = RecordFile(os.path.join(directory, "metadata.log"), fsync=True, max_record_bytes=16 << 20)

    def load_into(self, controller: Controller) -> int:
        """Replay into ``controller``; returns bytes dropped from a torn tail."""

        def apply(payload: memoryview) -> None:
            controller.replay(json.loads(bytes(payload)))

        dropped = self.file.load(apply)
        if dropped:
            log.warning("metadata log: dropped %d bytes of torn tail", dropped)
        return dropped

    def append(self, records: list[dict]) -> None:
        self.file.append(json.dumps(r, separators=(",", ":")).encode() for r in records)

    def maybe_snapshot(self, controller: Controller) -> bool:
        if self.file.size < SNAPSHOT_BYTES:
            return False
        records = [broker_port_record(controller, b) for b in controller.ports]
        if controller.broker_count is not None:
            records.append({"type": "broker_count", "brokers": controller.broker_count})
        records += controller.credentials.records()
        # Before the topics, so they replay on top of the cluster's dynamic defaults.
        records += [resource_config_record(controller, key) for key in controller.resource_configs]
        records += [{"type": "topic", "topic": t.to_json()} for t in controller.topics.values()]
        records += [{"type": "partition", "state": s.to_json()} for s in controller.partitions.values()]
        records += [{"type": "acl", "acl": acl.to_json()} for acl in sorted(controller.acls)]
        records += [client_quota_record(controller, entity) for entity in controller.client_quotas]
        self.file.rewrite(json.dumps(r, separators=(",", ":")).encode() for r in records)
        return True

    def close(self) -> None:
        self.file.close()
