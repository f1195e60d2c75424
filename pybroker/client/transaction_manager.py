"""The producer's side of a transaction (Kafka's TransactionManager): the producer id and
epoch of a ``transactional.id``, the partitions and group offsets enlisted in the open
transaction, and the requests to its transaction coordinator.

States: UNINITIALIZED -> (init) READY -> (begin) IN_TRANSACTION -> (commit/abort) READY.
A batch that failed inside a transaction leaves it ABORTABLE: commit raises that error,
abort is still possible. PRODUCER_FENCED (another producer took the transactional id) and
other non-retriable coordinator answers are FATAL: the producer must be closed.

Requests go to the coordinator FindCoordinator names for the id (key type 1), over a
connection of this manager's own; NOT_COORDINATOR-style answers and dead sockets find it
again, CONCURRENT_TRANSACTIONS (the previous transaction's markers are still being
written) is retried with backoff, until the caller's timeout.

Threads: the caller's thread (init, begin, offsets, end) and the producer's sender thread
(``add_partitions`` before a batch of a new partition is sent) share it; one lock
serialises every coordinator request.
"""
from __future__ import annotations

import enum
import threading
import time
from typing import NamedTuple

from pybroker import errors
from pybroker.client.cluster import Client
from pybroker.client.connection import BrokerConnection
from pybroker.protocol import api

TRANSACTION_KEY = 1
COORDINATOR_CODES = {errors.NotCoordinator.code, errors.CoordinatorNotAvailable.code,
                     errors.CoordinatorLoadInProgress.code}
RETRY_CODES = COORDINATOR_CODES | {errors.ConcurrentTransactions.code}
# AddPartitionsToTxn v4+ belong to brokers (KIP-890); clients speak up to v3.
MAX_CLIENT_ADD_PARTITIONS_VERSION = 3


class TxnState(enum.Enum):
    UNINITIALIZED = "uninitialized"
    READY = "ready"
    IN_TRANSACTION = "in transaction"
    ABORTABLE = "abortable error"
    FATAL = "fatal error"


