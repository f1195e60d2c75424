"""The transaction APIs: InitProducerId (22) with a transactional id, AddPartitionsToTxn (24),
AddOffsetsToTxn (25), EndTxn (26), TxnOffsetCommit (28), DescribeTransactions (65),
ListTransactions (66) — forwarded to the transaction coordinator beside the group
coordinator (``broker.controller.txn``) — and DescribeProducers (61, any replica) and
WriteTxnMarkers (27, the leader), answered from the partition's producer table and log (the latter is how
a tool aborts a hanging transaction; the coordinator's own markers come over the control
channel).

Every broker forwards, so FindCoordinator may name any of them (it names one per
transactional id, as for groups). Errors a client version does not know are mapped as
Kafka maps them: PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH before InitProducerId v4
and before v2 of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn.

Authorization (with an authorizer), as Kafka's: every transactional request needs WRITE
on its transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); AddPartitionsToTxn
WRITE on each topic (TOPIC_AUTHORIZATION_FAILED, the other partitions
OPERATION_NOT_ATTEMPTED); AddOffsetsToTxn and TxnOffsetCommit READ on the group
(GROUP_AUTHORIZATION_FAILED), the latter READ on each topic; DescribeTransactions
DESCRIBE on each id, ListTransactions lists the ids the principal may DESCRIBE;
DescribeProducers needs READ on the topic, WriteTxnMarkers CLUSTER_ACTION.
"""
from __future__ import annotations

from pybroker import errors
from pybroker.broker import txn_markers
from pybroker.broker.authorization import allowed, allowed_on_cluster
from pybroker.security.acls import CLUSTER_ACTION, DESCRIBE, GROUP, READ, TOPIC, TRANSACTIONAL_ID, WRITE

# The first version of each API that knows PRODUCER_FENCED.
_FENCED_SINCE = {22: 4, 24: 2, 25: 2, 26: 2}


def _code(request, code: int) -> int:
    if code == errors.ProducerFenced.code and request.api_version < _FENCED_SINCE.get(request.api_key, 0):
        return errors.InvalidProducerEpoch.code
    return code


async def _txn(broker, method: str, args: dict):
    """The coordinator's answer; an unreachable one is COORDINATOR_NOT_AVAILABLE, which
    every client retries."""
    try:
        return await broker.controller.txn(method, args)
    except errors.NotController as exc:
        raise errors.CoordinatorNotAvailable(str(exc)) from None


async def init_producer_id(broker, request) -> dict:
    body = request.body
    try:
        code, pid, epoch = await _txn(broker, "init_producer_id", {
            "transactional_id": body["transactional_id"],
            "transaction_timeout_ms": body["transaction_timeout_ms"],
            "producer_id": body.get("producer_id", -1), "producer_epoch": body.get("producer_epoch", -1),
        })
    except errors.KafkaError as exc:
        code, pid, epoch = exc.code, -1, -1
    return {"throttle_time_ms": 0, "error_code": _code(request, code), "producer_id": pid, "producer_epoch": epoch}


def _partitions(broker, topics) -> tuple[list, dict]:
    """([topic, partition] rows of known partitions, {(topic, partition): error} of unknown)."""
    known, unknown = [], {}
    for topic in topics:
        info = broker.image.topics.get(topic["name"])
        for index in topic["partitions"]:
            if info is None or not 0 <= index < info.partitions:
                unknown[(topic["name"], index)] = errors.UnknownTopicOrPartition.code
            else:
                known.append([topic["name"], index])
    return known, unknown


def _topic_results(topics, codes: dict) -> list:
    return [{"name": t["name"], "results_by_partition": [
        {"partition_index": p, "partition_error_code": codes[(t["name"], p)]} for p in t["partitions"]]}
        for t in topics]


