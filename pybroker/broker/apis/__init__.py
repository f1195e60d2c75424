"""One module per Kafka API. Each handler takes ``(broker, request)`` and returns the
response body as a dict (or an awaitable of it), or None when no response is sent
(Produce with acks=0). The codec fills fields a version lacks with their defaults, so
a handler builds one dict for every version."""
from __future__ import annotations

from pybroker.broker.apis import (
    alter_configs,
    api_versions,
    consumer_group,
    create_partitions,
    create_topics,
    delete_records,
    delete_topics,
    describe_configs,
    fetch,
    groups,
    init_producer_id,
    list_offsets,
    metadata,
    offset_for_leader_epoch,
    produce,
    transactions,
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
    api.ADD_PARTITIONS_TO_TXN: transactions.add_partitions_to_txn,
    api.ADD_OFFSETS_TO_TXN: transactions.add_offsets_to_txn,
    api.END_TXN: transactions.end_txn,
    api.WRITE_TXN_MARKERS: transactions.write_txn_markers,
    api.TXN_OFFSET_COMMIT: transactions.txn_offset_commit,
    api.DESCRIBE_PRODUCERS: transactions.describe_producers,
    api.DESCRIBE_TRANSACTIONS: transactions.describe_transactions,
    api.LIST_TRANSACTIONS: transactions.list_transactions,
    api.CONSUMER_GROUP_HEARTBEAT: consumer_group.heartbeat,
    api.CONSUMER_GROUP_DESCRIBE: consumer_group.describe,
}
