"""A broker out of disk: writes fail with KAFKA_STORAGE_ERROR, nothing stored is lost,
and deleting a topic gives its space back even though nothing more can be written."""
import os

import pytest

from pybroker import errors
from pybroker.broker.log_manager import LogManager
from pybroker.cluster.topics import TopicMetadata
from pybroker.config import BrokerConfig, TopicConfig
from pybroker.record import batch as rb


BATCH = rb.build_batch([(None, b"x" * 1000, [], 0)] * 200)


def produce(partition):
    buf = bytearray(BATCH)
    return partition.log.append(memoryview(buf), rb.parse_batches(buf, 1 << 24))


def test_deleting_a_topic_on_a_full_disk_frees_its_space(small_filesystem):
    data = small_filesystem.path / "data"
    config = BrokerConfig(data_dir=str(data), topic_defaults=TopicConfig(segment_bytes=1 << 20))
    logs = LogManager(config)
    topic = TopicMetadata("doomed", 1, config=config.topic_defaults)
    logs.topics[topic.name] = topic
    partition = logs.ensure_partition(topic, 0)
    with pytest.raises(errors.KafkaStorageError):
        for _ in range(10_000):
            produce(partition)
    held = partition.log.size_bytes
    assert held > 32 << 20
    small_filesystem.fill()  # not a byte left, for checkpoints either
    before = small_filesystem.free_bytes()
    logs.drop_partition("doomed", 0)
    assert small_filesystem.free_bytes() - before >= held
    assert os.listdir(data) == [n for n in os.listdir(data) if not n.startswith("doomed")]
    logs.close()
    # Nothing comes back after a restart, as a partition or as a -stray.
    again = LogManager(config)
    assert again.local_partition_dirs() == set()
    assert not [n for n in os.listdir(data) if n.startswith("doomed")]
    again.close()


def test_a_full_disk_fails_appends_with_storage_error_and_recovers_when_space_returns(small_filesystem):
    data = small_filesystem.path / "data"
    config = BrokerConfig(data_dir=str(data), topic_defaults=TopicConfig(segment_bytes=1 << 20))
    logs = LogManager(config)
    topic = TopicMetadata("t", 1, config=config.topic_defaults)
    logs.topics[topic.name] = topic
    partition = logs.ensure_partition(topic, 0)
    produce(partition)
    filler = small_filesystem.fill()
    end = partition.log.log_end_offset
    with pytest.raises(errors.KafkaStorageError):
        produce(partition)
    assert partition.log.log_end_offset == end  # a failed write leaves nothing half-written
    os.unlink(filler)
    info = produce(partition)
    assert info.first_offset == end
    logs.close()
