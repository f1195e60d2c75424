"""The controller: topics, replica assignment, leaders, ISR and epochs — pure logic.

The supervisor hosts it (and a single in-process broker can, for tests). Every change is
recorded twice over: as a metadata record the host appends to its metadata log before
acting (``take_records``), and as the ``PartitionState``s / topic changes the host pushes
to brokers (``Delta``). Replaying the records rebuilds the exact state, so a restarted
supervisor loses nothing.

Kafka's rules, in brief:
- Replica assignment spreads partitions and their replicas round-robin over the brokers
  from a random start with a shifting follower offset (Kafka's assignReplicasToBrokers,
  without racks), so leaders and followers are balanced. When brokers have racks
  (``broker.rack``), Kafka's StripedReplicaPlacer spreads each partition's replicas over
  the racks instead (pybroker.cluster.placement).
- A leader change bumps ``leader_epoch``; any change bumps ``partition_epoch``.
- A broker's death: partitions it led get a new leader from the live ISR, in replica order
  (clean election); only a topic with ``unclean.leader.election.enable`` may pick a live
  replica outside the ISR. With no candidate the partition is offline (leader -1) and
  keeps its ISR, so the last in-sync replica becomes leader when it returns. The dead
  broker also leaves the ISR of partitions it followed.
- AlterPartition (ISR change from a leader) must match the current leader epoch and
  partition epoch, keep the leader in the ISR, and name only live replicas.
- Preferred leaders: when a partition's first replica is alive and in the ISR but not
  leader, leadership moves back to it.
- Client quotas (pybroker.cluster.client_quotas) are ``{entity: {key: value}}``; a change
  records the entity's whole new set, and brokers get the sets of the entities changed.
- Reassignment (AlterPartitionReassignments, pybroker.cluster.reassignment): the replica
  set grows to target + current, and shrinks to the target in the AlterPartition that
  brings the last target replica into the ISR. A change that takes replicas out bumps the
  leader epoch; a leader outside the new ISR gives way to the first target replica in it.
- The broker registry: a broker is registered from its first start (its port is
  recorded) until it is unregistered, which only a broker holding no replica may be;
  ``broker_count`` is how many broker processes (ids 0..n-1) the cluster runs.
- ACLs are a set: creating one that exists changes nothing; DeleteAcls removes every
  ACL a filter matches and answers with them. Brokers get the whole set on each change.
- Limits, checked before anything is built: one CreateTopics / CreatePartitions request
  adds at most ``MAX_PARTITIONS_PER_REQUEST`` partitions (Kafka's
  MAX_PARTITIONS_PER_BATCH, POLICY_VIOLATION), and the cluster holds at most
  ``max_partitions`` (``pybroker up --max-partitions``, POLICY_VIOLATION).

Not thread-safe: owned by the host's event loop.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace

from pybroker.cluster import placement, reassignment
from pybroker.cluster.metadata import NO_LEADER, BrokerInfo, PartitionState
from pybroker.cluster.topics import TopicMetadata, validate_topic_name
from pybroker.config import (
    RESOURCE_BROKER,
    RESOURCE_GROUP,
    RESOURCE_TOPIC,
    TopicConfig,
    apply_config_ops,
    check_resource_configs,
    topic_defaults_with,
)
from pybroker import errors
from pybroker.cluster import client_quotas
from pybroker.security.acls import AclBinding, AclFilter
from pybroker.security.credentials import CredentialStore

log = logging.getLogger("pybroker.controller")

# Kafka's ReplicationControlManager.MAX_PARTITIONS_PER_BATCH: partitions one request may
# create, over all its topics. The check runs before any assignment is computed, so a
# request for 2**31-1 partitions costs nothing.
MAX_PARTITIONS_PER_REQUEST = 10_000
# Kafka's QuorumController.MAX_RECORDS_PER_USER_OP: the records one admin request may
# write (ACLs one CreateAcls or DeleteAcls adds or removes; quota keys one
# AlterClientQuotas changes, a record each in Kafka).
MAX_RECORDS_PER_USER_OP = 10_000
MAX_ACLS_PER_REQUEST = MAX_RECORDS_PER_USER_OP
# Partitions the whole cluster may hold (``--max-partitions``): every partition costs
# directories, open files and memory on some broker.
DEFAULT_MAX_PARTITIONS = 100_000


def requested_partitions(count: int, assignments, default_partitions: int) -> int:
    """The partitions one topic of a CreateTopics request asks for, as Kafka counts them
    for the per-request cap: -1 is the default, non-positive counts add nothing."""
    if assignments:
        return len(assignments)
    if count == -1:
        return default_partitions
    return max(count, 0)


def check_request_partitions(total: int) -> None:
    if total > MAX_PARTITIONS_PER_REQUEST:
        raise errors.PolicyViolation(
            f"Excessively large number of partitions per request: {total} requested, "
            f"limit {MAX_PARTITIONS_PER_REQUEST}."
        )


def check_replication_factor(replication_factor: int, live_brokers: int) -> None:
    if replication_factor < 1:
        raise errors.InvalidReplicationFactor("Replication factor must be larger than 0.")
    if replication_factor > live_brokers:
        raise errors.InvalidReplicationFactor(
            f"Replication factor: {replication_factor} larger than available brokers: {live_brokers}."
        )


@dataclass
class Delta:
    """What changed, for the brokers: topics created/updated, topics deleted, partition
    states, and whether the broker list changed."""

    topics: list = field(default_factory=list)            # TopicMetadata
    deleted_topics: list = field(default_factory=list)    # names
    partitions: list = field(default_factory=list)        # PartitionState
    brokers_changed: bool = False
    resource_configs: list = field(default_factory=list)  # (resource type, name) of BROKER / GROUP configs
    acls_changed: bool = False
    credentials: list = field(default_factory=list)       # scram_credential records
    client_quotas: list = field(default_factory=list)     # client quota entities changed

    def __bool__(self) -> bool:
        return bool(self.topics or self.deleted_topics or self.partitions or self.brokers_changed
                    or self.resource_configs or self.acls_changed or self.credentials or self.client_quotas)

    def merge(self, other: "Delta") -> "Delta":
        self.topics += other.topics
        self.deleted_topics += other.deleted_topics
        self.partitions += other.partitions
        self.brokers_changed |= other.brokers_changed
        self.resource_configs += other.resource_configs
        self.acls_changed |= other.acls_changed
        self.credentials += other.credentials
        self.client_quotas += other.client_quotas
        return self


def assign_replicas(brokers: list[int], partitions: int, replication_factor: int,
                    start_partition: int = 0, rng: random.Random | None = None) -> list[list[int]]:
    """Kafka's rack-unaware assignment: partition p's first replica is broker
    (p + start) mod n; followers follow at a shift that grows every n partitions."""
    n = len(brokers)
    check_replication_factor(replication_factor, n)
    rng = rng or random.Random()
    ordered = sorted(brokers)
    start_index = rng.randrange(n)
    shift = rng.randrange(n)
    out = []
    for p in range(start_partition, start_partition + partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        replicas = [ordered[first]]
        for j in range(replication_factor - 1):
            replicas.append(ordered[(first + 1 + (shift + j) % (n - 1)) % n])
        out.append(replicas)
    return out


class Controller:
    def __init__(self, cluster_id: str = "pybroker-cluster", topic_defaults: TopicConfig | None = None,
                 rng: random.Random | None = None, max_partitions: int = DEFAULT_MAX_PARTITIONS):
        self.cluster_id = cluster_id
        self.max_partitions = max_partitions
        # The static topic defaults (``pybroker up --config``); ``topic_defaults`` adds the
        # dynamic cluster-wide broker defaults (the "" BROKER resource) on top.
        self.static_topic_defaults = topic_defaults or TopicConfig()
        self.topic_defaults = topic_defaults_with(self.static_topic_defaults, {})
        # Dynamic configs of BROKER ("" is the cluster default) and GROUP resources:
        # (resource type, name) -> {config: value}.
        self.resource_configs: dict[tuple[int, str], dict[str, str]] = {}
        self.topics: dict[str, TopicMetadata] = {}
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.acls: set[AclBinding] = set()
        # Client quotas (KIP-546): entity -> {key: value} (pybroker.cluster.client_quotas).
        self.client_quotas: dict[tuple, dict[str, float]] = {}
        self.live: dict[int, BrokerInfo] = {}
        # Listener ports by broker id, kept so a restarted broker comes back where
        # clients last saw it.
        self.ports: dict[int, int] = {}
        # ... and the port of each of its listeners (name -> port), when it has several.
        self.listener_ports: dict[int, dict[str, int]] = {}
        # ... and its rack (broker.rack), so a restart keeps the racks it was given.
        self.racks: dict[int, str] = {}
        # How many broker processes the cluster runs (ids 0..n-1), once recorded: a
        # restart brings them all back (``pybroker scale`` changes it).
        self.broker_count: int | None = None
        # SCRAM users (pybroker.security.credentials): salted keys, never passwords.
        self.credentials = CredentialStore()
        self._records: list[dict] = []
        self._rng = rng or random.Random()

    # -- metadata log --------------------------------------------------------------------

    def take_records(self) -> list[dict]:
        records, self._records = self._records, []
        return records

    def _record(self, doc: dict) -> None:
        self._records.append(doc)

    def replay(self, record: dict) -> None:
        kind = record["type"]
        if kind == "topic":
            topic = TopicMetadata.from_json(record["topic"], self.topic_defaults)
            self.topics[topic.name] = topic
        elif kind == "partition":
            state = PartitionState.from_json(record["state"])
            self.partitions[state.key] = state
        elif kind == "delete_topic":
            self._forget_topic(record["name"])
        elif kind == "broker_port":
            self.ports[int(record["node_id"])] = int(record["port"])
            if record.get("listeners"):
                self.listener_ports[int(record["node_id"])] = {k: int(v) for k, v in record["listeners"].items()}
            if record.get("rack") is not None:
                self.racks[int(record["node_id"])] = record["rack"]
            else:
                self.racks.pop(int(record["node_id"]), None)
        elif kind == "broker_count":
            self.broker_count = int(record["brokers"])
        elif kind == "unregister_broker":
            self._forget_broker(int(record["node_id"]))
        elif kind == "scram_credential":
            self.credentials.apply_record(record)
        elif kind == "resource_config":
            self._set_resource_configs(int(record["resource_type"]), record["resource_name"], record["configs"])
        elif kind == "acl":
            self.acls.add(AclBinding.from_json(record["acl"]))
        elif kind == "delete_acl":
            self.acls.discard(AclBinding.from_json(record["acl"]))
        elif kind == "client_quota":
            self._set_client_quotas(client_quotas.entity_from_json(record["entity"]), record["quotas"])
        else:
            raise ValueError(f"unknown metadata record type {kind!r}")

    def _put_partition(self, state: PartitionState, delta: Delta) -> None:
        self.partitions[state.key] = state
        self._record({"type": "partition", "state": state.to_json()})
        delta.partitions.append(state)

    def _forget_topic(self, name: str) -> None:
        topic = self.topics.pop(name, None)
        if topic is not None:
            for index in range(topic.partitions):
                self.partitions.pop((name, index), None)

    def undo_topic_change(self, name: str, partitions_before: int | None) -> None:
        """Take back an uncommitted create (``partitions_before`` None) or partition
        growth, whose records were never made durable: the state is as if the request
        had not come."""
        if partitions_before is None:
            self._forget_topic(name)
            return
        topic = self.topics[name]
        for index in range(partitions_before, topic.partitions):
            self.partitions.pop((name, index), None)
        topic.partitions = partitions_before

    def _check_budget(self, adding: int) -> None:
        total = len(self.partitions) + adding
        if total > self.max_partitions:
            raise errors.PolicyViolation(
                f"Adding {adding} partitions would bring the cluster to {total} partitions, above its "
                f"limit of {self.max_partitions} (max.partitions, pybroker up --max-partitions)."
            )


    # -- brokers ------------------------------------------------------------------------

    def register_broker(self, info: BrokerInfo) -> Delta:
        """A broker came up (or was adopted by a restarted supervisor)."""
        delta = Delta(brokers_changed=True)
        self.live[info.node_id] = info
        listeners = dict(info.listeners)
        if self.ports.get(info.node_id) != info.port or self.listener_ports.get(info.node_id, {}) != listeners \
                or self.racks.get(info.node_id) != info.rack:
            self.ports[info.node_id] = info.port
            self.listener_ports[info.node_id] = listeners
            if info.rack is None:
                self.racks.pop(info.node_id, None)
            else:
                self.racks[info.node_id] = info.rack
            self._record(broker_port_record(self, info.node_id))
        for state in list(self.partitions.values()):
            if state.leader == NO_LEADER and info.node_id in state.replicas:
                self._elect(state, delta)
        return delta

    def set_broker_count(self, count: int) -> Delta:
        """Record how many brokers the cluster runs (before new ones are started)."""
        if count != self.broker_count:
            self.broker_count = count
            self._record({"type": "broker_count", "brokers": count})
        return Delta()

    def holdings(self, node_ids) -> dict[tuple[str, int], tuple[int, ...]]:
        """Partitions with a replica (current, adding or removing) on any of ``node_ids``,
        and which of them it is on."""
        wanted = set(node_ids)
        return {key: tuple(b for b in state.replicas if b in wanted)
                for key, state in self.partitions.items() if wanted.intersection(state.replicas)}

    def unregister_brokers(self, node_ids, count: int) -> Delta:
        """Kafka's UnregisterBroker, for brokers that hold no replica (``holdings``):
        they leave the registry, so no topic or reassignment may name them again."""
        held = self.holdings(node_ids)
        if held:
            raise errors.InvalidRequest(f"brokers {sorted(node_ids)} still hold replicas of {len(held)} partitions")
        for node_id in node_ids:
            self._forget_broker(node_id)
            self._record({"type": "unregister_broker", "node_id": node_id})
        self.set_broker_count(count)
        return Delta(brokers_changed=True)

    def _forget_broker(self, node_id: int) -> None:
        self.live.pop(node_id, None)
        self.ports.pop(node_id, None)
        self.listener_ports.pop(node_id, None)
        self.racks.pop(node_id, None)

    def broker_failed(self, node_id: int) -> Delta:
        delta = Delta(brokers_changed=node_id in self.live)
        self.live.pop(node_id, None)
        for state in list(self.partitions.values()):
            if state.leader == node_id:
                self._elect(state, delta, failed=node_id)
            elif node_id in state.isr and len(state.isr) > 1:
                isr = tuple(b for b in state.isr if b != node_id)
                self._put_partition(replace(state, isr=isr, partition_epoch=state.partition_epoch + 1), delta)
        return delta

    def _elect(self, state: PartitionState, delta: Delta, failed: int | None = None) -> None:
        isr = tuple(b for b in state.isr if b != failed and b in self.live) if failed is not None else state.isr
        candidates = [b for b in state.replicas if b in isr and b in self.live]
        if candidates:
            leader = candidates[0]
        else:
            unclean = self.topics[state.topic].config.unclean_leader_election_enable
            live_replicas = [b for b in state.replicas if b in self.live]
            if unclean and live_replicas:
                leader, isr = live_replicas[0], (live_replicas[0],)
            else:
                # Offline: keep the last ISR so only an in-sync replica can lead again.
                leader, isr = NO_LEADER, tuple(b for b in state.isr) or state.isr
        if leader == state.leader and isr == state.isr:
            return
        self._put_partition(
            replace(state, leader=leader, isr=isr or (leader,), leader_epoch=state.leader_epoch + 1,
                    partition_epoch=state.partition_epoch + 1),
            delta,
        )

    def elect_preferred_leaders(self) -> Delta:
        delta = Delta()
        for state in list(self.partitions.values()):
            preferred = state.replicas[0]
            if state.leader != preferred and preferred in self.live and preferred in state.isr:
                self._put_partition(
                    replace(state, leader=preferred, leader_epoch=state.leader_epoch + 1,
                            partition_epoch=state.partition_epoch + 1),
                    delta,
                )
        return delta

    def elect_leaders(self, unclean: bool, partitions: list[tuple[str, int]] | None
                      ) -> tuple[dict[tuple[str, int], errors.KafkaError | None], Delta]:
        """ElectLeaders (KIP-460). Preferred: move leadership to the first replica when it
        is alive and in the ISR. Unclean: give a leaderless partition a leader, from the
        ISR if any replica there is alive, else any live replica (which becomes the whole
        ISR: acknowledged records it lacks are lost, as in Kafka). A partition needing
        nothing gets ELECTION_NOT_NEEDED; asked for every partition (None), only those
        elected or failing are answered, as Kafka's controller does."""
        delta = Delta()
        results: dict[tuple[str, int], errors.KafkaError | None] = {}
        keys = sorted(self.partitions) if partitions is None else partitions
        for key in keys:
            state = self.partitions.get(key)
            if state is None:
                results[key] = errors.UnknownTopicOrPartition(
                    f"No such topic as {key[0]}" if key[0] not in self.topics else
                    f"No such partition as {key[0]}-{key[1]}")
                continue
            outcome = self._elect_unclean(state, delta) if unclean else self._elect_preferred(state, delta)
            if partitions is not None or not isinstance(outcome, errors.ElectionNotNeeded):
                results[key] = outcome
        return results, delta

    def _elect_preferred(self, state: PartitionState, delta: Delta) -> errors.KafkaError | None:
        preferred = state.replicas[0]
        if state.leader == preferred:
            return errors.ElectionNotNeeded("Leader election not needed for topic partition.")
        if preferred not in self.live or preferred not in state.isr:
            return errors.PreferredLeaderNotAvailable(
                f"Failed to elect leader for partition {state.topic}-{state.partition} under strategy "
                f"PreferredReplicaPartitionLeaderElectionStrategy")
        self._put_partition(replace(state, leader=preferred, leader_epoch=state.leader_epoch + 1,
                                    partition_epoch=state.partition_epoch + 1), delta)
        return None

    def _elect_unclean(self, state: PartitionState, delta: Delta) -> errors.KafkaError | None:
        if state.leader != NO_LEADER and state.leader in self.live:
            return errors.ElectionNotNeeded("Leader election not needed for topic partition.")
        in_sync = [b for b in state.replicas if b in state.isr and b in self.live]
        live = [b for b in state.replicas if b in self.live]
        if not live:
            return errors.EligibleLeadersNotAvailable(
                f"Failed to elect leader for partition {state.topic}-{state.partition}: no live replica")
        leader, isr = (in_sync[0], tuple(in_sync)) if in_sync else (live[0], (live[0],))
        self._put_partition(replace(state, leader=leader, isr=isr, leader_epoch=state.leader_epoch + 1,
                                    partition_epoch=state.partition_epoch + 1), delta)
        return None

    # -- topics -------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: dict | None = None, assignments: list[list[int]] | None = None,
                     validate_only: bool = False, default_partitions: int = 1,
                     default_replication_factor: int = 1) -> tuple[TopicMetadata, Delta]:
        validate_topic_name(name)
        if name in self.topics:
            raise errors.TopicAlreadyExists(f"Topic '{name}' already exists.")
        config = TopicConfig.parse(configs or {}, self.topic_defaults)
        if assignments:
            check_request_partitions(len(assignments))
            self._check_assignments(assignments)
            partitions, replication_factor = len(assignments), len(assignments[0])
        else:
            if partitions == -1:
                partitions = default_partitions
            if replication_factor == -1:
                replication_factor = min(default_replication_factor, max(1, len(self.live)))
            if partitions < 1:
                raise errors.InvalidPartitions("Number of partitions must be larger than 0.")
            check_replication_factor(replication_factor, len(self.live))
            check_request_partitions(partitions)
        self._check_budget(partitions)
        _check_fits(config, replication_factor)
        if not assignments:
            assignments = self._place(partitions, replication_factor)
        topic = TopicMetadata(name, partitions, replication_factor, config=config)
        delta = Delta()
        if validate_only:
            return topic, delta
        self.topics[name] = topic
        self._record({"type": "topic", "topic": topic.to_json()})
        delta.topics.append(topic)
        for index, replicas in enumerate(assignments):
            self._put_partition(self._new_partition(name, index, replicas), delta)
        return topic, delta

    def _place(self, partitions: int, replication_factor: int, start_partition: int = 0) -> list[list[int]]:
        """Replicas of new partitions over the live brokers: striped over racks when any
        broker has one (pybroker.cluster.placement), else Kafka's rack-unaware rule."""
        if any(info.rack is not None for info in self.live.values()):
            return placement.place_replicas({b: info.rack for b, info in self.live.items()}, partitions,
                                            replication_factor, rng=self._rng)
        return assign_replicas(list(self.live), partitions, replication_factor, start_partition, rng=self._rng)

    def _new_partition(self, topic: str, index: int, replicas: list[int]) -> PartitionState:
        live = [b for b in replicas if b in self.live]
        leader = live[0] if live else NO_LEADER
        return PartitionState(topic, index, leader, 0, 0, tuple(replicas), tuple(live) or tuple(replicas))

    def _check_assignments(self, assignments: list[list[int]]) -> None:
        sizes = {len(a) for a in assignments}
        if len(sizes) != 1 or 0 in sizes:
            raise errors.InvalidReplicaAssignment("All partitions should have the same number of replicas")
        for replicas in assignments:
            if len(set(replicas)) != len(replicas):
                raise errors.InvalidReplicaAssignment(f"Duplicate brokers in replica assignment {replicas}")
            unknown = [b for b in replicas if b not in self.live]
            if unknown:
                raise errors.InvalidReplicaAssignment(f"Unknown or unavailable brokers {unknown} in replica assignment")

    def delete_topic(self, name: str) -> Delta:
        if name not in self.topics:
            raise errors.UnknownTopicOrPartition(f"Topic '{name}' does not exist.")
        self._forget_topic(name)
        self._record({"type": "delete_topic", "name": name})
        return Delta(deleted_topics=[name])

    def create_partitions(self, name: str, count: int, assignments: list[list[int]] | None = None,
                          validate_only: bool = False) -> Delta:
        topic = self.topics.get(name)
        if topic is None:
            raise errors.UnknownTopicOrPartition(f"The topic '{name}' does not exist.")
        if count < topic.partitions:
            raise errors.InvalidPartitions(
                f"Topic currently has {topic.partitions} partitions, which is higher than the "
                f"requested {count}. Partitions can never be reduced."
            )
        if count == topic.partitions:
            raise errors.InvalidPartitions(f"Topic already has {topic.partitions} partitions.")
        added = count - topic.partitions
        check_request_partitions(added)
        self._check_budget(added)
        if assignments:
            if len(assignments) != added:
                raise errors.InvalidReplicaAssignment(
                    f"Increasing the number of partitions by {added} but {len(assignments)} assignments provided."
                )
            self._check_assignments(assignments)
        else:
            assignments = self._place(added, topic.replication_factor, start_partition=topic.partitions)
        delta = Delta()
        if validate_only:
            return delta
        old = topic.partitions
        topic.partitions = count
        self._record({"type": "topic", "topic": topic.to_json()})
        delta.topics.append(topic)
        for offset, replicas in enumerate(assignments):
            self._put_partition(self._new_partition(name, old + offset, replicas), delta)
        return delta

    # -- topic configs ------------------------------------------------------------------

    def alter_topic_config(self, name: str, configs: list[tuple[str, int, str | None]], incremental: bool,
                           validate_only: bool = False) -> tuple[TopicMetadata, Delta]:
        """Change a topic's config overrides, as AlterConfigs / IncrementalAlterConfigs do.

        ``configs`` is ``[(name, op, value)]``. Incremental: each op (SET, DELETE, APPEND,
        SUBTRACT) changes one override and the others stay. Not incremental (the legacy
        AlterConfigs): the given names become the whole set of overrides and the rest
        revert to their defaults; ``op`` is ignored. The new config is recorded as the
        topic's record (replayed like a created topic) and published as a topic change;
        brokers apply it to their logs at once."""
        topic = self.topics.get(name)
        if topic is None:
            raise errors.UnknownTopicOrPartition(f"Topic '{name}' does not exist.")
        _refuse_duplicate_keys(configs)
        if incremental:
            overrides = apply_config_ops(topic.config.overridden(), configs, self.topic_defaults)
        else:
            overrides = {}
            for key, _op, value in configs:
                if value is None:
                    raise errors.InvalidConfig(f"Null value not supported for topic config {key}")
                overrides[key] = value
        config = TopicConfig.parse(overrides, self.topic_defaults)
        _check_fits(config, topic.replication_factor)
        delta = Delta()
        if validate_only:
            return replace(topic, config=config), delta
        was_unclean = topic.config.unclean_leader_election_enable
        topic.config = config
        self._record({"type": "topic", "topic": topic.to_json()})
        delta.topics.append(topic)
        self._elect_if_newly_unclean(topic, was_unclean, delta)
        return topic, delta

    def _elect_if_newly_unclean(self, topic: TopicMetadata, was_unclean: bool, delta: Delta) -> None:
        """Kafka elects offline partitions as soon as unclean election is allowed."""
        if was_unclean or not topic.config.unclean_leader_election_enable:
            return
        for index in range(topic.partitions):
            state = self.partitions.get((topic.name, index))
            if state is not None and state.leader == NO_LEADER:
                self._elect(state, delta)

    # -- BROKER and GROUP configs ------------------------------------------------------------

    def _set_resource_configs(self, resource_type: int, name: str, configs: dict[str, str],
                              delta: Delta | None = None) -> None:
        """Store a resource's whole set of dynamic configs; the cluster default broker
        resource also re-derives every topic's config from the new defaults."""
        key = (resource_type, name)
        if configs:
            self.resource_configs[key] = dict(configs)
        else:
            self.resource_configs.pop(key, None)
        if key != (RESOURCE_BROKER, ""):
            return
        self.topic_defaults = topic_defaults_with(self.static_topic_defaults, configs)
        for topic in self.topics.values():
            config = TopicConfig.parse(topic.config.overridden(), self.topic_defaults)
            if config == topic.config:
                continue
            was_unclean = topic.config.unclean_leader_election_enable
            topic.config = config
            if delta is not None:
                delta.topics.append(topic)
                self._elect_if_newly_unclean(topic, was_unclean, delta)

    def alter_resource_config(self, resource_type: int, name: str, configs: list[tuple[str, int, str | None]],
                              incremental: bool, validate_only: bool = False) -> Delta:
        """AlterConfigs / IncrementalAlterConfigs of a BROKER (a broker id, or "" for the
        cluster-wide default) or GROUP resource, by the same rules as a topic's: the
        result is validated whole, recorded in the metadata log and pushed to brokers."""
        if resource_type == RESOURCE_BROKER and name != "" and not name.isdigit():
            raise errors.InvalidRequest(f"Invalid broker name '{name}': a broker id or \"\" for the cluster default")
        if resource_type == RESOURCE_GROUP and not name:
            raise errors.InvalidRequest("A group config resource needs a group id")
        _refuse_duplicate_keys(configs)
        current = self.resource_configs.get((resource_type, name), {})
        if incremental:
            overrides = apply_config_ops(current, configs, {}, known=_AnyName(), lists=(), what="dynamic")
        else:
            overrides = {key: value for key, _op, value in configs}
        check_resource_configs(resource_type, name, overrides)
        delta = Delta()
        if validate_only or overrides == current:
            return delta
        self._record({"type": "resource_config", "resource_type": resource_type, "resource_name": name,
                      "configs": overrides})
        self._set_resource_configs(resource_type, name, overrides, delta)
        delta.resource_configs.append((resource_type, name))
        return delta

    # -- ACLs ---------------------------------------------------------------------------

    def create_acls(self, bindings: list[AclBinding]) -> tuple[list[errors.KafkaError | None], Delta]:
        """CreateAcls: one result per binding (None: created, or already there)."""
        if len(bindings) > MAX_ACLS_PER_REQUEST:
            refusal = errors.InvalidRequest(f"Cannot create more than {MAX_ACLS_PER_REQUEST} acls in a single request.")
            return [refusal] * len(bindings), Delta()
        results: list[errors.KafkaError | None] = []
        delta = Delta()
        for acl in bindings:
            try:
                acl.check_new()
            except errors.KafkaError as exc:
                results.append(exc)
                continue
            if acl not in self.acls:
                self.acls.add(acl)
                self._record({"type": "acl", "acl": acl.to_json()})
                delta.acls_changed = True
            results.append(None)
        return results, delta

    def delete_acls(self, filters: list[AclFilter]) -> tuple[list[list[AclBinding] | errors.KafkaError], Delta]:
        """DeleteAcls: per filter, the ACLs it matched (and removed), or its error. An
        ACL two filters match is removed once and reported by both, as Kafka does."""
        results: list[list[AclBinding] | errors.KafkaError] = []
        doomed: set[AclBinding] = set()
        for f in filters:
            try:
                f.check()
            except errors.KafkaError as exc:
                results.append(exc)
                continue
            matched = sorted(acl for acl in self.acls if f.matches(acl))
            doomed.update(matched)
            if len(doomed) > MAX_ACLS_PER_REQUEST:
                refusal = errors.InvalidRequest(f"Cannot remove more than {MAX_ACLS_PER_REQUEST} acls in a "
                                                "single delete operation.")
                return [refusal] * len(filters), Delta()
            results.append(matched)
        delta = Delta(acls_changed=bool(doomed))
        for acl in sorted(doomed):
            self.acls.discard(acl)
            self._record({"type": "delete_acl", "acl": acl.to_json()})
        return results, delta

    # -- SCRAM credentials --------------------------------------------------------------

    def alter_scram_credentials(self, deletions: list[dict], upsertions: list[dict]) -> tuple[list[dict], Delta]:
        """AlterUserScramCredentials: Kafka's per-user results; the valid changes are
        recorded and pushed."""
        results, records = self.credentials.plan_alter(deletions, upsertions)
        return results, self.put_credentials(records)

    def put_credentials(self, records: list[dict]) -> Delta:
        """Apply ``scram_credential`` records (made by pybroker.security.credentials)."""
        for record in records:
            self.credentials.apply_record(record)
            self._record(record)
        return Delta(credentials=list(records))

    # -- client quotas ------------------------------------------------------------------

    def _set_client_quotas(self, entity: tuple, quotas: dict[str, float]) -> None:
        if quotas:
            self.client_quotas[entity] = {k: float(v) for k, v in quotas.items()}
        else:
            self.client_quotas.pop(entity, None)

    def alter_client_quotas(self, entries: list, validate_only: bool = False) -> tuple[dict, Delta]:
        """AlterClientQuotas: per entity its error (None: done); the entities that
        change are recorded with their whole new set and pushed."""
        results, changes = client_quotas.plan_alter(self.client_quotas, entries)
        changed_keys = 0
        for entity, quotas in changes.items():
            old = self.client_quotas.get(entity, {})
            changed_keys += sum(1 for k in set(old) | set(quotas) if old.get(k) != quotas.get(k))
        if changed_keys > MAX_RECORDS_PER_USER_OP:
            # Kafka's BoundedListTooLongException, answered as POLICY_VIOLATION.
            raise errors.PolicyViolation()
        delta = Delta()
        if validate_only:
            return results, delta
        for entity, quotas in changes.items():
            self._set_client_quotas(entity, quotas)
            self._record(client_quota_record(self, entity))
            delta.client_quotas.append(entity)
        return results, delta

    # -- ISR ----------------------------------------------------------------------------

    def alter_partition(self, topic: str, partition: int, leader: int, leader_epoch: int,
                        partition_epoch: int, isr: list[int]) -> tuple[PartitionState, Delta]:
        state = self.partitions.get((topic, partition))
        if state is None:
            raise errors.UnknownTopicOrPartition(f"{topic}-{partition} does not exist")
        if leader != state.leader:
            raise errors.NotLeaderOrFollower(f"Broker {leader} is not the leader of {topic}-{partition}")
        if leader_epoch != state.leader_epoch:
            raise errors.FencedLeaderEpoch(
                f"Leader epoch {leader_epoch} of {topic}-{partition} is not the current {state.leader_epoch}"
            )
        if partition_epoch != state.partition_epoch:
            raise errors.InvalidUpdateVersion(
                f"Partition epoch {partition_epoch} of {topic}-{partition} is not the current {state.partition_epoch}"
            )
        new_isr = tuple(b for b in state.replicas if b in set(isr))
        if leader not in new_isr or len(new_isr) != len(set(isr)):
            raise errors.IneligibleReplica(f"ISR {isr} must contain the leader and only replicas of {state.replicas}")
        joining = [b for b in new_isr if b not in state.isr and b not in self.live]
        if joining:
            raise errors.IneligibleReplica(f"Brokers {joining} are not alive")
        delta = Delta()
        if new_isr == state.isr:
            return state, delta
        if state.reassigning:
            done = reassignment.complete(reassignment.ReplicaChange(
                state.replicas, new_isr, state.adding_replicas, state.removing_replicas))
            if done is not None:
                log.info("%s-%d: reassignment to %s completed (ISR %s)", topic, partition, list(done.replicas),
                         list(new_isr))
                return self._change_replicas(state, done, delta), delta
        new = replace(state, isr=new_isr, partition_epoch=state.partition_epoch + 1)
        self._put_partition(new, delta)
        return new, delta

    # -- reassignment -------------------------------------------------------------------

    def alter_partition_reassignments(self, wanted: list[tuple[str, int, list[int] | None]],
                                      allow_replication_factor_change: bool = True
                                      ) -> tuple[list[errors.KafkaError | None], Delta]:
        """AlterPartitionReassignments: per (topic, partition, target replicas or None to
        cancel) its error or None, as Kafka's controller answers."""
        delta = Delta()
        results: list[errors.KafkaError | None] = []
        for topic, index, target in wanted:
            try:
                self._reassign(topic, index, target, allow_replication_factor_change, delta)
                results.append(None)
            except errors.KafkaError as exc:
                results.append(exc)
        return results, delta

    def _reassign(self, topic: str, index: int, target: list[int] | None, allow_replication_factor_change: bool,
                  delta: Delta) -> None:
        if topic not in self.topics:
            raise errors.UnknownTopicOrPartition(f"Unable to find a topic named {topic}.")
        state = self.partitions.get((topic, index))
        if state is None:
            raise errors.UnknownTopicOrPartition(f"Unable to find partition {topic}:{index}.")
        if target is None:
            if not state.reassigning:
                raise errors.NoReassignmentInProgress(errors.NoReassignmentInProgress.message)
            change, unclean = reassignment.revert(state.replicas, state.adding_replicas, state.isr)
            if unclean and not self.topics[topic].config.unclean_leader_election_enable:
                raise errors.InvalidReplicaAssignment(
                    f"Unable to revert partition assignment for {topic}:{index} because it would require an "
                    "unclean leader election.")
            self._change_replicas(state, change, delta, unclean=unclean)
            return
        self._check_reassignment_target(target)
        if not allow_replication_factor_change:
            current = reassignment.replication_factor(state.replicas, state.adding_replicas, state.removing_replicas)
            if len(target) != current:
                raise errors.InvalidReplicationFactor(
                    f"The replication factor is changed from {current} to {len(target)}")
        self._change_replicas(state, reassignment.start(state.replicas, target, state.isr), delta)

    def _check_reassignment_target(self, target: list[int]) -> None:
        """Kafka's validateManualPartitionAssignment: not empty, each broker registered
        (alive or not) and named once."""
        if not target:
            raise errors.InvalidReplicaAssignment("The manual partition assignment includes an empty replica list.")
        registered = set(self.ports) | set(self.live)
        previous = None
        for broker in sorted(target):
            if broker not in registered:
                raise errors.InvalidReplicaAssignment(
                    f"The manual partition assignment includes broker {broker}, but no such broker is registered.")
            if broker == previous:
                raise errors.InvalidReplicaAssignment(
                    f"The manual partition assignment includes the broker {broker} more than once.")
            previous = broker

    def _change_replicas(self, state: PartitionState, change: reassignment.ReplicaChange, delta: Delta,
                         unclean: bool = False) -> PartitionState:
        """Apply a reassignment step. The leader stays if it is in the new ISR and alive,
        else the first such replica of the new set leads (with ``unclean``, any live
        replica, which becomes the ISR). Taking replicas out bumps the leader epoch, so
        a removed replica's fetches and produces are fenced."""
        leader, isr = state.leader, change.isr
        if leader not in isr or leader not in self.live:
            in_sync = [r for r in change.replicas if r in isr and r in self.live]
            live = [r for r in change.replicas if r in self.live]
            if in_sync:
                leader = in_sync[0]
            elif unclean and live:
                leader, isr = live[0], (live[0],)
            else:
                leader = NO_LEADER
        if (leader, isr, change.replicas, change.adding, change.removing) == \
                (state.leader, state.isr, state.replicas, state.adding_replicas, state.removing_replicas):
            return state
        bump = leader != state.leader or not set(state.replicas) <= set(change.replicas)
        new = replace(state, leader=leader, isr=isr, replicas=change.replicas, adding_replicas=change.adding,
                      removing_replicas=change.removing, leader_epoch=state.leader_epoch + (1 if bump else 0),
                      partition_epoch=state.partition_epoch + 1)
        self._put_partition(new, delta)
        topic = self.topics[state.topic]
        if state.partition == 0 and not new.reassigning and len(new.replicas) != topic.replication_factor:
            # New partitions get the replica count of partition 0, as in Kafka.
            topic.replication_factor = len(new.replicas)
            self._record({"type": "topic", "topic": topic.to_json()})
            delta.topics.append(topic)
        return new


