"""Transaction administration, the requests behind kafka-transactions (and Kafka Admin's
describeTransactions, listTransactions, describeProducers, abortTransaction), on top of an
``Admin``'s client: DescribeTransactions and ListTransactions to the transaction
coordinator, DescribeProducers and WriteTxnMarkers to partition leaders.

Not thread-safe.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from pybroker import errors
from pybroker.client.connection import BrokerConnection
from pybroker.protocol import api

TRANSACTION_KEY = 1


@dataclass(frozen=True)
class TransactionDescription:
    coordinator_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    state: str
    timeout_ms: int
    start_time_ms: int  # -1: no transaction in progress
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class TransactionListing:
    transactional_id: str
    coordinator_id: int
    producer_id: int
    state: str


@dataclass(frozen=True)
class ProducerState:
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    last_sequence: int
    last_timestamp: int
    current_txn_start_offset: int  # -1: no open transaction here


def _coordinators(admin, transactional_ids: list[str]) -> dict[str, tuple[int, BrokerConnection]]:
    if not transactional_ids:
        return {}
    response = admin.client.request_any(api.FIND_COORDINATOR, {
        "key": transactional_ids[0], "key_type": TRANSACTION_KEY, "coordinator_keys": list(transactional_ids)})
    entries = response.get("coordinators") or [dict(response, key=transactional_ids[0])]
    out = {}
    for entry in entries:
        errors.raise_for_code(entry["error_code"], f"coordinator of transactional id {entry['key']!r}")
        out[entry["key"]] = (entry["node_id"], admin.client.connect_to(entry["host"], entry["port"]))
    return out


def describe_transactions(admin, transactional_ids: list[str]) -> dict[str, TransactionDescription]:
    """Raises the coordinator's error for an id (TRANSACTIONAL_ID_NOT_FOUND ...)."""
    out = {}
    for txn_id, (node_id, conn) in _coordinators(admin, list(transactional_ids)).items():
        with conn:
            (state,) = conn.request(api.DESCRIBE_TRANSACTIONS, {"transactional_ids": [txn_id]})["transaction_states"]
        errors.raise_for_code(state["error_code"], f"transactional id {txn_id!r}")
        out[txn_id] = TransactionDescription(
            node_id, txn_id, state["producer_id"], state["producer_epoch"], state["transaction_state"],
            state["transaction_timeout_ms"], state["transaction_start_time_ms"],
            tuple((t["topic"], p) for t in state["topics"] for p in t["partitions"]))
    return out


def list_transactions(admin, states: list[str] = (), producer_ids: list[int] = (),
                      duration_ms: int = -1) -> list[TransactionListing]:
    """Every coordinator's transactions (``duration_ms`` >= 0: only those running longer)."""
    rows = []
    seen = set()
    admin.client.refresh([])
    for node_id in sorted(admin.client.metadata.brokers):
        response = admin.client.connection(node_id).request(api.LIST_TRANSACTIONS, {
            "state_filters": list(states), "producer_id_filters": list(producer_ids),
            "duration_filter": duration_ms})
        errors.raise_for_code(response["error_code"], f"ListTransactions on broker {node_id}")
        for t in response["transaction_states"]:
            if t["transactional_id"] not in seen:
                seen.add(t["transactional_id"])
                rows.append(t)
    placed = _coordinators(admin, [t["transactional_id"] for t in rows])
    for _, conn in placed.values():
        conn.close()
    return [TransactionListing(t["transactional_id"], placed[t["transactional_id"]][0], t["producer_id"],
                               t["transaction_state"]) for t in rows]


def describe_producers(admin, topic: str, partition: int, broker_id: int | None = None) -> list[ProducerState]:
    """The producers the partition's leader (or ``broker_id``'s replica) tracks."""
    node = broker_id if broker_id is not None else admin.client.leader_for(topic, partition, refresh=True)
    if node < 0:
        raise errors.LeaderNotAvailable(f"{topic}-{partition} has no leader")
    response = admin.client.connection(node).request(api.DESCRIBE_PRODUCERS, {
        "topics": [{"name": topic, "partition_indexes": [partition]}]})
    (part,) = response["topics"][0]["partitions"]
    errors.raise_for_code(part["error_code"], part.get("error_message") or f"{topic}-{partition}")
    return [ProducerState(p["producer_id"], p["producer_epoch"], p["coordinator_epoch"], p["last_sequence"],
                          p["last_timestamp"], p["current_txn_start_offset"]) for p in part["active_producers"]]


def abort_transaction(admin, topic: str, partition: int, producer_id: int, producer_epoch: int,
                      coordinator_epoch: int) -> None:
    """Write an ABORT marker for the producer's open transaction on the partition's leader."""
    node = admin.client.leader_for(topic, partition, refresh=True)
    if node < 0:
        raise errors.LeaderNotAvailable(f"{topic}-{partition} has no leader")
    response = admin.client.connection(node).request(api.WRITE_TXN_MARKERS, {"markers": [{
        "producer_id": producer_id, "producer_epoch": producer_epoch, "transaction_result": False,
        "topics": [{"name": topic, "partition_indexes": [partition]}], "coordinator_epoch": coordinator_epoch}]})
    code = response["markers"][0]["topics"][0]["partitions"][0]["error_code"]
    errors.raise_for_code(code, f"abort of producer {producer_id}'s transaction on {topic}-{partition}")


def find_hanging(admin, partitions: list[tuple[str, int]], max_timeout_ms: int,
                 now_ms: int | None = None) -> list[tuple[str, int, ProducerState]]:
    """Open transactions older than ``max_timeout_ms`` that their coordinator does not know
    as ongoing on that partition (kafka-transactions find-hanging's rule)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    candidates = []
    for topic, partition in partitions:
        for state in describe_producers(admin, topic, partition):
            if state.current_txn_start_offset >= 0 and state.last_timestamp < now_ms - max_timeout_ms:
                candidates.append((topic, partition, state))
    if not candidates:
        return []
    listed = {t.producer_id: t.transactional_id
              for t in list_transactions(admin, producer_ids=sorted({c[2].producer_id for c in candidates}))}
    described = {}
    for txn_id in set(listed.values()):
        try:
            described.update(describe_transactions(admin, [txn_id]))
        except errors.TransactionalIdNotFound:
            pass
    hanging = []
    for topic, partition, state in candidates:
        description = described.get(listed.get(state.producer_id, ""))
        if description is None or (topic, partition) not in description.partitions:
            hanging.append((topic, partition, state))
    return hanging
