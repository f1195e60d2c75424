"""Fixtures shared by the CLI tests."""
import pytest

from pybroker.testing import BrokerCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One single-broker cluster per test module: the tests use distinct topics, and a
    start costs about a second."""
    running = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"))
    running.start()
    try:
        yield running
    finally:
        running.stop()