async def _add_partitions(broker, request, txn_id: str, pid: int, epoch: int, topics, verify_only: bool) -> list:
    if not allowed(broker, request, WRITE, TRANSACTIONAL_ID, txn_id):
        denied = errors.TransactionalIdAuthorizationFailed.code
        return _topic_results(topics, {(t["name"], p): denied for t in topics for p in t["partitions"]})
    denied = {t["name"] for t in topics if not allowed(broker, request, WRITE, TOPIC, t["name"])}
    codes = {(t["name"], p): errors.TopicAuthorizationFailed.code for t in topics if t["name"] in denied
             for p in t["partitions"]}
    known, unknown = _partitions(broker, [t for t in topics if t["name"] not in denied])
    codes.update(unknown)
    if codes:
        # Kafka's rule: nothing is added when any partition is unknown.
        codes.update({tuple(tp): errors.OperationNotAttempted.code for tp in known})
        return _topic_results(topics, codes)
    args = {"transactional_id": txn_id, "producer_id": pid, "producer_epoch": epoch, "partitions": known}
    try:
        if verify_only:
            codes = {(t, p): code for t, p, code in await _txn(broker, "verify_partitions", args)}
        else:
            code = _code(request, await _txn(broker, "add_partitions", args))
            codes = {tuple(tp): code for tp in known}
    except errors.KafkaError as exc:
        codes = {tuple(tp): exc.code for tp in known}
    return _topic_results(topics, codes)


async def add_partitions_to_txn(broker, request) -> dict:
    body = request.body
    if request.api_version <= 3:
        results = await _add_partitions(broker, request, body["v3_and_below_transactional_id"],
                                        body["v3_and_below_producer_id"], body["v3_and_below_producer_epoch"],
                                        body["v3_and_below_topics"], False)
        return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": results}
    by_txn = []
    for txn in body["transactions"]:
        results = await _add_partitions(broker, request, txn["transactional_id"], txn["producer_id"],
                                        txn["producer_epoch"], txn["topics"], txn["verify_only"])
        by_txn.append({"transactional_id": txn["transactional_id"], "topic_results": results})
    return {"throttle_time_ms": 0, "error_code": 0, "results_by_transaction": by_txn}


async def _simple(broker, request, method: str, args: dict) -> dict:
    try:
        if not allowed(broker, request, WRITE, TRANSACTIONAL_ID, args["transactional_id"]):
            raise errors.TransactionalIdAuthorizationFailed()
        if "group_id" in args and not allowed(broker, request, READ, GROUP, args["group_id"]):
            raise errors.GroupAuthorizationFailed()
        code = await _txn(broker, method, args)
    except errors.KafkaError as exc:
        code = exc.code
    return {"throttle_time_ms": 0, "error_code": _code(request, code)}


async def add_offsets_to_txn(broker, request) -> dict:
    body = request.body
    return await _simple(broker, request, "add_offsets", {
        "transactional_id": body["transactional_id"], "producer_id": body["producer_id"],
        "producer_epoch": body["producer_epoch"], "group_id": body["group_id"]})


async def end_txn(broker, request) -> dict:
    body = request.body
    return await _simple(broker, request, "end_txn", {
        "transactional_id": body["transactional_id"], "producer_id": body["producer_id"],
        "producer_epoch": body["producer_epoch"], "committed": body["committed"]})


async def txn_offset_commit(broker, request) -> dict:
    body = request.body
    codes: dict[str, int] = {}
    if not allowed(broker, request, WRITE, TRANSACTIONAL_ID, body["transactional_id"]):
        codes = {t["name"]: errors.TransactionalIdAuthorizationFailed.code for t in body["topics"]}
    elif not allowed(broker, request, READ, GROUP, body["group_id"]):
        codes = {t["name"]: errors.GroupAuthorizationFailed.code for t in body["topics"]}
    else:
        codes = {t["name"]: errors.TopicAuthorizationFailed.code for t in body["topics"]
                 if not allowed(broker, request, READ, TOPIC, t["name"])}
    rows = [[t["name"], p["partition_index"], p["committed_offset"], p.get("committed_metadata"),
             p.get("committed_leader_epoch", -1)] for t in body["topics"] if t["name"] not in codes
            for p in t["partitions"]]
    code = 0
    try:
        if rows:
            code = await _txn(broker, "commit_offsets", {
            "transactional_id": body["transactional_id"], "group_id": body["group_id"],
            "producer_id": body["producer_id"], "producer_epoch": body["producer_epoch"],
            "member_id": body.get("member_id", ""), "generation_id": body.get("generation_id", -1),
            "group_instance_id": body.get("group_instance_id"), "offsets": rows})
    except errors.KafkaError as exc:
        code = exc.code
    return {"throttle_time_ms": 0, "topics": [
        {"name": t["name"], "partitions": [{"partition_index": p["partition_index"],
                                            "error_code": codes.get(t["name"], code)}
                                           for p in t["partitions"]]} for t in body["topics"]]}


