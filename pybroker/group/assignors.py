"""Partition assignors of the "consumer" protocol: range, roundrobin, sticky and
cooperative-sticky.

The group leader runs one of these client-side; the coordinator never does. Every assignor
takes the cluster as ``{topic: number_of_partitions}`` and the members'
``{member_id: Subscription}`` and returns ``{member_id: [(topic, partition), ...]}`` with an
entry (possibly empty) for every member. Topics a member subscribes to that are absent from
``cluster`` are skipped, as Kafka skips topics missing from metadata.

Member order follows Kafka 3.x/4.x (``MemberInfo.compareTo``): static members (those with a
``group_instance_id``) first, ordered by instance id, then dynamic members by member id. So a
static member restarting with a new member id keeps its place, and its partitions.
Rack-aware placement (Kafka 3.5+) is not done: ``rack_id`` is carried but ignored.
"""
from __future__ import annotations

from pybroker.group.consumer_protocol import Subscription

TopicPartition = tuple[str, int]
Cluster = dict[str, int]
Assignment = dict[str, list[TopicPartition]]


def member_order(subscriptions: dict[str, Subscription]) -> list[str]:
    """Member ids in Kafka's MemberInfo order: static by instance id, then dynamic by id."""
    def key(member_id: str) -> tuple:
        instance = getattr(subscriptions[member_id], "group_instance_id", None)
        return (0, instance, member_id) if instance is not None else (1, member_id, "")
    return sorted(subscriptions, key=key)


def _subscribed_topics(cluster: Cluster, sub: Subscription) -> set[str]:
    return {t for t in sub.topics if cluster.get(t, 0) > 0}


class RangeAssignor:
    """Per topic, the subscribed members in order each take a contiguous range; the first
    ``partitions % members`` members take one extra. Kafka's javadoc example (C0, C1; t0, t1
    with 3 partitions each) gives C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2]."""

    name = "range"

    def assign(self, cluster: Cluster, subscriptions: dict[str, Subscription]) -> Assignment:
        order = member_order(subscriptions)
        result: Assignment = {m: [] for m in order}
        topics = set().union(*(_subscribed_topics(cluster, s) for s in subscriptions.values()))
        for topic in sorted(topics):
            members = [m for m in order if topic in subscriptions[m].topics]
            per_member, extra = divmod(cluster[topic], len(members))
            for i, member in enumerate(members):
                start = i * per_member + min(i, extra)
                length = per_member + (1 if i < extra else 0)
                result[member].extend((topic, p) for p in range(start, start + length))
        return result


class RoundRobinAssignor:
    """All partitions of all subscribed topics in (topic, partition) order, dealt round
    robin over the ordered members, skipping members not subscribed to the partition's
    topic. Kafka's javadoc example gives C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2]."""

    name = "roundrobin"

    def assign(self, cluster: Cluster, subscriptions: dict[str, Subscription]) -> Assignment:
        order = member_order(subscriptions)
        result: Assignment = {m: [] for m in order}
        topics = set().union(*(_subscribed_topics(cluster, s) for s in subscriptions.values()))
        wanted = {m: set(subscriptions[m].topics) for m in order}
        cursor = 0
        for topic in sorted(topics):
            for partition in range(cluster[topic]):
                # Some member subscribes to this topic, so this scan ends within one lap.
                while topic not in wanted[order[cursor % len(order)]]:
                    cursor += 1
                result[order[cursor % len(order)]].append((topic, partition))
                cursor += 1
        return result


