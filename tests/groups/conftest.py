"""Fixtures of the consumer-group tests: a 3-broker cluster with no initial rebalance delay."""
from __future__ import annotations

import pytest

from groups_helpers import GROUP_ARGS
from pybroker.testing import BrokerCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A 3-broker cluster shared by the module's tests (each test uses its own topic and group)."""
    c = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=3, extra_args=GROUP_ARGS)
    c.start()
    try:
        yield c
    finally:
        c.stop()
