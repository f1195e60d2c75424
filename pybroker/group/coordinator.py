"""The group coordinator: every consumer group by id, their committed offsets, and the
group-level admin requests (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete).

It routes JoinGroup/SyncGroup/Heartbeat/LeaveGroup to each group's state machine (see
state_machine.py for the parked-request contract, which holds here too:
``take_completions()`` yields ``(group_id, Completion)``), validates OffsetCommit and
OffsetFetch against group membership, and expires offsets of long-empty groups.
Answering FindCoordinator is the host's job.

Owned by the coordinator host's event loop: one thread, not thread-safe. Apart from the
OffsetStore it is handed, it does no I/O and reads no clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pybroker import errors
from pybroker.group.consumer_group import (LEAVE_EPOCH, ConsumerGroup, ConsumerGroupSettings, ConsumerGroupState,
                                          heartbeat_error)
from pybroker.group.migration import (MigrationPolicy, all_classic, may_downgrade, may_upgrade, to_classic_group,
                                     to_consumer_group)
from pybroker.group.consumer_protocol import decode_subscription
from pybroker.group.offset_store import CommittedOffset, OffsetStore
from pybroker.group.share_group import ShareGroup, ShareGroupSettings
from pybroker.group.share_partition import SharePartition
from pybroker.group.state_machine import (Completion, Group, GroupSettings, GroupState,
                                          join_error, sync_error)

NONE = 0
TopicPartition = tuple[str, int]
CONSUMER_PROTOCOL = "consumer"


@dataclass(frozen=True)
class CoordinatorSettings:
    group: GroupSettings = GroupSettings()
    consumer: ConsumerGroupSettings = ConsumerGroupSettings()
    share: ShareGroupSettings = ShareGroupSettings()
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000     # offsets.retention.minutes (7 days)
    offset_metadata_max_bytes: int = 4096                 # offset.metadata.max.bytes


def lag(committed: int | None, log_end: int, log_start: int = 0) -> int:
    """Records a group has yet to read in one partition: log-end offset (high watermark)
    minus the committed offset. With nothing committed, everything retained is unread.
    A committed offset past the end (the log was truncated under it) means no lag."""
    if committed is None or committed < 0:
        return max(log_end - log_start, 0)
    return max(log_end - max(committed, log_start), 0)


class GroupCoordinator:
    def __init__(self, store: OffsetStore, settings: CoordinatorSettings | None = None,
                 new_member_id=None):
        self.store = store
        self.settings = settings or CoordinatorSettings()
        self.groups: dict[str, Group] = {}
        self.consumer_groups: dict[str, ConsumerGroup] = {}   # KIP-848 groups
        self.share_groups: dict[str, ShareGroup] = {}         # KIP-932 groups
        # Durable share-partition states, (group, topic, partition) -> SharePartition
        # JSON, as the host loaded them; and those changed since the host last wrote.
        self.share_states: dict[tuple[str, str, int], dict] = {}
        self.share_changes: dict[tuple[str, str, int], dict | None] = {}
        # Dynamic group configs (GROUP resources), name -> {config: value}.
        self.group_configs: dict = {}
        self._new_member_id = new_member_id
        # Answers to parked requests of classic groups that became consumer groups.
        self._outbox: list[tuple[str, Completion]] = []
        # Consumer and share groups whose membership may have changed since the host
        # last wrote it, each with the members that asked (the host looks at every
        # member when the group's metadata or member set changed).
        self.membership_changes: dict[str, set[str]] = {}

    def _membership_changed(self, group_id: str, member_id: str | None = None) -> None:
        asked = self.membership_changes.setdefault(group_id, set())
        if member_id:
            asked.add(member_id)

    def load_groups(self, stored: Mapping, now_ms: int) -> list[str]:
        """The durable consumer and share groups (MembershipStore.groups), restored with
        their members, epochs and assignments; each member has a fresh session. An empty
        group with neither committed offsets nor share-partition state is not restored
        (Kafka deletes such a group): its id is returned for the host to forget."""
        forgotten = []
        for group_id, saved in stored.items():
            if not saved.members and not self.store.fetch(group_id) and group_id not in self.share_groups:
                forgotten.append(group_id)
                continue
            if saved.kind == "share":
                group = self._share_group(group_id, create=True)
            else:
                group = self.consumer_groups[group_id] = ConsumerGroup(group_id, self.settings.consumer)
            group.restore(saved.metadata, saved.members, now_ms)
        return forgotten

    @property
    def migration_policy(self) -> MigrationPolicy:
        return MigrationPolicy(self.settings.consumer.migration_policy)

    # ------------------------------------------------------------------ membership

    def _group_for_join(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            group = Group(group_id, self.settings.group, self._new_member_id)
            self.groups[group_id] = group
        return group

    def join(self, group_id: str, now_ms: int, topics: Mapping | None = None, topics_version: object = None,
             **request):
        """JoinGroup; ``request`` as for ``Group.join``. A consumer group with members takes
        the joining member as a classic member of its own (``topics``, the controller's,
        resolve its subscription); an empty one becomes a classic group."""
        if not group_id:
            return join_error(errors.InvalidGroupId.code, request.get("member_id", ""))
        if group_id in self.share_groups:
            return join_error(errors.InconsistentGroupProtocol.code, request.get("member_id", ""))
        modern = self.consumer_groups.get(group_id)
        if modern is not None:
            self._membership_changed(group_id, request.get("member_id"))
            if not modern.is_empty():
                request.pop("token", None)
                instance_id = request.get("group_instance_id")
                previous = modern.members.get(modern.static_members.get(instance_id, "")) if instance_id else None
                # A consumer-protocol static member whose place a classic member takes.
                replaced = previous is not None and previous.classic is None and \
                    previous.member_id != request.get("member_id")
                response = modern.classic_join(now_ms, topics or {}, topics_version, **request)
                if response["error_code"] == NONE and replaced and \
                        all_classic(modern, self.migration_policy, self.settings.group.max_size):
                    del self.consumer_groups[group_id]
                    self.groups[group_id] = to_classic_group(modern, "", self.settings.group, self._new_member_id,
                                                             now_ms, rebalance=False)
                return response
            del self.consumer_groups[group_id]
        return self._group_for_join(group_id).join(now_ms, **request)

    def sync(self, group_id: str, now_ms: int, **request):
        modern = self.consumer_groups.get(group_id)
        if modern is not None:
            if modern.is_empty():
                return sync_error(errors.UnknownMemberId.code)
            self._membership_changed(group_id, request.get("member_id"))
            return modern.classic_sync(now_ms, **request)
        group = self.groups.get(group_id)
        if group is None:
            code = errors.InvalidGroupId.code if not group_id else errors.UnknownMemberId.code
            return sync_error(code)
        return group.sync(now_ms, **request)

    def heartbeat(self, group_id: str, now_ms: int, **request) -> dict:
        modern = self.consumer_groups.get(group_id)
        if modern is not None:
            self._membership_changed(group_id, request.get("member_id"))
            return modern.classic_heartbeat(now_ms, **request)
        group = self.groups.get(group_id)
        if group is None:
            code = errors.InvalidGroupId.code if not group_id else errors.UnknownMemberId.code
            return {"error_code": code}
        return group.heartbeat(now_ms, **request)

    def leave(self, group_id: str, now_ms: int, members: list[dict]) -> dict:
        modern = self.consumer_groups.get(group_id)
        if modern is not None:
            self._membership_changed(group_id)
            return modern.classic_leave(now_ms, members)
        group = self.groups.get(group_id)
        if group is None:
            if not group_id:
                return {"error_code": errors.InvalidGroupId.code, "members": []}
            return {"error_code": NONE, "members": [
                {"member_id": m.get("member_id", ""), "group_instance_id": m.get("group_instance_id"),
                 "error_code": errors.UnknownMemberId.code} for m in members]}
        return group.leave(now_ms, members)

    def tick(self, now_ms: int) -> list[tuple[str, Completion]]:
        out = []
        for group in list(self.consumer_groups.values()):
            if group.tick(now_ms, lambda member, g=group: self._maybe_downgrade(g, member.member_id, now_ms)) or \
                    group.group_id not in self.consumer_groups:
                self._membership_changed(group.group_id)
        for group_id, group in list(self.groups.items()):
            out.extend((group_id, c) for c in group.tick(now_ms))
        for group in self.share_groups.values():
            if group.tick(now_ms):
                self._membership_changed(group.group_id)
            for tp in group.expire_locks(now_ms):
                self._share_changed(group, tp)
        return out + self.take_completions()

    def take_completions(self) -> list[tuple[str, Completion]]:
        out, self._outbox = self._outbox, []
        return out + [(gid, c) for gid, g in self.groups.items() for c in g.take_completions()]

    def next_deadline_ms(self) -> int | None:
        deadlines = [d for g in [*self.groups.values(), *self.consumer_groups.values(), *self.share_groups.values()]
                     if (d := g.next_deadline_ms()) is not None]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ KIP-848

    def consumer_heartbeat(self, group_id: str, now_ms: int, topics, topics_version, **request) -> dict:
        """ConsumerGroupHeartbeat; ``request`` as for ``ConsumerGroup.heartbeat``. A classic
        group becomes a consumer group: an empty one at once, one with members by online
        upgrade (migration.py) when the policy allows. The last consumer-protocol member
        leaving a group of classic members turns it back into a classic group."""
        self._membership_changed(group_id, request.get("member_id"))
        group = self.consumer_groups.get(group_id)
        if group is not None and request.get("member_epoch") == LEAVE_EPOCH and \
                self._maybe_downgrade(group, request.get("member_id", ""), now_ms):
            return {"error_code": NONE, "error_message": None, "member_id": request.get("member_id"),
                    "member_epoch": LEAVE_EPOCH, "heartbeat_interval_ms": self.settings.consumer.heartbeat_interval_ms,
                    "assignment": None}
        if group is None:
            if not group_id:
                return heartbeat_error(errors.InvalidGroupId.code, "the group id is empty")
            if request.get("member_epoch") != 0:
                # The group is gone (the coordinator restarted, or it was deleted): the
                # member must rejoin with epoch 0.
                return heartbeat_error(errors.UnknownMemberId.code, f"group {group_id} has no such member")
            if group_id in self.share_groups:
                return heartbeat_error(errors.GroupIdNotFound.code, f"Group {group_id} is not a consumer group")
            classic = self.groups.get(group_id)
            group = ConsumerGroup(group_id, self.settings.consumer)
            if classic is not None and classic.state is not GroupState.DEAD:
                if not classic.is_empty():
                    if not may_upgrade(classic, self.migration_policy, self.settings.consumer.max_size):
                        return heartbeat_error(errors.GroupIdNotFound.code,
                                               f"Group {group_id} is not a consumer group")
                    try:
                        to_consumer_group(classic, topics, topics_version, group, now_ms)
                    except errors.InconsistentGroupProtocol as exc:
                        return heartbeat_error(errors.GroupIdNotFound.code, str(exc))
                    # Parked joins and syncs learn of the new rebalance.
                    self._outbox.extend((group_id, c) for c in classic.abort_parked(errors.RebalanceInProgress.code))
                classic.mark_dead(now_ms)
                del self.groups[group_id]
            self.consumer_groups[group_id] = group
        return group.heartbeat(now_ms, topics, topics_version, **request)

    def _maybe_downgrade(self, group: ConsumerGroup, leaving_id: str, now_ms: int) -> bool:
        """Turns ``group`` back into a classic group if ``leaving_id`` is its last
        consumer-protocol member and the policy allows; True if it did."""
        if not may_downgrade(group, leaving_id, self.migration_policy, self.settings.group.max_size):
            return False
        del self.consumer_groups[group.group_id]
        self.groups[group.group_id] = to_classic_group(group, leaving_id, self.settings.group,
                                                       self._new_member_id, now_ms)
        return True

    # ------------------------------------------------------------------ KIP-932

    def _other_type(self, group_id: str, kind: str) -> bool:
        """A group of another type with this id (its members or offsets) stands in the way."""
        classic = self.groups.get(group_id)
        return (kind != "share" and group_id in self.share_groups) or \
            (kind != "consumer" and group_id in self.consumer_groups) or \
            (classic is not None and classic.state is not GroupState.DEAD) or \
            (kind == "share" and bool(self.store.fetch(group_id)))

    def load_share_states(self, states: dict[tuple[str, str, int], dict]) -> None:
        """The durable share-partition states, as the host read them: every group with
        state is a (so far empty) share group again, as Kafka reloads it."""
        self.share_states = dict(states)
        for group_id in {g for g, _, _ in states}:
            self._share_group(group_id, create=True)

    def _share_group(self, group_id: str, create: bool) -> ShareGroup | None:
        group = self.share_groups.get(group_id)
        if group is None and create:
            group = self.share_groups[group_id] = ShareGroup(group_id, self.settings.share)
            for (g, topic, partition), state in self.share_states.items():
                if g == group_id:
                    group.partitions[(topic, partition)] = SharePartition.from_json(state, group.delivery_limit)
        if group is not None:
            group.configs = self.group_configs.get(group_id, {})
        return group

    def _share_changed(self, group: ShareGroup, tp: TopicPartition) -> None:
        key = (group.group_id, tp[0], tp[1])
        sp = group.partitions.get(tp)
        state = None if sp is None else sp.to_json()
        self.share_states[key] = state
        self.share_changes[key] = state
        if state is None:
            self.share_states.pop(key)

    def share_heartbeat(self, group_id: str, now_ms: int, topics, topics_version, **request) -> dict:
        """ShareGroupHeartbeat; ``request`` as for ``ShareGroup.share_heartbeat``."""
        if not group_id:
            return heartbeat_error(errors.InvalidGroupId.code, "the group id is empty")
        self._membership_changed(group_id, request.get("member_id"))
        group = self._share_group(group_id, create=False)
        if group is None:
            if request.get("member_epoch") != 0:
                return heartbeat_error(errors.UnknownMemberId.code, f"group {group_id} has no such member")
            if self._other_type(group_id, "share"):
                return heartbeat_error(errors.GroupIdNotFound.code, f"Group {group_id} is not a share group.")
            group = self._share_group(group_id, create=True)
        # Membership never touches share-partition state: records a departed member
        # held go back when its share session closes or their locks expire.
        return group.share_heartbeat(now_ms, topics, topics_version, **request)

    def share_group_describe(self, group_ids: list[str]) -> list[dict]:
        out = []
        for group_id in group_ids:
            group = self.share_groups.get(group_id)
            if group is not None:
                out.append(group.describe())
                continue
            message = (f"Group {group_id} is not a share group." if self._other_type(group_id, "share")
                       else f"Group {group_id} not found.")
            out.append({"error_code": errors.GroupIdNotFound.code, "error_message": message, "group_id": group_id,
                        "group_state": "Dead", "group_epoch": -1, "assignment_epoch": -1, "assignor_name": "",
                        "members": []})
        return out

    def share_offsets(self, group_id: str, topics: dict[str, list[int]] | None) -> list[list]:
        """DescribeShareGroupOffsets: [topic, partition, start offset, records done past
        it] for each share-partition asked for (``topics`` None: every one with state);
        one never read has start offset -1. A group that is not a share group (or none at
        all) has no share-partitions, without an error, as Kafka answers."""
        group = self.share_groups.get(group_id)
        if group is None:
            return []
        wanted = sorted(group.partitions) if topics is None else \
            sorted((t, p) for t, ps in topics.items() for p in ps)
        out = []
        for tp in wanted:
            sp = group.partitions.get(tp)
            if sp is None:
                out.append([tp[0], tp[1], -1, 0])
            else:
                out.append([tp[0], tp[1], sp.start, sp.done()])
        return out

    def _share_admin_group(self, group_id: str) -> tuple[int, str | None, ShareGroup | None]:
        """The share group an offsets admin request (Alter/DeleteShareGroupOffsets) acts
        on, or its error (code, message) as Kafka's coordinator answers: an empty id is
        INVALID_GROUP_ID, a group of another type GROUP_ID_NOT_FOUND, one with members
        NON_EMPTY_GROUP. The group is None when no share group has this id."""
        if not group_id:
            return errors.InvalidGroupId.code, "The group id is invalid.", None
        group = self._share_group(group_id, create=False)
        if group is None and self._other_type(group_id, "share"):
            return errors.GroupIdNotFound.code, f"Group {group_id} is not a share group.", None
        if group is not None and not group.is_empty():
            return errors.NonEmptyGroup.code, errors.NonEmptyGroup.message, None
        return NONE, None, group

    def alter_share_offsets(self, group_id: str, topics: list[tuple[str, list[tuple[int, int]]]],
                            partition_counts: Mapping[str, int]) -> tuple[int, str | None, list]:
        """AlterShareGroupOffsets: each named share-partition starts again at its offset,
        forgetting its in-flight records (a negative offset drops its state, so the next
        fetch starts at ``share.auto.offset.reset``). Only an empty group; a share group
        that does not exist yet is created, as Kafka does. Returns (group error, message,
        [topic, [[partition, error, message]]]); a topic or partition that does not exist
        is UNKNOWN_TOPIC_OR_PARTITION."""
        code, message, group = self._share_admin_group(group_id)
        if code or not topics:
            return code, message, []
        if group is None:
            group = self._share_group(group_id, create=True)
        out = []
        for topic, partitions in topics:
            count = partition_counts.get(topic)
            rows = []
            for partition, start in partitions:
                if count is None or not 0 <= partition < count:
                    rows.append([partition, errors.UnknownTopicOrPartition.code, errors.UnknownTopicOrPartition.message])
                    continue
                tp = (topic, partition)
                if start < 0:
                    group.partitions.pop(tp, None)
                else:
                    group.partitions.setdefault(tp, SharePartition(start, group.delivery_limit)).reset(start)
                self._share_changed(group, tp)
                rows.append([partition, NONE, None])
            out.append([topic, rows])
        return NONE, None, out

    def delete_share_offsets(self, group_id: str, topics: list[str], partition_counts: Mapping[str, int]
                             ) -> tuple[int, str | None, list]:
        """DeleteShareGroupOffsets: an empty share group forgets its state for whole
        topics (the next fetch starts at ``share.auto.offset.reset``). Returns (group
        error, message, [topic, error, message]): a topic that does not exist, or that
        the group has no state for, is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers."""
        code, message, group = self._share_admin_group(group_id)
        if not code and group is None:
            code, message = errors.GroupIdNotFound.code, f"Group {group_id} not found."
        if code:
            return code, message, []
        out = []
        for topic in topics:
            held = [tp for tp in group.partitions if tp[0] == topic]
            if topic not in partition_counts:
                out.append([topic, errors.UnknownTopicOrPartition.code, errors.UnknownTopicOrPartition.message])
                continue
            if not held:
                out.append([topic, errors.UnknownTopicOrPartition.code, "There is no offset information to delete."])
                continue
            for tp in held:
                del group.partitions[tp]
                self._share_changed(group, tp)
            out.append([topic, NONE, None])
        return NONE, None, out

    def _share_member(self, group_id: str, member_id: str) -> ShareGroup:
        group = self._share_group(group_id, create=False)
        if group is None:
            raise errors.GroupIdNotFound(f"share group {group_id} not found")
        if not group.holds(member_id):
            raise errors.UnknownMemberId(f"member {member_id} is not in share group {group_id}")
        return group

    def share_acquire(self, group_id: str, member_id: str, now_ms: int, partitions: list,
                      max_records: int) -> dict:
        """Records for a ShareFetch: ``partitions`` are (topic, partition, log start, high
        watermark[, batch alignment: see SharePartition.acquire]); returns
        {(topic, partition): [(first, last, delivery count)]}, each share-partition's end
        offset (SPEO) after it, and the lock duration. ``max_records`` is shared out over
        the partitions in order."""
        group = self._share_member(group_id, member_id)
        acquired, ends = {}, {}
        budget = max_records
        for topic, partition, log_start, high_watermark, *align in partitions:
            tp = (topic, partition)
            sp = group.share_partition(tp, log_start, high_watermark)
            ranges = sp.acquire(member_id, now_ms, log_start, high_watermark, budget, group.lock_ms,
                                tuple(align[0]) if align and align[0] else None) if budget > 0 else []
            if ranges:
                budget -= sum(last - first + 1 for first, last, _ in ranges)
            acquired[tp] = ranges
            ends[tp] = sp.end
            self._share_changed(group, tp)
        return {"acquired": acquired, "ends": ends, "lock_ms": group.lock_ms}

    def share_unacquire(self, group_id: str, member_id: str, ranges: list) -> None:
        group = self.share_groups.get(group_id)
        if group is None:
            return
        for topic, partition, first, last in ranges:
            sp = group.partitions.get((topic, partition))
            if sp is not None:
                sp.unacquire(member_id, first, last)
                self._share_changed(group, (topic, partition))

    def share_acknowledge(self, group_id: str, member_id: str, now_ms: int, batches: list) -> dict:
        """Acknowledgement batches (topic, partition, first, last, types); an error code
        per partition (INVALID_RECORD_STATE for records the member does not hold). The
        member need not be in the group any more: a closing member leaves, then
        acknowledges."""
        group = self._share_group(group_id, create=False)
        if group is None:
            raise errors.GroupIdNotFound(f"share group {group_id} not found")
        codes: dict[TopicPartition, int] = {}
        for topic, partition, first, last, types in batches:
            tp = (topic, partition)
            sp = group.partitions.get(tp)
            ok = sp is not None and sp.acknowledge(member_id, first, last, list(types), now_ms, group.lock_ms)
            if not ok:
                codes[tp] = errors.InvalidRecordState.code
            else:
                codes.setdefault(tp, NONE)
                self._share_changed(group, tp)
        return codes

    def share_release(self, group_id: str, member_id: str) -> None:
        """A share session closed: the member's acquired records are released."""
        group = self.share_groups.get(group_id)
        if group is None:
            return
        for tp, sp in group.partitions.items():
            if sp.release_member(member_id):
                self._share_changed(group, tp)

    def consumer_group_describe(self, group_ids: list[str]) -> list[dict]:
        out = []
        for group_id in group_ids:
            group = self.consumer_groups.get(group_id)
            if group is not None:
                out.append(group.describe())
                continue
            message = (f"Group {group_id} is not a consumer group" if group_id in self.groups
                       else f"Group {group_id} not found.")
            out.append({"error_code": errors.GroupIdNotFound.code, "error_message": message, "group_id": group_id,
                        "group_state": ConsumerGroupState.DEAD.value, "group_epoch": -1, "assignment_epoch": -1,
                        "assignor_name": "", "members": []})
        return out

    # ------------------------------------------------------------------ offsets

    def commit_offsets(self, group_id: str, now_ms: int, *, member_id: str = "",
                       generation_id: int = -1, group_instance_id: str | None = None,
                       offsets: dict[TopicPartition, tuple[int, str | None, int]]
                       ) -> dict[TopicPartition, int]:
        """OffsetCommit: ``offsets`` maps (topic, partition) to (offset, metadata,
        leader_epoch); returns an error code per partition.

        Generation -1 is a "simple" commit (manual assignment, no group management),
        allowed only while the group has no members, as Kafka allows."""
        code = self._commit_error(group_id, now_ms, member_id, generation_id, group_instance_id, offsets)
        if code:
            return {tp: code for tp in offsets}
        result, accepted = {}, {}
        for tp, (offset, metadata, epoch) in offsets.items():
            if metadata is not None and len(metadata.encode("utf-8")) > \
                    self.settings.offset_metadata_max_bytes:
                result[tp] = errors.OffsetMetadataTooLarge.code
            else:
                result[tp] = NONE
                accepted[tp] = (offset, metadata, epoch)
        self.store.commit(group_id, accepted, now_ms)
        return result

    def _commit_error(self, group_id, now_ms, member_id, generation_id, instance_id, partitions) -> int:
        if not group_id:
            return errors.InvalidGroupId.code
        modern = self.consumer_groups.get(group_id)
        if modern is not None:
            return modern.commit_error(member_id, generation_id, partitions)
        group = self.groups.get(group_id)
        if group is None:
            # No group: a simple consumer may commit; a generation means the member
            # belongs to a group we no longer know, so its view is stale.
            return NONE if generation_id < 0 else errors.IllegalGeneration.code
        if group.state is GroupState.DEAD:
            return errors.CoordinatorNotAvailable.code
        if generation_id < 0 and group.is_empty():
            return NONE
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is not None and current != member_id:
                return errors.FencedInstanceId.code
        if member_id not in group.members:
            return errors.UnknownMemberId.code
        if generation_id != group.generation_id:
            return errors.IllegalGeneration.code
        if group.state is GroupState.COMPLETING_REBALANCE:
            # Partitions are being handed over; the new owners' commits come after sync.
            return errors.RebalanceInProgress.code
        # Stable, or PreparingRebalance: the member learns of the rebalance by heartbeat,
        # and committing what it processed before rejoining is exactly what it should do.
        group.members[member_id].last_heartbeat_ms = now_ms
        return NONE

    def txn_commit_error(self, group_id: str, member_id: str = "", generation_id: int = -1,
                         group_instance_id: str | None = None, partitions=None) -> int:
        """Whether a TxnOffsetCommit may store offsets for ``group_id`` (Kafka's
        doTxnCommitOffsets rules): a member id or generation, when given, must be current;
        without them any producer may commit for the group."""
        if not group_id:
            return errors.InvalidGroupId.code
        modern = self.consumer_groups.get(group_id)
        if modern is not None:
            # Kafka's ConsumerGroup.validateOffsetCommit, with a stale epoch answered as
            # ILLEGAL_GENERATION (the error TxnOffsetCommit has for it).
            code = modern.commit_error(member_id, generation_id, partitions)
            return errors.IllegalGeneration.code if code == errors.StaleMemberEpoch.code else code
        group = self.groups.get(group_id)
        if group is None:
            if member_id:
                return errors.UnknownMemberId.code
            return NONE if generation_id < 0 else errors.IllegalGeneration.code
        if group.state is GroupState.DEAD:
            return errors.CoordinatorNotAvailable.code
        if group_instance_id is not None:
            current = group.static_members.get(group_instance_id)
            if current is not None and current != member_id:
                return errors.FencedInstanceId.code
        if member_id and member_id not in group.members:
            return errors.UnknownMemberId.code
        if generation_id >= 0 and generation_id != group.generation_id:
            return errors.IllegalGeneration.code
        return NONE

    def fetch_error(self, group_id: str, member_id: str | None, member_epoch: int) -> int:
        """OffsetFetch v9+ names the KIP-848 member asking: it must be the group's current
        member at its current epoch (Kafka's validateOffsetFetch); admin fetches name none."""
        modern = self.consumer_groups.get(group_id)
        if modern is None or (member_epoch < 0 and not member_id):
            return NONE
        return modern.commit_error(member_id or "", member_epoch)

    def fetch_offsets(self, group_id: str, partitions: list[TopicPartition] | None = None
                      ) -> dict[TopicPartition, CommittedOffset]:
        """OffsetFetch; a partition without a commit gets offset -1 (Kafka's answer)."""
        committed = self.store.fetch(group_id, partitions)
        if partitions is None:
            return committed
        missing = CommittedOffset(-1, "", -1, -1)
        return {tp: committed.get(tp, missing) for tp in partitions}

    def expire_offsets(self, now_ms: int) -> int:
        """Drops offsets past ``offsets_retention_ms`` (Kafka's rules since KIP-211):
        a group that used group management loses them all once it has been Empty that
        long; a simple-consumer group loses each offset that long after its commit.
        Groups with members keep theirs. Returns how many offsets expired."""
        retention = self.settings.offsets_retention_ms
        expired = 0
        for group_id in self.store.groups():
            modern = self.consumer_groups.get(group_id)
            if modern is not None and not modern.is_empty():
                continue
            group = self.groups.get(group_id)
            if group is not None and not group.is_empty():
                continue
            offsets = self.store.fetch(group_id)
            if modern is not None:
                gone = list(offsets) if now_ms >= modern.state_since_ms + retention else []
            elif group is not None and group.generation_id > 0:
                base = group.state_since_ms
                gone = list(offsets) if now_ms >= base + retention else []
            else:
                gone = [tp for tp, c in offsets.items() if now_ms >= c.commit_timestamp_ms + retention]
            if len(gone) == len(offsets):
                self.store.delete_group(group_id, now_ms)
                if modern is not None:
                    del self.consumer_groups[group_id]
                    self._membership_changed(group_id)
                if group is not None and group.state is GroupState.EMPTY:
                    group.mark_dead(now_ms)
                    del self.groups[group_id]
            elif gone:
                self.store.delete(group_id, gone, now_ms)
            expired += len(gone)
        return expired

    # ------------------------------------------------------------------ admin

    def _known(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return (group is not None and group.state is not GroupState.DEAD) or \
            group_id in self.consumer_groups or group_id in self.share_groups or bool(self.store.fetch(group_id))

    def list_groups(self, states: list[str] | None = None, types: list[str] | None = None) -> dict:
        """ListGroups; ``states`` filters by Kafka state names (v4+), ``types`` by group
        type, ``classic`` or ``consumer`` (v5+; case-insensitive, as Kafka)."""
        wanted_types = {t.lower() for t in types} if types else None
        wanted_states = {s.lower() for s in states} if states else None
        listed = []
        for group_id in sorted(set(self.groups) | set(self.consumer_groups) | set(self.share_groups) |
                               set(self.store.groups())):
            if not self._known(group_id):
                continue
            modern = self.consumer_groups.get(group_id) or self.share_groups.get(group_id)
            group = self.groups.get(group_id)
            if isinstance(modern, ShareGroup):
                kind, protocol_type, state = "share", "share", modern.state.value
            elif modern is not None:
                kind, protocol_type, state = "consumer", CONSUMER_PROTOCOL, modern.state.value
            else:
                kind = "classic"
                state = group.state.value if group else GroupState.EMPTY.value
                protocol_type = (group.protocol_type or "") if group else ""
            if wanted_states and state.lower() not in wanted_states:
                continue
            if wanted_types and kind not in wanted_types:
                continue
            listed.append({"group_id": group_id, "protocol_type": protocol_type, "group_state": state,
                           "group_type": kind})
        return {"error_code": NONE, "groups": listed}

    def describe_groups(self, group_ids: list[str]) -> list[dict]:
        out = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if not group_id:
                out.append(self._described(group_id, errors.InvalidGroupId.code, "Dead"))
            elif group is not None and group.state is not GroupState.DEAD:
                out.append(group.describe())
            elif group_id in self.consumer_groups:
                # Kafka's DescribeGroups knows classic groups only: a consumer group is
                # described by ConsumerGroupDescribe.
                out.append(self._described(group_id, NONE, GroupState.DEAD.value))
            elif self.store.fetch(group_id):
                out.append(self._described(group_id, NONE, GroupState.EMPTY.value))
            else:
                # Kafka describes an unknown group as Dead, without an error.
                out.append(self._described(group_id, NONE, GroupState.DEAD.value))
        return out

    @staticmethod
    def _described(group_id: str, code: int, state: str) -> dict:
        return {"error_code": code, "group_id": group_id, "group_state": state,
                "protocol_type": "", "protocol_data": "", "members": []}

    def delete_groups(self, group_ids: list[str], now_ms: int) -> list[dict]:
        """DeleteGroups: only groups without members; their offsets go too."""
        out = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if not group_id:
                code = errors.InvalidGroupId.code
            elif not self._known(group_id):
                code = errors.GroupIdNotFound.code
            elif group is not None and group.state is not GroupState.EMPTY:
                code = errors.NonEmptyGroup.code
            elif group_id in self.consumer_groups and not self.consumer_groups[group_id].is_empty():
                code = errors.NonEmptyGroup.code
            elif group_id in self.share_groups and not self.share_groups[group_id].is_empty():
                code = errors.NonEmptyGroup.code
            else:
                code = NONE
                self._membership_changed(group_id)
                self.consumer_groups.pop(group_id, None)
                shared = self.share_groups.pop(group_id, None)
                if shared is not None:
                    shared.partitions.clear()
                for key in [k for k in self.share_states if k[0] == group_id]:
                    del self.share_states[key]
                    self.share_changes[key] = None
                if group is not None:
                    group.mark_dead(now_ms)
                    del self.groups[group_id]
                self.store.delete_group(group_id, now_ms)
            out.append({"group_id": group_id, "error_code": code})
        return out

    def delete_offsets(self, group_id: str, partitions: list[TopicPartition], now_ms: int
                       ) -> tuple[int, dict[TopicPartition, int]]:
        """OffsetDelete: (group error, error per partition), by Kafka's rules. An unknown
        group is GROUP_ID_NOT_FOUND. An Empty group (or one known only by its offsets)
        loses the offsets of every partition asked for. A consumer group with members
        keeps those of the topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC) and
        loses the rest; a group of another protocol with members is NON_EMPTY_GROUP.
        Deletions are tombstones in the offsets log, so they survive a restart like
        commits. An Empty group left without offsets is gone, as after DeleteGroups."""
        if not group_id:
            return errors.InvalidGroupId.code, {}
        if not self._known(group_id):
            return errors.GroupIdNotFound.code, {}
        group = self.groups.get(group_id)
        modern = self.consumer_groups.get(group_id)
        result: dict[TopicPartition, int] = {}
        if modern is not None and not modern.is_empty():
            subscribed = modern.subscribed_topic_names()
            result = {tp: errors.GroupSubscribedToTopic.code for tp in partitions if tp[0] in subscribed}
        elif group is not None and not group.is_empty():
            if group.protocol_type != CONSUMER_PROTOCOL:
                return errors.NonEmptyGroup.code, {}
            subscribed = _subscribed_topics(group)
            result = {tp: errors.GroupSubscribedToTopic.code for tp in partitions if tp[0] in subscribed}
        eligible = [tp for tp in partitions if tp not in result]
        self.store.delete(group_id, eligible, now_ms)
        result.update((tp, NONE) for tp in eligible)
        if group is not None and group.state is GroupState.EMPTY and not self.store.fetch(group_id):
            group.mark_dead(now_ms)
            del self.groups[group_id]
        return NONE, result


def _subscribed_topics(group) -> set[str]:
    """Topics the members subscribe to, from their JoinGroup metadata: that of the chosen
    protocol, or before one is chosen each member's preferred one. Metadata that does not
    decode subscribes to nothing (Kafka then knows no subscription either)."""
    topics: set[str] = set()
    for member in group.members.values():
        name = group.protocol_name if group.protocol_name in member.protocol_names() else None
        metadata = member.metadata(name) if name else (member.protocols[0][1] if member.protocols else b"")
        try:
            topics.update(decode_subscription(metadata).topics)
        except errors.KafkaError:
            continue
    return topics
