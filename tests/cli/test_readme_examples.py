"""The README's examples, run as written against a real 3-broker cluster.

Every ```sh and ```python block of README.md runs, in its own shell or interpreter,
with only the addresses changed: 127.0.0.1:9092 becomes the test cluster (the `pybroker`
tools get ``--bootstrap-server`` first, so a block's own one still wins), the data dir
the test cluster's, and the failover demo's ports and /tmp/demo free ones. A block that
cannot run (it installs, runs forever, or is a fragment) is preceded in the README by
``<!-- readme-test: skip: REASON -->``. Blocks without a language are output or
synopses, not commands.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pybroker.testing import free_port_run


README = Path(__file__).resolve().parents[2] / "README.md"
SKIP = re.compile(r"^<!-- readme-test: skip: (.+) -->$")
RUNNABLE = ("sh", "python")
# Tools that take --bootstrap-server right after their name (perf: after produce|consume).
BOOTSTRAP_TOOLS = ("topics|produce|consume|configs|groups|delete-records|log-dirs|leader-election|"
                   "reassign-partitions|transactions")
SHELL_PRELUDE = f"""
pybroker() {{
  local sub="$1"; shift
  case "$sub" in
    {BOOTSTRAP_TOOLS}) "$PYTHON" -m pybroker.cli.main "$sub" --bootstrap-server "$BOOTSTRAP" "$@" ;;
    perf) local what="$1"; shift; "$PYTHON" -m pybroker.cli.main perf "$what" --bootstrap-server "$BOOTSTRAP" "$@" ;;
    up) "$PYTHON" -m pybroker.cli.main up --http-port 0 "$@" ;;  # 9644 may be another cluster's
    *) "$PYTHON" -m pybroker.cli.main "$sub" "$@" ;;
  esac
}}
set -euo pipefail
"""


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    body: str
    skip: str | None

    @property
    def id(self) -> str:
        first = next((t for t in self.body.splitlines() if t.strip() and not t.startswith("#")), "")
        return f"L{self.line}-{self.lang}-{re.sub(r'[^A-Za-z0-9]+', '-', first)[:40].strip('-')}"


def readme_blocks() -> list[Block]:
    blocks, lines = [], README.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang, start = lines[i][3:].strip(), i
            previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            skip = SKIP.match(previous)
            i += 1
            body = []
            while lines[i] != "```":
                body.append(lines[i])
                i += 1
            blocks.append(Block(start + 1, lang, "\n".join(body) + "\n", skip.group(1) if skip else None))
        i += 1
    return blocks


BLOCKS = [b for b in readme_blocks() if b.lang in RUNNABLE]


def test_every_example_runs_or_says_why_not():
    assert len(BLOCKS) >= 15
    assert all(b.skip is None or len(b.skip) > 10 for b in BLOCKS)
    # Most command examples really run (benchmarks, tool launchers and fragments do not).
    assert sum(b.skip is None for b in BLOCKS) >= 12


# What some blocks must print, beyond exiting with 0.
EXPECTED_OUTPUT = {
    'p.produce("payments"': "b'hello'",
    # The callback prints the record's metadata and None, or None and the error (exit 0).
    "callback=lambda meta, exc: print(meta, exc)": ") None\n",
    "kill -9": "1000\n",  # the failover demo's consumer counts every record
    # The scaling demo: broker 2 joins, takes a replica, and so may not leave.
    "pybroker scale --data /tmp/demo --brokers 3": "brokers: 3 (0,1,2)\n",
    "--brokers 2 || echo refused": "refused\n",
    "--verify --reassignment-json-file move.json": "Reassignment of partition payments-0 is completed.\n",
    "delete-records --offset-json-file": "partition: clicks-0\tlow_watermark: 42\npartition: clicks-1\tlow_watermark: 1200",
}


def run_in_own_group(argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a process group of its own: a block that outlives ``timeout``
    is killed with everything it started (a ``pybroker top`` or ``up`` it left running),
    by the group's id, and reported as exit code -9."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(timed out after {timeout:.0f} s: the block and its processes were killed)"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run_block(block: Block, cluster, workdir: Path) -> str | None:
    """Run one block; None when it did what it should, else what went wrong."""
    data = str(cluster.data_dir)
    text = block.body.replace("127.0.0.1:9092", cluster.bootstrap)
    demo = workdir / "demo"
    if block.lang == "python":
        text = text.replace('"./data"', repr(data))
        result = run_in_own_group([sys.executable, "-c", text], 120, cwd=workdir)
    else:
        base = free_port_run(3)
        for i, port in enumerate(("19092", "19093", "19094")):
            text = text.replace(port, str(base + i))
        text = text.replace("/tmp/demo", str(demo))
        text = text.replace("./pybroker-data", data).replace("pybroker-data/", data + "/")
        text = re.sub(r"(?<=\s)pybroker-data(?=\s)", data, text)
        env = {**os.environ, "PYTHON": sys.executable, "BOOTSTRAP": cluster.bootstrap}
        try:
            result = run_in_own_group(["bash", "-c", SHELL_PRELUDE + text], 180, cwd=workdir, env=env)
        finally:
            if (demo / "run" / "supervisor.pid").exists():
                subprocess.run([sys.executable, "-m", "pybroker.cli.main", "down", "--data", str(demo)],
                               capture_output=True, timeout=60)
    problem = None
    if result.returncode != 0:
        problem = f"exit code {result.returncode}"
    for marker, expected in EXPECTED_OUTPUT.items():
        if marker in block.body and expected not in result.stdout:
            problem = f"output lacks {expected!r}"
    if problem is None:
        return None
    return f"README line {block.line}: {problem}\n{text}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"


@pytest.mark.timeout(900)
def test_readme_examples_run_in_order(pybroker_cluster_factory, tmp_path):
    """In README order on one cluster, as a reader would try them: an example that
    breaks a later one (a topic made compacted, then written without keys) fails."""
    cluster = pybroker_cluster_factory(brokers=3)
    failures = []
    for index, block in enumerate(BLOCKS):
        if block.skip is None:
            workdir = tmp_path / f"b{index}"  # short: a Unix socket path has ~100 bytes
            workdir.mkdir()
            problem = run_block(block, cluster, workdir)
            if problem:
                failures.append(problem)
    assert not failures, "\n\n".join(failures)
