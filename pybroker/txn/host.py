"""Hosts the transaction coordinator (``pybroker.txn``) beside the group coordinator: on the
supervisor's event loop in a cluster, or a process's own for in-process brokers.

State lives in ``<dir>/transactions.log`` (pybroker.txn.txn_log; the supervisor's dir is
``<data>/meta``), transactional producer ids come from ``<dir>/txn-producer-id-block``.
On start, transactions the log left in PrepareCommit/PrepareAbort get their markers
again. One timer sleeps until the oldest ongoing transaction's timeout, then aborts
what has expired (fencing its producer).

A request for a transactional id whose markers are still being written (PrepareCommit or
PrepareAbort) waits here until they are, up to ``PREPARED_WAIT_S``, instead of getting
CONCURRENT_TRANSACTIONS at once: Kafka answers that and the client backs off (librdkafka
by its retry.backoff.ms, 100 ms), which would cost every back-to-back transaction that
long; the answer after the wait is the one Kafka's retry would get.

Offsets a transaction carries (TxnOffsetCommit) are validated against the group (its
coordinator is ``groups``), kept in the transaction, and handed to the group's offset
store once every marker of a commit is written — before the transaction is marked
complete, so a restart in between applies them again (the same offsets, harmlessly).

Owned by the host's event loop thread; a request may come from another process
(``handle`` takes and returns JSON-friendly values).
"""
from __future__ import annotations

import asyncio
import logging
import os

from pybroker import errors
from pybroker.cluster.producer_ids import COORDINATOR_SLOT, ProducerIdBlock
from pybroker.txn.coordinator import MarkerJob, TransactionCoordinator, TxnSettings
from pybroker.txn.markers import LeaderOf, MarkerSender, Send
from pybroker.deadline import DeadlineTimer, now_ms as _now_ms
from pybroker.txn.txn_log import TransactionLog

log = logging.getLogger("pybroker.txn")

COMPACT_INTERVAL_S = 600.0
PREPARED_WAIT_S = 5.0
# Requests that would only get CONCURRENT_TRANSACTIONS while markers are written.
_WAIT_FOR_MARKERS = frozenset({"init_producer_id", "add_partitions", "add_offsets", "commit_offsets", "end_txn"})


class TransactionHost:
    def __init__(self, data_dir: str, groups, leader_of: LeaderOf, send: Send,
                 settings: TxnSettings | None = None):
        """``groups``: the GroupHost whose offsets transactions commit."""
        self.log = TransactionLog(data_dir)
        ids = ProducerIdBlock(os.path.join(data_dir, "txn-producer-id-block"), COORDINATOR_SLOT)
        self.coordinator = TransactionCoordinator(self.log, ids.next_id, settings)
        self.groups = groups
        self.markers = MarkerSender(leader_of, send, self._markers_written)
        self._timer = DeadlineTimer(self.coordinator.next_deadline_ms, self._tick)
        self._housekeeping: asyncio.Task | None = None
        # Transactional id -> futures of requests waiting for its markers.
        self._prepared_waiters: dict[str, list[asyncio.Future]] = {}

    def start(self) -> None:
        recovered = self.coordinator.recover()
        if recovered:
            log.info("completing %d transactions left prepared", recovered)
        self._housekeeping = asyncio.get_running_loop().create_task(self._compact_loop())
        self._after_call()

    def close(self) -> None:
        self._timer.cancel()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self.markers.close()
        self.log.close()

    # -- requests ------------------------------------------------------------------------

    async def handle(self, method: str, args: dict):
        if method in _WAIT_FOR_MARKERS:
            await self._markers_of(args["transactional_id"])
        now = _now_ms()
        c = self.coordinator
        if method == "init_producer_id":
            result = list(c.init_producer_id(args["transactional_id"], args["transaction_timeout_ms"], now,
                                             args.get("producer_id", -1), args.get("producer_epoch", -1)))
        elif method == "add_partitions":
            result = c.add_partitions(args["transactional_id"], args["producer_id"], args["producer_epoch"],
                                      [tuple(tp) for tp in args["partitions"]], now)
        elif method == "verify_partitions":
            codes = c.verify_partitions(args["transactional_id"], args["producer_id"], args["producer_epoch"],
                                        [tuple(tp) for tp in args["partitions"]])
            result = [[t, p, code] for (t, p), code in codes.items()]
        elif method == "add_offsets":
            result = c.add_offsets(args["transactional_id"], args["producer_id"], args["producer_epoch"],
                                   args["group_id"], now)
        elif method == "commit_offsets":
            result = self._commit_offsets(args, now)
        elif method == "end_txn":
            result = c.end_txn(args["transactional_id"], args["producer_id"], args["producer_epoch"],
                               bool(args["committed"]), now)
        elif method == "describe":
            result = c.describe(args["transactional_ids"])
        elif method == "list":
            result = c.list(args.get("states") or [], args.get("producer_ids") or [],
                            args.get("duration_ms", -1), now)
        elif method == "pending_offsets":
            result = sorted([t, p] for t, p in c.pending_offsets(args["group_id"]))
        else:
            raise errors.InvalidRequest(f"unknown transaction method {method}")
        self._after_call()
        return result

    def _commit_offsets(self, args: dict, now: int) -> int:
        group_id = args["group_id"]
        offsets = {(t, p): (offset, metadata, epoch) for t, p, offset, metadata, epoch in args["offsets"]}
        code = self.groups.coordinator.txn_commit_error(group_id, args.get("member_id", ""),
                                                        args.get("generation_id", -1), args.get("group_instance_id"),
                                                        offsets)
        if code:
            return code
        return self.coordinator.commit_offsets(args["transactional_id"], args["producer_id"],
                                               args["producer_epoch"], group_id, offsets, now)

    async def _markers_of(self, transactional_id: str) -> None:
        """Wait (bounded) while the id's transaction is prepared and its markers go out."""
        meta = self.coordinator.states.get(transactional_id)
        if meta is None or not meta.state.is_prepare:
            return
        fut = asyncio.get_running_loop().create_future()
        self._prepared_waiters.setdefault(transactional_id, []).append(fut)
        try:
            await asyncio.wait_for(fut, PREPARED_WAIT_S)
        except asyncio.TimeoutError:
            pass  # the coordinator answers CONCURRENT_TRANSACTIONS; the client retries
        finally:
            waiters = self._prepared_waiters.get(transactional_id, [])
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                self._prepared_waiters.pop(transactional_id, None)

    # -- markers and timeouts ------------------------------------------------------------

    def _after_call(self) -> None:
        for job in self.coordinator.take_marker_jobs():
            self.markers.submit(job)
        self._timer.schedule()

    def _markers_written(self, job: MarkerJob) -> None:
        prepared = self.coordinator.states.get(job.transactional_id)
        if prepared is None or (prepared.producer_id, prepared.producer_epoch) != (job.producer_id, job.producer_epoch):
            return
        now = _now_ms()
        if job.commit:
            for group_id, offsets in prepared.pending_offsets.items():
                self.groups.store.commit(group_id, offsets, now)
        self.coordinator.complete(job.transactional_id, job.producer_id, job.producer_epoch, now)
        log.debug("%s: %s complete", job.transactional_id, "commit" if job.commit else "abort")
        for fut in self._prepared_waiters.pop(job.transactional_id, []):
            if not fut.done():
                fut.set_result(None)
        self._timer.schedule()

    def _tick(self) -> None:
        for txn_id in self.coordinator.abort_timed_out(_now_ms()):
            log.info("aborting transaction of %s: past its timeout", txn_id)
        self._after_call()

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(COMPACT_INTERVAL_S)
            self.log.compact()
