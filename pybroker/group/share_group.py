"""A KIP-932 share group (Queues for Kafka): members read the *same* partitions
cooperatively; each record is acquired by one member at a time, with a lock, and
acknowledged (accepted, released for redelivery, rejected) — see share_partition.py.

Membership is KIP-848's (ConsumerGroup): ShareGroupHeartbeat joins with epoch 0, leaves
with -1, and a member silent past the session timeout is fenced. The differences:

- No exclusive ownership, so no revocation step: a member takes its target assignment at
  once. The assignment (Kafka's SimpleAssignor idea) gives every subscribed partition to
  at least one member and every member at least one partition: with more members than
  partitions, partitions are shared.
- The group holds a SharePartition per topic partition its members read, created at
  ``share.auto.offset.reset`` (latest by default, as Kafka) on first fetch.
- Records a member holds are released when its share session closes (ShareFetch or
  ShareAcknowledge with epoch -1) or their lock runs out, not when it leaves the group:
  a closing consumer leaves and then acknowledges what it read, as librdkafka does, and
  those acknowledgements still count (ownership is checked per record, as Kafka does).

Pure logic; owned by the coordinator's event loop thread.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from pybroker.group.consumer_group import ConsumerGroup, ConsumerMember, MemberState
from pybroker.group.share_partition import SharePartition

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class ShareGroupSettings:
    """Kafka's group.share.* broker settings (and their group-config defaults)."""

    session_timeout_ms: int = 45_000            # group.share.session.timeout.ms
    heartbeat_interval_ms: int = 5_000          # group.share.heartbeat.interval.ms
    record_lock_duration_ms: int = 30_000       # group.share.record.lock.duration.ms
    delivery_count_limit: int = 5               # group.share.delivery.count.limit
    max_size: int = 200                         # group.share.max.size
    auto_offset_reset: str = "latest"           # share.auto.offset.reset (a group config)


class ShareGroupState(enum.Enum):
    EMPTY = "Empty"
    STABLE = "Stable"
    DEAD = "Dead"


def simple_assignment(members: Mapping[str, set[str]], partitions: Mapping[str, int]) -> dict[str, dict[str, set[int]]]:
    """Per topic, its partitions dealt over its subscribed members in member-id order;
    with more members than partitions, members share them (partition ``i % n``)."""
    out: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    for topic in sorted(partitions):
        subscribed = sorted(m for m, topics in members.items() if topic in topics)
        count = partitions[topic]
        if not subscribed or count <= 0:
            continue
        if len(subscribed) <= count:
            for p in range(count):
                out[subscribed[p % len(subscribed)]].setdefault(topic, set()).add(p)
        else:
            for i, m in enumerate(subscribed):
                out[m].setdefault(topic, set()).add(i % count)
    return out


class ShareGroup(ConsumerGroup):
    def __init__(self, group_id: str, settings: ShareGroupSettings | None = None):
        self.share_settings = settings or ShareGroupSettings()
        super().__init__(group_id, self.share_settings)
        self.partitions: dict[TopicPartition, SharePartition] = {}
        self.configs: dict[str, str] = {}       # this group's dynamic configs (GROUP resource)

    # -- settings a group config may override -------------------------------------------

    def _config(self, name: str, default):
        value = self.configs.get(name)
        return default if value is None else type(default)(value)

    @property
    def lock_ms(self) -> int:
        return self._config("share.record.lock.duration.ms", self.share_settings.record_lock_duration_ms)

    @property
    def delivery_limit(self) -> int:
        return self._config("share.delivery.count.limit", self.share_settings.delivery_count_limit)

    @property
    def auto_offset_reset(self) -> str:
        return self._config("share.auto.offset.reset", self.share_settings.auto_offset_reset)

    # -- membership ----------------------------------------------------------------------

    @property
    def state(self):
        if self.dead:
            return ShareGroupState.DEAD
        return ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY

    def assignor_name(self) -> str:
        return "simple"

    def _compute_target(self) -> None:
        partitions = {tid: count for tid, count in self.subscribed.values()}
        self.target = simple_assignment({mid: self._member_topics(m) for mid, m in self.members.items()}, partitions)
        self.assignment_epoch = self.group_epoch

    def _reconcile(self, member: ConsumerMember, owned, now_ms: int) -> None:
        member.assigned = {t: set(ps) for t, ps in self.target.get(member.member_id, {}).items()}
        member.pending_revocation = {}
        member.state = MemberState.STABLE
        if member.member_epoch != self.assignment_epoch:
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = self.assignment_epoch

    def share_heartbeat(self, now_ms: int, topics: Mapping, topics_version: object, *, member_id: str,
                        member_epoch: int, rack_id: str | None = None,
                        subscribed_topic_names: list[str] | None = None, client_id: str = "",
                        client_host: str = "") -> dict:
        return self.heartbeat(now_ms, topics, topics_version, member_id=member_id, member_epoch=member_epoch,
                              rack_id=rack_id, subscribed_topic_names=subscribed_topic_names,
                              # The owned-partitions check of consumer groups does not apply.
                              topic_partitions=None, client_id=client_id, client_host=client_host)

    def next_deadline_ms(self) -> int | None:
        deadlines = [d for d in [super().next_deadline_ms(), *(sp.next_deadline() for sp in self.partitions.values())]
                     if d is not None]
        return min(deadlines) if deadlines else None

    def expire_locks(self, now_ms: int) -> list[TopicPartition]:
        """Releases records whose lock ran out; the partitions that changed."""
        return [tp for tp, sp in self.partitions.items() if sp.expire(now_ms)]

    # -- records -------------------------------------------------------------------------

    def share_partition(self, tp: TopicPartition, log_start: int, high_watermark: int) -> SharePartition:
        sp = self.partitions.get(tp)
        if sp is None:
            start = log_start if self.auto_offset_reset == "earliest" else high_watermark
            sp = self.partitions[tp] = SharePartition(start, self.delivery_limit)
        sp.delivery_limit = self.delivery_limit
        return sp

    def holds(self, member_id: str) -> bool:
        return member_id in self.members

    def describe(self) -> dict:
        described = super().describe()
        described["members"] = [{k: m[k] for k in ("member_id", "rack_id", "member_epoch", "client_id",
                                                   "client_host", "subscribed_topic_names", "assignment")}
                                for m in described["members"]]
        return described
