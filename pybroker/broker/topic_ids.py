"""Topic names by topic id, for the requests that name topics by id (Fetch v13+,
ShareFetch, ShareAcknowledge, Metadata v10+, DeleteTopics v6).

One id -> name index per broker, kept across requests: a hit is checked against the
broker's topics (a deleted or re-made topic never answers for its old id), and a miss
rebuilds the index at most once per request, so a request full of unknown ids costs one
rebuild (2 ms at 20,000 topics), not one per id, and a request of known ids costs a dict
lookup each instead of building the index.

Owned by the broker's event loop thread.
"""
from __future__ import annotations


class TopicNames:
    """The lookups of one request."""

    __slots__ = ("_broker", "_rebuilt")

    def __init__(self, broker):
        self._broker = broker
        self._rebuilt = False

    def get(self, topic_id) -> str | None:
        """The name of the topic with ``topic_id`` (a uuid or its string), None if none has it."""
        tid = str(topic_id)
        broker = self._broker
        topics = broker.image.topics
        index = getattr(broker, "_topic_names_by_id", None)
        name = index.get(tid) if index is not None else None
        if name is not None and name in topics and str(topics[name].topic_id) == tid:
            return name
        if self._rebuilt:
            return None
        self._rebuilt = True
        index = broker._topic_names_by_id = {str(t.topic_id): n for n, t in topics.items()}
        return index.get(tid)
