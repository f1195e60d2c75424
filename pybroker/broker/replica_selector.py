"""Fetch from follower (KIP-392): which replica a leader tells a consumer to read from.

Kafka's ``replica.selector.class`` (a broker setting) chooses; unset, as Kafka's default,
consumers read from the leader. ``org.apache.kafka.common.replica.RackAwareReplicaSelector``
picks, for a consumer that sent a ``rack_id`` (its ``client.rack``, Fetch v11+):

- the leader, if the consumer sent no rack, no replica is in its rack, or the leader is;
- else the most caught-up replica in its rack: largest log end offset, then the shortest
  time since it was last caught up, then the largest broker id (Kafka's
  ReplicaView.comparator, whose max is taken).

Candidates are what Kafka's ReplicaManager.findPreferredReadReplica offers the selector:
the leader, and each follower that is in the ISR, on a live broker, and whose log holds the
fetch offset (log start <= fetch offset <= log end). A chosen follower is answered as the
partition's ``preferred_read_replica`` (no records); choosing the leader sets nothing.
Only a leader chooses, and only for consumers (a follower's fetches never get one).

Pure logic; the leader's partition state is read, never changed.
"""
from __future__ import annotations

from dataclasses import dataclass

RACK_AWARE_REPLICA_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
NO_PREFERRED_REPLICA = -1


@dataclass(frozen=True)
class ReplicaView:
    broker_id: int
    rack: str | None
    log_end_offset: int
    time_since_caught_up_ms: int

    def rank(self) -> tuple[int, int, int]:
        return (self.log_end_offset, -self.time_since_caught_up_ms, self.broker_id)


def rack_aware_select(client_rack: str | None, leader: ReplicaView, replicas: list[ReplicaView]) -> ReplicaView:
    """Kafka's RackAwareReplicaSelector.select; ``replicas`` includes the leader."""
    if not client_rack:
        return leader
    same_rack = [r for r in replicas if r.rack == client_rack]
    if not same_rack or any(r.broker_id == leader.broker_id for r in same_rack):
        return leader
    return max(same_rack, key=ReplicaView.rank)


def selector_for(class_name: str):
    """The selector function of a ``replica.selector.class`` value: None for "" (leader
    only), ValueError for a class pybroker does not have."""
    name = class_name.strip()
    if not name:
        return None
    if name == RACK_AWARE_REPLICA_SELECTOR:
        return rack_aware_select
    raise ValueError(f"replica.selector.class {name!r} is not available; use {RACK_AWARE_REPLICA_SELECTOR} "
                     "or leave it unset (consumers read from the leader)")


def preferred_read_replica(select, partition, brokers: dict, client_rack: str | None, fetch_offset: int,
                           now_ms: int) -> int:
    """The follower a leader sends a consumer to, or NO_PREFERRED_REPLICA. ``brokers``:
    the live brokers (id -> BrokerInfo with ``rack``) of the cluster image."""
    leader_info = brokers.get(partition.node_id)
    if select is None or leader_info is None:
        return NO_PREFERRED_REPLICA
    leader = ReplicaView(partition.node_id, leader_info.rack, partition.log_end_offset, 0)
    candidates = [leader]
    for replica, state in partition.followers.items():
        info = brokers.get(replica)
        if info is not None and replica in partition.isr and \
                state.log_start_offset <= fetch_offset <= state.log_end_offset:
            candidates.append(ReplicaView(replica, info.rack, state.log_end_offset,
                                          now_ms - state.last_caught_up_ms))
    chosen = select(client_rack, leader, candidates)
    return NO_PREFERRED_REPLICA if chosen.broker_id == leader.broker_id else chosen.broker_id