async def describe_transactions(broker, request) -> dict:
    ids = request.body["transactional_ids"]

    def failed(txn_id: str, code: int) -> dict:
        return {"error_code": code, "transactional_id": txn_id, "transaction_state": "",
                "transaction_timeout_ms": 0, "transaction_start_time_ms": -1, "producer_id": -1,
                "producer_epoch": -1, "topics": []}

    permitted = [i for i in ids if allowed(broker, request, DESCRIBE, TRANSACTIONAL_ID, i)]
    by_id = {i: failed(i, errors.TransactionalIdAuthorizationFailed.code) for i in ids}
    if permitted:
        try:
            states = await _txn(broker, "describe", {"transactional_ids": permitted})
        except errors.KafkaError as exc:
            states = [failed(i, exc.code) for i in permitted]
        by_id.update({s["transactional_id"]: s for s in states})
    return {"throttle_time_ms": 0, "transaction_states": [by_id[i] for i in ids]}


async def list_transactions(broker, request) -> dict:
    body = request.body
    try:
        result = await _txn(broker, "list", {"states": body.get("state_filters") or [],
                                             "producer_ids": body.get("producer_id_filters") or [],
                                             "duration_ms": body.get("duration_filter", -1)})
    except errors.KafkaError as exc:
        result = {"error_code": exc.code, "unknown_state_filters": [], "transaction_states": []}
    if broker.authorizer is not None:
        result = {**result, "transaction_states": [
            s for s in result["transaction_states"]
            if allowed(broker, request, DESCRIBE, TRANSACTIONAL_ID, s["transactional_id"])]}
    return {"throttle_time_ms": 0, **result}


def describe_producers(broker, request) -> dict:
    topics = []
    for topic in request.body["topics"]:
        parts = []
        for index in topic["partition_indexes"]:
            entry = {"partition_index": index, "error_code": 0, "error_message": None, "active_producers": []}
            try:
                if not allowed(broker, request, READ, TOPIC, topic["name"]):
                    raise errors.TopicAuthorizationFailed()
                # Any replica answers from its own table (kafka-transactions --broker-id).
                partition = broker.logs.get_partition(topic["name"], index)
                entry["active_producers"] = [{
                    "producer_id": pid, "producer_epoch": e.epoch, "last_sequence": e.last_seq,
                    "last_timestamp": e.last_timestamp, "coordinator_epoch": e.coordinator_epoch,
                    "current_txn_start_offset": e.current_txn_first_offset,
                } for pid, e in sorted(partition.producers.producers.items())]
            except errors.KafkaError as exc:
                entry.update(error_code=exc.code, error_message=exc.detail)
            parts.append(entry)
        topics.append({"name": topic["name"], "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


async def write_txn_markers(broker, request) -> dict:
    results = []
    if not allowed_on_cluster(broker, request, CLUSTER_ACTION):
        denied = errors.ClusterAuthorizationFailed.code
        return {"markers": [{"producer_id": m["producer_id"], "topics": [
            {"name": t["name"], "partitions": [{"partition_index": p, "error_code": denied}
                                               for p in t["partition_indexes"]]} for t in m["topics"]]}
            for m in request.body["markers"]]}
    for marker in request.body["markers"]:
        answer = await txn_markers.write_txn_markers(broker, [{
            "producer_id": marker["producer_id"], "producer_epoch": marker["producer_epoch"],
            "commit": marker["transaction_result"], "coordinator_epoch": marker["coordinator_epoch"],
            "partitions": [[t["name"], p] for t in marker["topics"] for p in t["partition_indexes"]]}])
        codes = {(t, p): code for t, p, code in answer["results"]}
        results.append({"producer_id": marker["producer_id"], "topics": [
            {"name": t["name"], "partitions": [{"partition_index": p, "error_code": codes[(t["name"], p)]}
                                               for p in t["partition_indexes"]]} for t in marker["topics"]]})
    return {"markers": results}
