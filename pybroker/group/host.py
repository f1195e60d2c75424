"""Hosts the group coordinator (``pybroker.group``) on an asyncio event loop: the
supervisor's in a cluster, or a process's own for in-process brokers.

The coordinator is pure logic: a JoinGroup or SyncGroup that must wait for other members
comes back PENDING and is parked under a future; every later call (or a deadline in
``tick``) may complete parked requests, which are drained here and resolved. One timer
task sleeps until the coordinator's next deadline (session timeouts, rebalance timeouts,
the initial rebalance delay).

Committed offsets live in ``<dir>/__consumer_offsets/`` (an append-only file of
CRC-checked records; the supervisor's dir is ``<data>/meta``), the membership of KIP-848
and share groups in ``<dir>/group-membership.log`` (membership_store.py), share-partition
states in ``<dir>/share-state.log``. Writes go through the page cache without fsync, as
Kafka's do: a commit survives the death of any process once acknowledged, and a member's
new epoch or assignment is written before the member hears of it, so after a restart
members carry on at their epochs without a rebalance.

Owned by the host's event loop thread; a request may come from another process
(``handle`` takes and returns JSON-friendly values).
"""
from __future__ import annotations

import asyncio
import logging
import os

from pybroker import errors
from pybroker.config import RESOURCE_GROUP
from pybroker.deadline import DeadlineTimer, now_ms as _now_ms
from pybroker.group.coordinator import CoordinatorSettings, GroupCoordinator
from pybroker.group.membership_store import MembershipStore
from pybroker.group.offset_store import OffsetStore
from pybroker.group.share_group import ShareGroup
from pybroker.group.share_store import ShareStateStore
from pybroker.group.state_machine import PENDING

log = logging.getLogger("pybroker.group")

# Kafka's offsets.retention.check.interval.ms.
RETENTION_CHECK_S = 600.0


class GroupConfigs:
    """The GROUP resources among the controller's dynamic configs, by group id."""

    def __init__(self, resource_configs: dict):
        self._configs = resource_configs

    def get(self, group_id: str, default=None):
        return self._configs.get((RESOURCE_GROUP, group_id), default)


