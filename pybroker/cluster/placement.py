"""Rack-aware replica placement: Kafka's StripedReplicaPlacer (KRaft), for live brokers.

Used by the controller when at least one live broker has a rack (``broker.rack``); a
cluster without racks keeps the rack-unaware assignment (controller.assign_replicas).

The rule, as Kafka's: racks are sorted by name (brokers without a rack form one rack of
their own, sorted first) and each holds its brokers sorted by id. A partition's replicas
come from the racks round-robin, starting at a rack offset that advances by one per
partition — the "striped" pattern (A,B,C / B,C,A / C,A,B) — so the replicas of a partition
spread over as many racks as it has replicas, and leaders spread over racks. Within a
rack, brokers are taken round-robin too, from a random start that moves one step each
iteration epoch (one partition); a broker is given at most once per epoch, which keeps a
broker from holding two replicas of one partition. After as many partitions as there are
brokers, racks and brokers are shuffled so the same sets do not repeat. With more replicas
than racks, placement wraps around the racks (a rack then holds two replicas of the
partition, on different brokers).

Pure logic, no I/O; ``rng`` makes it deterministic for tests.
"""
from __future__ import annotations

import random

from pybroker import errors


class _BrokerList:
    """The brokers of one rack, returned round-robin from a moving offset, each at most
    once per iteration epoch."""

    def __init__(self, brokers: list[int], rng: random.Random):
        self.brokers = sorted(brokers)
        self.offset = rng.randrange(len(self.brokers))
        self.index = 0
        self.epoch = 0

    def next(self, epoch: int) -> int:
        if self.epoch != epoch:
            self.epoch = epoch
            self.index = 0
            self.offset = (self.offset + 1) % len(self.brokers)
        if self.index >= len(self.brokers):
            return -1
        broker = self.brokers[(self.index + self.offset) % len(self.brokers)]
        self.index += 1
        return broker


class RackList:
    """Kafka's StripedReplicaPlacer.RackList over live (unfenced) brokers."""

    def __init__(self, racks: dict[int, str | None], rng: random.Random):
        self.rng = rng
        by_rack: dict[str | None, list[int]] = {}
        for broker, rack in racks.items():
            by_rack.setdefault(rack, []).append(broker)
        # Kafka's OptionalStringComparator: the empty rack sorts first.
        self.names = sorted(by_rack, key=lambda name: (name is not None, name or ""))
        self.racks = {name: _BrokerList(brokers, rng) for name, brokers in by_rack.items()}
        self.total = len(racks)
        self.epoch = 0
        self.offset = rng.randrange(len(self.names)) if self.names else 0

    def place(self, replication_factor: int) -> list[int]:
        if replication_factor < 1:
            raise errors.InvalidReplicationFactor("Replication factor must be larger than 0.")
        if replication_factor > self.total:
            raise errors.InvalidReplicationFactor(
                f"Replication factor: {replication_factor} larger than available brokers: {self.total}.")
        if self.epoch == self.total and self.total > 1:
            self._shuffle()
            self.epoch = 0
        if self.offset == len(self.names):
            self.offset = 0
        first_rack = self.offset
        while True:
            leader = self.racks[self.names[first_rack]].next(self.epoch)
            if leader >= 0:
                break
            first_rack = (first_rack + 1) % len(self.names)
        replicas = [leader]
        rack_index = self.offset
        for _ in range(1, replication_factor):
            broker = -1
            while broker < 0:
                if rack_index == first_rack:
                    first_rack = -1  # the leader's rack is skipped once
                else:
                    broker = self.racks[self.names[rack_index]].next(self.epoch)
                rack_index = (rack_index + 1) % len(self.names)
            replicas.append(broker)
        self.epoch += 1
        self.offset += 1
        return replicas

    def _shuffle(self) -> None:
        self.rng.shuffle(self.names)
        for brokers in self.racks.values():
            self.rng.shuffle(brokers.brokers)


def place_replicas(racks: dict[int, str | None], partitions: int, replication_factor: int,
                   rng: random.Random | None = None) -> list[list[int]]:
    """Replicas (leader first) of ``partitions`` new partitions over the brokers of
    ``racks`` (broker id -> rack or None)."""
    rack_list = RackList(racks, rng or random.Random())
    return [rack_list.place(replication_factor) for _ in range(partitions)]
