"""The background scrubber: silent corruption in a closed segment is found, set aside and
reported, and readers go past it; a whole log is left as it is."""
import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from pybroker.broker.log_manager import LogManager
from pybroker.cluster.topics import TopicMetadata
from pybroker.config import BrokerConfig, TopicConfig
from pybroker.record import batch as rb

TOPIC_CONFIG = TopicConfig(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=4096,
                           retention_ms=-1)


def open_partition(tmp_path):
    logs = LogManager(BrokerConfig(data_dir=str(tmp_path / "data"), topic_defaults=TOPIC_CONFIG))
    topic = TopicMetadata("t", 1, config=TOPIC_CONFIG)
    logs.topics["t"] = topic
    partition = logs.ensure_partition(topic, 0)
    now = int(time.time() * 1000)
    for _ in range(60):
        buf = bytearray(rb.build_batch([(b"k", b"v" * 40, [], now)] * 3))
        partition.log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20))
    return logs, partition


def read_offsets(log):
    offsets, offset = [], log.log_start_offset
    while offset < log.log_end_offset:
        chunk = log.read_bytes(offset, 1 << 20)
        batches = list(rb.iter_batches(chunk))
        offsets += [r.offset for r in rb.iter_records(chunk)]
        offset = batches[-1][0].next_offset
    return offsets


def scrub(logs):
    async def one_pass():
        with ThreadPoolExecutor(1) as executor:
            return await logs.scrub(executor, 100e6)
    return asyncio.run(one_pass())


def test_scrubber_quarantines_silent_corruption_in_a_closed_segment(tmp_path, caplog):
    logs, partition = open_partition(tmp_path)
    log = partition.log
    segment = log.segments[1]
    victim = list(segment.batches_from(0))[3]
    with open(segment.log_path, "r+b") as f:  # behind the broker's back: no recovery will look
        f.seek(victim.position + 50)
        f.write(b"\x5a" * 16)
    with caplog.at_level(logging.ERROR, logger="pybroker.log"):
        checked, found = scrub(logs)
    assert found == 1
    assert checked == sum(s.size for s in log.segments[:-1]) + victim.size
    [q] = log.quarantined
    assert (q.first_offset, q.end_offset, q.size) == (victim.base_offset, victim.next_offset, victim.size)
    assert any("corrupt data quarantined" in r.getMessage() for r in caplog.records)
    lost = set(range(victim.base_offset, victim.next_offset))
    assert read_offsets(log) == [o for o in range(log.log_end_offset) if o not in lost]
    assert scrub(logs)[1] == 0  # the repaired segment is whole
    logs.close()


def test_scrubber_leaves_a_whole_log_alone_and_checks_each_closed_segment_once(tmp_path):
    logs, partition = open_partition(tmp_path)
    closed = sum(s.size for s in partition.log.segments[:-1])
    assert scrub(logs) == (closed, 0)
    assert scrub(logs) == (0, 0)
    assert partition.log.quarantined == []
    logs.close()
