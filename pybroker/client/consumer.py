"""A synchronous Kafka consumer of explicitly assigned partitions.

``assign`` the partitions, optionally ``seek``; ``poll`` sends one Fetch per partition
leader, decodes the returned batches (one ``decode_batch`` per batch) and hands out the
records from each partition's position on. A fetch returns whole batches, so records
below the position (the start of the batch holding it) are skipped. Control batches
(transaction markers) are skipped whole.

Not thread-safe: one thread polls.
"""
from __future__ import annotations

import time
from typing import NamedTuple

from pybroker import errors
from pybroker.client.admin import EARLIEST, LATEST, list_offsets
from pybroker.client.cluster import Client
from pybroker.protocol import api
from pybroker.record.batch import CREATE_TIME, decode_batch, iter_batches

TIMESTAMP_TYPES = {CREATE_TIME: "CreateTime", 1: "LogAppendTime"}
# Fetch partition errors after which a metadata refresh finds the new leader.
REFRESH_CODES = {
    errors.NotLeaderOrFollower.code,
    errors.LeaderNotAvailable.code,
    errors.UnknownTopicOrPartition.code,
    errors.FencedLeaderEpoch.code,
    errors.UnknownLeaderEpoch.code,
}


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str  # "CreateTime" or "LogAppendTime"
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


TopicPartition = tuple[str, int]


