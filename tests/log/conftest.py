import time

import pytest

from pybroker.config import TopicConfig
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


@pytest.fixture
def config():
    return TopicConfig(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=4096,
                       retention_ms=-1)


@pytest.fixture
def log_dir(tmp_path):
    return str(tmp_path / "topic-0")
