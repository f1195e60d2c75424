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

so a partition is never owned by two members at once and nobody stops for a rebalance
that does not concern it. A member that does not revoke within its rebalance timeout, or
does not heartbeat within the session timeout, is fenced.

Pure logic: no sockets, no clock (callers pass ``now_ms``). Owned by the coordinator's
event loop thread.
"""
from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from typing import Mapping

from pybroker import errors
from pybroker.group.server_assignors import ASSIGNORS, DEFAULT_ASSIGNOR

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
    session_deadline_ms: int = 0
    revocation_deadline_ms: int | None = None

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
        if self._resolve_subscriptions(topics, topics_version, force=bump):
            bump = True
        if bump:
            self.group_epoch += 1
        if self.group_epoch > self.assignment_epoch:
            self._compute_target()
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

    def _resolve_subscriptions(self, topics: Mapping, version: object, force: bool) -> bool:
        """Re-reads the subscribed topics' ids and partition counts; True when they changed."""
        if not force and version == self._topics_version:
            return False
        self._topics_version = version
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
                else:
                    unreleased = True
        member.assigned = keep
        member.pending_revocation = {}
        member.revocation_deadline_ms = None
        member.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
        if member.member_epoch != self.assignment_epoch:
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = self.assignment_epoch

    # ------------------------------------------------------------------ time

    def tick(self, now_ms: int) -> list[str]:
        """Fences members past their session or revocation deadline; returns their ids."""
        fenced = []
        for member in list(self.members.values()):
            late_revoking = member.revocation_deadline_ms is not None and now_ms >= member.revocation_deadline_ms
            if now_ms >= member.session_deadline_ms or late_revoking:
                self.remove_member(member, now_ms)
                fenced.append(member.member_id)
        return fenced

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
                "member_type": 1,
            } for m in sorted(self.members.values(), key=lambda m: m.member_id)],
        }

    def commit_error(self, member_id: str, member_epoch: int) -> int:
        """OffsetCommit by a member of this group (Kafka's rules for consumer groups):
        an unknown member is UNKNOWN_MEMBER_ID, another epoch STALE_MEMBER_EPOCH; a commit
        without a member (epoch -1, admin tools) only while the group is empty."""
        if member_epoch < 0 and not member_id:
            return 0 if not self.members else errors.UnknownMemberId.code
        member = self.members.get(member_id)
        if member is None:
            return errors.UnknownMemberId.code
        if member_epoch != member.member_epoch:
            return errors.StaleMemberEpoch.code
        return 0
