"""Fixtures of the consumer-group tests: a 3-broker cluster with no initial rebalance delay."""
from __future__ import annotations

import pytest

from groups_helpers import group_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A 3-broker cluster shared by the module's tests (each test uses its own topic and group)."""
    with group_cluster(tmp_path_factory) as c:
        yield c
