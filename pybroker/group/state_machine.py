"""One consumer group under Kafka's classic group protocol, as a pure state machine.

States (Kafka's GroupState)::

    EMPTY ----join----> PREPARING_REBALANCE --all rejoined / rebalance timeout-->
    COMPLETING_REBALANCE --leader's SyncGroup--> STABLE
    STABLE / COMPLETING_REBALANCE --join with new metadata, leave, session timeout-->
    PREPARING_REBALANCE;   everyone gone --> EMPTY;   deleted --> DEAD

Contract with the host (the process that owns sockets and timers):

* Requests come in as method calls with the request's fields and ``now_ms``; nothing here
  reads a clock, spawns a thread or touches a socket. Responses are dicts keyed by Kafka's
  JSON schema field names in snake_case (JoinGroupResponse, SyncGroupResponse, ...), so a
  handler copies them onto the wire.
* ``join()`` and ``sync()`` must often wait for other members. They then return ``PENDING``
  and the host parks the request under the ``token`` it passed (its future, say). Any later
  event — another member's join or sync, a leave, ``tick()`` — may finish parked requests;
  it queues a ``Completion(token, member_id, api, response)`` which the host collects with
  ``take_completions()`` after every call. A parked request always completes exactly once:
  with its answer, or with an error when its member is removed, fenced or superseded.
* Deadlines (session timeouts, rebalance timeout, initial rebalance delay) fire only in
  ``tick(now_ms)``; ``next_deadline_ms()`` says when the host should call it next.

Owned by the coordinator host's event loop: one thread, not thread-safe.
"""
from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from pybroker import errors

NONE = 0


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True)
class GroupSettings:
    """Kafka's broker-side group settings, under their Kafka names."""

    min_session_timeout_ms: int = 6_000          # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000      # group.max.session.timeout.ms
    initial_rebalance_delay_ms: int = 3_000      # group.initial.rebalance.delay.ms
    max_size: int = 2**31 - 1                    # group.max.size
    # A member that joined but never got its first JoinGroup answer is dropped after this
    # (Kafka's NewMemberJoinTimeoutMs): a client that died mid-join can't stall the group.
    new_member_join_timeout_ms: int = 300_000


class _Pending:
    def __repr__(self) -> str:
        return "PENDING"


PENDING = _Pending()


class _Ticket:
    """One parked request. Tokens are the host's and may repeat (or be None); tickets
    are unique, so a request finishing within its own call is found unambiguously."""

    __slots__ = ("token",)

    def __init__(self, token: Any):
        self.token = token


class Completion(NamedTuple):
    token: Any
    member_id: str
    api: str            # "join" or "sync"
    response: dict


@dataclass
class GroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]      # (name, metadata), in preference order
    assignment: bytes = b""
    last_heartbeat_ms: int = 0
    is_new: bool = True
    join_ticket: Any = None
    awaiting_join: bool = False
    sync_ticket: Any = None
    awaiting_sync: bool = False

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        raise KeyError(protocol_name)

    def should_keep_alive(self, now_ms: int, settings: GroupSettings) -> bool:
        # A member parked in JoinGroup or SyncGroup is waiting on us, not silent.
        if self.awaiting_join:
            return not self.is_new or now_ms < self.last_heartbeat_ms + settings.new_member_join_timeout_ms
        if self.awaiting_sync:
            return True
        return now_ms < self.last_heartbeat_ms + self.session_timeout_ms


def _error(code: int, **fields) -> dict:
    return {"error_code": code, **fields}


def join_error(code: int, member_id: str) -> dict:
    return _error(code, generation_id=-1, protocol_type=None, protocol_name=None,
                  leader="", skip_assignment=False, member_id=member_id, members=[])


def sync_error(code: int) -> dict:
    return _error(code, protocol_type=None, protocol_name=None, assignment=b"")


