"""The control-plane message types and their required fields (version 1).

Broker -> supervisor
    register          node_id, host, port, pid            -> image (full cluster image)
                      (optional: listeners [[name, port]], internal_socket, rack)
    heartbeat         node_id                             (one-way, every second)
    report            node_id, boot, topics, requests, isr, partitions
                                                          (one-way, every 2 s: counters, see broker/stats.py;
                                                          optional: fetch_sessions [sessions, partitions
                                                          cached, evictions])
    create_topics     topics[{name, num_partitions, replication_factor, assignments, configs}],
                      validate_only                       -> results[{name, error_code, error_message, ...}]
    delete_topics     names                               -> results
    create_partitions topics[{name, count, assignments}], validate_only -> results
    alter_configs     resources[{name, resource_type, configs[{name, op, value}]}], incremental,
                      validate_only                       -> results[{name, error_code, error_message}]
    elect_leaders     unclean, partitions[[topic, partition]] (null: all)
                                                          -> results[[topic, partition, error_code, error_message]]
    alter_partition   topic, partition, leader, leader_epoch, partition_epoch, isr -> state
    alter_reassignments partitions[[topic, partition, replicas (null: cancel)]],
                      allow_replication_factor_change     -> results[[topic, partition, error_code, error_message]]
    create_acls       creations[AclBinding as a list]     -> results[[error_code, error_message]]
    delete_acls       filters[AclFilter as a list]        -> results[{error_code, error_message, acls}]
    group             method, group_id, args              -> result (consumer-group coordinator)
    txn               method, args                        -> result (transaction coordinator)
    alter_scram_credentials deletions[{name, mechanism}], upsertions[{name, mechanism, iterations, salt,
                      salted_password}]                   -> results[{user, error_code, error_message}]
    alter_client_quotas entries[{entity [[type, name]], ops [[key, value (null: remove)]]}], validate_only
                                                          -> results[{entity, error_code, error_message}]

Supervisor -> broker
    update            brokers, topics, deleted_topics, partitions, resource_configs, acls (a Delta,
                      or the full image; resource_configs: whole BROKER / GROUP config sets;
                      scram_credentials: scram_credential records, credential null = removed;
                      acls: the whole ACL set, present when it changed; client_quotas:
                      client_quota records, quotas {} = entity removed)
    describe          (no fields)                         -> partitions[{topic, partition, log_start_offset,
                                                             log_end_offset, high_watermark}]
    shutdown          (no fields)
    write_txn_markers markers[{producer_id, producer_epoch, commit, coordinator_epoch,
                      partitions[[topic, partition]]}]    -> results[[topic, partition, error_code]]

Tools -> supervisor
    status            (no fields)                         -> supervisor, brokers, partitions, groups
    users             create[{name, password, mechanisms}], delete[names], list
                                                          -> users[{name, mechanisms{name: iterations}}]
    scale             brokers                             -> brokers[{id, pid, host, port}]
"""
from __future__ import annotations

VERSION = 1

TYPES: dict[str, tuple[str, ...]] = {
    "register": ("node_id", "host", "port", "pid"),
    "heartbeat": ("node_id",),
    "report": ("node_id", "boot", "topics", "requests", "isr", "partitions"),
    "create_topics": ("topics",),
    "delete_topics": ("names",),
    "create_partitions": ("topics",),
    "alter_configs": ("resources", "incremental"),
    "elect_leaders": ("unclean", "partitions"),
    "create_acls": ("creations",),
    "delete_acls": ("filters",),
    "alter_partition": ("topic", "partition", "leader", "leader_epoch", "partition_epoch", "isr"),
    "alter_reassignments": ("partitions", "allow_replication_factor_change"),
    "group": ("method", "group_id", "args"),
    "txn": ("method", "args"),
    "update": ("brokers", "topics", "deleted_topics", "partitions"),
    "describe": (),
    "shutdown": (),
    "write_txn_markers": ("markers",),
    "status": (),
    "alter_scram_credentials": ("deletions", "upsertions"),
    "users": (),
    "alter_client_quotas": ("entries",),
    "scale": ("brokers",),
}


def check(doc: dict) -> None:
    from pybroker.control.channel import ControlError

    kind = doc.get("type")
    if kind not in TYPES:
        raise ControlError(f"unknown control message type {kind!r}")
    if doc.get("v", VERSION) != VERSION:
        raise ControlError(f"unsupported version {doc.get('v')} of control message {kind}")
    missing = [f for f in TYPES[kind] if f not in doc]
    if missing:
        raise ControlError(f"control message {kind} lacks {', '.join(missing)}")
