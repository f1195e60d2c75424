"""Which partition a record goes to, as Kafka's producer decides it.

A keyed record goes to ``murmur2(key) & 0x7fffffff % partitions`` — the same hash and
seed as Kafka's Java client, so pybroker and Java producers place a key identically.
Records without a key stick to one partition until its batch is sent (the "sticky"
partitioner of KIP-480), which keeps batches large.

Pure logic: no sockets, no state beyond what the caller holds.
"""
from __future__ import annotations

import random

M = 0x5BD1E995  # murmur2 mixing constant
SEED = 0x9747B28C  # Kafka's seed
MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 as a signed 32-bit int (equal to Utils.murmur2 in Java)."""
    length = len(data)
    h = (SEED ^ length) & MASK32
    end = length & ~3
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * M) & MASK32
        k ^= k >> 24
        k = (k * M) & MASK32
        h = ((h * M) & MASK32) ^ k
    tail = length & 3
    if tail == 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h ^= data[end]
        h = (h * M) & MASK32
    h ^= h >> 13
    h = (h * M) & MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


def sticky_partition(num_partitions: int, previous: int | None = None) -> int:
    """A new sticky partition, different from ``previous`` when there is a choice."""
    if num_partitions <= 1:
        return 0
    choice = random.randrange(num_partitions - 1 if previous is not None else num_partitions)
    if previous is not None and choice >= previous:
        choice += 1
    return choice
