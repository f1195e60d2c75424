"""Server-side assignors of KIP-848 consumer groups: ``uniform`` (the default) and
``range``. The coordinator runs them; clients only name one (``group.remote.assignor``).

They are the client-side assignors of assignors.py run by the coordinator over topic ids:
``uniform`` is the sticky assignment (every partition to a member subscribed to its topic,
counts balanced, a partition kept by its previous owner whenever balance allows, as
Kafka's UniformAssignor), ``range`` Kafka's RangeAssignor (co-partitioned contiguous
ranges per topic). The previous target assignment stands in for the owned partitions a
classic member would report. An assignment is ``{member_id: {topic_id: set(partitions)}}``
with an entry (possibly empty) per member.
"""
from __future__ import annotations

from typing import Mapping

from pybroker.group.assignors import RangeAssignor, StickyAssignor
from pybroker.group.consumer_protocol import Subscription

Assignment = dict[str, dict[str, set[int]]]


def _run(assignor, members: Mapping[str, tuple[set[str], str | None]], partitions: Mapping[str, int],
         previous: Mapping[str, Mapping[str, set[int]]]) -> Assignment:
    subscriptions = {
        member: Subscription(topics=sorted(topics), group_instance_id=instance_id, generation_id=0,
                             owned_partitions=sorted((t, p) for t, ps in previous.get(member, {}).items() for p in ps))
        for member, (topics, instance_id) in members.items()}
    out: Assignment = {}
    for member, tps in assignor.assign(dict(partitions), subscriptions).items():
        mine = out.setdefault(member, {})
        for topic, p in tps:
            mine.setdefault(topic, set()).add(p)
    return out


def uniform(members, partitions, previous) -> Assignment:
    return _run(StickyAssignor(), members, partitions, previous)


def range_(members, partitions, previous) -> Assignment:
    return _run(RangeAssignor(), members, partitions, previous)


ASSIGNORS = {"uniform": uniform, "range": range_}
DEFAULT_ASSIGNOR = "uniform"
