"""Rack-aware replica placement, as Kafka does it in two places.

``place_replicas``: Kafka's StripedReplicaPlacer (its KRaft controller's), for live
brokers. Used by the controller when at least one live broker has a rack
(``broker.rack``); a cluster without racks keeps the rack-unaware assignment
(controller.assign_replicas). ``assign_replicas_rack_aware``: Kafka's
AdminUtils.assignReplicasToBrokersRackAware, what kafka-reassign-partitions ``--generate``
proposes (pybroker reassign-partitions).

StripedReplicaPlacer:
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


def rack_alternated(racks: dict[int, str]) -> list[int]:
    """Brokers taken one rack after the other (racks by name, brokers by id): Kafka's
    AdminUtils.getRackAlternatedBrokerList. {0: r1, 1: r3, 2: r3, 3: r2, 4: r2, 5: r1}
    gives 0, 3, 1, 5, 4, 2."""
    by_rack: dict[str, list[int]] = {}
    for broker, rack in racks.items():
        by_rack.setdefault(rack, []).append(broker)
    queues = [sorted(by_rack[name]) for name in sorted(by_rack)]
    out: list[int] = []
    for i in range(max(map(len, queues), default=0)):
        out += [queue[i] for queue in queues if i < len(queue)]
    return out


def assign_replicas_rack_aware(racks: dict[int, str], partitions: int, replication_factor: int,
                               rng: random.Random | None = None) -> list[list[int]]:
    """Kafka's AdminUtils rack-aware assignment over every broker of ``racks`` (each must
    have one): the first replica round-robin over the rack-alternated broker list from a
    random start, the others from a shifting offset, skipping a broker whose rack already
    holds a replica while some rack holds none, and a broker already holding one while
    some broker holds none."""
    if replication_factor < 1:
        raise errors.InvalidReplicationFactor("Replication factor must be larger than 0.")
    if replication_factor > len(racks):
        raise errors.InvalidReplicationFactor(
            f"Replication factor: {replication_factor} larger than available brokers: {len(racks)}.")
    rng = rng or random.Random()
    arranged = rack_alternated(racks)
    n, rack_count = len(arranged), len(set(racks.values()))
    start = rng.randrange(n)
    shift = rng.randrange(n)
    out = []
    for p in range(partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start) % n
        replicas = [arranged[first]]
        used_racks = {racks[arranged[first]]}
        k = 0
        while len(replicas) < replication_factor:
            broker = arranged[(first + 1 + (shift * rack_count + k) % (n - 1)) % n]
            rack = racks[broker]
            if (rack not in used_racks or len(used_racks) == rack_count) and broker not in replicas:
                replicas.append(broker)
                used_racks.add(rack)
            k += 1
        out.append(replicas)
    return out
