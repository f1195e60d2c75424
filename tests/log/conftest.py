import pytest

from pybroker.config import TopicConfig


@pytest.fixture
def config():
    return TopicConfig(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=4096,
                       retention_ms=-1)


@pytest.fixture
def log_dir(tmp_path):
    return str(tmp_path / "topic-0")
