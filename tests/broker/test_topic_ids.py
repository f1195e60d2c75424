"""pybroker.broker.topic_ids: names by topic id from a cached index that never answers
for a topic's old id and rebuilds at most once per request."""
from __future__ import annotations

import types
import uuid

from pybroker.broker.topic_ids import TopicNames


def _broker(**ids):
    topics = {name: types.SimpleNamespace(topic_id=tid) for name, tid in ids.items()}
    return types.SimpleNamespace(image=types.SimpleNamespace(topics=topics))


def test_a_topic_made_again_is_not_found_by_its_old_id_and_misses_rebuild_once_per_request():
    old, new, other = (str(uuid.uuid4()) for _ in range(3))
    broker = _broker(orders=old)
    assert TopicNames(broker).get(uuid.UUID(old)) == "orders"
    index = broker._topic_names_by_id
    assert TopicNames(broker).get(old) == "orders" and broker._topic_names_by_id is index   # a hit: no rebuild
    broker.image.topics["orders"] = types.SimpleNamespace(topic_id=new)                      # deleted, made again
    names = TopicNames(broker)
    assert names.get(old) is None                # the hit is checked: the old id misses, and rebuilds
    assert names.get(new) == "orders"
    broker.image.topics["payments"] = types.SimpleNamespace(topic_id=other)
    index = broker._topic_names_by_id
    assert names.get(uuid.uuid4()) is None       # this request rebuilt already: no second rebuild
    assert names.get(other) is None and broker._topic_names_by_id is index
    assert TopicNames(broker).get(other) == "payments"   # the next request sees the new topic