class Group:
    """A consumer group: members, generation, leader, chosen protocol, rebalance timers."""

    def __init__(self, group_id: str, settings: GroupSettings | None = None,
                 new_member_id: Callable[[str], str] | None = None):
        self.group_id = group_id
        self.settings = settings or GroupSettings()
        self.state = GroupState.EMPTY
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, GroupMember] = {}
        self.static_members: dict[str, str] = {}       # group.instance.id -> member id
        self.pending_members: dict[str, int] = {}       # member id -> deadline to join by
        self.state_since_ms = 0
        self._new_member_id = new_member_id or (lambda prefix: f"{prefix}-{uuid.uuid4()}")
        self._join_deadline_ms: int | None = None
        self._initial_delay = False
        self._delay_remaining_ms = 0
        self._new_member_added = False
        self._outbox: list[tuple[_Ticket, Completion]] = []

    # ------------------------------------------------------------------ queries

    def is_empty(self) -> bool:
        return not self.members

    def take_completions(self) -> list[Completion]:
        out, self._outbox = self._outbox, []
        return [completion for _, completion in out]

    def next_deadline_ms(self) -> int | None:
        deadlines = list(self.pending_members.values())
        if self._join_deadline_ms is not None:
            deadlines.append(self._join_deadline_ms)
        for m in self.members.values():
            if m.awaiting_join:
                if m.is_new:
                    deadlines.append(m.last_heartbeat_ms + self.settings.new_member_join_timeout_ms)
            elif not m.awaiting_sync:
                deadlines.append(m.last_heartbeat_ms + m.session_timeout_ms)
        return min(deadlines) if deadlines else None

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def describe(self) -> dict:
        """DescribeGroups' per-group entry. Member metadata and assignments are shown only
        when Stable, as Kafka does: mid-rebalance they are stale or half-made."""
        stable = self.state is GroupState.STABLE
        return {
            "error_code": NONE,
            "group_id": self.group_id,
            "group_state": self.state.value,
            "protocol_type": self.protocol_type or "",
            "protocol_data": (self.protocol_name or "") if stable else "",
            "members": [{
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "member_metadata": m.metadata(self.protocol_name) if stable else b"",
                "member_assignment": m.assignment if stable else b"",
            } for m in self.members.values()],
        }

    # ------------------------------------------------------------------ JoinGroup

    def join(self, now_ms: int, *, member_id: str, protocol_type: str,
             protocols: list[tuple[str, bytes]], session_timeout_ms: int,
             rebalance_timeout_ms: int = -1, group_instance_id: str | None = None,
             client_id: str = "", client_host: str = "", version: int = 5,
             token: Any = None) -> dict | _Pending:
        """JoinGroup. ``rebalance_timeout_ms`` -1 (v0 requests) means the session timeout."""
        if rebalance_timeout_ms < 0:
            rebalance_timeout_ms = session_timeout_ms
        ticket = _Ticket(token)
        response = self._join(now_ms, member_id, protocol_type, list(protocols),
                              session_timeout_ms, rebalance_timeout_ms, group_instance_id,
                              client_id, client_host, version, ticket)
        if response is not PENDING:
            return response
        return self._answer_now_if_done(ticket)

    def _join(self, now_ms, member_id, protocol_type, protocols, session_timeout_ms,
              rebalance_timeout_ms, instance_id, client_id, client_host, version, ticket):
        s = self.settings
        if self.state is GroupState.DEAD:
            # The group is being deleted; the client looks the coordinator up again.
            return join_error(errors.CoordinatorNotAvailable.code, member_id)
        if not s.min_session_timeout_ms <= session_timeout_ms <= s.max_session_timeout_ms:
            return join_error(errors.InvalidSessionTimeout.code, member_id)
        if not self._supports(protocol_type, protocols):
            return join_error(errors.InconsistentGroupProtocol.code, member_id)
        fields = dict(protocol_type=protocol_type, protocols=protocols,
                      session_timeout_ms=session_timeout_ms,
                      rebalance_timeout_ms=rebalance_timeout_ms, client_id=client_id,
                      client_host=client_host)

        if not member_id:
            if len(self.members) + len(self.pending_members) >= s.max_size:
                return join_error(errors.GroupMaxSizeReached.code, member_id)
            if instance_id is not None:
                new_id = self._new_member_id(instance_id)
                if instance_id in self.static_members:
                    return self._replace_static_member(now_ms, instance_id, new_id, version,
                                                       ticket, fields)
                self._add_member(now_ms, new_id, instance_id, ticket, fields)
                return PENDING
            new_id = self._new_member_id(client_id or "member")
            if version >= 4:
                # KIP-394: the id comes back first, so a client that dies before joining
                # leaves only a pending id behind, not a member the group waits for.
                self.pending_members[new_id] = now_ms + session_timeout_ms
                return join_error(errors.MemberIdRequired.code, new_id)
            self._add_member(now_ms, new_id, None, ticket, fields)
            return PENDING

        if member_id in self.pending_members:
            del self.pending_members[member_id]
            self._add_member(now_ms, member_id, instance_id, ticket, fields)
            return PENDING
        fenced = self._fenced(member_id, instance_id)
        if fenced:
            return join_error(fenced, member_id)
        if self.state is GroupState.EMPTY:
            return join_error(errors.UnknownMemberId.code, member_id)
        member = self.members[member_id]
        unchanged = member.protocol_type == protocol_type and member.protocols == protocols
        if self.state is GroupState.COMPLETING_REBALANCE and unchanged:
            # The member lost our JoinGroup answer; send the same one again.
            return self._join_response(member, version)
        if self.state is GroupState.STABLE and unchanged and member_id != self.leader_id:
            return self._join_response(member, version)
        return self._rejoin_rebalance(now_ms, member, ticket, fields)

    def _supports(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        if not protocol_type or not protocols:
            return False
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        names = {name for name, _ in protocols}
        return bool(names & self._candidate_protocols())

    def _candidate_protocols(self) -> set[str]:
        members = iter(self.members.values())
        common = set(next(members).protocol_names())
        for m in members:
            common &= set(m.protocol_names())
        return common

    def _select_protocol(self) -> str:
        """Kafka's vote: each member votes for its most preferred protocol that every member
        supports; most votes wins, ties going to the leader's preference order."""
        candidates = self._candidate_protocols()
        votes: dict[str, int] = {}
        for m in self.members.values():
            choice = next(name for name in m.protocol_names() if name in candidates)
            votes[choice] = votes.get(choice, 0) + 1
        order = self.members[self.leader_id].protocol_names() if self.leader_id in self.members \
            else sorted(candidates)
        return max(votes, key=lambda name: (votes[name], -order.index(name)))

    def _fenced(self, member_id: str, instance_id: str | None) -> int:
        """The error for a request naming a member that isn't (or is no longer) ours."""
        if instance_id is not None:
            current = self.static_members.get(instance_id)
            if current is None:
                return errors.UnknownMemberId.code
            if current != member_id:
                return errors.FencedInstanceId.code
        if member_id not in self.members:
            return errors.UnknownMemberId.code
        return NONE

    def _check_generation(self, member_id: str, generation_id: int,
                          instance_id: str | None) -> int:
        """The error for a SyncGroup/Heartbeat not from a current member of this generation."""
        if self.state is GroupState.DEAD:
            return errors.CoordinatorNotAvailable.code
        return self._fenced(member_id, instance_id) or \
            (errors.IllegalGeneration.code if generation_id != self.generation_id else NONE)

    def _add_member(self, now_ms, member_id, instance_id, ticket, fields) -> None:
        member = GroupMember(member_id=member_id, group_instance_id=instance_id,
                             last_heartbeat_ms=now_ms, **fields)
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member_id] = member
        if instance_id is not None:
            self.static_members[instance_id] = member_id
        if self.leader_id is None:
            self.leader_id = member_id
        self._park_join(member, ticket)
        if self.state is GroupState.PREPARING_REBALANCE and self.generation_id == 0:
            self._new_member_added = True
        if self.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(now_ms)
        else:
            self._prepare_rebalance(now_ms)

    def _update_member(self, now_ms, member: GroupMember, ticket, fields) -> None:
        for name, value in fields.items():
            setattr(member, name, value)
        member.last_heartbeat_ms = now_ms
        self._park_join(member, ticket)

    def _park_join(self, member: GroupMember, ticket) -> None:
        if member.awaiting_join:
            # A second JoinGroup from the same member (say, on a new connection) replaces
            # the first; the old one must still get an answer.
            self._complete(member.join_ticket, member.member_id, "join",
                           join_error(errors.RebalanceInProgress.code, member.member_id))
        member.awaiting_join, member.join_ticket = True, ticket

    def _replace_static_member(self, now_ms, instance_id, new_id, version, ticket, fields):
        old_id = self.static_members[instance_id]
        member = self.members.pop(old_id)
        # The old incarnation may still have requests parked: it is fenced now.
        if member.awaiting_join:
            self._complete(member.join_ticket, old_id, "join",
                           join_error(errors.FencedInstanceId.code, old_id))
            member.awaiting_join = False
        if member.awaiting_sync:
            self._complete(member.sync_ticket, old_id, "sync",
                           sync_error(errors.FencedInstanceId.code))
            member.awaiting_sync = False
        member.member_id = new_id
        self.members[new_id] = member
        self.static_members[instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        old_protocols = (member.protocol_type, member.protocols)
        selected_before = self.protocol_name
        if self.state is GroupState.STABLE:
            for name, value in fields.items():
                setattr(member, name, value)
            member.last_heartbeat_ms = now_ms
            if self._select_protocol() == selected_before:
                # KIP-345: a restarted static member keeps its assignment, no rebalance.
                return self._join_response(member, version, static_rejoin=True)
            member.protocol_type, member.protocols = old_protocols
        return self._rejoin_rebalance(now_ms, member, ticket, fields)


    def _rejoin_rebalance(self, now_ms: int, member: GroupMember, ticket, fields) -> _Pending:
        """Take the member's join into the rebalance (starting one if none runs); its
        answer comes when the join phase completes."""
        self._update_member(now_ms, member, ticket, fields)
        if self.state is not GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(now_ms)
        else:
            self._maybe_complete_join(now_ms)
        return PENDING

    def _join_response(self, member: GroupMember, version: int, static_rejoin: bool = False) -> dict:
        is_leader = member.member_id == self.leader_id
        if static_rejoin:
            # KIP-814: a v9+ leader learns it may skip computing a new assignment; older
            # leaders get no member list and sync as followers, keeping their assignment.
            show_members = is_leader and version >= 9
        else:
            show_members = is_leader
        members = [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                    "metadata": m.metadata(self.protocol_name)}
                   for m in self.members.values()] if show_members else []
        return _error(NONE, generation_id=self.generation_id, protocol_type=self.protocol_type,
                      protocol_name=self.protocol_name, leader=self.leader_id or "",
                      skip_assignment=static_rejoin and show_members,
                      member_id=member.member_id, members=members)

    # ------------------------------------------------------------------ rebalance

    def _prepare_rebalance(self, now_ms: int) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            # Assignments of the aborted generation must not reach anyone.
            for m in self.members.values():
                m.assignment = b""
                if m.awaiting_sync:
                    self._complete_sync(m, sync_error(errors.RebalanceInProgress.code))
        delay = self.settings.initial_rebalance_delay_ms
        if self.state is GroupState.EMPTY and delay > 0:
            self._initial_delay = True
            self._delay_remaining_ms = max(self.rebalance_timeout_ms() - delay, 0)
            self._join_deadline_ms = now_ms + delay
        else:
            self._initial_delay = False
            self._join_deadline_ms = now_ms + self.rebalance_timeout_ms()
        self._set_state(GroupState.PREPARING_REBALANCE, now_ms)
        self._maybe_complete_join(now_ms)

    def _maybe_complete_join(self, now_ms: int) -> None:
        if self.state is not GroupState.PREPARING_REBALANCE or self._initial_delay:
            return
        if self.pending_members or not all(m.awaiting_join for m in self.members.values()):
            return
        self._complete_join(now_ms)

    def _complete_join(self, now_ms: int) -> None:
        self._join_deadline_ms = None
        self._initial_delay = False
        self._new_member_added = False
        for m in [m for m in self.members.values() if not m.awaiting_join]:
            self._remove_member(m)
        if self.leader_id not in self.members:
            self.leader_id = next(iter(self.members), None)
        self.generation_id += 1
        if not self.members:
            # Kafka keeps the protocol type of a group that empties ("consumer" stays
            # "consumer"): only a group that never had members lists as a simple one.
            self.protocol_name = None
            self._set_state(GroupState.EMPTY, now_ms)
            return
        self.protocol_name = self._select_protocol()
        self._set_state(GroupState.COMPLETING_REBALANCE, now_ms)
        for m in self.members.values():
            m.awaiting_join, ticket = False, m.join_ticket
            m.join_ticket = None
            m.is_new = False
            m.last_heartbeat_ms = now_ms
            self._complete(ticket, m.member_id, "join", self._join_response(m, version=0))

    def _set_state(self, state: GroupState, now_ms: int) -> None:
        self.state = state
        self.state_since_ms = now_ms

    # ------------------------------------------------------------------ SyncGroup

    def sync(self, now_ms: int, *, member_id: str, generation_id: int,
             assignments: list[tuple[str, bytes]] | dict[str, bytes] = (),
             group_instance_id: str | None = None, protocol_type: str | None = None,
             protocol_name: str | None = None, token: Any = None) -> dict | _Pending:
        """SyncGroup. Only the leader's ``assignments`` (member id -> bytes) count; members
        it leaves out get empty bytes, unknown member ids in it are ignored."""
        fail = sync_error
        code = self._check_generation(member_id, generation_id, group_instance_id)
        if code:
            return fail(code)
        if (protocol_type is not None and protocol_type != self.protocol_type) or \
                (protocol_name is not None and protocol_name != self.protocol_name):
            return fail(errors.InconsistentGroupProtocol.code)
        member = self.members[member_id]
        if self.state is GroupState.PREPARING_REBALANCE:
            return fail(errors.RebalanceInProgress.code)
        if self.state is GroupState.STABLE:
            member.last_heartbeat_ms = now_ms
            return self._sync_response(member)
        # COMPLETING_REBALANCE
        member.last_heartbeat_ms = now_ms
        if member.awaiting_sync:
            self._complete_sync(member, fail(errors.RebalanceInProgress.code))
        ticket = _Ticket(token)
        member.awaiting_sync, member.sync_ticket = True, ticket
        if member_id == self.leader_id:
            given = dict(assignments)
            for m in self.members.values():
                m.assignment = bytes(given.get(m.member_id, b""))
            self._set_state(GroupState.STABLE, now_ms)
            for m in self.members.values():
                if m.awaiting_sync:
                    self._complete_sync(m, self._sync_response(m))
        return self._answer_now_if_done(ticket)

    def _sync_response(self, member: GroupMember) -> dict:
        return _error(NONE, protocol_type=self.protocol_type, protocol_name=self.protocol_name,
                      assignment=member.assignment)

    def _complete_sync(self, member: GroupMember, response: dict) -> None:
        ticket = member.sync_ticket
        member.awaiting_sync, member.sync_ticket = False, None
        self._complete(ticket, member.member_id, "sync", response)

    # ------------------------------------------------------------------ Heartbeat

    def heartbeat(self, now_ms: int, *, member_id: str, generation_id: int,
                  group_instance_id: str | None = None) -> dict:
        code = self._check_generation(member_id, generation_id, group_instance_id)
        if code:
            return _error(code)
        self.members[member_id].last_heartbeat_ms = now_ms
        if self.state is GroupState.PREPARING_REBALANCE:
            return _error(errors.RebalanceInProgress.code)
        # COMPLETING_REBALANCE counts as normal: a follower may heartbeat before its sync.
        return _error(NONE)

    # ------------------------------------------------------------------ LeaveGroup

    def leave(self, now_ms: int, members: list[dict]) -> dict:
        """LeaveGroup; ``members`` as in v3+: [{"member_id", "group_instance_id"}]. A v0-v2
        request is one member without an instance id. Per-member errors, as in v3."""
        if self.state is GroupState.DEAD:
            return _error(errors.CoordinatorNotAvailable.code, members=[])
        results = []
        leaving = []
        for entry in members:
            member_id = entry.get("member_id", "")
            instance_id = entry.get("group_instance_id")
            code = NONE
            if instance_id is not None:
                current = self.static_members.get(instance_id)
                if current is None:
                    code = errors.UnknownMemberId.code
                elif member_id and member_id != current:
                    code = errors.FencedInstanceId.code
                else:
                    member_id = current
            elif member_id in self.pending_members:
                del self.pending_members[member_id]
            elif member_id not in self.members:
                code = errors.UnknownMemberId.code
            if code == NONE and member_id in self.members and member_id not in leaving:
                leaving.append(member_id)
            results.append({"member_id": member_id, "group_instance_id": instance_id,
                            "error_code": code})
        for member_id in leaving:
            self._remove_member(self.members[member_id])
        if leaving or self.state is GroupState.PREPARING_REBALANCE:
            self._after_removal(now_ms)
        return _error(NONE, members=results)

    # ------------------------------------------------------------------ time

    def tick(self, now_ms: int) -> list[Completion]:
        """Fires every deadline at or before ``now_ms``; returns what completed."""
        for member_id, deadline in list(self.pending_members.items()):
            if now_ms >= deadline:
                del self.pending_members[member_id]
                self._maybe_complete_join(now_ms)
        expired = [m for m in self.members.values() if not m.should_keep_alive(now_ms, self.settings)]
        for m in expired:
            self._remove_member(m)
        if expired:
            self._after_removal(now_ms)
        if (self.state is GroupState.PREPARING_REBALANCE and self._join_deadline_ms is not None
                and now_ms >= self._join_deadline_ms):
            if self._initial_delay and self._new_member_added and self._delay_remaining_ms > 0:
                # Members are still arriving: wait a little longer, within the rebalance timeout.
                self._new_member_added = False
                delay = min(self.settings.initial_rebalance_delay_ms, self._delay_remaining_ms)
                self._delay_remaining_ms -= delay
                self._join_deadline_ms = now_ms + delay
            else:
                self._complete_join(now_ms)
        return self.take_completions()

    # ------------------------------------------------------------------ removal

    def _remove_member(self, member: GroupMember) -> None:
        """Drops a member; its parked requests are answered so no host future dangles."""
        del self.members[member.member_id]
        if member.group_instance_id is not None and \
                self.static_members.get(member.group_instance_id) == member.member_id:
            del self.static_members[member.group_instance_id]
        if member.awaiting_join:
            member.awaiting_join = False
            self._complete(member.join_ticket, member.member_id, "join",
                           join_error(errors.UnknownMemberId.code, member.member_id))
        if member.awaiting_sync:
            self._complete_sync(member, sync_error(errors.UnknownMemberId.code))
        if self.leader_id == member.member_id:
            self.leader_id = next((m.member_id for m in self.members.values() if m.awaiting_join),
                                  next(iter(self.members), None))

    def _after_removal(self, now_ms: int) -> None:
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(now_ms)
        elif self.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(now_ms)

    def mark_dead(self, now_ms: int) -> None:
        """Deleted (DeleteGroups, only when empty): later requests get COORDINATOR_NOT_AVAILABLE
        so clients look the coordinator up again and meet a fresh group."""
        for m in list(self.members.values()):
            self._remove_member(m)
        self.pending_members.clear()
        self._join_deadline_ms = None
        self._set_state(GroupState.DEAD, now_ms)

    # ------------------------------------------------------------------ migration

    @classmethod
    def resumed(cls, group_id: str, settings: GroupSettings, new_member_id, generation_id: int,
                members: list[GroupMember], now_ms: int) -> "Group":
        """A Stable group of these members at this generation (a consumer group moving
        back to the classic protocol); the caller sets their assignments."""
        group = cls(group_id, settings, new_member_id)
        group.generation_id = generation_id
        group.protocol_type = members[0].protocol_type
        for m in members:
            group.members[m.member_id] = m
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id
        group.leader_id = members[0].member_id
        group.protocol_name = group._select_protocol()
        group._set_state(GroupState.STABLE, now_ms)
        return group

    def rebalance(self, now_ms: int) -> None:
        """Every member must rejoin (PreparingRebalance)."""
        self._prepare_rebalance(now_ms)

    def abort_parked(self, code: int) -> list[Completion]:
        """Answers every parked JoinGroup and SyncGroup with ``code`` (the group is about to
        become a consumer group); returns those answers."""
        for m in self.members.values():
            if m.awaiting_join:
                m.awaiting_join = False
                self._complete(m.join_ticket, m.member_id, "join", join_error(code, m.member_id))
            if m.awaiting_sync:
                self._complete_sync(m, sync_error(code))
        return self.take_completions()

    # ------------------------------------------------------------------ outbox

    def _complete(self, ticket: _Ticket, member_id: str, api: str, response: dict) -> None:
        self._outbox.append((ticket, Completion(ticket.token, member_id, api, response)))

    def _answer_now_if_done(self, ticket: _Ticket) -> dict | _Pending:
        """If this very request finished during its own call, hand it back directly."""
        for i, (t, completion) in enumerate(self._outbox):
            if t is ticket:
                del self._outbox[i]
                return completion.response
        return PENDING
