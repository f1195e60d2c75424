"""One module per Kafka API. Each handler takes ``(broker, request)`` and returns the
response body as a dict (or an awaitable of it), or None when no response is sent
(Produce with acks=0). The codec fills fields a version lacks with their defaults, so
a handler builds one dict for every version."""
from __future__ import annotations

from pybroker.broker.apis import (
    alter_configs,
    api_versions,
    create_partitions,
    create_topics,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_log_dirs,
    describe_topic_partitions,
    elect_leaders,
    fetch,
    groups,
    init_producer_id,
    list_offsets,
    metadata,
    offset_for_leader_epoch,
    produce,
    telemetry,
)
from pybroker.protocol import api

HANDLERS = {
    api.PRODUCE: produce.handle,
    api.FETCH: fetch.handle,
    api.LIST_OFFSETS: list_offsets.handle,
    api.METADATA: metadata.handle,
    api.API_VERSIONS: api_versions.handle,
    api.CREATE_TOPICS: create_topics.handle,
    api.DELETE_TOPICS: delete_topics.handle,
    api.DELETE_RECORDS: delete_records.handle,
    api.INIT_PRODUCER_ID: init_producer_id.handle,
    api.DESCRIBE_CONFIGS: describe_configs.handle,
    api.ALTER_CONFIGS: alter_configs.handle,
    api.INCREMENTAL_ALTER_CONFIGS: alter_configs.handle_incremental,
    api.CREATE_PARTITIONS: create_partitions.handle,
    api.FIND_COORDINATOR: groups.find_coordinator,
    api.JOIN_GROUP: groups.join_group,
    api.SYNC_GROUP: groups.sync_group,
    api.HEARTBEAT: groups.heartbeat,
    api.LEAVE_GROUP: groups.leave_group,
    api.OFFSET_COMMIT: groups.offset_commit,
    api.OFFSET_FETCH: groups.offset_fetch,
    api.DESCRIBE_GROUPS: groups.describe_groups,
    api.LIST_GROUPS: groups.list_groups,
    api.DELETE_GROUPS: groups.delete_groups,
    api.OFFSET_DELETE: groups.offset_delete,
    api.OFFSET_FOR_LEADER_EPOCH: offset_for_leader_epoch.handle,
    # Cluster administration and client telemetry.
    api.DESCRIBE_CLUSTER: describe_cluster.handle,
    api.DESCRIBE_TOPIC_PARTITIONS: describe_topic_partitions.handle,
    api.DESCRIBE_LOG_DIRS: describe_log_dirs.handle,
    api.ELECT_LEADERS: elect_leaders.handle,
    api.GET_TELEMETRY_SUBSCRIPTIONS: telemetry.get_subscriptions,
    api.PUSH_TELEMETRY: telemetry.push,
}
