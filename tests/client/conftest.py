"""Fixtures of the client tests: one pybroker cluster per test module."""
import pytest

from pybroker.testing import BrokerCluster


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory):
    """bootstrap.servers of a single-broker cluster shared by the module's tests."""
    cluster = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"))
    cluster.start()
    try:
        yield cluster.bootstrap
    finally:
        cluster.stop()
