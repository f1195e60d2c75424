"""A follower's fetcher for every partition it follows on one leader broker (Kafka's
ReplicaFetcherThread, as one asyncio task).

It keeps one TCP connection to the leader and speaks the Kafka protocol as any client:

1. Partitions of a new leader epoch first truncate where their log diverges from the
   leader's (KIP-101/279): OffsetForLeaderEpoch(latest local epoch) returns the largest
   epoch <= it that the leader knows and where that epoch ends there. If the local log
   knows that epoch too, truncate to the smaller of the two end offsets; if not, truncate
   to where the local epoch below it ends and ask again. An answer of "no such epoch"
   (-1) falls back to the high watermark, as Kafka does. The loop ends: each "ask again"
   truncates the log to the start of a local epoch above the answer, and truncation trims
   the epoch cache to the log end (even when no batch goes), so the next question is
   about a strictly older epoch; should a round ever leave the latest epoch where it was,
   truncation ends at the high watermark instead of asking the same question again.
2. Then Fetch v11 with ``replica_id`` = this broker: the leader long-polls up to
   ``replica.fetch.wait.max.ms`` and returns whole batches from the follower's log end.
   The batches are validated (sizes, CRC-32C per batch) and appended with the leader's
   offsets; the high watermark becomes min(leader's, own log end), and the log start
   follows the leader's up (DeleteRecords) to at most that high watermark.
3. With a shared-memory region (``broker.shm``), each round first reads every partition
   from the leader's tail ring. Ring bytes go through the same validation and append as
   socket bytes, but only batches of the current leader epoch are taken: older entries
   of the ring may hold a suffix a later leader truncated. When the ring served every
   partition the Fetch is "positions only" (``max_bytes`` 0): it reports the new log
   ends and brings back the high watermark, and the leader's long poll ends as soon as
   there is something new. A partition the ring cannot serve (lapped, never there, an
   older epoch) makes it an ordinary Fetch, which serves the same bytes. Ring entries
   are matched by the partition's topic id and index, never by slot alone (a deleted
   topic's slot is reused). Should the leader ever answer OFFSET_OUT_OF_RANGE above its
   log end right after ring bytes were appended, the ring served bytes the leader does not
   have: the partition replicates over the socket for the rest of that leader epoch, so
   append, out of range, truncate can happen at most once per epoch, never in a loop.

4. Fetches use a fetch session on the leader (KIP-227): the first Fetch is full and asks
   for one; then each lists only the partitions whose fetch offset, leader epoch or log
   start changed, and those that stopped being fetched (parked, truncating, moved) as
   forgotten, and the leader answers only the partitions with news. A partition that
   is left out keeps the high watermark and log start the leader last answered (a log
   end the ring moved up takes the high watermark up with it). A partition of a new
   leader epoch leaves the session for one round and rejoins whole. A session error, a
   leader without room, or a lost connection makes the next Fetch full again.

Errors: a partition-level fencing error (the follower's or leader's metadata is stale)
parks that partition until its next state arrives or the backoff passes; a connection
error or malformed response closes the connection and retries after
``replica.fetch.backoff.ms``.

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import asyncio
import logging
import struct

from pybroker import errors
from pybroker.broker.fetch_session import INITIAL_EPOCH, INVALID_SESSION_ID, next_epoch
from pybroker.protocol import api
from pybroker.protocol.errors import MalformedFrame
from pybroker.record.batch import parse_batches

log = logging.getLogger("pybroker.replication")

FETCH_VERSION = 11
OFFSET_FOR_LEADER_EPOCH_VERSION = 3
LIST_OFFSETS_VERSION = 1
EARLIEST_TIMESTAMP = -2
SIZE = struct.Struct(">i")  # frame size => Int32 (bytes after this field)
# Answers beyond max_wait by this much mean a hung leader: reconnect.
RESPONSE_GRACE_S = 30.0
# Truncation asks again at most this many times (each round drops one local epoch).
MAX_TRUNCATION_ROUNDS = 1000

# Answers that end the fetch session: the next request is full.
_SESSION_CODES = {
    errors.FetchSessionIdNotFound.code, errors.InvalidFetchSessionEpoch.code, errors.FetchSessionTopicIdError.code,
}
_FENCING_CODES = {
    errors.NotLeaderOrFollower.code, errors.FencedLeaderEpoch.code, errors.UnknownLeaderEpoch.code,
    errors.UnknownTopicOrPartition.code, errors.LeaderNotAvailable.code, errors.KafkaStorageError.code,
}


class ReplicaFetcher:
    def __init__(self, broker, leader_id: int):
        self.broker = broker
        self.leader_id = leader_id
        self.partitions: dict[tuple[str, int], object] = {}
        # (topic, index) -> loop time before which the partition is not fetched.
        self._parked: dict[tuple[str, int], float] = {}
        self._task: asyncio.Task | None = None
        self._wakeup = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._correlation_id = 0
        self._stopped = False
        # (topic, index) -> leader epoch in which ring bytes were last appended / in which
        # the ring is not used for the partition (see the module docstring, step 3).
        self._ring_appended: dict[tuple[str, int], int] = {}
        self._ring_refused: dict[tuple[str, int], int] = {}
        # The fetch session on the leader (KIP-227): its id, the epoch of the next request
        # (0: a full request, asking for a new session), and (topic, index) -> (fetch
        # offset, leader epoch, log start) as the session holds them.
        self._session_id = INVALID_SESSION_ID
        self._session_epoch = INITIAL_EPOCH
        self._session: dict[tuple[str, int], tuple[int, int, int]] = {}
        # (topic, index) -> (high watermark, log start) the leader last answered.
        self._leader_positions: dict[tuple[str, int], tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"ReplicaFetcher(broker {self.broker.node_id} <- leader {self.leader_id}, {len(self.partitions)} partitions)"

    # -- membership ----------------------------------------------------------------------

    def add_partition(self, partition) -> None:
        key = (partition.topic, partition.index)
        self.partitions[key] = partition
        self._parked.pop(key, None)
        self._wakeup.set()

    def remove_partition(self, key: tuple[str, int]) -> None:
        self.partitions.pop(key, None)
        self._parked.pop(key, None)
        self._ring_appended.pop(key, None)
        self._ring_refused.pop(key, None)
        self._leader_positions.pop(key, None)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        # The flag as well as the cancel: asyncio.wait_for can swallow a cancellation that
        # races with its inner future completing (Python < 3.12), and the loop must end.
        self._stopped = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._close()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        # What the leader's session holds is unknown after a lost answer: start anew.
        self._reset_session(keep_id=True)

    async def _run(self) -> None:
        backoff = self.broker.config.replica_fetch_backoff_ms / 1000.0
        task = asyncio.current_task()
        while not self._stopped:
            if task.cancelling():
                # A cancel that no stop() came with (the loop shutting down) and that an
                # asyncio.wait_for swallowed on the way: honour it, or the fetcher spins on
                # and the loop's shutdown never ends.
                raise asyncio.CancelledError()
            if not self._active():
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), backoff if self.partitions else None)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                await self._connect()
                await self._truncate()
                await self._fetch()
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, MalformedFrame, errors.KafkaError) as exc:
                log.info("%r: %s; retrying in %.3f s", self, exc, backoff)
                self._close()
                await asyncio.sleep(backoff)

    def _active(self) -> list:
        """Partitions to work on now: still following this leader and not parked."""
        now = asyncio.get_running_loop().time()
        ready = []
        for key, partition in list(self.partitions.items()):
            if partition.is_leader or partition.leader != self.leader_id:
                continue
            if self._parked.get(key, 0.0) > now:
                continue
            ready.append(partition)
        return ready

    def _park(self, partition, reason: str) -> None:
        backoff = self.broker.config.replica_fetch_backoff_ms / 1000.0
        self._parked[(partition.topic, partition.index)] = asyncio.get_running_loop().time() + backoff
        log.info("%r: %s-%d paused for %.3f s: %s", self, partition.topic, partition.index, backoff, reason)

    # -- wire ----------------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            return
        self._close()
        info = self.broker.image.brokers.get(self.leader_id)
        if info is None:
            raise errors.BrokerNotAvailable(f"leader {self.leader_id} is not a live broker")
        if info.internal_socket:
            # A secured cluster: the leader's private inter-broker socket (security.listener).
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(info.internal_socket), RESPONSE_GRACE_S)
            log.info("%r: connected to %s", self, info.internal_socket)
            return
        port = info.port_for("PLAINTEXT")
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(info.host, port), RESPONSE_GRACE_S)
        log.info("%r: connected to %s:%d", self, info.host, port)

    async def _roundtrip(self, api_key: int, version: int, body: dict, wait_s: float = 0.0) -> dict:
        self._correlation_id = (self._correlation_id + 1) & 0x7FFFFFFF
        correlation_id = self._correlation_id
        frame = api.encode_request(api_key, version, correlation_id, f"replica-fetcher-{self.broker.node_id}", body)
        self._writer.write(frame)
        await self._writer.drain()
        limit = 2 * self.broker.config.replica_fetch_response_max_bytes + self.broker.config.message_max_bytes
        size_bytes = await asyncio.wait_for(self._reader.readexactly(SIZE.size), wait_s + RESPONSE_GRACE_S)
        size = SIZE.unpack(size_bytes)[0]
        if not 4 <= size <= limit:
            raise MalformedFrame(f"response of {size} bytes from leader {self.leader_id}")
        payload = await asyncio.wait_for(self._reader.readexactly(size), RESPONSE_GRACE_S)
        got, response = api.decode_response(api_key, version, payload)
        if got != correlation_id:
            raise MalformedFrame(f"correlation id {got} from leader {self.leader_id}, expected {correlation_id}")
        return response

    # -- truncation ----------------------------------------------------------------------

    async def _truncate(self) -> None:
        for _ in range(MAX_TRUNCATION_ROUNDS):
            pending = [p for p in self._active() if p.needs_truncation]
            if not pending:
                return
            asked = {}
            for partition in pending:
                epoch = partition.epochs.latest_epoch
                if epoch < 0:
                    # Nothing here carries an epoch: only the committed prefix is safe.
                    self._finish_truncation(partition, partition.high_watermark, "no local epochs")
                    continue
                asked[(partition.topic, partition.index)] = (partition, partition.leader_epoch, epoch)
            if not asked:
                continue
            by_topic: dict[str, list] = {}
            for (topic, index), (_, current, epoch) in asked.items():
                by_topic.setdefault(topic, []).append(
                    {"partition": index, "current_leader_epoch": current, "leader_epoch": epoch})
            response = await self._roundtrip(api.OFFSET_FOR_LEADER_EPOCH, OFFSET_FOR_LEADER_EPOCH_VERSION, {
                "replica_id": self.broker.node_id,
                "topics": [{"topic": t, "partitions": parts} for t, parts in by_topic.items()],
            })
            for topic in response["topics"]:
                for answer in topic["partitions"]:
                    found = asked.get((topic["topic"], answer["partition"]))
                    if found is None:
                        continue
                    partition, current, epoch = found
                    if partition.leader_epoch != current or partition.leader != self.leader_id:
                        continue  # the state moved on while we asked
                    self._apply_epoch_answer(partition, answer, epoch)

    def _apply_epoch_answer(self, partition, answer: dict, asked_epoch: int) -> None:
        code = answer["error_code"]
        if code:
            self._park(partition, f"OffsetForLeaderEpoch: {errors.name_of(code)}")
            return
        leader_epoch, leader_end = answer["leader_epoch"], answer["end_offset"]
        leo = partition.log_end_offset
        if leader_end < 0:
            self._finish_truncation(partition, partition.high_watermark, "leader knows no such epoch")
            return
        local_epoch, local_end = partition.epochs.end_offset_for(leader_epoch, leo)
        if local_end < 0:
            self._finish_truncation(partition, partition.high_watermark, f"no local epoch <= {leader_epoch}")
        elif local_epoch == leader_epoch:
            self._finish_truncation(partition, min(leader_end, local_end, leo),
                                    f"epoch {leader_epoch} ends at {leader_end} on the leader")
        else:
            # Our epochs between them were never the leader's: drop them and ask again.
            dropped = partition.truncate_to(min(local_end, leo))
            if partition.epochs.latest_epoch >= asked_epoch:
                log.error("%s-%d: truncating to %d left epoch %d in place; ending at the high watermark",
                          partition.topic, partition.index, partition.log_end_offset, asked_epoch)
                self._finish_truncation(partition, partition.high_watermark, "no progress by epoch")
                return
            log.info("%s-%d: truncated to %d (%d bytes) past epoch %d, asking again",
                     partition.topic, partition.index, partition.log_end_offset, dropped, local_epoch)

    def _finish_truncation(self, partition, offset: int, reason: str) -> None:
        offset = min(offset, partition.log_end_offset)
        before = partition.log_end_offset
        dropped = partition.truncate_to(offset)
        partition.needs_truncation = False
        if dropped or before != partition.log_end_offset:
            log.info("%s-%d: truncated from %d to %d (%d bytes): %s", partition.topic, partition.index,
                     before, partition.log_end_offset, dropped, reason)

    # -- fetching ------------------------------------------------------------------------

    async def _fetch(self) -> None:
        ready = [p for p in self._active() if not p.needs_truncation]
        if not ready:
            return
        config = self.broker.config
        positions_only = self._read_ring(ready) == len(ready)
        full = self._session_epoch == INITIAL_EPOCH
        cached = self._session
        sent = {}
        listed = []
        view = {}
        by_topic: dict[str, list] = {}
        for partition in ready:
            key = (partition.topic, partition.index)
            state = (partition.log_end_offset, partition.leader_epoch, partition.log_start_offset)
            if not full:
                before = cached.get(key)
                if before is not None and before[1] != state[1]:
                    # A new leader epoch: out of the session for one round, so that it
                    # comes back whole (high watermark and log start) when it rejoins.
                    continue
                sent[key] = (partition, partition.leader_epoch, partition.log_end_offset)
                view[key] = state
                if before == state:
                    continue  # the leader's session has it as it is
            else:
                sent[key] = (partition, partition.leader_epoch, partition.log_end_offset)
                view[key] = state
            listed.append(key)
            by_topic.setdefault(partition.topic, []).append({
                "partition": partition.index,
                "current_leader_epoch": partition.leader_epoch,
                "fetch_offset": partition.log_end_offset,
                "log_start_offset": partition.log_start_offset,
                "partition_max_bytes": config.replica_fetch_max_bytes,
            })
        forgotten: dict[str, list] = {}
        if not full:
            for topic, index in cached:
                if (topic, index) not in view:
                    forgotten.setdefault(topic, []).append(index)
        wait_ms = config.replica_fetch_wait_max_ms
        epoch = self._session_epoch
        response = await self._roundtrip(api.FETCH, FETCH_VERSION, {
            "replica_id": self.broker.node_id,
            "max_wait_ms": wait_ms,
            "min_bytes": 1,
            "max_bytes": 0 if positions_only else config.replica_fetch_response_max_bytes,
            "isolation_level": 0,
            "session_id": self._session_id,
            "session_epoch": epoch,
            "topics": [{"topic": t, "partitions": parts} for t, parts in by_topic.items()],
            "forgotten_topics_data": [{"topic": t, "partitions": parts} for t, parts in forgotten.items()],
            "rack_id": "",
        }, wait_ms / 1000.0)
        code = response["error_code"]
        if code in _SESSION_CODES:
            log.info("%r: fetch session %d epoch %d: %s; starting a new session", self, self._session_id,
                     epoch, errors.name_of(code))
            self._reset_session(keep_id=code != errors.FetchSessionIdNotFound.code)
            return
        if code:
            raise errors.for_code(code)(f"fetch from leader {self.leader_id}")
        if response["session_id"] == INVALID_SESSION_ID or (not full and response["session_id"] != self._session_id):
            # No room for a session on the leader (or it closed ours): full requests.
            self._reset_session(keep_id=False)
        else:
            self._session_id = response["session_id"]
            self._session_epoch = next_epoch(epoch)
            self._session = view
        answered = set()
        for topic in response["responses"]:
            for answer in topic["partitions"]:
                key = (topic["topic"], answer["partition_index"])
                found = sent.get(key)
                if found is None:
                    continue
                answered.add(key)
                if not answer["error_code"]:
                    self._leader_positions[key] = (answer["high_watermark"], answer["log_start_offset"])
                partition, epoch, offset = found
                if (partition.leader_epoch != epoch or partition.leader != self.leader_id
                        or partition.needs_truncation or partition.log_end_offset != offset):
                    continue  # the state moved on while we fetched
                await self._apply_fetched(partition, answer)
        # Partitions the leader left out have its high watermark and log start as last
        # told: a log end the ring moved up takes the high watermark up to it.
        for key in listed:
            if key in answered:
                continue
            known = self._leader_positions.get(key)
            partition, epoch, offset = sent[key]
            if (known is None or partition.leader_epoch != epoch or partition.leader != self.leader_id
                    or partition.needs_truncation or partition.log_end_offset != offset):
                continue
            partition.update_follower_high_watermark(known[0])
            partition.update_follower_log_start_offset(known[1])

    def _reset_session(self, keep_id: bool) -> None:
        """The next Fetch is full: it asks for a new session (closing the current one on
        the leader when ``keep_id``)."""
        if not keep_id:
            self._session_id = INVALID_SESSION_ID
        self._session_epoch = INITIAL_EPOCH
        self._session = {}
        self._leader_positions.clear()

    def _read_ring(self, ready: list) -> int:
        """Append what the leader's tail ring holds for each partition; returns how many
        partitions it answered for (their data, or that they are caught up)."""
        shm = getattr(self.broker, "shm", None)
        if shm is None or not shm.replication_enabled:
            return 0
        max_bytes = self.broker.config.replica_fetch_max_bytes
        served = 0
        for partition in ready:
            key = (partition.topic, partition.index)
            if self._ring_refused.get(key) == partition.leader_epoch:
                continue
            offset = partition.log_end_offset
            data = shm.read_replica_tail(partition, self.leader_id, offset, max_bytes)
            if data is None:
                continue
            if data:
                if not self._append_ring_bytes(partition, offset, data):
                    shm.ring_misses += 1
                    continue
                self._ring_appended[key] = partition.leader_epoch
            served += 1
        return served

    def _append_ring_bytes(self, partition, offset: int, data: bytes) -> bool:
        """Validate and append ring bytes from ``offset`` on; False if nothing usable."""
        buf = data  # already a private copy: the ring reader copied it out of shared memory
        try:
            headers = parse_batches(buf, len(buf), strict_counts=False)
        except errors.KafkaError as exc:
            log.warning("%r: %s-%d: unusable ring entry, fetching over the socket: %s",
                        self, partition.topic, partition.index, exc)
            return False
        # One ring entry is one produce request: its first batches may already be here.
        keep = []
        for header in headers:
            if header.next_offset <= offset:
                continue
            if header.partition_leader_epoch != partition.leader_epoch or (
                    not keep and header.base_offset != offset):
                break
            keep.append(header)
        if not keep:
            return False
        try:
            partition.append_as_follower(buf, keep)
        except errors.KafkaError as exc:
            log.warning("%r: %s-%d: rejected ring data, fetching over the socket: %s",
                        self, partition.topic, partition.index, exc)
            return False
        appended = keep[-1].position + keep[-1].size - keep[0].position
        self.broker.shm.ring_bytes += appended
        self.broker.stats.on_replicated(partition.topic, appended)
        return True

    async def _apply_fetched(self, partition, answer: dict) -> None:
        code = answer["error_code"]
        if code == errors.OffsetOutOfRange.code:
            await self._handle_out_of_range(partition)
            return
        if code:
            if code not in _FENCING_CODES:
                log.warning("%r: %s-%d: %s", self, partition.topic, partition.index, errors.name_of(code))
            self._park(partition, errors.name_of(code))
            return
        records = answer["records"]
        if records:
            buf = bytearray(records)
            try:
                headers = parse_batches(buf, len(buf), strict_counts=False)
                # A compacted leader log may have dropped whole batches at our log end.
                if headers[0].base_offset < partition.log_end_offset:
                    raise errors.InvalidRecord(
                        f"leader sent offset {headers[0].base_offset} for fetch offset {partition.log_end_offset}")
                partition.append_as_follower(buf, headers)
                self.broker.stats.on_replicated(partition.topic, len(buf))
            except errors.KafkaError as exc:
                # Validation failed on bytes the leader holds: fetching again gets the same
                # bytes, so wait (a new state or a repaired leader may fix it).
                log.warning("%r: %s-%d: rejected fetched data: %s", self, partition.topic, partition.index, exc)
                self._park(partition, "invalid data from the leader")
                return
        partition.update_follower_high_watermark(answer["high_watermark"])
        partition.update_follower_log_start_offset(answer["log_start_offset"])

    async def _handle_out_of_range(self, partition) -> None:
        """Our log end is outside the leader's log: below its start (retention deleted what
        we miss: start over there), else re-run truncation by epoch."""
        response = await self._roundtrip(api.LIST_OFFSETS, LIST_OFFSETS_VERSION, {
            "replica_id": self.broker.node_id,
            "topics": [{"name": partition.topic, "partitions": [
                {"partition_index": partition.index, "timestamp": EARLIEST_TIMESTAMP}]}],
        })
        answer = response["topics"][0]["partitions"][0]
        if answer["error_code"]:
            self._park(partition, f"ListOffsets: {errors.name_of(answer['error_code'])}")
            return
        leader_start = answer["offset"]
        key = (partition.topic, partition.index)
        if partition.log_end_offset >= leader_start and self._ring_appended.get(key) == partition.leader_epoch:
            # Above the leader's log end right after appending ring bytes: whatever the
            # ring held was not the leader's log. Never again in this epoch.
            self._ring_refused[key] = partition.leader_epoch
            log.warning("%r: %s-%d: the leader has no offset %d that its tail ring served; "
                        "replicating over the socket for leader epoch %d", self, partition.topic,
                        partition.index, partition.log_end_offset, partition.leader_epoch)
        if partition.log_end_offset < leader_start:
            log.info("%s-%d: log end %d is below the leader's log start %d; starting over there",
                     partition.topic, partition.index, partition.log_end_offset, leader_start)
            partition.truncate_fully_and_start_at(leader_start)
        else:
            partition.needs_truncation = True