class GroupHost:
    def __init__(self, data_dir: str, settings: CoordinatorSettings | None = None):
        self.store = OffsetStore(os.path.join(data_dir, "__consumer_offsets"), fsync=False)
        self.coordinator = GroupCoordinator(self.store, settings)
        self._timer = DeadlineTimer(self.coordinator.next_deadline_ms, self._tick)
        self._housekeeping: asyncio.Task | None = None
        # The controller's topics (name -> TopicMetadata) for the assignments the
        # coordinator computes itself (KIP-848); the version changes with them.
        self.topics: dict = {}
        self.topics_version = 0
        # Where the host learns partitions' high watermarks at their leaders (the
        # supervisor's ``positions``: shared memory, else the leaders' reports), for the
        # lag DescribeShareGroupOffsets gives. None: the brokers know (in-process ones).
        self.positions = None
        # Share groups' durable state (KIP-932), beside the committed offsets.
        self.shares = ShareStateStore(data_dir)
        self.coordinator.load_share_states(self.shares.states)
        self.memberships = MembershipStore(data_dir)
        for group_id in self.coordinator.load_groups(self.memberships.groups, _now_ms()):
            self.memberships.drop(group_id)

    def watch_topics(self, topics: dict, resource_configs: dict | None = None) -> None:
        """The controller's topics and (when it has them) its dynamic resource configs,
        of which GROUP ones set share groups' settings."""
        self.topics = topics
        if resource_configs is not None:
            self.coordinator.group_configs = GroupConfigs(resource_configs)

    def topics_changed(self) -> None:
        self.topics_version += 1

    def start(self) -> None:
        self._housekeeping = asyncio.get_running_loop().create_task(self._expire_loop())

    def close(self) -> None:
        self._timer.cancel()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self.store.close()
        self.shares.close()
        self.memberships.close()

    # -- requests ------------------------------------------------------------------------

    async def handle(self, method: str, group_id: str, args: dict):
        """One group request with JSON-friendly arguments and result (it may come from
        another process): lists instead of tuples, [topic, partition, ...] rows instead of
        dicts keyed by (topic, partition)."""
        now = _now_ms()
        c = self.coordinator
        if method in ("join", "sync"):
            fut = asyncio.get_running_loop().create_future()
            if method == "join":
                args = {**args, "protocols": [tuple(p) for p in args["protocols"]], "topics": self.topics,
                        "topics_version": self.topics_version}
            else:
                args = {**args, "assignments": [tuple(a) for a in args["assignments"]]}
            result = getattr(c, method)(group_id, now, token=fut, **args)
            self._after_call()
            return await fut if result is PENDING else result
        if method == "heartbeat":
            result = c.heartbeat(group_id, now, **args)
        elif method == "leave":
            result = c.leave(group_id, now, args["members"])
        elif method == "commit_offsets":
            offsets = {(t, p): (offset, metadata, epoch) for t, p, offset, metadata, epoch in args["offsets"]}
            codes = c.commit_offsets(group_id, now, member_id=args["member_id"], generation_id=args["generation_id"],
                                     group_instance_id=args.get("group_instance_id"), offsets=offsets)
            result = [[t, p, code] for (t, p), code in codes.items()]
        elif method == "fetch_offsets":
            wanted = args.get("partitions")
            code = c.fetch_error(group_id, args.get("member_id"), args.get("member_epoch", -1))
            if code:
                raise errors.for_code(code)(f"offset fetch refused for group {group_id}")
            committed = c.fetch_offsets(group_id, None if wanted is None else [tuple(tp) for tp in wanted])
            result = [[t, p, o.offset, o.metadata, o.leader_epoch] for (t, p), o in sorted(committed.items())]
        elif method == "consumer_heartbeat":
            result = c.consumer_heartbeat(group_id, now, self.topics, self.topics_version, **args)
        elif method == "consumer_group_describe":
            result = c.consumer_group_describe(args["group_ids"])
        elif method == "share_heartbeat":
            result = c.share_heartbeat(group_id, now, self.topics, self.topics_version, **args)
        elif method == "share_group_describe":
            result = c.share_group_describe(args["group_ids"])
        elif method == "share_offsets":
            rows = c.share_offsets(group_id, args.get("topics"))
            known = self.positions() if self.positions is not None and rows else {}
            # Each row gets the partition's high watermark at its leader, -1 if unknown.
            result = [[*row, known.get((row[0], row[1]), {}).get("high_watermark", -1)] for row in rows]
        elif method in ("alter_share_offsets", "delete_share_offsets"):
            counts = {name: t.partitions for name, t in self.topics.items()}
            if method == "alter_share_offsets":
                code, message, rows = c.alter_share_offsets(
                    group_id, [(t, [tuple(p) for p in ps]) for t, ps in args["topics"]], counts)
            else:
                code, message, rows = c.delete_share_offsets(group_id, args["topics"], counts)
            result = {"error_code": code, "error_message": message, "topics": rows}
        elif method == "share_acquire":
            # A ShareFetch's acknowledgements come with it: one call for both.
            result = {"ack": [], "ack_error": 0, "error": 0, "message": None, "lock_ms": 0, "acquired": []}
            try:
                if args.get("batches"):
                    codes = c.share_acknowledge(group_id, args["member_id"], now, args["batches"])
                    result["ack"] = [[t, p, code] for (t, p), code in codes.items()]
                found = c.share_acquire(group_id, args["member_id"], now, [tuple(p) for p in args["partitions"]],
                                        args["max_records"])
                result.update(lock_ms=found["lock_ms"], acquired=[
                    [t, p, [list(r) for r in ranges], found["ends"][(t, p)]]
                    for (t, p), ranges in found["acquired"].items()])
            except errors.KafkaError as exc:
                result.update(error=exc.code, message=str(exc))
                if not result["ack"] and args.get("batches"):
                    result["ack_error"] = exc.code
        elif method == "share_unacquire":
            result = c.share_unacquire(group_id, args["member_id"], args["ranges"])
        elif method == "share_acknowledge":
            codes = c.share_acknowledge(group_id, args["member_id"], now, args["batches"])
            result = [[t, p, code] for (t, p), code in codes.items()]
        elif method == "share_release":
            result = c.share_release(group_id, args["member_id"])
        elif method == "describe_groups":
            result = c.describe_groups(args["group_ids"])
        elif method == "list_groups":
            result = c.list_groups(args.get("states"), args.get("types"))
        elif method == "delete_groups":
            result = c.delete_groups(args["group_ids"], now)
        elif method == "delete_offsets":
            code, partitions = c.delete_offsets(group_id, [tuple(tp) for tp in args["partitions"]], now)
            result = {"error_code": code, "partitions": [[t, p, e] for (t, p), e in partitions.items()]}
        else:
            raise errors.InvalidRequest(f"unknown group method {method}")
        self._after_call()
        return result

    def _after_call(self, completed=()) -> None:
        changes = self.coordinator.share_changes
        if changes:
            self.coordinator.share_changes = {}
            self.shares.write(changes)
        if self.coordinator.membership_changes:
            self._write_membership()
        for _group_id, completion in [*completed, *self.coordinator.take_completions()]:
            fut = completion.token
            if isinstance(fut, asyncio.Future) and not fut.done():
                fut.set_result(completion.response)
        self._timer.schedule()

    def _write_membership(self) -> None:
        """Writes what changed in the membership of the groups the coordinator names:
        the members that asked, or every member once the group's epochs or member set
        moved (a new target assignment may concern them all)."""
        c = self.coordinator
        changes, c.membership_changes = c.membership_changes, {}
        for group_id, asked in changes.items():
            group = c.consumer_groups.get(group_id) or c.share_groups.get(group_id)
            if group is None:
                self.memberships.drop(group_id)
                continue
            kind = "share" if isinstance(group, ShareGroup) else "consumer"
            metadata = group.metadata_json()
            stored = self.memberships.groups.get(group_id)
            if stored is None or stored.kind != kind or stored.metadata != metadata or \
                    stored.members.keys() != group.members.keys():
                asked = group.members
            removed = set(stored.members) - set(group.members) if stored is not None else set()
            self.memberships.write(group_id, kind, metadata,
                                   {m: group.member_json(m) for m in asked if m in group.members}, removed)

    def _tick(self) -> None:
        self._after_call(self.coordinator.tick(_now_ms()))

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_CHECK_S)
            expired = self.coordinator.expire_offsets(_now_ms())
            self._after_call()
            if expired:
                log.info("expired %d committed offsets", expired)
            self.store.compact()
