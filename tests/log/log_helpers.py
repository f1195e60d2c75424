"""Helpers shared by the log tests: building and appending batches, reading back."""
import time

from pybroker.log import Log
from pybroker.record import batch as rb

NOW = int(time.time() * 1000)


def make_batch(n_records: int = 3, value_size: int = 20, timestamp: int | None = None) -> bytearray:
    ts = NOW if timestamp is None else timestamp
    return bytearray(rb.build_batch([(b"k%d" % i, b"v" * value_size, [], ts) for i in range(n_records)]))


def append(log: Log, *batches: bytearray, now_ms: int = NOW):
    buf = bytearray(b"".join(batches))
    return log.append(memoryview(buf), rb.parse_batches(buf, 1 << 24), now_ms=now_ms)


def offsets(data: bytes) -> list[int]:
    return [r.offset for r in rb.iter_records(data)]


def read_all(log: Log) -> bytes:
    """Every batch from the log start, read segment by segment as a consumer would."""
    data, offset = b"", log.log_start_offset
    while offset < log.log_end_offset:
        chunk = log.read_bytes(offset, 1 << 22)
        data += chunk
        # The next batch's offsets start after this one's last offset delta, whatever
        # records compaction left in it.
        offset = list(rb.iter_batches(chunk))[-1][0].next_offset
    return data
