"""Topic administration: the requests behind kafka-topics and AdminClient.

Every per-topic error the broker reports is raised as its ``pybroker.errors`` class
carrying the broker's own message, so tools print what the broker said.

Not thread-safe.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from pybroker import errors
from pybroker.client.security import OPTION_NAMES as SECURITY_OPTIONS, ClientSecurity
from pybroker.client.cluster import BrokerInfo, Client, TopicInfo
from pybroker.client.connection import BrokerConnection
from pybroker.config import OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT
from pybroker.group.consumer_protocol import decode_assignment
from pybroker.protocol import api
from pybroker.security.acls import AclBinding, AclFilter

EARLIEST = -2
LATEST = -1
# DescribeConfigs / IncrementalAlterConfigs resource types.
RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP = 2, 4, 32
# DescribeConfigs config_source values (Kafka's ConfigSource enum).
CONFIG_SOURCES = {
    -1: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "CLIENT_METRICS_CONFIG",
    8: "GROUP_CONFIG",
}
DEFAULT_TIMEOUT_MS = 30_000
# A partition's leader moved (or is being elected): ask again after a metadata refresh.
_MOVED_LEADER_CODES = frozenset({errors.NotLeaderOrFollower.code, errors.LeaderNotAvailable.code})


@dataclass
class NewTopic:
    """A topic to create. -1 partitions / replication factor means the broker's default
    (CreateTopics v4+)."""

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: str
    is_default: bool
    read_only: bool
    is_sensitive: bool


@dataclass(frozen=True)
class ClusterDescription:
    cluster_id: str | None
    controller_id: int
    brokers: list[BrokerInfo]


@dataclass(frozen=True)
class ReplicaDescription:
    topic: str
    partition: int
    size: int
    offset_lag: int
    is_future: bool


@dataclass(frozen=True)
class LogDirDescription:
    path: str
    error: errors.KafkaError | None
    replicas: list[ReplicaDescription]
    total_bytes: int
    usable_bytes: int


@dataclass(frozen=True)
class PartitionReassignment:
    """A reassignment in progress: the whole replica set, and which of it is being added
    and which removed."""

    replicas: list[int]
    adding_replicas: list[int]
    removing_replicas: list[int]


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str  # "" when the broker's ListGroups version does not report it
    type: str = ""  # "classic" or "consumer" (KIP-848); "" when the broker does not say


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: list[tuple[str, int]]
    member_epoch: int | None = None                          # consumer groups (KIP-848)
    target_assignment: list[tuple[str, int]] | None = None   # consumer groups (KIP-848)


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberDescription]
    type: str = "classic"            # or "consumer" (KIP-848): then ``protocol`` is the server assignor
    group_epoch: int | None = None
    assignment_epoch: int | None = None


def _raise_for(code: int, message: str | None, what: str) -> None:
    if code:
        raise errors.for_code(code)(message or f"{what}: {errors.for_code(code).message}")


class Admin:
    """Topics (create, delete, grow, describe, configs), the cluster, consumer groups
    (list, describe, committed offsets, alter and delete offsets, delete), partition
    offsets and record deletion."""

    def __init__(self, bootstrap_servers, client_id: str = "pybroker-admin", timeout: float = 30.0, security=None,
                 **security_options):
        """``security``: a pybroker.client.security.ClientSecurity, or its options by
        kafka-python's names (``security_protocol="SASL_SSL", sasl_mechanism=...``)."""
        if security is None and security_options:
            unknown = sorted(set(security_options) - set(SECURITY_OPTIONS))
            if unknown:
                raise TypeError(f"unknown Admin option {unknown[0]!r}")
            security = ClientSecurity.from_options(security_options)
        self.client = Client(bootstrap_servers, client_id=client_id, timeout=timeout, security=security)
        self.timeout_ms = int(timeout * 1000)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Admin":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- topics ------------------------------------------------------------------

    def create_topics(self, topics: list[NewTopic], validate_only: bool = False) -> dict[str, int]:
        """Create the topics; returns {name: partition count the broker reports (-1 if
        the version does not say)}. Raises the first per-topic error."""
        conn = self.client.controller()
        version = conn.version_for(api.CREATE_TOPICS)
        body_topics = []
        for t in topics:
            if version < 4 and (t.num_partitions < 0 or t.replication_factor < 0):
                raise errors.InvalidRequest(
                    "this broker needs an explicit partition count and replication factor"
                )
            body_topics.append({
                "name": t.name,
                "num_partitions": t.num_partitions,
                "replication_factor": t.replication_factor,
                "assignments": [],
                "configs": [{"name": k, "value": v} for k, v in t.configs.items()],
            })
        response = conn.request(
            api.CREATE_TOPICS,
            {"topics": body_topics, "timeout_ms": self.timeout_ms, "validate_only": validate_only},
            version,
        )
        out = {}
        for result in response["topics"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {result['name']!r}")
            out[result["name"]] = result.get("num_partitions", -1)
        return out

    def delete_topics(self, names: list[str]) -> None:
        conn = self.client.controller()
        version = conn.version_for(api.DELETE_TOPICS)
        body = {
            "topic_names": list(names),
            "topics": [{"name": n} for n in names],
            "timeout_ms": self.timeout_ms,
        }
        response = conn.request(api.DELETE_TOPICS, body, version)
        for result in response["responses"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {result['name']!r}")

    def create_partitions(self, new_totals: dict[str, int], validate_only: bool = False) -> None:
        """Grow each topic to the given total partition count (Kafka never shrinks)."""
        body = {
            "topics": [{"name": n, "count": c, "assignments": None} for n, c in new_totals.items()],
            "timeout_ms": self.timeout_ms,
            "validate_only": validate_only,
        }
        response = self.client.controller().request(api.CREATE_PARTITIONS, body)
        for result in response["results"]:
            _raise_for(result["error_code"], result.get("error_message"), f"topic {result['name']!r}")

    def list_topics(self, include_internal: bool = True) -> list[str]:
        meta = self.client.refresh()
        return sorted(
            name for name, info in meta.topics.items()
            if not info.error_code and (include_internal or not info.is_internal)
        )

    def describe_topics(self, names: list[str] | None = None) -> list[TopicInfo]:
        """Topics with their partitions (leader, replicas, isr), sorted by name; all
        topics when ``names`` is None. An unknown topic raises UnknownTopicOrPartition."""
        meta = self.client.refresh(names)
        wanted = sorted(meta.topics) if names is None else names
        out = []
        for name in wanted:
            info = meta.topics.get(name)
            if info is None:
                raise errors.UnknownTopicOrPartition(f"Topic '{name}' does not exist")
            _raise_for(info.error_code, None, f"topic {name!r}")
            out.append(info)
        return out

    def describe_configs(self, topic: str) -> dict[str, ConfigEntry]:
        return self.describe_resource_configs(RESOURCE_TOPIC, topic)

    def describe_resource_configs(self, resource_type: int, name: str) -> dict[str, ConfigEntry]:
        """The configs of a topic (2), a broker (4: its id, or "" for the cluster-wide
        dynamic defaults) or a group (32), with their sources."""
        conn = self._resource_connection(resource_type, name)
        version = conn.version_for(api.DESCRIBE_CONFIGS)
        body = {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": False,
            "include_documentation": False,
        }
        response = conn.request(api.DESCRIBE_CONFIGS, body, version)
        out = {}
        for result in response["results"]:
            _raise_for(result["error_code"], result.get("error_message"), f"resource {name!r}")
            for c in result["configs"]:
                if version == 0:
                    is_default = bool(c.get("is_default"))
                    source = "DEFAULT_CONFIG" if is_default else "DYNAMIC_TOPIC_CONFIG"
                else:
                    source = CONFIG_SOURCES.get(c.get("config_source", -1), "UNKNOWN")
                    # As Kafka's ConfigEntry.isDefault: only the built-in default counts.
                    is_default = source == "DEFAULT_CONFIG"
                out[c["name"]] = ConfigEntry(
                    c["name"], c["value"], source, is_default,
                    bool(c.get("read_only")), bool(c.get("is_sensitive")),
                )
        return out

    def alter_topic_configs(self, topic: str, *, set: dict[str, str] | None = None,  # noqa: A002
                            delete: list[str] | None = None, append: dict[str, str] | None = None,
                            subtract: dict[str, str] | None = None, validate_only: bool = False) -> None:
        """Change a topic's config overrides in one IncrementalAlterConfigs request, as
        ``kafka-configs --alter`` does: ``set`` overrides, ``delete`` reverts to the
        default, ``append``/``subtract`` add or remove items of a list config
        (``cleanup.policy``). Other overrides stay. ``validate_only`` checks without
        changing anything. Raises the broker's error (InvalidConfig,
        UnknownTopicOrPartition, ...) with its message."""
        self.alter_resource_configs(RESOURCE_TOPIC, topic, set=set, delete=delete, append=append,
                                    subtract=subtract, validate_only=validate_only)

    def alter_resource_configs(self, resource_type: int, name: str, *, set: dict[str, str] | None = None,  # noqa: A002
                               delete: list[str] | None = None, append: dict[str, str] | None = None,
                               subtract: dict[str, str] | None = None, validate_only: bool = False) -> None:
        """IncrementalAlterConfigs of any resource: a topic (2), a broker (4: its id, or
        "" for the cluster-wide default, ``kafka-configs --entity-default``) or a group (32)."""
        ops = [(OP_SET, k, v) for k, v in (set or {}).items()]
        ops += [(OP_DELETE, k, None) for k in delete or ()]
        ops += [(OP_APPEND, k, v) for k, v in (append or {}).items()]
        ops += [(OP_SUBTRACT, k, v) for k, v in (subtract or {}).items()]
        body = {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configs": [
                {"name": key, "config_operation": op, "value": value} for op, key, value in ops]}],
            "validate_only": validate_only,
        }
        response = self._resource_connection(resource_type, name).request(api.INCREMENTAL_ALTER_CONFIGS, body)
        for result in response["responses"]:
            _raise_for(result["error_code"], result.get("error_message"), f"resource {name!r}")

    def _resource_connection(self, resource_type: int, name: str) -> BrokerConnection:
        """A broker's own configs are asked of that broker, as Kafka's AdminClient does."""
        if resource_type == RESOURCE_BROKER and name.isdigit():
            self.client.refresh([])
            return self.client.connection(int(name))
        return self.client.any_connection()

    # -- SCRAM users ----------------------------------------------------------------

    def describe_user_scram_credentials(self, users: list[str] | None = None) -> dict[str, dict[str, int]]:
        """{user: {mechanism: iterations}} (DescribeUserScramCredentials); every user
        when ``users`` is None."""
        from pybroker.security.scram import MECHANISM_NAMES

        response = self.client.any_connection().request(
            api.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": None if users is None else [{"name": u} for u in users]},
            raise_errors=True)
        out = {}
        for result in response["results"]:
            _raise_for(result["error_code"], result.get("error_message"), f"user {result['user']!r}")
            out[result["user"]] = {MECHANISM_NAMES.get(c["mechanism"], str(c["mechanism"])): c["iterations"]
                                   for c in result["credential_infos"]}
        return out

    def alter_user_scram_credentials(self, upsert: list[tuple[str, str, str]] = (), delete: list[tuple[str, str]] = (),
                                     iterations: int = 4096) -> None:
        """Create or change ``(user, mechanism, password)`` and remove ``(user,
        mechanism)`` (AlterUserScramCredentials): the password is salted here, as Kafka's
        Admin does, and only the salted password travels. Not atomic across changes."""
        import os

        from pybroker.security import scram

        upsertions = []
        for user, mechanism, password in upsert:
            salt = os.urandom(32)
            upsertions.append({"name": user, "mechanism": scram.MECHANISM_CODES[mechanism], "iterations": iterations,
                               "salt": salt, "salted_password": scram.salted_password(mechanism, password, salt, iterations)})
        deletions = [{"name": user, "mechanism": scram.MECHANISM_CODES[mechanism]} for user, mechanism in delete]
        # Kafka refuses a request that alters one user twice, even for two mechanisms:
        # one request per change.
        for body in ([{"deletions": [d], "upsertions": []} for d in deletions]
                     + [{"deletions": [], "upsertions": [u]} for u in upsertions]):
            response = self.client.any_connection().request(api.ALTER_USER_SCRAM_CREDENTIALS, body)
            for result in response["results"]:
                _raise_for(result["error_code"], result.get("error_message"), f"user {result['user']!r}")

    # -- client quotas -------------------------------------------------------------

    def describe_client_quotas(self, components: list[tuple[str, int, str | None]] = (), strict: bool = False
                               ) -> dict[tuple, dict[str, float]]:
        """{entity: {key: value}} (DescribeClientQuotas). ``components`` filter by
        ``(entity_type, match_type, match)``: match type 0 (exact name ``match``), 1 (the
        default entity) or 2 (any name); ``strict`` leaves out entities with other types.
        An entity is a tuple of ``(entity_type, name)``, name None for the default."""
        body = {"components": [{"entity_type": t, "match_type": m, "match": v} for t, m, v in components],
                "strict": strict}
        response = self.client.any_connection().request(api.DESCRIBE_CLIENT_QUOTAS, body)
        _raise_for(response["error_code"], response.get("error_message"), "describe client quotas")
        return {tuple((e["entity_type"], e["entity_name"]) for e in entry["entity"]):
                {v["key"]: v["value"] for v in entry["values"]} for entry in response["entries"] or ()}

    def alter_client_quotas(self, alterations: list[tuple[tuple, dict[str, float | None]]],
                            validate_only: bool = False) -> None:
        """Set quota keys of entities (AlterClientQuotas): ``alterations`` are ``(entity,
        {key: value, or None to remove it})``, an entity a tuple of ``(entity_type,
        name)`` (name None: the default entity). Raises the first entity's error; the
        entities without one are changed all the same, as in Kafka."""
        body = {"entries": [{"entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
                             "ops": [{"key": k, "value": 0.0 if v is None else float(v), "remove": v is None}
                                     for k, v in ops.items()]}
                            for entity, ops in alterations],
                "validate_only": validate_only}
        response = self.client.any_connection().request(api.ALTER_CLIENT_QUOTAS, body)
        for entry in response["entries"]:
            _raise_for(entry["error_code"], entry.get("error_message"),
                       f"client quotas of {[(e['entity_type'], e['entity_name']) for e in entry['entity']]}")

    # -- cluster and groups ------------------------------------------------------

    def describe_cluster(self) -> ClusterDescription:
        meta = self.client.refresh([])
        return ClusterDescription(meta.cluster_id, meta.controller_id,
                                  sorted(meta.brokers.values(), key=lambda b: b.node_id))

    def describe_log_dirs(self, brokers: list[int] | None = None,
                          topics: set[str] | None = None) -> dict[int, list[LogDirDescription]]:
        """DescribeLogDirs of each broker (every live one by default): its log dirs and
        the size and lag of each partition replica there, optionally of some topics."""
        self.client.refresh([])
        out = {}
        for node_id in sorted(brokers if brokers is not None else self.client.metadata.brokers):
            response = self.client.connection(node_id).request(api.DESCRIBE_LOG_DIRS, {"topics": None})
            _raise_for(response.get("error_code", 0), None, f"DescribeLogDirs on broker {node_id}")
            out[node_id] = [LogDirDescription(
                d["log_dir"], errors.for_code(d["error_code"])() if d["error_code"] else None,
                [ReplicaDescription(t["name"], p["partition_index"], p["partition_size"], p["offset_lag"],
                                    p["is_future_key"])
                 for t in d["topics"] if topics is None or t["name"] in topics for p in t["partitions"]],
                d.get("total_bytes", -1), d.get("usable_bytes", -1)) for d in response["results"]]
        return out

    def elect_leaders(self, unclean: bool = False, partitions: list[tuple[str, int]] | None = None
                      ) -> dict[tuple[str, int], errors.KafkaError | None]:
        """ElectLeaders: preferred (or unclean) election of the given partitions, or of
        every partition (None). Returns each partition's outcome: None when elected, else
        its error (ElectionNotNeeded when its leader is already the one it would get)."""
        topics: dict[str, list[int]] = {}
        for topic, partition in partitions or ():
            topics.setdefault(topic, []).append(partition)
        body = {"election_type": 1 if unclean else 0, "timeout_ms": self.timeout_ms,
                "topic_partitions": None if partitions is None else
                [{"topic": t, "partitions": ps} for t, ps in topics.items()]}
        response = self.client.request_any(api.ELECT_LEADERS, body)
        _raise_for(response.get("error_code", 0), None, "ElectLeaders")
        return {(r["topic"], p["partition_id"]): errors.for_code(p["error_code"])(p.get("error_message"))
                if p["error_code"] else None
                for r in response["replica_election_results"] for p in r["partition_result"]}

    def alter_partition_reassignments(self, targets: dict[tuple[str, int], list[int] | None],
                                      allow_replication_factor_change: bool = True
                                      ) -> dict[tuple[str, int], errors.KafkaError | None]:
        """AlterPartitionReassignments: move each partition to its target replicas, or
        cancel its reassignment (None). Returns each partition's outcome: None when
        accepted, else its error."""
        topics: dict[str, list[dict]] = {}
        for (topic, partition), replicas in targets.items():
            topics.setdefault(topic, []).append({"partition_index": partition,
                                                 "replicas": None if replicas is None else list(replicas)})
        response = self.client.request_any(api.ALTER_PARTITION_REASSIGNMENTS, {
            "timeout_ms": self.timeout_ms, "allow_replication_factor_change": allow_replication_factor_change,
            "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]})
        _raise_for(response["error_code"], response.get("error_message"), "AlterPartitionReassignments")
        return {(r["name"], p["partition_index"]): errors.for_code(p["error_code"])(p.get("error_message"))
                if p["error_code"] else None
                for r in response["responses"] for p in r["partitions"]}

    def list_partition_reassignments(self, partitions: list[tuple[str, int]] | None = None
                                     ) -> dict[tuple[str, int], PartitionReassignment]:
        """ListPartitionReassignments: the reassignments in progress (of the given
        partitions, or all of them)."""
        topics: dict[str, list[int]] = {}
        for topic, partition in partitions or ():
            topics.setdefault(topic, []).append(partition)
        response = self.client.request_any(api.LIST_PARTITION_REASSIGNMENTS, {
            "timeout_ms": self.timeout_ms, "topics": None if partitions is None else
            [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]})
        _raise_for(response["error_code"], response.get("error_message"), "ListPartitionReassignments")
        return {(t["name"], p["partition_index"]): PartitionReassignment(
                    list(p["replicas"]), list(p["adding_replicas"]), list(p["removing_replicas"]))
                for t in response["topics"] for p in t["partitions"]}

    # -- ACLs ----------------------------------------------------------------------

    def describe_acls(self, acl_filter: AclFilter = AclFilter()) -> list[AclBinding]:
        """DescribeAcls: the ACLs the filter matches."""
        response = self.client.request_any(api.DESCRIBE_ACLS, _filter_body(acl_filter))
        _raise_for(response["error_code"], response.get("error_message"), "DescribeAcls")
        return [AclBinding(r["resource_type"], r["resource_name"], r["pattern_type"], a["principal"], a["host"],
                           a["operation"], a["permission_type"])
                for r in response["resources"] for a in r["acls"]]

    def create_acls(self, bindings: list[AclBinding]) -> None:
        """CreateAcls; raises the first ACL's error."""
        response = self.client.request_any(api.CREATE_ACLS, {"creations": [
            {"resource_type": b.resource_type, "resource_name": b.name, "resource_pattern_type": b.pattern_type,
             "principal": b.principal, "host": b.host, "operation": b.operation, "permission_type": b.permission}
            for b in bindings]})
        for binding, result in zip(bindings, response["results"]):
            _raise_for(result["error_code"], result.get("error_message"), f"ACL {binding}")

    def delete_acls(self, filters: list[AclFilter]) -> list[list[AclBinding]]:
        """DeleteAcls: per filter, the ACLs it matched and deleted."""
        response = self.client.request_any(api.DELETE_ACLS, {"filters": [_filter_body(f) for f in filters]})
        out = []
        for result in response["filter_results"]:
            _raise_for(result["error_code"], result.get("error_message"), "DeleteAcls")
            out.append([AclBinding(m["resource_type"], m["resource_name"], m["pattern_type"], m["principal"],
                                   m["host"], m["operation"], m["permission_type"])
                        for m in result["matching_acls"]])
        return out

    def list_groups(self) -> list[GroupListing]:
        """Groups known to every broker (each coordinates some), sorted by id."""
        self.client.refresh([])
        out = {}
        for node_id in sorted(self.client.metadata.brokers):
            response = self.client.connection(node_id).request(
                api.LIST_GROUPS, {"states_filter": [], "types_filter": []})
            _raise_for(response["error_code"], None, f"ListGroups on broker {node_id}")
            for g in response["groups"]:
                out[g["group_id"]] = GroupListing(g["group_id"], g["protocol_type"], g.get("group_state") or "",
                                                  g.get("group_type") or "")
        return [out[k] for k in sorted(out)]

    def describe_groups(self, group_ids: list[str]) -> list[GroupDescription]:
        """Consumer groups (KIP-848) by ConsumerGroupDescribe, classic ones by
        DescribeGroups, as Kafka's AdminClient: the first is asked first where the broker
        has it, and GROUP_ID_NOT_FOUND sends the question on to the second."""
        out = []
        for group_id in group_ids:
            conn = self._coordinator(group_id)
            modern = self._describe_consumer_group(conn, group_id)
            if modern is not None:
                out.append(modern)
                continue
            response = conn.request(
                api.DESCRIBE_GROUPS, {"groups": [group_id], "include_authorized_operations": False})
            for g in response["groups"]:
                _raise_for(g["error_code"], g.get("error_message"), f"group {group_id!r}")
                members = []
                for m in g["members"]:
                    assigned = []
                    if g["protocol_type"] == "consumer" and m["member_assignment"]:
                        assigned = sorted(decode_assignment(m["member_assignment"]).partitions)
                    members.append(MemberDescription(m["member_id"], m.get("group_instance_id"),
                                                     m["client_id"], m["client_host"], assigned))
                out.append(GroupDescription(g["group_id"], g["group_state"], g["protocol_type"],
                                            g["protocol_data"], members))
        return out

    @staticmethod
    def _describe_consumer_group(conn: BrokerConnection, group_id: str) -> GroupDescription | None:
        conn.connect()
        if api.CONSUMER_GROUP_DESCRIBE not in conn.broker_versions:
            return None
        (g,) = conn.request(api.CONSUMER_GROUP_DESCRIBE, {"group_ids": [group_id],
                                                          "include_authorized_operations": False})["groups"]
        if g["error_code"] == errors.GroupIdNotFound.code:
            return None
        _raise_for(g["error_code"], g.get("error_message"), f"group {group_id!r}")

        def partitions(assignment) -> list[tuple[str, int]]:
            return sorted((t["topic_name"], p) for t in assignment["topic_partitions"] for p in t["partitions"])
        members = [MemberDescription(m["member_id"], m.get("instance_id"), m["client_id"], m["client_host"],
                                     partitions(m["assignment"]), m["member_epoch"],
                                     partitions(m["target_assignment"])) for m in g["members"]]
        return GroupDescription(g["group_id"], g["group_state"], "consumer", g["assignor_name"], members,
                                type="consumer", group_epoch=g["group_epoch"], assignment_epoch=g["assignment_epoch"])

    def list_group_offsets(self, group_id: str) -> dict[tuple[str, int], int]:
        """Every committed offset of the group."""
        response = self._coordinator(group_id).request(
            api.OFFSET_FETCH, {"group_id": group_id, "topics": None, "require_stable": False})
        _raise_for(response.get("error_code", 0), None, f"group {group_id!r}")
        out = {}
        for t in response["topics"]:
            for p in t["partitions"]:
                _raise_for(p["error_code"], None, f"{t['name']}-{p['partition_index']}")
                if p["committed_offset"] >= 0:
                    out[(t["name"], p["partition_index"])] = p["committed_offset"]
        return dict(sorted(out.items()))

    def alter_group_offsets(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        """Set committed offsets of a group with no active members (Kafka refuses with
        UNKNOWN_MEMBER_ID otherwise, as kafka-consumer-groups --reset-offsets does)."""
        topics: dict[str, list] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            topics.setdefault(topic, []).append({
                "partition_index": partition, "committed_offset": offset,
                "committed_leader_epoch": -1, "commit_timestamp": -1, "committed_metadata": ""})
        response = self._coordinator(group_id).request(api.OFFSET_COMMIT, {
            "group_id": group_id, "generation_id_or_member_epoch": -1, "member_id": "",
            "group_instance_id": None, "retention_time_ms": -1,
            "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]})
        for t in response["topics"]:
            for p in t["partitions"]:
                _raise_for(p["error_code"], None, f"offset of {t['name']}-{p['partition_index']}")

    def delete_groups(self, group_ids: list[str]) -> None:
        for group_id in group_ids:
            response = self._coordinator(group_id).request(api.DELETE_GROUPS, {"groups_names": [group_id]})
            for r in response["results"]:
                _raise_for(r["error_code"], None, f"group {r['group_id']!r}")

    def delete_group_offsets(self, group_id: str, partitions: list[tuple[str, int]]
                             ) -> dict[tuple[str, int], errors.KafkaError | None]:
        """Delete committed offsets of a group (OffsetDelete). Returns the outcome of each
        partition: None when deleted, else its error, e.g. GroupSubscribedToTopic for a
        topic the group's members still consume, UnknownTopicOrPartition. A group-level
        error (GroupIdNotFound, NonEmptyGroup) is raised."""
        topics: dict[str, list] = {}
        for topic, partition in sorted(set(partitions)):
            topics.setdefault(topic, []).append({"partition_index": partition})
        response = self._coordinator(group_id).request(api.OFFSET_DELETE, {
            "group_id": group_id, "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]})
        _raise_for(response["error_code"], None, f"group {group_id!r}")
        out: dict[tuple[str, int], errors.KafkaError | None] = {}
        for t in response["topics"]:
            for p in t["partitions"]:
                code = p["error_code"]
                out[(t["name"], p["partition_index"])] = errors.for_code(code)() if code else None
        return dict(sorted(out.items()))

    def list_share_group_offsets(self, group_id: str) -> dict[tuple[str, int], int]:
        """A share group's start offset (SPSO) of every share-partition it has state for
        (DescribeShareGroupOffsets); a share-partition never initialised is left out."""
        response = self._coordinator(group_id).request(
            api.DESCRIBE_SHARE_GROUP_OFFSETS, {"groups": [{"group_id": group_id, "topics": None}]})
        (answer,) = response["groups"]
        _raise_for(answer["error_code"], answer.get("error_message"), f"share group {group_id!r}")
        return dict(sorted(((t["topic_name"], p["partition_index"]), p["start_offset"])
                           for t in answer["topics"] for p in t["partitions"]
                           if not p["error_code"] and p["start_offset"] >= 0))

    def alter_share_group_offsets(self, group_id: str, offsets: dict[tuple[str, int], int]
                                  ) -> dict[tuple[str, int], errors.KafkaError | None]:
        """Set the start offsets of an empty share group's share-partitions
        (AlterShareGroupOffsets; in-flight state is forgotten). Returns each partition's
        outcome (None, or e.g. UnknownTopicOrPartition); a group-level error
        (NonEmptyGroup, GroupIdNotFound for a group of another type) is raised."""
        topics: dict[str, list] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            topics.setdefault(topic, []).append({"partition_index": partition, "start_offset": offset})
        response = self._coordinator(group_id).request(api.ALTER_SHARE_GROUP_OFFSETS, {
            "group_id": group_id, "topics": [{"topic_name": t, "partitions": ps} for t, ps in topics.items()]})
        _raise_for(response["error_code"], response.get("error_message"), f"share group {group_id!r}")
        return dict(sorted(((t["topic_name"], p["partition_index"]),
                            errors.for_code(p["error_code"])(p.get("error_message")) if p["error_code"] else None)
                           for t in response["responses"] for p in t["partitions"]))

    def delete_share_group_offsets(self, group_id: str, topics: list[str]) -> dict[str, errors.KafkaError | None]:
        """Drop an empty share group's state for whole topics (DeleteShareGroupOffsets;
        the next fetch starts at ``share.auto.offset.reset``). Returns each topic's outcome;
        a group-level error (GroupIdNotFound, NonEmptyGroup) is raised."""
        response = self._coordinator(group_id).request(api.DELETE_SHARE_GROUP_OFFSETS, {
            "group_id": group_id, "topics": [{"topic_name": t} for t in dict.fromkeys(topics)]})
        _raise_for(response["error_code"], response.get("error_message"), f"share group {group_id!r}")
        return {t["topic_name"]: errors.for_code(t["error_code"])(t.get("error_message")) if t["error_code"] else None
                for t in response["responses"]}

    def _coordinator(self, group_id: str) -> BrokerConnection:
        body = {"key": group_id, "key_type": 0, "coordinator_keys": [group_id]}
        response = self.client.request_any(api.FIND_COORDINATOR, body)
        entry = response["coordinators"][0] if response.get("coordinators") else response
        _raise_for(entry["error_code"], entry.get("error_message"), f"coordinator of {group_id!r}")
        conn = self.client.connection(entry["node_id"]) if entry["node_id"] in self.client.metadata.brokers \
            else None
        if conn is None or (conn.host, conn.port) != (entry["host"], entry["port"]):
            self.client.refresh([])
            conn = self.client.connection(entry["node_id"])
        return conn

    # -- offsets -----------------------------------------------------------------

    def delete_records(self, offsets: dict[tuple[str, int], int], timeout: float | None = None
                       ) -> dict[tuple[str, int], int | errors.KafkaError]:
        """Delete the records below each offset (-1: below the high watermark), as
        kafka-delete-records. Returns each partition's outcome: its low watermark (the
        lowest log start over its replicas) once every replica deleted, else its error,
        e.g. OffsetOutOfRange (past the high watermark), UnknownTopicOrPartition,
        RequestTimedOut (replicas slower than ``timeout`` seconds; the leader did delete).
        Requests go to each partition's leader; one that moved is asked again."""
        timeout_ms = self.timeout_ms if timeout is None else int(timeout * 1000)
        deadline = time.monotonic() + timeout_ms / 1000.0
        out: dict[tuple[str, int], int | errors.KafkaError] = {}
        todo = dict(offsets)
        self.client.refresh(sorted({topic for topic, _ in todo}))
        while todo:
            by_leader: dict[int, dict[str, list[dict]]] = {}
            for (topic, partition), offset in todo.items():
                if partition not in self.client.metadata.partitions_for(topic):
                    out[(topic, partition)] = errors.UnknownTopicOrPartition(
                        f"{topic}-{partition} does not exist")
                    continue
                try:
                    leader = self.client.wait_for_leader(topic, partition, max(0.0, deadline - time.monotonic()))
                except errors.LeaderNotAvailable as exc:
                    out[(topic, partition)] = exc
                    continue
                by_leader.setdefault(leader, {}).setdefault(topic, []).append(
                    {"partition_index": partition, "offset": offset})
            retry = {}
            for leader, topics in by_leader.items():
                body = {"topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
                        "timeout_ms": timeout_ms}
                response = self.client.connection(leader).request(api.DELETE_RECORDS, body)
                for t in response["topics"]:
                    for p in t["partitions"]:
                        key = (t["name"], p["partition_index"])
                        code = p["error_code"]
                        if code in _MOVED_LEADER_CODES and time.monotonic() < deadline:
                            retry[key] = todo[key]
                        elif code:
                            out[key] = errors.for_code(code)(f"{key[0]}-{key[1]}: {errors.for_code(code).message}")
                        else:
                            out[key] = p["low_watermark"]
            todo = retry
            if todo:
                time.sleep(0.05)
                self.client.refresh(sorted({topic for topic, _ in todo}))
        return dict(sorted(out.items()))

    def list_offsets(self, specs: dict[tuple[str, int], int], isolation_level: int = 0) -> dict[tuple[str, int], tuple[int, int]]:
        """Offsets by spec: -2 earliest, -1 latest, or a timestamp (first offset whose
        timestamp is >= it; -1 when none). Returns {(topic, p): (offset, timestamp)}."""
        return list_offsets(self.client, specs, isolation_level)


def _filter_body(f: AclFilter) -> dict:
    return {"resource_type_filter": f.resource_type, "resource_name_filter": f.name,
            "pattern_type_filter": f.pattern_type, "principal_filter": f.principal, "host_filter": f.host,
            "operation": f.operation, "permission_type": f.permission}


def list_offsets(client: Client, specs: dict[tuple[str, int], int], isolation_level: int = 0,
                 timeout: float = 30.0) -> dict[tuple[str, int], tuple[int, int]]:
    """ListOffsets sent to each partition's leader (shared by Admin and Consumer). A
    partition answered with a retriable error (a leader that moved, or one whose high
    watermark has not caught up after an election: OFFSET_NOT_AVAILABLE) is asked again,
    with fresh metadata, until ``timeout``; other errors raise."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    pending = dict(specs)
    deadline = time.monotonic() + timeout
    backoff = 0.05
    refresh = False
    while pending:
        if refresh:
            client.refresh(sorted({topic for topic, _ in pending}))
        by_leader: dict[int, dict[str, list[dict]]] = {}
        for (topic, partition), spec in pending.items():
            leader = client.wait_for_leader(topic, partition)
            by_leader.setdefault(leader, {}).setdefault(topic, []).append({
                "partition_index": partition,
                "current_leader_epoch": -1,
                "timestamp": spec,
                "max_num_offsets": 1,
            })
        failed: dict[tuple[str, int], int] = {}
        for leader, topics in by_leader.items():
            body = {
                "replica_id": -1,
                "isolation_level": isolation_level,
                "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
                "timeout_ms": DEFAULT_TIMEOUT_MS,
            }
            response = client.connection(leader).request(api.LIST_OFFSETS, body)
            for t in response["topics"]:
                for p in t["partitions"]:
                    tp = (t["name"], p["partition_index"])
                    code = p["error_code"]
                    if code and errors.for_code(code).retriable and time.monotonic() < deadline:
                        failed[tp] = code
                        continue
                    _raise_for(code, None, f"{t['name']}-{p['partition_index']}")
                    offset = p.get("offset", -1)
                    if offset == -1 and p.get("old_style_offsets"):
                        offset = p["old_style_offsets"][0]
                    out[tp] = (offset, p.get("timestamp", -1))
                    pending.pop(tp, None)
        if pending:
            refresh = True
            time.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, 1.0)
    return out