class StickyAssignor:
    """Balanced like roundrobin, but a member keeps the partitions it owned (its
    Subscription's ``owned_partitions``) as far as balance allows.

    1. Previous owners: each claimed partition goes back to its claimant if the claimant
       still subscribes to the topic. Two claims on one partition: the higher
       ``generation_id`` wins; equal generations mean neither owns it.
    2. Unowned partitions, those with the fewest eligible members first, each go to the
       eligible member holding the fewest partitions (ties: member order).
    3. While some member holds at least two more partitions than another member that could
       take one of them, one partition moves (the most recently added first), so only the
       surplus moves. Each move lowers the sum of squared counts, so this ends.

    On the StickyAssignor javadoc example (C0, C1, C2 on t0..t3 with 2 partitions each,
    then C1 leaves) this yields C0 [t0p0, t1p1, t3p0, t2p0], C2 [t1p0, t2p1, t0p1, t3p1].
    """

    name = "sticky"

    def assign(self, cluster: Cluster, subscriptions: dict[str, Subscription]) -> Assignment:
        order = member_order(subscriptions)
        rank = {m: i for i, m in enumerate(order)}
        eligible: dict[TopicPartition, list[str]] = {}
        for member in order:
            for topic in sorted(_subscribed_topics(cluster, subscriptions[member])):
                for partition in range(cluster[topic]):
                    eligible.setdefault((topic, partition), []).append(member)

        result: Assignment = {m: [] for m in order}
        owner: dict[TopicPartition, str] = {}
        for tp, member in self._previous_owners(subscriptions).items():
            if tp in eligible and member in eligible[tp]:
                owner[tp] = member
                result[member].append(tp)

        unowned = [tp for tp in eligible if tp not in owner]
        unowned.sort(key=lambda tp: (len(eligible[tp]), tp))
        for tp in unowned:
            target = min(eligible[tp], key=lambda m: (len(result[m]), rank[m]))
            owner[tp] = target
            result[target].append(tp)

        self._balance(result, eligible, rank)
        return result

    @staticmethod
    def _previous_owners(subscriptions: dict[str, Subscription]) -> dict[TopicPartition, str]:
        best: dict[TopicPartition, tuple[int, str | None]] = {}
        for member, sub in subscriptions.items():
            for tp in sub.owned_partitions:
                claim = best.get(tp)
                if claim is None or sub.generation_id > claim[0]:
                    best[tp] = (sub.generation_id, member)
                elif sub.generation_id == claim[0]:
                    best[tp] = (claim[0], None)  # contested in one generation: no owner
        return {tp: m for tp, (_, m) in best.items() if m is not None}

    @staticmethod
    def _balance(result: Assignment, eligible: dict[TopicPartition, list[str]],
                 rank: dict[str, int]) -> None:
        while True:
            by_load = sorted(result, key=lambda m: (len(result[m]), rank[m]))
            moved = False
            for src in reversed(by_load):
                for dst in by_load:
                    if len(result[src]) - len(result[dst]) < 2:
                        break
                    for tp in reversed(result[src]):
                        if dst in eligible[tp]:
                            result[src].remove(tp)
                            result[dst].append(tp)
                            moved = True
                            break
                    if moved:
                        break
                if moved:
                    break
            if not moved:
                return


class CooperativeStickyAssignor(StickyAssignor):
    """The sticky assignment, minus every partition another member still owns: the owner
    drops it from its assignment this generation (revokes it), rejoins, and the next
    rebalance hands it to its new member. Partitions that stay put are never revoked."""

    name = "cooperative-sticky"

    def assign(self, cluster: Cluster, subscriptions: dict[str, Subscription]) -> Assignment:
        target = super().assign(cluster, subscriptions)
        claimants: dict[TopicPartition, set[str]] = {}
        for member, sub in subscriptions.items():
            for tp in sub.owned_partitions:
                claimants.setdefault(tp, set()).add(member)
        return {
            member: [tp for tp in partitions if not (claimants.get(tp, set()) - {member})]
            for member, partitions in target.items()
        }


ASSIGNORS = {a.name: a for a in (RangeAssignor(), RoundRobinAssignor(), StickyAssignor(),
                                  CooperativeStickyAssignor())}


def assignor_for(name: str):
    """The assignor registered under Kafka's protocol name; KeyError names the known ones."""
    try:
        return ASSIGNORS[name]
    except KeyError:
        raise KeyError(f"unknown assignor {name!r}; known: {', '.join(ASSIGNORS)}") from None
