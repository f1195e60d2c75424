"""Running code in a separate interpreter (a real second process) for the shared-memory
tests. A module of its own, not conftest: test directories each have a conftest, and
``from conftest import`` picks whichever one was imported first."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from pybroker import shm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The topic id the tests' partitions carry, and the ring key of a test partition by slot.
TOPIC_ID = bytes(range(1, 17))
OTHER_TOPIC_ID = bytes(range(101, 117))


def key(slot: int, topic_id: bytes = TOPIC_ID, partition: int = 0) -> shm.RingKey:
    return shm.RingKey(slot, topic_id, partition)


# The same names inside a child interpreter.
_PRELUDE = """\
from pybroker import shm as _shm
TOPIC_ID = bytes(range(1, 17))
def key(slot):
    return _shm.RingKey(slot, TOPIC_ID, 0)
"""


def child(code: str, *args: str) -> subprocess.Popen:
    """Start ``code`` in a new interpreter with ``sys.argv[1:] == args`` (``TOPIC_ID`` and
    ``key`` defined as here)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.Popen([sys.executable, "-c", _PRELUDE + textwrap.dedent(code), *args], env=env,
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
