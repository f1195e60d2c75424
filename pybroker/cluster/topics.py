"""Topic names and the metadata a topic carries.

Kafka's naming rule: 1..249 characters of ``[a-zA-Z0-9._-]``, and not ``.`` or ``..``
(249 because a partition directory ``<topic>-<partition>`` plus a deletion suffix must
fit in a 255-byte file name).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from pybroker.config import TopicConfig
from pybroker.errors import InvalidTopicException

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


def validate_topic_name(name: object) -> str:
    """Return ``name`` if it is a legal topic name, else raise InvalidTopicException."""
    if not isinstance(name, str) or not name:
        raise InvalidTopicException("Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise InvalidTopicException("Topic name cannot be \".\" or \"..\"")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTopicException(
            f"Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
        )
    if not _LEGAL.fullmatch(name):
        raise InvalidTopicException(
            f"Topic name \"{name}\" is illegal, it contains a character other than ASCII "
            "alphanumerics, '.', '_' and '-'"
        )
    return name


@dataclass
class TopicMetadata:
    """What the cluster knows of one topic. Partitions can grow, never shrink."""

    name: str
    partitions: int
    replication_factor: int = 1
    topic_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    config: TopicConfig = field(default_factory=TopicConfig)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "topic_id": self.topic_id,
            "configs": self.config.overridden(),
        }

    @classmethod
    def from_json(cls, doc: dict, defaults: TopicConfig) -> "TopicMetadata":
        return cls(
            name=doc["name"],
            partitions=int(doc["partitions"]),
            replication_factor=int(doc.get("replication_factor", 1)),
            topic_id=doc["topic_id"],
            config=TopicConfig.parse(doc.get("configs") or {}, defaults),
        )
