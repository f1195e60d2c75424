"""Fixtures for the shared-memory tests: a unique region name per test, always unlinked,
and a way to run code in a separate interpreter (a real second process)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import posix_ipc
import pytest

from pybroker import shm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def child(code: str, *args: str) -> subprocess.Popen:
    """Start ``code`` in a new interpreter with ``sys.argv[1:] == args``."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_child(code: str, *args: str, timeout: float = 20) -> str:
    proc = child(code, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{err}"
    return out
