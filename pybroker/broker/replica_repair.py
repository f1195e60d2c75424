"""Refetching quarantined ranges from another replica, so a damaged replica is whole again.

Recovery and the scrubber set damaged bytes aside (pybroker.log.damage): the segment is
rewritten around them and the offsets they held are a gap in this replica. On a
replicated partition the other replicas hold those batches byte for byte (a follower
appends the leader's batches as they are, offsets and all), so this broker asks one of
them for the range and splices it back:

1. For each partition hosted here with a ``.corrupt`` range in a closed segment and
   another in-sync replica on a live broker: the source is the leader when this broker
   follows, an in-sync follower when it leads (the range lies below the high watermark,
   which every in-sync replica has).
2. A Fetch v11 with ``replica_id`` -2 (Kafka's debugging consumer, which any replica
   serves up to its high watermark) from the range's first offset, for about the range's
   size, repeated from where the answer ends until the range is covered.
3. A worker thread checks the batches (CRC-32C, wholly inside the range, none of the
   segment's own offsets) and writes the segment anew with them in place
   (``damage.RestoreJob``); the event loop swaps it in with the cleaner's crash-safe swap
   and removes the ``.corrupt`` file (``Log.replace_restored``).

Every outcome is logged: WARNING when a range is restored (partition, offsets, bytes,
source broker), ERROR when a source could not supply it (tried again every
``REPAIR_INTERVAL_S``). A range no other replica can supply stays quarantined and
readers go on reading past it, as before.

Owned by the broker's event loop; the splicing runs on the executor it is handed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from concurrent.futures import Executor, ThreadPoolExecutor

from pybroker import errors
from pybroker.broker.apis.fetch import DEBUGGING_REPLICA_ID
from pybroker.log import damage
from pybroker.protocol import api
from pybroker.record.batch import scan_valid_prefix

log = logging.getLogger("pybroker.replication")

REPAIR_INTERVAL_S = 5.0
FETCH_VERSION = 11
SIZE = struct.Struct(">i")  # frame size => Int32
RESPONSE_TIMEOUT_S = 30.0
# At most this many fetches per range (each brings at least one batch).
MAX_ROUNDS = 10_000
# A source's answer errors logged once per (partition, range, source, reason) an hour.
_ERROR_EVERY_S = 3600.0


class ReplicaRepairer:
    def __init__(self, broker):
        self.broker = broker
        self._logged: dict[tuple, float] = {}
        self.restored_ranges = 0
        # damage.generation() at the last pass (-1: the first pass looks at everything),
        # and the partitions that pass left with quarantined ranges.
        self._seen_generation = -1
        self._damaged: set = set()

    async def run(self) -> None:
        """Every ``REPAIR_INTERVAL_S``, a pass over the damaged partitions."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replica-repair")
        try:
            while True:
                await asyncio.sleep(REPAIR_INTERVAL_S)
                try:
                    await self.repair_pass(executor)
                except errors.KafkaError as exc:
                    log.warning("replica repair: %s", exc)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    async def repair_pass(self, executor: Executor) -> int:
        """Try every quarantined range once. Returns how many were restored. Every
        partition is looked at only when a log has been quarantined since the last pass
        (``damage.generation``); otherwise just those left with ranges last time, so an
        undamaged broker of 20,000 partitions spends nothing here."""
        partitions = self.broker.logs.partitions
        generation = damage.generation()
        keys = list(partitions) if generation != self._seen_generation else list(self._damaged)
        self._seen_generation = generation
        damaged = set()
        restored = 0
        for key in keys:
            partition = partitions.get(key)
            if partition is None or not partition.log.quarantined or partition.log.closed:
                continue
            if len(partition.replicas) >= 2:
                restored += await self._repair_partition(executor, partition)
            if partition.log.quarantined and not partition.log.closed:
                damaged.add(key)
        self._damaged = damaged
        self.restored_ranges += restored
        return restored

    async def _repair_partition(self, executor: Executor, partition) -> int:
        restored = 0
        for q in list(partition.log.quarantined):
            source = self._source(partition)
            if source is None:
                self._error(partition, q, None, "no other in-sync replica on a live broker")
                break
            try:
                if await self._restore(executor, partition, q, source):
                    restored += 1
            except (OSError, asyncio.TimeoutError, ValueError, errors.KafkaError) as exc:
                self._error(partition, q, source, str(exc) or type(exc).__name__)
        return restored

    def _source(self, partition) -> int | None:
        me = self.broker.node_id
        live = self.broker.image.brokers
        if partition.leader != me:
            return partition.leader if partition.leader in live and me in partition.isr else None
        return next((r for r in partition.isr if r != me and r in live), None)

    async def _restore(self, executor: Executor, partition, q: damage.Quarantined, source: int) -> bool:
        plog = partition.log
        found = plog.segment_holding(q.first_offset)
        if found is None:
            return False  # in the active segment: tried again once it has rolled
        segment, next_base = found
        records = await self._fetch_range(partition, q, source)
        job = damage.RestoreJob(plog.directory, os.dup(segment.fd), segment.size, segment.base_offset, next_base,
                                q.first_offset, q.end_offset, records, plog.config.index_interval_bytes,
                                plog.config.segment_index_bytes)
        size = segment.size
        paths = await asyncio.get_running_loop().run_in_executor(executor, job.run)
        if plog.closed or not plog.replace_restored(segment, size, paths, q):
            return False
        log.warning("%s-%d: quarantined offsets %d..%d restored from broker %d (%d batches, %d bytes); "
                    "%s removed", partition.topic, partition.index, q.first_offset, q.end_offset - 1, source,
                    job.restored_batches, job.restored_bytes, os.path.basename(q.path))
        return True

    async def _fetch_range(self, partition, q: damage.Quarantined, source: int) -> bytes:
        info = self.broker.image.brokers.get(source)
        if info is None:
            raise errors.BrokerNotAvailable(f"broker {source} is not live")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(info.host, info.port), RESPONSE_TIMEOUT_S)
        try:
            got = bytearray()
            offset = q.first_offset
            want = max(q.size, 1 << 16)
            limit = self.broker.config.replica_fetch_response_max_bytes
            for correlation_id in range(1, MAX_ROUNDS + 1):
                answer = await self._fetch_once(reader, writer, correlation_id, partition, offset,
                                                min(limit, want + (1 << 16)))
                code = answer["error_code"]
                if code:
                    raise errors.for_code(code)(f"fetch of {partition.topic}-{partition.index} from broker {source}")
                records = answer["records"] or b""
                if not records:
                    raise ValueError(f"broker {source} returned nothing from offset {offset}")
                headers, valid_end, _ = scan_valid_prefix(records)
                if not headers:
                    raise ValueError(f"broker {source} returned no whole batch from offset {offset}")
                got += records[:valid_end]
                offset = headers[-1].next_offset
                if offset >= q.end_offset:
                    return bytes(got)
            raise ValueError(f"range not covered after {MAX_ROUNDS} fetches")
        finally:
            writer.close()

    async def _fetch_once(self, reader, writer, correlation_id: int, partition, offset: int, max_bytes: int) -> dict:
        frame = api.encode_request(api.FETCH, FETCH_VERSION, correlation_id, f"replica-repair-{self.broker.node_id}", {
            "replica_id": DEBUGGING_REPLICA_ID, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": max_bytes,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": partition.topic, "partitions": [{
                "partition": partition.index, "current_leader_epoch": -1, "fetch_offset": offset,
                "log_start_offset": -1, "partition_max_bytes": max_bytes}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        writer.write(frame)
        await writer.drain()
        size = SIZE.unpack(await asyncio.wait_for(reader.readexactly(SIZE.size), RESPONSE_TIMEOUT_S))[0]
        if not 4 <= size <= 2 * max_bytes + (1 << 20):
            raise ValueError(f"response of {size} bytes")
        got, response = api.decode_response(api.FETCH, FETCH_VERSION,
                                            await asyncio.wait_for(reader.readexactly(size), RESPONSE_TIMEOUT_S))
        if got != correlation_id:
            raise ValueError(f"correlation id {got}, expected {correlation_id}")
        for topic in response["responses"]:
            for answer in topic["partitions"]:
                if topic["topic"] == partition.topic and answer["partition_index"] == partition.index:
                    if response["error_code"]:
                        answer = dict(answer, error_code=response["error_code"])
                    return answer
        raise ValueError("the answer does not name the partition")

    def _error(self, partition, q: damage.Quarantined, source: int | None, reason: str) -> None:
        key = (partition.topic, partition.index, q.first_offset, source, reason)
        now = time.monotonic()
        if now - self._logged.get(key, -_ERROR_EVERY_S) < _ERROR_EVERY_S:
            return
        self._logged[key] = now
        log.error("%s-%d: quarantined offsets %d..%d not restored%s: %s (trying again every %.0f s)",
                  partition.topic, partition.index, q.first_offset, q.end_offset - 1,
                  f" from broker {source}" if source is not None else "", reason, REPAIR_INTERVAL_S)