class Consumer:
    """Read assigned partitions from a position.

    ``auto_offset_reset``: "earliest", "latest" or "none" (raise OffsetOutOfRange) —
    used for partitions without a position and when a position falls out of range.
    """

    def __init__(
        self,
        bootstrap_servers,
        *,
        auto_offset_reset: str = "latest",
        isolation_level: int = 0,
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        fetch_max_bytes: int = 50 * 1024 * 1024,
        max_partition_fetch_bytes: int = 1024 * 1024,
        request_timeout_ms: int = 30_000,
        client_id: str = "pybroker-consumer",
    ):
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(f"auto_offset_reset must be earliest, latest or none, not {auto_offset_reset!r}")
        self.auto_offset_reset = auto_offset_reset
        self.isolation_level = isolation_level
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.max_partition_fetch_bytes = max_partition_fetch_bytes
        self.client = Client(bootstrap_servers, client_id=client_id,
                             timeout=(request_timeout_ms + fetch_max_wait_ms) / 1000.0)
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        # Offsets to resolve before fetching: EARLIEST, LATEST or a timestamp.
        self._pending_reset: dict[TopicPartition, int] = {}
        self._partition_bytes: dict[TopicPartition, int] = {}
        self._buffer: list[ConsumerRecord] = []
        self._buffer_pos = 0
        self.high_watermarks: dict[TopicPartition, int] = {}

    # -- assignment and positions -----------------------------------------------

    def partitions_for(self, topic: str) -> list[int]:
        return self.client.partitions_for(topic, refresh=True)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._drop_buffer()
        self._assignment = list(dict.fromkeys((t, int(p)) for t, p in partitions))
        keep = set(self._assignment)
        self._positions = {tp: o for tp, o in self._positions.items() if tp in keep}
        self._pending_reset = {tp: s for tp, s in self._pending_reset.items() if tp in keep}
        default = EARLIEST if self.auto_offset_reset == "earliest" else LATEST
        for tp in self._assignment:
            if tp not in self._positions and tp not in self._pending_reset:
                if self.auto_offset_reset == "none":
                    continue
                self._pending_reset[tp] = default

    def assignment(self) -> list[TopicPartition]:
        return list(self._assignment)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self._check_assigned(tp)
        self._drop_buffer()
        self._positions[tp] = offset
        self._pending_reset.pop(tp, None)

    def seek_to_beginning(self, partitions: list[TopicPartition] | None = None) -> None:
        self._seek_spec(partitions, EARLIEST)

    def seek_to_end(self, partitions: list[TopicPartition] | None = None) -> None:
        self._seek_spec(partitions, LATEST)

    def seek_to_timestamp(self, partitions: list[TopicPartition] | None, timestamp_ms: int) -> None:
        """First offset whose timestamp is >= timestamp_ms (the end if none is)."""
        self._seek_spec(partitions, timestamp_ms)

    def position(self, tp: TopicPartition) -> int:
        self._check_assigned(tp)
        if tp in self._pending_reset:
            self._resolve_resets()
        if tp not in self._positions:
            raise errors.OffsetOutOfRange(f"{tp[0]}-{tp[1]} has no position and auto_offset_reset is none")
        for rec in self._buffer[self._buffer_pos:]:
            if (rec.topic, rec.partition) == tp:
                return rec.offset
        return self._positions[tp]

    def _seek_spec(self, partitions, spec: int) -> None:
        self._drop_buffer()
        for tp in partitions if partitions is not None else self._assignment:
            self._check_assigned(tp)
            self._pending_reset[tp] = spec
            self._positions.pop(tp, None)

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._assignment:
            raise ValueError(f"{tp[0]}-{tp[1]} is not assigned to this consumer")

    def _drop_buffer(self) -> None:
        # Fetching moved each partition's position past its buffered records: rewind
        # to the first record not handed out, so dropping the buffer loses nothing.
        rewound = set()
        for rec in self._buffer[self._buffer_pos:]:
            tp = (rec.topic, rec.partition)
            if tp not in rewound:
                rewound.add(tp)
                self._positions[tp] = rec.offset
        self._buffer = []
        self._buffer_pos = 0

    def _resolve_resets(self) -> None:
        if not self._pending_reset:
            return
        found = list_offsets(self.client, dict(self._pending_reset), self.isolation_level)
        for tp, (offset, _) in found.items():
            if offset < 0:
                # A timestamp past the last record: Kafka answers -1; start at the end.
                offset = list_offsets(self.client, {tp: LATEST}, self.isolation_level)[tp][0]
            self._positions[tp] = offset
            self._pending_reset.pop(tp, None)

    # -- fetching ----------------------------------------------------------------

    def poll(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records from the assigned partitions, waiting up to ``timeout_ms`` for some."""
        if self._buffer_pos < len(self._buffer):
            return self._take(max_records)
        if not self._assignment:
            return []
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            self._resolve_resets()
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            records = self._fetch_once(min(self.fetch_max_wait_ms, remaining))
            if records:
                self._buffer = records
                self._buffer_pos = 0
                return self._take(max_records)
            if time.monotonic() >= deadline:
                return []

    def _take(self, max_records: int | None) -> list[ConsumerRecord]:
        start = self._buffer_pos
        end = len(self._buffer) if max_records is None else min(len(self._buffer), start + max_records)
        out = self._buffer[start:end]
        self._buffer_pos = end
        if end >= len(self._buffer):
            self._buffer = []
            self._buffer_pos = 0
        return out

    def _fetch_once(self, max_wait_ms: int) -> list[ConsumerRecord]:
        by_leader: dict[int, dict[str, list[dict]]] = {}
        for tp in self._assignment:
            if tp not in self._positions:
                continue
            leader = self.client.leader_for(*tp)
            if leader < 0:
                self.client.refresh([tp[0]])
                continue
            by_leader.setdefault(leader, {}).setdefault(tp[0], []).append({
                "partition": tp[1],
                "current_leader_epoch": -1,
                "fetch_offset": self._positions[tp],
                "last_fetched_epoch": -1,
                "log_start_offset": -1,
                "partition_max_bytes": self._partition_bytes.get(tp, self.max_partition_fetch_bytes),
            })
        if not by_leader:
            time.sleep(min(max_wait_ms, 100) / 1000.0)
            return []
        # Long-poll only when one broker is asked; otherwise one slow broker would hold
        # back the others' data.
        wait = max_wait_ms if len(by_leader) == 1 else min(max_wait_ms, 100)
        records: list[ConsumerRecord] = []
        for leader, topics in by_leader.items():
            body = {
                "replica_id": -1,
                "max_wait_ms": wait,
                "min_bytes": self.fetch_min_bytes,
                "max_bytes": self.fetch_max_bytes,
                "isolation_level": self.isolation_level,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                "forgotten_topics_data": [],
                "rack_id": "",
            }
            try:
                response = self.client.connection(leader).request(api.FETCH, body)
            except (errors.NetworkException, errors.RequestTimedOut):
                self.client.refresh(list(topics))
                continue
            if response.get("error_code"):
                errors.raise_for_code(response["error_code"], "fetch failed")
            for t in response["responses"]:
                for p in t["partitions"]:
                    self._handle_partition(t["topic"], p, records)
        return records

    def _handle_partition(self, topic: str, p: dict, out: list[ConsumerRecord]) -> None:
        tp = (topic, p["partition_index"])
        if tp not in self._positions:
            return
        code = p["error_code"]
        if code == errors.OffsetOutOfRange.code:
            if self.auto_offset_reset == "none":
                raise errors.OffsetOutOfRange(f"offset {self._positions[tp]} is out of range for {topic}-{tp[1]}")
            self._pending_reset[tp] = EARLIEST if self.auto_offset_reset == "earliest" else LATEST
            del self._positions[tp]
            return
        if code in REFRESH_CODES:
            self.client.refresh([topic])
            return
        if code:
            errors.raise_for_code(code, f"fetch of {topic}-{tp[1]}")
        self.high_watermarks[tp] = p["high_watermark"]
        data = p.get("records")
        if not data:
            return
        position = self._positions[tp]
        complete = 0
        for header, view in iter_batches(data):
            complete += 1
            if header.last_offset < position:
                continue
            if not header.is_control:
                ts_type = "LogAppendTime" if header.timestamp_type else "CreateTime"
                for rec in decode_batch(view):
                    if rec.offset >= position:
                        out.append(ConsumerRecord(topic, tp[1], rec.offset, rec.timestamp, ts_type,
                                                  rec.key, rec.value, rec.headers))
            # Offsets inside a batch can have gaps (compaction): the next fetch starts
            # after the batch, not after its last returned record.
            position = header.next_offset
        if complete == 0:
            # Only a partial batch: it is larger than what we asked for (brokers before
            # KIP-74). Ask for more next time, within the request limit.
            limit = self._partition_bytes.get(tp, self.max_partition_fetch_bytes)
            if limit >= self.fetch_max_bytes:
                raise errors.RecordListTooLarge(
                    f"a batch at offset {position} of {topic}-{tp[1]} exceeds {self.fetch_max_bytes} bytes")
            self._partition_bytes[tp] = min(limit * 2, self.fetch_max_bytes)
            return
        self._positions[tp] = position

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