class _AnyName:
    """Every name: BROKER and GROUP config names are checked with their values."""

    def __contains__(self, name: object) -> bool:
        return True


def _refuse_duplicate_keys(configs: list[tuple[str, int, str | None]]) -> None:
    names = [c[0] for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise errors.InvalidRequest(f"Error due to duplicate config keys: {', '.join(duplicates)}")


def _check_fits(config: TopicConfig, replication_factor: int) -> None:
    """Settings that must agree with the topic's shape, on creation and on every change."""
    if config.min_insync_replicas > replication_factor:
        raise errors.InvalidConfig(
            f"min.insync.replicas {config.min_insync_replicas} is larger than the replication factor {replication_factor}"
        )


def _partition_results(results) -> list[list]:
    """``[[topic, partition, error_code, error_message]]`` of ``((topic, partition),
    error or None)`` pairs: the control-plane form of per-partition answers."""
    return [[t, p, exc.code if exc else 0, (exc.detail or exc.message) if exc else None]
            for (t, p), exc in results]


def delta_to_json(delta: Delta, controller: Controller) -> dict:
    """The ``update`` control message for a delta; the broker list is always whole."""
    return {
        "type": "update",
        "cluster_id": controller.cluster_id,
        "brokers": [b.to_json() for b in controller.live.values()],
        "topics": [t.to_json() for t in delta.topics],
        "deleted_topics": list(delta.deleted_topics),
        "partitions": [s.to_json() for s in delta.partitions],
        # Whole config sets (empty: back to defaults); brokers apply them before topics.
        "resource_configs": [resource_config_record(controller, key) for key in dict.fromkeys(delta.resource_configs)],
        # The whole ACL set, when it changed (and in every full image).
        **({"acls": acls_json(controller)} if delta.acls_changed else {}),
        "scram_credentials": list(delta.credentials),
        # Whole quota sets of the entities changed (empty: removed).
        "client_quotas": [client_quota_record(controller, e) for e in dict.fromkeys(delta.client_quotas)],
    }


def acls_json(controller: Controller) -> list[list]:
    return [acl.to_json() for acl in sorted(controller.acls)]


def broker_port_record(controller: Controller, node_id: int) -> dict:
    record = {"type": "broker_port", "node_id": node_id, "port": controller.ports[node_id]}
    if controller.listener_ports.get(node_id):
        record["listeners"] = dict(controller.listener_ports[node_id])
    if node_id in controller.racks:
        record["rack"] = controller.racks[node_id]
    return record


def client_quota_record(controller: Controller, entity: tuple) -> dict:
    return {"type": "client_quota", "entity": client_quotas.entity_to_json(entity),
            "quotas": dict(controller.client_quotas.get(entity, {}))}


def resource_config_record(controller: Controller, key: tuple[int, str]) -> dict:
    return {"type": "resource_config", "resource_type": key[0], "resource_name": key[1],
            "configs": controller.resource_configs.get(key, {})}


def image_to_json(controller: Controller) -> dict:
    """The full image as an ``update`` message (a broker's first, or after a reconnect)."""
    return delta_to_json(
        Delta(topics=list(controller.topics.values()), partitions=list(controller.partitions.values()),
              resource_configs=list(controller.resource_configs), credentials=controller.credentials.records(),
              acls_changed=True, client_quotas=list(controller.client_quotas)),
        controller,
    )


class ControllerService:
    """The controller's request side, shared by the supervisor and in-process clusters:
    run an operation, hand its records to ``persist`` (the metadata log) before anything
    is published, then hand the delta to ``publish`` (every broker), then answer.

    Topic creation and growth are atomic: when persisting fails, the in-memory change is
    taken back, so nothing of it is in the metadata log or on any broker, and each topic
    of the request gets the error. (Shared memory cannot fail a change: a partition
    without an offsets-table row uses sockets only.)

    ``persist(records: list[dict])`` and ``publish(delta: Delta)`` are the host's."""

    def __init__(self, controller: Controller, persist, publish, default_partitions: int = 1,
                 default_replication_factor: int = 1):
        self.controller = controller
        self.persist = persist
        self.publish = publish
        self.default_partitions = default_partitions
        self.default_replication_factor = default_replication_factor

    def _commit(self, delta: Delta, undo=None) -> None:
        """Make ``delta`` durable and publish it. With ``undo`` (a function taking the
        in-memory change back), a failure before the records are durable undoes it and
        re-raises; without, the failure propagates as is."""
        records = self.controller.take_records()
        try:
            if records:
                self.persist(records)
        except Exception:
            if undo is None:
                raise
            undo()
            raise
        if delta:
            self.publish(delta)

    def apply(self, operation, *args, **kwargs) -> Delta:
        """Run a controller method that returns a Delta (broker events, elections)."""
        delta = operation(*args, **kwargs)
        self._commit(delta)
        return delta

    def _commit_topics(self, delta: Delta, changed: dict[str, int | None], results: list[dict]) -> None:
        """Commit the topics ``changed`` (name -> partitions before, None if new) as one
        change; if it cannot be made durable, none of them happened and their results
        carry the error."""
        def undo() -> None:
            for name, before in changed.items():
                self.controller.undo_topic_change(name, before)

        try:
            self._commit(delta, undo if changed else None)
        except Exception as exc:
            if isinstance(exc, errors.KafkaError):
                code, message = exc.code, exc.detail or exc.message
            else:
                log.exception("topic change of %s not committed", ", ".join(changed))
                code, message = errors.UnknownServerError.code, f"not committed: {exc}"
            for result in results:
                if result["name"] in changed and result["error_code"] == 0:
                    result.update(error_code=code, error_message=message)
                    if "num_partitions" in result:
                        result.update(num_partitions=-1, replication_factor=-1)
                    result.pop("topic_id", None)

    def create_topics(self, topics: list[dict], validate_only: bool = False) -> list[dict]:
        results, delta, created = [], Delta(), {}
        try:
            check_request_partitions(sum(
                requested_partitions(spec.get("num_partitions", -1), spec.get("assignments"), self.default_partitions)
                for spec in topics))
        except errors.KafkaError as exc:
            return [{"name": spec["name"], "error_code": exc.code, "error_message": exc.detail,
                     "num_partitions": -1, "replication_factor": -1} for spec in topics]
        for spec in topics:
            result = {"name": spec["name"], "error_code": 0, "error_message": None,
                      "num_partitions": -1, "replication_factor": -1}
            try:
                topic, d = self.controller.create_topic(
                    spec["name"], spec.get("num_partitions", -1), spec.get("replication_factor", -1),
                    spec.get("configs") or {}, spec.get("assignments") or None, validate_only,
                    self.default_partitions, self.default_replication_factor,
                )
                delta.merge(d)
                if not validate_only:
                    created[topic.name] = None
                result.update(num_partitions=topic.partitions, replication_factor=topic.replication_factor,
                              topic_id=topic.topic_id)
            except errors.KafkaError as exc:
                result.update(error_code=exc.code, error_message=exc.detail or exc.message)
            results.append(result)
        self._commit_topics(delta, created, results)
        return results

    def delete_topics(self, names: list[str]) -> list[dict]:
        results, delta = [], Delta()
        for name in names:
            result = {"name": name, "error_code": 0, "error_message": None}
            try:
                delta.merge(self.controller.delete_topic(name))
            except errors.KafkaError as exc:
                result.update(error_code=exc.code, error_message=exc.detail or exc.message)
            results.append(result)
        self._commit(delta)
        return results

    def create_partitions(self, topics: list[dict], validate_only: bool = False) -> list[dict]:
        results, delta, grown = [], Delta(), {}
        try:
            check_request_partitions(sum(
                max(0, spec["count"] - self.controller.topics[spec["name"]].partitions)
                for spec in topics if spec["name"] in self.controller.topics))
        except errors.KafkaError as exc:
            return [{"name": spec["name"], "error_code": exc.code, "error_message": exc.detail} for spec in topics]
        for spec in topics:
            result = {"name": spec["name"], "error_code": 0, "error_message": None}
            topic = self.controller.topics.get(spec["name"])
            before = topic.partitions if topic is not None else None
            try:
                delta.merge(self.controller.create_partitions(
                    spec["name"], spec["count"], spec.get("assignments") or None, validate_only))
                if not validate_only:
                    grown.setdefault(spec["name"], before)
            except errors.KafkaError as exc:
                result.update(error_code=exc.code, error_message=exc.detail or exc.message)
            results.append(result)
        self._commit_topics(delta, grown, results)
        return results

    def alter_configs(self, resources: list[dict], incremental: bool, validate_only: bool = False) -> list[dict]:
        """Config changes: ``resources`` are ``[{name, configs: [{name, op, value}],
        resource_type}]`` (a topic when the type is left out, else BROKER or GROUP); one
        result ``{name, error_code, error_message}`` per resource, as Kafka answers."""
        results, delta = [], Delta()
        for spec in resources:
            result = {"name": spec["name"], "error_code": 0, "error_message": None}
            try:
                ops = [(c["name"], int(c.get("op", 0)), c.get("value")) for c in spec["configs"]]
                resource_type = int(spec.get("resource_type", RESOURCE_TOPIC))
                if resource_type == RESOURCE_TOPIC:
                    _topic, d = self.controller.alter_topic_config(spec["name"], ops, incremental, validate_only)
                else:
                    d = self.controller.alter_resource_config(resource_type, spec["name"], ops, incremental,
                                                              validate_only)
                delta.merge(d)
            except errors.KafkaError as exc:
                result.update(error_code=exc.code, error_message=exc.detail or exc.message)
            results.append(result)
        self._commit(delta)
        return results

    def create_acls(self, creations: list[list]) -> list[list]:
        """CreateAcls: ``creations`` are AclBinding lists; ``[[error_code, error_message]]``."""
        results, failure = self._change_acls(self.controller.create_acls, [AclBinding.from_json(c) for c in creations])
        if failure is not None:
            return [[failure.code, failure.detail or failure.message]] * len(creations)
        return [[0, None] if exc is None else [exc.code, exc.detail or exc.message] for exc in results]

    def delete_acls(self, filters: list[list]) -> list[dict]:
        """DeleteAcls: ``filters`` are AclFilter lists; per filter ``{error_code,
        error_message, acls}`` (the matched AclBinding lists)."""
        results, failure = self._change_acls(self.controller.delete_acls, [AclFilter(*f) for f in filters])
        if failure is not None:
            results = [failure] * len(filters)
        return [{"error_code": r.code, "error_message": r.detail or r.message, "acls": []}
                if isinstance(r, errors.KafkaError) else
                {"error_code": 0, "error_message": None, "acls": [acl.to_json() for acl in r]}
                for r in results]

    def _change_acls(self, operation, items: list) -> tuple[list, errors.KafkaError | None]:
        """Run an ACL change and commit it; when it cannot be made durable the ACLs are
        as before and the error is returned."""
        before = set(self.controller.acls)
        results, delta = operation(items)
        return results, self._commit_restoring(delta, self.controller.acls, before, "ACL change")

    def _commit_restoring(self, delta, edited, before, what: str) -> errors.KafkaError | None:
        """Commit ``delta``, a change made in place to the controller's set or dict
        ``edited``; when it cannot be made durable ``edited`` is put back to ``before``
        and the error returned (an unexpected one as UNKNOWN_SERVER_ERROR)."""
        def undo() -> None:
            edited.clear()
            edited.update(before)

        try:
            self._commit(delta, undo=undo)
        except Exception as exc:
            if isinstance(exc, errors.KafkaError):
                return exc
            log.exception("%s not committed", what)
            return errors.UnknownServerError(f"not committed: {exc}")
        return None

    def elect_leaders(self, unclean: bool, partitions: list[list] | None) -> list[list]:
        """ElectLeaders: ``[[topic, partition, error_code, error_message]]``."""
        wanted = None if partitions is None else [(str(t), int(p)) for t, p in partitions]
        results, delta = self.controller.elect_leaders(unclean, wanted)
        self._commit(delta)
        return _partition_results(results.items())

    def alter_scram_credentials(self, deletions: list[dict], upsertions: list[dict]) -> list[dict]:
        results, delta = self.controller.alter_scram_credentials(deletions, upsertions)
        self._commit(delta)
        return results

    def put_credentials(self, records: list[dict]) -> None:
        self._commit(self.controller.put_credentials(records))

    def alter_client_quotas(self, entries: list[dict], validate_only: bool = False) -> list[dict]:
        """AlterClientQuotas: ``entries`` are ``{entity: [[type, name]], ops: [[key, value
        or None to remove]]}``; one ``{entity, error_code, error_message}`` per entity."""
        parsed = [(client_quotas.entity_from_json(e["entity"]), [(k, v) for k, v in e["ops"]]) for e in entries]
        before = dict(self.controller.client_quotas)
        try:
            results, delta = self.controller.alter_client_quotas(parsed, validate_only)
        except errors.PolicyViolation as exc:
            # The whole request refused: every entry answered, as Kafka's error response.
            return [{"entity": e["entity"], "error_code": exc.code, "error_message": exc.message} for e in entries]

        failure = self._commit_restoring(delta, self.controller.client_quotas, before, "client quota change")
        if failure is not None:
            for entity in delta.client_quotas:
                results[entity] = failure
        return [{"entity": client_quotas.entity_to_json(entity),
                 "error_code": 0 if exc is None else exc.code,
                 "error_message": None if exc is None else (exc.detail or exc.message)}
                for entity, exc in results.items()]

    def alter_partition_reassignments(self, partitions: list[list], allow_replication_factor_change: bool = True
                                      ) -> list[list]:
        """AlterPartitionReassignments: ``partitions`` are ``[topic, partition, replicas
        or None]``; ``[[topic, partition, error_code, error_message]]``."""
        wanted = [(str(t), int(p), None if r is None else [int(b) for b in r]) for t, p, r in partitions]
        results, delta = self.controller.alter_partition_reassignments(wanted, allow_replication_factor_change)
        self._commit(delta)
        return _partition_results(((t, p), exc) for (t, p, _), exc in zip(wanted, results))

    def alter_partition(self, topic: str, partition: int, leader: int, leader_epoch: int,
                        partition_epoch: int, isr: list[int]) -> PartitionState:
        state, delta = self.controller.alter_partition(topic, partition, leader, leader_epoch, partition_epoch, isr)
        self._commit(delta)
        return state
