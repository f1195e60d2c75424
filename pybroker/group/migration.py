"""Online migration between the classic and the consumer (KIP-848) group protocols, as
Kafka 4 does it (``group.consumer.migration.policy``: ``disabled``, ``upgrade``,
``downgrade``, ``bidirectional``, the default).

Upgrade: the first ConsumerGroupHeartbeat (epoch 0) to a classic group with members
turns it into a consumer group, if every member speaks the ``consumer`` embedded protocol
and the group fits ``group.consumer.max.size``. Each classic member becomes a consumer
group member that still speaks JoinGroup/SyncGroup/Heartbeat (``ClassicMetadata``), at
the group's generation as its epoch, owning what its last SyncGroup gave it (decoded from
its ConsumerProtocolAssignment; its subscription from its JoinGroup metadata). The
joining member then bumps the group epoch and the coordinator's assignor runs over
everyone; revocation comes before reassignment as for any consumer group member.

Downgrade: when the last consumer-protocol member leaves or is fenced and the others all
speak the classic protocol (and fit ``group.max.size``), the group becomes a classic
group again at the group epoch as its generation, each member holding its target
assignment, and a rebalance starts so the classic leader assigns.

A classic static member taking over the instance id of the last consumer-protocol member
downgrades the group too, without a rebalance: it keeps its predecessor's assignment.

Committed offsets belong to the group id, so they stay throughout. Pure logic.
"""
from __future__ import annotations

import enum
from typing import Mapping

from pybroker import errors
from pybroker.group.consumer_group import ClassicMetadata, ConsumerGroup, ConsumerMember, MemberState
from pybroker.group.consumer_protocol import (Assignment, decode_assignment, decode_subscription,
                                             encode_assignment)
from pybroker.group.state_machine import Group, GroupMember, GroupSettings

CONSUMER_PROTOCOL = "consumer"


class MigrationPolicy(enum.Enum):
    DISABLED = "disabled"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    BIDIRECTIONAL = "bidirectional"

    @property
    def upgrades(self) -> bool:
        return self in (MigrationPolicy.UPGRADE, MigrationPolicy.BIDIRECTIONAL)

    @property
    def downgrades(self) -> bool:
        return self in (MigrationPolicy.DOWNGRADE, MigrationPolicy.BIDIRECTIONAL)


def may_upgrade(classic: Group, policy: MigrationPolicy, consumer_max_size: int) -> bool:
    """Kafka's validateOnlineUpgrade."""
    return policy.upgrades and classic.protocol_type == CONSUMER_PROTOCOL and \
        len(classic.members) <= consumer_max_size


def may_downgrade(group: ConsumerGroup, leaving_id: str, policy: MigrationPolicy, classic_max_size: int) -> bool:
    """Kafka's validateOnlineDowngradeWithFencedMember: the member going is the last one
    on the consumer protocol, and classic members remain."""
    leaving = group.members.get(leaving_id)
    if leaving is None or leaving.classic is not None:
        return False
    others = [m for m in group.members.values() if m.member_id != leaving_id]
    return bool(others) and all(m.classic is not None for m in others) and policy.downgrades and \
        len(others) <= classic_max_size


def to_consumer_group(classic: Group, topics: Mapping, topics_version: object, group: ConsumerGroup,
                      now_ms: int) -> ConsumerGroup:
    """Fills the empty consumer group ``group`` with ``classic``'s members (Kafka's
    ConsumerGroup.fromClassicGroup). Raises InconsistentGroupProtocol when a member's
    embedded protocol bytes do not decode; ``classic`` is left as it was then."""
    ids = {name: str(info.topic_id) for name, info in topics.items()}
    generation = classic.generation_id
    members = []
    for m in classic.members.values():
        name = classic.protocol_name if classic.protocol_name in m.protocol_names() else m.protocols[0][0]
        try:
            subscription = decode_subscription(m.metadata(name))
            assignment = decode_assignment(m.assignment)
        except errors.KafkaError as exc:
            raise errors.InconsistentGroupProtocol(
                f"cannot upgrade group {classic.group_id}: member {m.member_id}'s consumer protocol data: {exc}") from None
        assigned: dict[str, set[int]] = {}
        for topic, partition in assignment.partitions:
            if topic in ids:
                assigned.setdefault(ids[topic], set()).add(partition)
        members.append(ConsumerMember(
            member_id=m.member_id, instance_id=m.group_instance_id, rack_id=subscription.rack_id,
            client_id=m.client_id, client_host=m.client_host, rebalance_timeout_ms=m.rebalance_timeout_ms,
            subscribed_topic_names=tuple(sorted(subscription.topics)), member_epoch=generation,
            previous_member_epoch=generation, state=MemberState.STABLE, assigned=assigned,
            session_deadline_ms=now_ms + m.session_timeout_ms,
            classic=ClassicMetadata(m.session_timeout_ms, list(m.protocols))))
    group.group_epoch = group.assignment_epoch = generation
    for member in members:
        group.members[member.member_id] = member
        if member.instance_id is not None:
            group.static_members[member.instance_id] = member.member_id
        group.target[member.member_id] = {t: set(ps) for t, ps in member.assigned.items()}
        for t, ps in member.assigned.items():
            for p in ps:
                group.owners.setdefault((t, p), member.member_id)
    group.state_since_ms = now_ms
    group._resolve_subscriptions(topics, topics_version, force=True)
    return group


def all_classic(group: ConsumerGroup, policy: MigrationPolicy, classic_max_size: int) -> bool:
    """Kafka's validateOnlineDowngradeWithReplacedMemberId, once the replacement is made:
    only classic members are left."""
    return bool(group.members) and all(m.classic is not None for m in group.members.values()) and \
        policy.downgrades and len(group.members) <= classic_max_size


def to_classic_group(group: ConsumerGroup, leaving_id: str, settings: GroupSettings, new_member_id,
                     now_ms: int, rebalance: bool = True) -> Group:
    """The classic group ``group`` becomes when ``leaving_id`` goes (Kafka's
    ClassicGroup.fromConsumerGroup): Stable at the group epoch, each member holding its
    target assignment, then rebalancing (not when a classic static member took the
    place of the last consumer-protocol one: it keeps that member's assignment)."""
    members = [GroupMember(member_id=m.member_id, group_instance_id=m.instance_id, client_id=m.client_id,
                           client_host=m.client_host, session_timeout_ms=m.classic.session_timeout_ms,
                           rebalance_timeout_ms=m.rebalance_timeout_ms, protocol_type=CONSUMER_PROTOCOL,
                           protocols=list(m.classic.protocols), last_heartbeat_ms=now_ms, is_new=False)
               for m in group.members.values() if m.member_id != leaving_id]
    classic = Group.resumed(group.group_id, settings, new_member_id, group.group_epoch, members, now_ms)
    for member in classic.members.values():
        target = group.target.get(member.member_id, {})
        partitions = [(group.topic_names[t], p) for t, ps in sorted(target.items()) if t in group.topic_names
                      for p in sorted(ps)]
        version = group.members[member.member_id].classic.assignment_version()
        member.assignment = encode_assignment(Assignment(partitions, version=version))
    if rebalance:
        classic.rebalance(now_ms)
    return classic
