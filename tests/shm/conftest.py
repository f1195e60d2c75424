"""Fixtures for the shared-memory tests: a unique region name per test, always unlinked."""
from __future__ import annotations

import uuid

import posix_ipc
import pytest

from pybroker import shm


@pytest.fixture
def region_name():
    name = f"/pybroker-test-{uuid.uuid4().hex[:16]}"
    yield name
    try:
        posix_ipc.unlink_shared_memory(name)
    except posix_ipc.ExistentialError:
        pass


@pytest.fixture
def region(region_name):
    r = shm.SharedRegion.create(region_name, brokers=8, slots=64, ring_bytes=64 * 1024,
                                ring_count=3)
    yield r
    r.close()
    r.unlink()
