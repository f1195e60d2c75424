"""controller_mutation_rate (KIP-599) for the requests that create or delete partitions:
CreateTopics, CreatePartitions and DeleteTopics, as Kafka's ControllerApis applies it.

Strict versions (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+; clients that
know the error retry it) check the client's bucket before each topic: while it is below
zero the topic gets THROTTLING_QUOTA_EXCEEDED and the response the throttle time; the
topic that takes the bucket below zero still goes through. Older versions are carried
out and only throttled (throttle_time_ms, then the connection muted, KIP-219). A
validate_only request changes nothing and is never throttled. Each broker keeps its own
buckets (Kafka's controller keeps one set for the cluster).
"""
from __future__ import annotations

import time

from pybroker.errors import ThrottlingQuotaExceeded

CREATE_TOPICS_STRICT, CREATE_PARTITIONS_STRICT, DELETE_TOPICS_STRICT = 6, 3, 5


class MutationGate:
    """One request's passage through the client's mutation quota."""

    def __init__(self, broker, request, strict_since: int, validate_only: bool = False):
        self.quota = broker.quotas.mutation
        self.request = request
        self.active = self.quota.enabled and not validate_only
        self.strict = request.api_version >= strict_since
        self.throttle = 0
        self.taken: dict[str, int] = {}

    def _now(self) -> float:
        return time.monotonic() * 1000.0

    def admit(self, name: str, permits: int) -> dict | None:
        """None: ``name`` may go ahead (its partitions are taken from the bucket); else
        the topic's THROTTLING_QUOTA_EXCEEDED entry."""
        if not self.active:
            return None
        r = self.request
        if self.strict:
            wait = self.quota.throttle_ms(r.principal, r.client_id, self._now())
            if wait:
                self.throttle = max(self.throttle, wait)
                return {"name": name, "error_code": ThrottlingQuotaExceeded.code,
                        "error_message": ThrottlingQuotaExceeded.message}
        self.quota.take(r.principal, r.client_id, permits, self._now())
        self.taken[name] = permits
        return None

    def finish(self, results: list[dict]) -> int:
        """Give back what the topics the controller refused had taken; the response's
        throttle time (the connection is muted for it)."""
        if not self.active:
            return 0
        r = self.request
        for result in results:
            if result.get("error_code") and result["name"] in self.taken:
                self.quota.take(r.principal, r.client_id, -self.taken.pop(result["name"]), self._now())
        if not self.strict:
            self.throttle = self.quota.throttle_ms(r.principal, r.client_id, self._now())
        r.throttle_ms = max(r.throttle_ms, self.throttle)
        return self.throttle