class GroupMetadata(NamedTuple):
    """What TxnOffsetCommit tells the group coordinator about the consumer (KIP-447)."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None


class TransactionManager:
    def __init__(self, client: Client, transactional_id: str, timeout_ms: int, retry_backoff: float):
        self.client = client
        self.transactional_id = transactional_id
        self.timeout_ms = timeout_ms
        self.retry_backoff = retry_backoff
        self.state = TxnState.UNINITIALIZED
        self.producer_id = -1
        self.producer_epoch = -1
        self.partitions: set[tuple[str, int]] = set()
        self.error: BaseException | None = None
        # Whether the coordinator heard of this transaction (a partition or a group was
        # enlisted): an empty transaction ends here, as Kafka's producer ends it.
        self._started = False
        self._lock = threading.RLock()
        self._conn: BrokerConnection | None = None

    # -- state -----------------------------------------------------------------------

    def _require(self, *states: TxnState, action: str) -> None:
        if self.state is TxnState.FATAL:
            raise errors.KafkaError(f"cannot {action}: the producer hit a fatal error: {self.error}")
        if self.state not in states:
            raise RuntimeError(f"cannot {action} while the transaction state is {self.state.value}")

    def check_can_send(self) -> None:
        if self.state not in (TxnState.IN_TRANSACTION, TxnState.ABORTABLE):
            raise RuntimeError(f"a transactional producer sends only inside a transaction "
                               f"(state: {self.state.value}; call begin_transaction)")

    def batch_failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.state is TxnState.IN_TRANSACTION:
                self.state, self.error = TxnState.ABORTABLE, exc

    def _fail_fatally(self, exc: errors.KafkaError) -> errors.KafkaError:
        self.state, self.error = TxnState.FATAL, exc
        return exc

    # -- the coordinator ---------------------------------------------------------------

    def _coordinator(self, deadline: float) -> BrokerConnection:
        if self._conn is not None:
            return self._conn
        while True:
            conn = self.client.any_connection()
            version = conn.version_for(api.FIND_COORDINATOR)
            response = conn.request(api.FIND_COORDINATOR, {
                "key": self.transactional_id, "key_type": TRANSACTION_KEY,
                "coordinator_keys": [self.transactional_id]}, version)
            entry = response["coordinators"][0] if version >= 4 else response
            if not entry["error_code"]:
                self._conn = self.client.connect_to(entry["host"], entry["port"])
                return self._conn
            if not errors.for_code(entry["error_code"]).retriable or time.monotonic() > deadline:
                errors.raise_for_code(entry["error_code"], f"FindCoordinator for {self.transactional_id!r}")
            time.sleep(self.retry_backoff)

    def _request(self, api_key: int, body: dict, timeout: float | None, code_of=lambda r: r["error_code"],
                 version_cap: int | None = None) -> dict:
        """Send until the answer is not worth retrying (or the time is up); returns it."""
        deadline = time.monotonic() + (self.client.timeout if timeout is None else timeout)
        while True:
            try:
                conn = self._coordinator(deadline)
                version = conn.version_for(api_key)
                if version_cap is not None:
                    version = min(version, version_cap)
                response = conn.request(api_key, body, version)
            except (errors.NetworkException, errors.RequestTimedOut):
                self._drop_connection()
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.retry_backoff)
                continue
            code = code_of(response)
            if code in COORDINATOR_CODES:
                self._drop_connection()
            if code not in RETRY_CODES or time.monotonic() > deadline:
                return response
            time.sleep(self.retry_backoff)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _raise(self, code: int, what: str) -> None:
        """A coordinator error: fencing and other non-retriable ones are fatal."""
        if not code:
            return
        exc = errors.for_code(code)(f"{what} for transactional id {self.transactional_id!r}")
        if code in (errors.ProducerFenced.code, errors.InvalidProducerEpoch.code,
                    errors.TransactionalIdAuthorizationFailed.code) or not exc.retriable:
            raise self._fail_fatally(exc)
        raise exc

    # -- the transaction's life --------------------------------------------------------

    def init(self, timeout: float | None) -> tuple[int, int]:
        with self._lock:
            self._require(TxnState.UNINITIALIZED, TxnState.READY, action="init_transactions")
            response = self._request(api.INIT_PRODUCER_ID, {
                "transactional_id": self.transactional_id, "transaction_timeout_ms": self.timeout_ms,
                "producer_id": -1, "producer_epoch": -1}, timeout)
            self._raise(response["error_code"], "InitProducerId")
            self.producer_id, self.producer_epoch = response["producer_id"], response["producer_epoch"]
            self.state = TxnState.READY
            return self.producer_id, self.producer_epoch

    def begin(self) -> None:
        with self._lock:
            self._require(TxnState.READY, action="begin_transaction")
            self.partitions.clear()
            self.error = None
            self._started = False
            self.state = TxnState.IN_TRANSACTION

    def _ids(self) -> dict:
        return {"transactional_id": self.transactional_id, "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch}

    def add_partitions(self, partitions: set[tuple[str, int]]) -> None:
        """Enlist partitions before their first batch is sent (sender thread)."""
        with self._lock:
            new = partitions - self.partitions
            if not new:
                return
            self._require(TxnState.IN_TRANSACTION, TxnState.ABORTABLE, action="add partitions")
            topics: dict[str, list[int]] = {}
            for topic, partition in sorted(new):
                topics.setdefault(topic, []).append(partition)
            body = {"v3_and_below_transactional_id": self.transactional_id,
                    "v3_and_below_producer_id": self.producer_id,
                    "v3_and_below_producer_epoch": self.producer_epoch,
                    "v3_and_below_topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}

            def first_code(response):
                codes = [p["partition_error_code"] for t in response["results_by_topic_v3_and_below"]
                         for p in t["results_by_partition"]]
                return next((c for c in codes if c and c != errors.OperationNotAttempted.code), 0)

            response = self._request(api.ADD_PARTITIONS_TO_TXN, body, None, first_code,
                                     MAX_CLIENT_ADD_PARTITIONS_VERSION)
            code = first_code(response)
            if code in (errors.UnknownTopicOrPartition.code,):
                errors.raise_for_code(code, f"AddPartitionsToTxn {sorted(new)}")
            self._raise(code, "AddPartitionsToTxn")
            self.partitions |= new
            self._started = True

    def send_offsets(self, offsets: dict[tuple[str, int], int], group: GroupMetadata, timeout: float | None) -> None:
        with self._lock:
            self._require(TxnState.IN_TRANSACTION, action="send_offsets_to_transaction")
            response = self._request(api.ADD_OFFSETS_TO_TXN, {**self._ids(), "group_id": group.group_id}, timeout)
            self._raise(response["error_code"], "AddOffsetsToTxn")
            self._started = True
            topics: dict[str, list] = {}
            for (topic, partition), offset in sorted(offsets.items()):
                topics.setdefault(topic, []).append({"partition_index": partition, "committed_offset": offset,
                                                     "committed_leader_epoch": -1, "committed_metadata": ""})
            body = {**self._ids(), "group_id": group.group_id, "generation_id": group.generation_id,
                    "member_id": group.member_id, "group_instance_id": group.group_instance_id,
                    "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}

            def first_code(response):
                return next((p["error_code"] for t in response["topics"] for p in t["partitions"]
                             if p["error_code"]), 0)

            response = self._request(api.TXN_OFFSET_COMMIT, body, timeout, first_code)
            code = first_code(response)
            if code:
                # The group moved on (a rebalance): this transaction cannot commit its offsets.
                self.batch_failed(errors.for_code(code)(f"TxnOffsetCommit for group {group.group_id!r}"))
                errors.raise_for_code(code, f"TxnOffsetCommit for group {group.group_id!r}")

    def end(self, commit: bool, timeout: float | None) -> None:
        with self._lock:
            if commit:
                self._require(TxnState.IN_TRANSACTION, TxnState.ABORTABLE, action="commit_transaction")
                if self.state is TxnState.ABORTABLE:
                    raise errors.KafkaError(f"the transaction must be aborted: {self.error}")
            else:
                self._require(TxnState.IN_TRANSACTION, TxnState.ABORTABLE, action="abort_transaction")
            if self._started:
                response = self._request(api.END_TXN, {**self._ids(), "committed": commit}, timeout)
                self._raise(response["error_code"], "EndTxn")
            self.partitions.clear()
            self.error = None
            self.state = TxnState.READY

    def close(self) -> None:
        with self._lock:
            self._drop_connection()
