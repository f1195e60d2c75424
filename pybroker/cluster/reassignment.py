"""Partition reassignment (Kafka's PartitionReassignmentReplicas and
PartitionReassignmentRevert) — pure logic on replica lists.

A reassignment moves a partition from its current replicas to a target list in two
steps, so that acknowledged records never depend on a replica that does not have them:

1. The replica set becomes ``target + removing`` (target order first, so the preferred
   leader is the target's first replica): the ``adding`` replicas (in the target, not
   current) start as followers and catch up through the ordinary replica fetcher; the
   ``removing`` ones (current, not in the target) keep serving.
2. Once every target replica is in the ISR (the adding ones join it as any follower does,
   by holding everything up to the high watermark), the replica set becomes the target
   and the ISR loses the removing replicas; they stop and delete their logs.

A reassignment whose target the ISR already covers (a reordering, a pure removal of
replicas) takes both steps at once. Cancelling one takes the adding replicas back out;
when only adding replicas are in the ISR that needs an unclean election (the first of
the original replicas becomes the whole ISR), which only a topic with
``unclean.leader.election.enable`` allows.

Adding and removing lists are sorted, as Kafka's are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class ReplicaChange:
    """A partition's replica lists after a step: ``replicas``, ``isr``, ``adding``,
    ``removing`` (both empty once the reassignment is over)."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()


def start(current: Sequence[int], target: Sequence[int], isr: Sequence[int]) -> ReplicaChange:
    """Step 1 for a move from ``current`` (the whole replica set, which during another
    reassignment includes that one's adding and removing replicas) to ``target``;
    completed at once when the ISR already covers the target."""
    removing = tuple(sorted(set(current) - set(target)))
    adding = tuple(sorted(set(target) - set(current)))
    change = ReplicaChange(tuple(target) + removing, tuple(isr), adding, removing)
    return complete(change) or change


def complete(change: ReplicaChange) -> ReplicaChange | None:
    """Step 2 when it may be taken: every replica of the target in the ISR, and the ISR
    not only removing replicas. None while the reassignment must wait (or there is none)."""
    if not change.adding and not change.removing:
        return None
    removing = set(change.removing)
    isr = tuple(r for r in change.isr if r not in removing)
    replicas = tuple(r for r in change.replicas if r not in removing)
    if not isr or not replicas or not set(replicas) <= set(isr):
        return None
    return ReplicaChange(replicas, isr)


def revert(replicas: Sequence[int], adding: Sequence[int], isr: Sequence[int]) -> tuple[ReplicaChange, bool]:
    """A cancel: the original replicas (the set without the adding ones) and the ISR
    without the adding ones; and whether that is unclean (only adding replicas were in
    sync, so the first original replica becomes the ISR)."""
    taken_back = set(adding)
    original = tuple(r for r in replicas if r not in taken_back)
    kept = tuple(r for r in isr if r not in taken_back)
    if kept:
        return ReplicaChange(original, kept), False
    return ReplicaChange(original, original[:1]), True


def replication_factor(replicas: Sequence[int], adding: Sequence[int], removing: Sequence[int]) -> int:
    """Replicas the partition is meant to have: its target's size while a reassignment
    runs (Kafka's check of AllowReplicationFactorChange)."""
    if adding or removing:
        return len(set(replicas) - set(removing))
    return len(replicas)
