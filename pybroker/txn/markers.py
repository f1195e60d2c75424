"""Writes transaction markers to partition leaders (Kafka's TransactionMarkerChannelManager):
the only part of the coordinator that talks to brokers.

For each ``MarkerJob`` it groups the partitions by their current leader and sends each
leader one ``write_txn_markers`` control request; a leader appends the COMMIT or ABORT
control batch and answers once the in-sync replicas hold it. Partitions that failed (the
leader moved, a broker is down, too few in-sync replicas) are retried with backoff, for as
long as it takes, as Kafka does; a partition whose topic was deleted needs no marker.
When every partition has its marker, ``on_done(job)`` completes the transaction.

Control request (supervisor -> broker)::

    write_txn_markers  markers[{producer_id, producer_epoch, commit, coordinator_epoch,
                       partitions[[topic, partition], ...]}]
                       -> results[[topic, partition, error_code], ...]

Owned by the coordinator host's event loop.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from pybroker import errors
from pybroker.txn.coordinator import MarkerJob

log = logging.getLogger("pybroker.txn")

RETRY_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0
REQUEST_TIMEOUT_S = 30.0
COORDINATOR_EPOCH = 0
# A newer epoch already wrote to the partition: this marker is superseded there.
_SUPERSEDED = {errors.InvalidProducerEpoch.code, errors.ProducerFenced.code}

LeaderOf = Callable[[str, int], "int | None"]
Send = Callable[[int, dict], Awaitable[dict]]


class MarkerSender:
    def __init__(self, leader_of: LeaderOf, send: Send, on_done: Callable[[MarkerJob], None]):
        """``leader_of(topic, partition)``: the leader's node id, -1 while it has none,
        None when the partition no longer exists. ``send(node_id, doc)``: the control
        request to that broker, returning its answer (raising when unreachable)."""
        self._leader_of = leader_of
        self._send = send
        self._on_done = on_done
        self._tasks: set[asyncio.Task] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(self, job: MarkerJob) -> None:
        task = asyncio.get_running_loop().create_task(self._write(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, job: MarkerJob) -> None:
        remaining = set(job.partitions)
        backoff = RETRY_BACKOFF_S
        attempts = 0
        last_codes: dict = {}
        while remaining:
            attempts += 1
            by_leader: dict[int, list] = {}
            for tp in sorted(remaining):
                leader = self._leader_of(*tp)
                if leader is None:
                    remaining.discard(tp)
                elif leader >= 0:
                    by_leader.setdefault(leader, []).append(tp)
            answers = await asyncio.gather(*(self._send_one(node, job, tps) for node, tps in by_leader.items()))
            for results in answers:
                for topic, partition, code in results:
                    last_codes[(topic, partition)] = code
                    if code == 0 or code in _SUPERSEDED:
                        if code:
                            log.warning("%s: marker for %s-%d superseded (%s)", job.transactional_id, topic,
                                        partition, errors.name_of(code))
                        remaining.discard((topic, partition))
            if remaining:
                if attempts % 20 == 0:
                    log.warning("%s: %s markers not written yet after %d attempts: %s", job.transactional_id,
                                "COMMIT" if job.commit else "ABORT", attempts,
                                ", ".join(f"{t}-{p}: {errors.name_of(last_codes[(t, p)]) if (t, p) in last_codes else 'no leader'}"
                                          for t, p in sorted(remaining)))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        self._on_done(job)

    async def _send_one(self, node_id: int, job: MarkerJob, partitions: list) -> list:
        doc = {"type": "write_txn_markers", "markers": [{
            "producer_id": job.producer_id, "producer_epoch": job.producer_epoch, "commit": job.commit,
            "coordinator_epoch": COORDINATOR_EPOCH, "partitions": [list(tp) for tp in partitions]}]}
        try:
            return (await asyncio.wait_for(self._send(node_id, doc), REQUEST_TIMEOUT_S))["results"]
        except (ConnectionError, asyncio.TimeoutError, errors.KafkaError) as exc:
            log.debug("%s: markers to broker %d not written yet: %s", job.transactional_id, node_id, exc)
            return []

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
