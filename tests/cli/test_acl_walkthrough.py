"""The README's ACL walk-through (the sh block of "### Authorization"), run as written
against its own SASL cluster; only the listener's fixed ports become free ones. It checks
what the walk-through shows a person: alice is refused until the ACLs are added, reads
once they are, and a DENY beats a PREFIXED ALLOW."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pybroker.testing import free_port_run

README = Path(__file__).resolve().parents[2] / "README.md"
PORTS = (9192, 9193, 9194)


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("### Authorization\n"):]
    return re.search(r"```sh\n(.*?)\n```", section, re.S).group(1)


@pytest.mark.timeout(240)
def test_the_readme_acl_walkthrough_runs_as_written(tmp_path):
    script = walkthrough()
    assert "--authorizer acl" in script and "pybroker down" in script
    base = free_port_run(len(PORTS))
    for i, port in enumerate(PORTS):
        script = script.replace(str(port), str(base + i))
    prelude = (f'pybroker() {{ local sub="$1"; shift; if [ "$sub" = up ]; then '
               f'"{sys.executable}" -m pybroker.cli.main up --http-port 0 "$@"; '
               f'else "{sys.executable}" -m pybroker.cli.main "$sub" "$@"; fi; }}\nset -euo pipefail\n')
    try:
        done = subprocess.run(["bash", "-c", prelude + script], cwd=tmp_path, capture_output=True, text=True,
                              timeout=200, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        pid_file = tmp_path / "acl-data" / "run" / "supervisor.pid"
        if pid_file.exists():  # the block failed before its `pybroker down`
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    # Refused twice: produce before any ACL, and the read of audit-secrets that a DENY forbids.
    assert done.stdout.count("refused") == 2, out
    assert "TOPIC_AUTHORIZATION_FAILED: topic 'orders'" in done.stderr
    assert "TOPIC_AUTHORIZATION_FAILED: fetch of audit-secrets-0" in done.stderr
    assert "order-1" in done.stdout.splitlines()
    assert "(principal=User:alice, host=*, operation=READ, permissionType=DENY)" in done.stdout
    assert "(principal=User:*, host=*, operation=READ, permissionType=ALLOW)" in done.stdout
