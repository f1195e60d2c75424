"""The iteration order of a Java HashMap / HashSet, which Kafka's tools print their
collections in (kafka-log-dirs' JSON keys and partitions, kafka-leader-election's
partition lists): buckets by the spread hash of each key's ``hashCode()``, in a table of
the power-of-two size the map has grown to, insertion order within a bucket."""
from __future__ import annotations

from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
_INT = 0xFFFFFFFF


def string_hash(text: str) -> int:
    """java.lang.String.hashCode (UTF-16 code units, 32-bit wraparound)."""
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & _INT
    return h


def topic_partition_hash(topic: str, partition: int) -> int:
    """org.apache.kafka.common.TopicPartition.hashCode."""
    return (31 * (31 + partition) + string_hash(topic)) & _INT


def _table_size(n: int) -> int:
    size = 16
    while n > size * 3 // 4:
        size *= 2
    return size


def hash_order(items: Iterable[T], hash_code: Callable[[T], int]) -> list[T]:
    """``items`` (in insertion order) as a Java HashMap iterates them."""
    items = list(items)
    mask = _table_size(len(items)) - 1

    def bucket(item: T) -> int:
        h = hash_code(item)
        return (h ^ (h >> 16)) & mask
    return [item for _, item in sorted(enumerate(items), key=lambda pair: (bucket(pair[1]), pair[0]))]
