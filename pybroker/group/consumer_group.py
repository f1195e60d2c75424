"""A KIP-848 consumer group (``group.protocol=consumer``): the coordinator computes the
assignment and every member reconciles towards it with ConsumerGroupHeartbeat (68).

Epochs::

    group epoch       bumped when membership, a subscription or a subscribed topic's
                      partition count changes
    assignment epoch  the group epoch the target assignment was computed for
    member epoch      the assignment epoch a member has reconciled to (0 = joining,
                      -1 = leaving, -2 = a static member leaving for a while)

Reconciliation (Kafka's CurrentAssignmentBuilder), per heartbeat of a member whose epoch
is behind the assignment epoch, with T its target and A what it holds:

    A - T non-empty        UNREVOKED_PARTITIONS: it keeps A & T and must revoke A - T;
                           its epoch stays until a heartbeat shows it no longer owns them
    else                   it takes T - A, except partitions another member still
                           holds (UNRELEASED_PARTITIONS, until they are released), and
                           moves to the assignment epoch; STABLE once it holds all of T

(a member reporting that it no longer owns A - T skips the wait), so a partition is never
owned by two members at once and nobody stops for a rebalance
that does not concern it. A member that does not revoke within its rebalance timeout, or
does not heartbeat within the session timeout, is fenced.

Members that speak the classic protocol (a classic group upgraded with its members, see
migration.py) reconcile the same way, at their JoinGroup, and get their assignment in
SyncGroup; ``classic_join``/``classic_sync``/``classic_heartbeat``/``classic_leave``
serve them, as Kafka's classicGroup*ToConsumerGroup.

The group's durable form is ``metadata_json`` plus one ``member_json`` per member (the
host writes them with membership_store.py); ``restore`` loads it after a restart.

Pure logic: no sockets, no clock (callers pass ``now_ms``). Owned by the coordinator's
event loop thread.
"""
from __future__ import annotations

import base64
import enum
import re
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from pybroker import errors
from pybroker.group.consumer_protocol import (MAX_VERSION, Assignment, decode_subscription,
                                             encode_assignment)
from pybroker.group.server_assignors import ASSIGNORS, DEFAULT_ASSIGNOR

CONSUMER_PROTOCOL_TYPE = "consumer"
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2
Partitions = dict[str, set[int]]          # topic id -> partitions


