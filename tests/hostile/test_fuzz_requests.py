"""The request fuzzer (tools/fuzz_requests.py): mutated captured requests never crash the
broker, never grow it past a bound, and leave it serving. A few seconds by default; the
long run is by hand (see the tool's docstring) or with -m slow."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_requests.py"


def run_fuzzer(tmp_path, *args: str, timeout: float) -> dict:
    done = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path)
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert done.returncode == 0, f"fuzzer failed: {summary['failures']}\n{done.stderr[-3000:]}"
    return summary


def test_a_few_seconds_of_mutated_requests(tmp_path):
    summary = run_fuzzer(tmp_path, "--seconds", "4", "--seed", "20261202", "--rss-limit-mib", "256", timeout=110)
    assert summary["frames_sent"] > 100 and summary["corpus_frames"] > 10


@pytest.mark.slow
def test_two_hundred_thousand_mutated_requests(tmp_path):
    summary = run_fuzzer(tmp_path, "--frames", "200000", "--seconds", "0", "--rss-limit-mib", "256", timeout=3600)
    assert summary["frames_sent"] == 200000
