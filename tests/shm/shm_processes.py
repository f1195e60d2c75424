"""Running code in a separate interpreter (a real second process) for the shared-memory
tests. A module of its own, not conftest: test directories each have a conftest, and
``from conftest import`` picks whichever one was imported first."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