@dataclass(frozen=True)
class ConsumerGroupSettings:
    """Kafka's group.consumer.* broker settings."""

    session_timeout_ms: int = 45_000          # group.consumer.session.timeout.ms
    heartbeat_interval_ms: int = 5_000        # group.consumer.heartbeat.interval.ms
    max_size: int = 2**31 - 1                 # group.consumer.max.size
    assignors: tuple[str, ...] = ("uniform", "range")   # group.consumer.assignors
    migration_policy: str = "bidirectional"   # group.consumer.migration.policy


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(enum.Enum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


@dataclass
class ClassicMetadata:
    """A member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat) to a
    consumer group, as its last JoinGroup described it (Kafka's ClassicMemberMetadata).
    It learns of a new assignment by rejoining: REBALANCE_IN_PROGRESS in its Heartbeat,
    then JoinGroup and SyncGroup, which carries its assignment as ConsumerProtocolAssignment
    bytes. It must rejoin within its rebalance timeout once told, and sync within it after
    its JoinGroup answer, or it is fenced."""

    session_timeout_ms: int
    protocols: list[tuple[str, bytes]]          # (name, metadata), in preference order
    join_deadline_ms: int | None = None
    sync_deadline_ms: int | None = None

    @property
    def protocol_name(self) -> str:
        return self.protocols[0][0]

    def assignment_version(self) -> int:
        """The assignment is written in the version of the member's subscription."""
        metadata = self.protocols[0][1]
        version = int.from_bytes(metadata[:2], "big", signed=True) if len(metadata) >= 2 else 0
        return min(max(version, 0), MAX_VERSION)


@dataclass
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = 300_000
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Partitions = field(default_factory=dict)
    pending_revocation: Partitions = field(default_factory=dict)
    # The member epoch at which each owned partition was assigned (KIP-1251): a commit
    # at an older member epoch is accepted for partitions the member held at that epoch.
    assignment_epochs: dict[tuple[str, int], int] = field(default_factory=dict)
    session_deadline_ms: int = 0
    revocation_deadline_ms: int | None = None
    classic: ClassicMetadata | None = None

    def owned(self) -> Partitions:
        out = {t: set(ps) for t, ps in self.assigned.items()}
        for t, ps in self.pending_revocation.items():
            out.setdefault(t, set()).update(ps)
        return out


def _clean(parts: Mapping[str, set[int]]) -> Partitions:
    return {t: set(ps) for t, ps in parts.items() if ps}


def _is_subset(small: Mapping[str, set[int]], big: Mapping[str, set[int]]) -> bool:
    return all(ps <= big.get(t, set()) for t, ps in small.items())


def _overlaps(a: Mapping[str, set[int]], b: Mapping[str, set[int]]) -> bool:
    return any(ps & b.get(t, set()) for t, ps in a.items())


def _wire_partitions(parts: Mapping[str, set[int]]) -> list[list]:
    return [[t, sorted(ps)] for t, ps in sorted(parts.items()) if ps]


def _json_partitions(parts: Mapping[str, set[int]]) -> dict[str, list[int]]:
    return {t: sorted(ps) for t, ps in sorted(parts.items()) if ps}


def _from_json_partitions(doc: Mapping[str, list[int]]) -> Partitions:
    return {t: set(ps) for t, ps in doc.items() if ps}


def heartbeat_error(code: int, message: str, heartbeat_interval_ms: int = 0) -> dict:
    return {"error_code": code, "error_message": message, "member_id": None, "member_epoch": -1,
            "heartbeat_interval_ms": heartbeat_interval_ms, "assignment": None}


class ConsumerGroup:
    """One KIP-848 group. ``topics`` maps topic names to objects with ``topic_id`` and
    ``partitions`` (the controller's TopicMetadata); ``topics_version`` changes whenever
    that mapping does, so subscriptions are re-resolved only then."""

    def __init__(self, group_id: str, settings: ConsumerGroupSettings | None = None):
        self.group_id = group_id
        self.settings = settings or ConsumerGroupSettings()
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}       # instance id -> member id
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.target: dict[str, Partitions] = {}
        self.owners: dict[tuple[str, int], str] = {}   # partition -> member holding it
        self.subscribed: dict[str, tuple[str, int]] = {}   # topic name -> (id, partitions)
        self._topics_version: object = None
        self.dead = False
        self.state_since_ms = 0
        self.topic_names: dict[str, str] = {}          # topic id -> name, as last seen

    # ------------------------------------------------------------------ queries

    @property
    def state(self) -> ConsumerGroupState:
        if self.dead:
            return ConsumerGroupState.DEAD
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE
               for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def is_empty(self) -> bool:
        return not self.members

    def subscribed_topic_names(self) -> set[str]:
        return set(self.subscribed)

    def next_deadline_ms(self) -> int | None:
        deadlines = [m.session_deadline_ms for m in self.members.values()]
        deadlines += [m.revocation_deadline_ms for m in self.members.values() if m.revocation_deadline_ms is not None]
        deadlines += [d for m in self.members.values() if m.classic is not None
                      for d in (m.classic.join_deadline_ms, m.classic.sync_deadline_ms) if d is not None]
        return min(deadlines) if deadlines else None

    def assignor_name(self) -> str:
        """The assignor most members ask for (Kafka's rule), else the default."""
        asked: dict[str, int] = {}
        for m in self.members.values():
            if m.server_assignor:
                asked[m.server_assignor] = asked.get(m.server_assignor, 0) + 1
        if not asked:
            return DEFAULT_ASSIGNOR
        return max(sorted(asked), key=lambda name: asked[name])

    # ------------------------------------------------------------------ heartbeat

    def heartbeat(self, now_ms: int, topics: Mapping, topics_version: object, *, member_id: str,
                  member_epoch: int, instance_id: str | None = None, rack_id: str | None = None,
                  rebalance_timeout_ms: int = -1, subscribed_topic_names: list[str] | None = None,
                  subscribed_topic_regex: str | None = None, server_assignor: str | None = None,
                  topic_partitions: list | None = None, client_id: str = "", client_host: str = "") -> dict:
        """ConsumerGroupHeartbeat: returns the response fields (error_code, member_id,
        member_epoch, heartbeat_interval_ms, assignment as [[topic_id, [partitions]]] or
        None)."""
        if member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self._leave(now_ms, member_id, instance_id, member_epoch)
        if server_assignor is not None and server_assignor not in ASSIGNORS:
            return self._error(errors.UnsupportedAssignor.code, f"assignor {server_assignor} is not supported; "
                               f"this broker has {', '.join(sorted(ASSIGNORS))}")
        if subscribed_topic_regex is not None:
            try:
                re.compile(subscribed_topic_regex)
            except re.error as exc:
                return self._error(errors.InvalidRegularExpression.code, f"invalid regex: {exc}")
        owned = None if topic_partitions is None else _clean({t: set(ps) for t, ps in topic_partitions})
        bump = False
        if member_epoch == 0:
            member, code, message = self._join(now_ms, member_id, instance_id, owned)
            if code:
                return self._error(code, message)
            bump = member.member_epoch == 0
        else:
            member = self.members.get(member_id)
            if member is None:
                return self._error(errors.UnknownMemberId.code, f"member {member_id} is not in group {self.group_id}")
            if instance_id is not None and self.static_members.get(instance_id) != member_id:
                return self._error(errors.FencedInstanceId.code, f"instance {instance_id} belongs to another member")
            if member_epoch > member.member_epoch or (
                    member_epoch < member.member_epoch and
                    (member_epoch != member.previous_member_epoch or
                     (owned is not None and not _is_subset(owned, member.assigned)))):
                return self._error(errors.FencedMemberEpoch.code,
                                   f"member epoch {member_epoch} is fenced (current {member.member_epoch})")
        member.session_deadline_ms = now_ms + self.settings.session_timeout_ms
        member.client_id = client_id or member.client_id
        member.client_host = client_host or member.client_host
        if rack_id is not None:
            member.rack_id = rack_id
        if rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = rebalance_timeout_ms
        if subscribed_topic_names is not None and tuple(sorted(subscribed_topic_names)) != member.subscribed_topic_names:
            member.subscribed_topic_names = tuple(sorted(subscribed_topic_names))
            bump = True
        if subscribed_topic_regex is not None and (subscribed_topic_regex or None) != member.subscribed_topic_regex:
            member.subscribed_topic_regex = subscribed_topic_regex or None
            bump = True
        if server_assignor is not None and server_assignor != member.server_assignor:
            member.server_assignor = server_assignor
            bump = True
        self._update_target(topics, topics_version, bump)
        before = (member.member_epoch, _clean(member.assigned))
        self._reconcile(member, owned, now_ms)
        changed = before != (member.member_epoch, _clean(member.assigned))
        full = rebalance_timeout_ms != -1 and owned is not None and (
            subscribed_topic_names is not None or subscribed_topic_regex is not None)
        return {
            "error_code": 0, "error_message": None, "member_id": member.member_id,
            "member_epoch": member.member_epoch,
            "heartbeat_interval_ms": self.settings.heartbeat_interval_ms,
            "assignment": _wire_partitions(member.assigned) if (member_epoch == 0 or full or changed) else None,
        }

    def _error(self, code: int, message: str) -> dict:
        return heartbeat_error(code, message, self.settings.heartbeat_interval_ms)

    def _join(self, now_ms, member_id, instance_id, owned):
        if instance_id is not None:
            previous_id = self.static_members.get(instance_id)
            if previous_id is not None:
                previous = self.members.get(previous_id)
                if previous is not None and previous.member_epoch != STATIC_LEAVE_EPOCH and previous_id != member_id:
                    return None, errors.UnreleasedInstanceId.code, \
                        f"static member {instance_id} is still active as {previous_id}"
                if previous is not None:
                    # A static member back within its session: it takes over its assignment.
                    del self.members[previous_id]
                    new_id = member_id or str(uuid.uuid4())
                    previous.member_id = new_id
                    previous.member_epoch = previous.previous_member_epoch
                    self.members[new_id] = previous
                    self.static_members[instance_id] = new_id
                    for tp, holder in list(self.owners.items()):
                        if holder == previous_id:
                            self.owners[tp] = new_id
                    if previous_id in self.target:
                        self.target[new_id] = self.target.pop(previous_id)
                    return previous, 0, None
        if member_id and member_id in self.members:
            member = self.members[member_id]
            if member.member_epoch != 0 or (owned and not _is_subset(owned, member.assigned)):
                # A member rejoining with epoch 0 gives up what it had.
                self._release(member)
                member.assigned, member.pending_revocation = {}, {}
                member.member_epoch = member.previous_member_epoch = 0
                member.state = MemberState.STABLE
            return member, 0, None
        if len(self.members) >= self.settings.max_size:
            return None, errors.GroupMaxSizeReached.code, f"group {self.group_id} has {len(self.members)} members"
        member = ConsumerMember(member_id=member_id or str(uuid.uuid4()), instance_id=instance_id)
        self.members[member.member_id] = member
        if instance_id is not None:
            self.static_members[instance_id] = member.member_id
        if not self.state_since_ms:
            self.state_since_ms = now_ms
        return member, 0, None

    def _leave(self, now_ms: int, member_id: str, instance_id: str | None, epoch: int) -> dict:
        member = self.members.get(member_id)
        if member is None and instance_id is not None:
            member = self.members.get(self.static_members.get(instance_id, ""))
        if member is None:
            return self._error(errors.UnknownMemberId.code, f"member {member_id} is not in group {self.group_id}")
        if epoch == STATIC_LEAVE_EPOCH and member.instance_id is not None:
            # Kept, with its assignment, until it rejoins or its session expires.
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = STATIC_LEAVE_EPOCH
        else:
            self.remove_member(member, now_ms)
        return {"error_code": 0, "error_message": None, "member_id": member_id, "member_epoch": epoch,
                "heartbeat_interval_ms": self.settings.heartbeat_interval_ms, "assignment": None}

    def remove_member(self, member: ConsumerMember, now_ms: int) -> None:
        self._release(member)
        self.members.pop(member.member_id, None)
        self.target.pop(member.member_id, None)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member.member_id:
            del self.static_members[member.instance_id]
        self.group_epoch += 1
        if not self.members:
            self.state_since_ms = now_ms

    def _release(self, member: ConsumerMember) -> None:
        for tp in [tp for tp, holder in self.owners.items() if holder == member.member_id]:
            del self.owners[tp]

    # ------------------------------------------------------------------ assignment

    def _update_target(self, topics: Mapping, topics_version: object, bump: bool) -> None:
        """Bumps the group epoch if a member's subscription (``bump``) or a subscribed
        topic changed, and computes the target assignment for a new epoch."""
        if self._resolve_subscriptions(topics, topics_version, force=bump) or bump:
            self.group_epoch += 1
        if self.group_epoch > self.assignment_epoch:
            self._compute_target()

    def _resolve_subscriptions(self, topics: Mapping, version: object, force: bool) -> bool:
        """Re-reads the subscribed topics' ids and partition counts; True when they changed."""
        if not force and version == self._topics_version:
            return False
        self._topics_version = version
        self.topic_names = {str(info.topic_id): name for name, info in topics.items()}
        names: set[str] = set()
        for m in self.members.values():
            names.update(m.subscribed_topic_names)
        patterns = [re.compile(m.subscribed_topic_regex) for m in self.members.values() if m.subscribed_topic_regex]
        if patterns:
            names.update(n for n in topics if not n.startswith("__") and any(p.fullmatch(n) for p in patterns))
        resolved = {}
        for name in names:
            info = topics.get(name)
            if info is not None:
                resolved[name] = (str(info.topic_id), int(info.partitions))
        changed = resolved != self.subscribed
        self.subscribed = resolved
        return changed

    def _member_topics(self, member: ConsumerMember) -> set[str]:
        names = {n for n in member.subscribed_topic_names if n in self.subscribed}
        if member.subscribed_topic_regex:
            pattern = re.compile(member.subscribed_topic_regex)
            names.update(n for n in self.subscribed if pattern.fullmatch(n))
        return {self.subscribed[n][0] for n in names}

    def _compute_target(self) -> None:
        partitions = {tid: count for tid, count in self.subscribed.values()}
        subscriptions = {mid: (self._member_topics(m), m.instance_id) for mid, m in self.members.items()}
        assignor = ASSIGNORS[self.assignor_name()]
        self.target = assignor(subscriptions, partitions, self.target)
        self.assignment_epoch = self.group_epoch

    def _reconcile(self, member: ConsumerMember, owned: Partitions | None, now_ms: int) -> None:
        target = self.target.get(member.member_id, {})
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if owned is None or _overlaps(owned, member.pending_revocation):
                return
            # Revoked: what it gave up is free for others now.
            for t, ps in member.pending_revocation.items():
                for p in ps:
                    if self.owners.get((t, p)) == member.member_id:
                        del self.owners[(t, p)]
            member.pending_revocation = {}
            member.revocation_deadline_ms = None
        elif member.state is MemberState.STABLE and member.member_epoch == self.assignment_epoch:
            return
        keep: Partitions = {}
        revoke: Partitions = {}
        wanted: Partitions = {}
        for t in set(target) | set(member.assigned):
            current, goal = member.assigned.get(t, set()), target.get(t, set())
            if current & goal:
                keep[t] = current & goal
            if current - goal:
                revoke[t] = current - goal
            if goal - current:
                wanted[t] = goal - current
        if revoke and owned is not None and not _overlaps(owned, revoke):
            # It reports owning none of them (an eager classic member revokes everything
            # before it rejoins): they are free at once, as Kafka's ownsRevokedPartitions.
            for t, ps in revoke.items():
                for p in ps:
                    if self.owners.get((t, p)) == member.member_id:
                        del self.owners[(t, p)]
            revoke = {}
        if revoke:
            member.state = MemberState.UNREVOKED_PARTITIONS
            member.assigned = keep
            member.pending_revocation = revoke
            member.revocation_deadline_ms = now_ms + member.rebalance_timeout_ms
            return
        unreleased = False
        for t, ps in wanted.items():
            for p in ps:
                holder = self.owners.get((t, p))
                if holder is None or holder == member.member_id or holder not in self.members:
                    keep.setdefault(t, set()).add(p)
                    self.owners[(t, p)] = member.member_id
                    member.assignment_epochs[(t, p)] = self.assignment_epoch
                else:
                    unreleased = True
        member.assigned = keep
        member.pending_revocation = {}
        member.assignment_epochs = {(t, p): e for (t, p), e in member.assignment_epochs.items() if p in keep.get(t, ())}
        member.revocation_deadline_ms = None
        member.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
        if member.member_epoch != self.assignment_epoch:
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = self.assignment_epoch

    # ------------------------------------------------------------------ classic members

    def supports_classic(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        """A classic member may join if it speaks the consumer embedded protocol and shares a
        protocol name with every classic member already here (Kafka's supportsClassicProtocols)."""
        if protocol_type != CONSUMER_PROTOCOL_TYPE or not protocols:
            return False
        classic = [m for m in self.members.values() if m.classic is not None]
        return any(all(name in {n for n, _ in m.classic.protocols} for m in classic) for name, _ in protocols)

    def _classic_member(self, member_id: str, instance_id: str | None) -> tuple[ConsumerMember | None, int]:
        if instance_id is None:
            member = self.members.get(member_id)
        else:
            member = self.members.get(self.static_members.get(instance_id, ""))
            if member is not None and member.member_id != member_id:
                return None, errors.FencedInstanceId.code
        if member is None or member.classic is None:
            return None, errors.UnknownMemberId.code
        return member, 0

    def _must_rejoin(self, member: ConsumerMember) -> bool:
        """A classic member rejoins to catch up with a new epoch, to revoke, or to take
        partitions it waited for that are free now."""
        if member.member_epoch < self.group_epoch or member.state is MemberState.UNREVOKED_PARTITIONS:
            return True
        if member.state is MemberState.UNRELEASED_PARTITIONS:
            target = self.target.get(member.member_id, {})
            return not any(self.owners.get((t, p)) not in (None, member.member_id)
                           for t, ps in target.items() for p in ps if p not in member.assigned.get(t, set()))
        return False

    def classic_join(self, now_ms: int, topics: Mapping, topics_version: object, *, member_id: str,
                     protocol_type: str, protocols: list[tuple[str, bytes]], session_timeout_ms: int,
                     rebalance_timeout_ms: int = -1, group_instance_id: str | None = None, client_id: str = "",
                     client_host: str = "", version: int = 5) -> dict:
        """JoinGroup of a classic member (Kafka's classicGroupJoinToConsumerGroup): answered at
        once, with the member epoch as generation and no member list (nobody leads: the
        coordinator assigns)."""
        def fail(code):
            return {"error_code": code, "generation_id": -1, "protocol_type": None, "protocol_name": None,
                    "leader": "", "skip_assignment": False, "member_id": member_id, "members": []}
        new_id = member_id or str(uuid.uuid4())
        known = new_id in self.members or (group_instance_id is not None and group_instance_id in self.static_members)
        if not known and len(self.members) >= self.settings.max_size:
            return fail(errors.GroupMaxSizeReached.code)
        if not self.supports_classic(protocol_type, protocols):
            return fail(errors.InconsistentGroupProtocol.code)
        if not member_id and group_instance_id is None and version >= 4:
            return {**fail(errors.MemberIdRequired.code), "member_id": new_id}
        try:
            subscription = decode_subscription(protocols[0][1])
        except errors.KafkaError:
            return fail(errors.InconsistentGroupProtocol.code)
        if rebalance_timeout_ms < 0:
            rebalance_timeout_ms = session_timeout_ms
        bump = False
        member = self.members.get(new_id)
        previous_id = self.static_members.get(group_instance_id) if group_instance_id is not None else None
        if previous_id is not None and previous_id != new_id:
            # A static member back under a new id takes over its predecessor's place.
            previous = self.members.pop(previous_id)
            self._release(previous)
            previous.member_id, previous.member_epoch, previous.previous_member_epoch = new_id, 0, 0
            previous.assigned, previous.pending_revocation, previous.state = {}, {}, MemberState.STABLE
            self.target[new_id] = self.target.pop(previous_id, {})
            self.members[new_id] = member = previous
            self.static_members[group_instance_id] = new_id
        elif member is None:
            member = self.members[new_id] = ConsumerMember(member_id=new_id, instance_id=group_instance_id)
            if group_instance_id is not None:
                self.static_members[group_instance_id] = new_id
            bump = True
        member.classic = ClassicMetadata(session_timeout_ms, list(protocols))
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.client_id, member.client_host = client_id or member.client_id, client_host or member.client_host
        if subscription.rack_id is not None:
            member.rack_id = subscription.rack_id
        if tuple(sorted(subscription.topics)) != member.subscribed_topic_names:
            member.subscribed_topic_names = tuple(sorted(subscription.topics))
            bump = True
        self._update_target(topics, topics_version, bump)
        ids = {name: str(info.topic_id) for name, info in topics.items()}
        owned: Partitions = {}
        for topic, partition in subscription.owned_partitions:
            if topic in ids:
                owned.setdefault(ids[topic], set()).add(partition)
        self._reconcile(member, owned, now_ms)
        member.revocation_deadline_ms = None          # classic members have join and sync timers instead
        member.classic.join_deadline_ms = None
        member.classic.sync_deadline_ms = now_ms + rebalance_timeout_ms
        member.session_deadline_ms = now_ms + session_timeout_ms
        if not self.state_since_ms:
            self.state_since_ms = now_ms
        return {"error_code": 0, "generation_id": member.member_epoch, "protocol_type": CONSUMER_PROTOCOL_TYPE,
                "protocol_name": member.classic.protocol_name, "leader": "", "skip_assignment": False,
                "member_id": new_id, "members": []}

    def classic_sync(self, now_ms: int, *, member_id: str, generation_id: int, group_instance_id: str | None = None,
                     protocol_type: str | None = None, protocol_name: str | None = None, **_ignored) -> dict:
        """SyncGroup of a classic member: its current assignment, as ConsumerProtocolAssignment."""
        def fail(code):
            return {"error_code": code, "protocol_type": None, "protocol_name": None, "assignment": b""}
        member, code = self._classic_member(member_id, group_instance_id)
        if code:
            return fail(code)
        if generation_id != member.member_epoch:
            return fail(errors.IllegalGeneration.code)
        if (protocol_type is not None and protocol_type != CONSUMER_PROTOCOL_TYPE) or \
                (protocol_name is not None and protocol_name != member.classic.protocol_name):
            return fail(errors.InconsistentGroupProtocol.code)
        if self.group_epoch > member.member_epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
            self._schedule_rejoin(member, now_ms)
            return fail(errors.RebalanceInProgress.code)
        member.classic.sync_deadline_ms = None
        member.session_deadline_ms = now_ms + member.classic.session_timeout_ms
        partitions = [(self.topic_names[t], p) for t, ps in sorted(member.assigned.items()) if t in self.topic_names
                      for p in sorted(ps)]
        return {"error_code": 0, "protocol_type": protocol_type, "protocol_name": protocol_name,
                "assignment": encode_assignment(Assignment(partitions, version=member.classic.assignment_version()))}

    def _schedule_rejoin(self, member: ConsumerMember, now_ms: int) -> None:
        if member.classic.join_deadline_ms is None:
            member.classic.join_deadline_ms = now_ms + member.rebalance_timeout_ms

    def classic_heartbeat(self, now_ms: int, *, member_id: str, generation_id: int,
                          group_instance_id: str | None = None) -> dict:
        member, code = self._classic_member(member_id, group_instance_id)
        if code:
            return {"error_code": code}
        if generation_id != member.member_epoch:
            return {"error_code": errors.IllegalGeneration.code}
        member.session_deadline_ms = now_ms + member.classic.session_timeout_ms
        if self._must_rejoin(member):
            self._schedule_rejoin(member, now_ms)
            return {"error_code": errors.RebalanceInProgress.code}
        return {"error_code": 0}

    def classic_leave(self, now_ms: int, members: list[dict]) -> dict:
        results = []
        for entry in members:
            member_id, instance_id = entry.get("member_id", ""), entry.get("group_instance_id")
            if instance_id is not None and not member_id:
                member_id = self.static_members.get(instance_id, "")
            member, code = self._classic_member(member_id, instance_id)
            if member is not None:
                self.remove_member(member, now_ms)
            results.append({"member_id": member_id, "group_instance_id": instance_id, "error_code": code})
        return {"error_code": 0, "members": results}

    # ------------------------------------------------------------------ time

    def expired(self, now_ms: int) -> list[ConsumerMember]:
        """Members past their session, revocation, or (classic members) join or sync deadline."""
        def late(deadline):
            return deadline is not None and now_ms >= deadline
        return [m for m in self.members.values()
                if now_ms >= m.session_deadline_ms or late(m.revocation_deadline_ms) or
                (m.classic is not None and (late(m.classic.join_deadline_ms) or late(m.classic.sync_deadline_ms)))]

    def tick(self, now_ms: int, converted=None) -> list[str]:
        """Fences the expired members; returns their ids. ``converted(member)``, asked
        before each is fenced, is True when instead the group stopped being a consumer
        group (the coordinator's downgrade): nothing more is fenced here then."""
        fenced = []
        for member in self.expired(now_ms):
            if converted is not None and converted(member):
                break
            self.remove_member(member, now_ms)
            fenced.append(member.member_id)
        return fenced

    # ------------------------------------------------------------------ durability

    def metadata_json(self) -> dict:
        """The group's own durable state (Kafka's ConsumerGroupMetadata record, with the
        subscribed topics' ids and partition counts): JSON-friendly, no deadlines."""
        return {"epoch": self.group_epoch, "assignment_epoch": self.assignment_epoch, "since": self.state_since_ms,
                "subscribed": {name: [tid, count] for name, (tid, count) in sorted(self.subscribed.items())}}

    def member_json(self, member_id: str) -> dict:
        """One member's durable state (Kafka's member metadata, current member assignment
        and target assignment records in one), without its deadlines: a restored member
        gets a fresh session."""
        m = self.members[member_id]
        doc = {"instance": m.instance_id, "rack": m.rack_id, "client": m.client_id, "host": m.client_host,
               "rebalance_ms": m.rebalance_timeout_ms, "topics": list(m.subscribed_topic_names),
               "regex": m.subscribed_topic_regex, "assignor": m.server_assignor, "epoch": m.member_epoch,
               "previous_epoch": m.previous_member_epoch, "state": m.state.value,
               "assigned": _json_partitions(m.assigned), "revoking": _json_partitions(m.pending_revocation),
               "assignment_epochs": [[t, p, e] for (t, p), e in sorted(m.assignment_epochs.items())],
               "target": _json_partitions(self.target.get(member_id, {}))}
        if m.classic is not None:
            doc["classic"] = {"session_ms": m.classic.session_timeout_ms, "protocols": [
                [name, base64.b64encode(metadata).decode()] for name, metadata in m.classic.protocols]}
        return doc

    def restore(self, metadata: dict, members: Mapping[str, dict], now_ms: int) -> None:
        """Loads what ``metadata_json``/``member_json`` wrote into this new, empty group.
        Every member gets a fresh session timeout, and one that still has partitions to
        revoke a fresh rebalance timeout, as Kafka's coordinator schedules them on load.
        The subscribed topics are checked against the controller's at the next heartbeat."""
        self.group_epoch = metadata["epoch"]
        self.assignment_epoch = metadata["assignment_epoch"]
        self.state_since_ms = metadata["since"]
        self.subscribed = {name: (tid, count) for name, (tid, count) in metadata["subscribed"].items()}
        self.topic_names = self.names_by_id()
        for member_id, doc in members.items():
            classic = doc.get("classic")
            m = ConsumerMember(
                member_id=member_id, instance_id=doc["instance"], rack_id=doc["rack"], client_id=doc["client"],
                client_host=doc["host"], rebalance_timeout_ms=doc["rebalance_ms"],
                subscribed_topic_names=tuple(doc["topics"]), subscribed_topic_regex=doc["regex"],
                server_assignor=doc["assignor"], member_epoch=doc["epoch"], previous_member_epoch=doc["previous_epoch"],
                state=MemberState(doc["state"]), assigned=_from_json_partitions(doc["assigned"]),
                pending_revocation=_from_json_partitions(doc["revoking"]),
                assignment_epochs={(t, p): e for t, p, e in doc["assignment_epochs"]},
                classic=None if classic is None else ClassicMetadata(
                    classic["session_ms"], [(name, base64.b64decode(data)) for name, data in classic["protocols"]]))
            m.session_deadline_ms = now_ms + (self.settings.session_timeout_ms if m.classic is None
                                              else m.classic.session_timeout_ms)
            if m.state is MemberState.UNREVOKED_PARTITIONS and m.classic is None:
                m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms
            self.members[member_id] = m
            if m.instance_id is not None:
                self.static_members[m.instance_id] = member_id
            self.target[member_id] = _from_json_partitions(doc["target"])
            for t, ps in m.owned().items():
                for p in ps:
                    self.owners[(t, p)] = member_id

    # ------------------------------------------------------------------ admin

    def names_by_id(self) -> dict[str, str]:
        return {tid: name for name, (tid, _) in self.subscribed.items()}

    def describe(self) -> dict:
        """ConsumerGroupDescribe's DescribedGroup (topic names filled from the subscription)."""
        names = self.names_by_id()

        def assignment(parts: Mapping[str, set[int]]) -> dict:
            return {"topic_partitions": [{"topic_id": t, "topic_name": names.get(t, ""), "partitions": sorted(ps)}
                                         for t, ps in sorted(parts.items()) if ps]}
        return {
            "error_code": 0, "error_message": None, "group_id": self.group_id, "group_state": self.state.value,
            "group_epoch": self.group_epoch, "assignment_epoch": self.assignment_epoch,
            "assignor_name": self.assignor_name(),
            "members": [{
                "member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id,
                "member_epoch": m.member_epoch, "client_id": m.client_id, "client_host": m.client_host,
                "subscribed_topic_names": list(m.subscribed_topic_names),
                "subscribed_topic_regex": m.subscribed_topic_regex,
                "assignment": assignment(m.assigned),
                "target_assignment": assignment(self.target.get(m.member_id, {})),
                "member_type": 0 if m.classic is not None else 1,
            } for m in sorted(self.members.values(), key=lambda m: m.member_id)],
        }

    def commit_error(self, member_id: str, member_epoch: int,
                     partitions: Iterable[tuple[str, int]] | None = None) -> int:
        """OffsetCommit by a member of this group (Kafka 4.4's ConsumerGroup.validateOffsetCommit):
        an unknown member is UNKNOWN_MEMBER_ID; its current epoch commits anything; a newer
        epoch is STALE_MEMBER_EPOCH; an older one (KIP-1251: the commit crossed a heartbeat
        that moved the member on) is accepted only if every (topic name, partition) in
        ``partitions`` was assigned to the member, or is pending revocation from it, at that
        epoch or before. A classic member gets ILLEGAL_GENERATION where a consumer member
        gets STALE_MEMBER_EPOCH. A commit without a member (epoch -1, admin tools) is allowed
        only while the group is empty. Without ``partitions`` (OffsetFetch) only the current
        epoch is accepted, as Kafka's validateOffsetFetch."""
        if member_epoch < 0 and not member_id:
            return 0 if not self.members else errors.UnknownMemberId.code
        member = self.members.get(member_id)
        if member is None:
            return errors.UnknownMemberId.code
        if member_epoch == member.member_epoch:
            return 0
        stale = errors.IllegalGeneration.code if member.classic is not None else errors.StaleMemberEpoch.code
        if member_epoch > member.member_epoch or partitions is None:
            return stale
        ids = {name: t for t, name in self.topic_names.items()}
        owned = member.owned()
        for name, p in partitions:
            t = ids.get(name)
            if t is None or p not in owned.get(t, ()):
                return stale
            if member_epoch < member.assignment_epochs.get((t, p), member.member_epoch):
                return stale
        return 0
