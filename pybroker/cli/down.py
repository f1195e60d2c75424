"""`pybroker down --data DIR`: stop a cluster started with `pybroker up --daemon`."""
from __future__ import annotations

import os
import signal
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser("down", help="stop the cluster running on a data directory")
    p.add_argument("--data", default="./pybroker-data", help="data directory (default ./pybroker-data)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a clean stop (default 30)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pybroker.supervisor.arbiter import read_pid, run_dir

    data = os.path.abspath(args.data)
    pid = read_pid(os.path.join(run_dir(data), "supervisor.pid"))
    if pid is None:
        print(f"pybroker down: no supervisor pid file in {run_dir(data)}", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"pybroker down: supervisor pid {pid} is not running", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"stopped supervisor {pid}")
            return 0
        time.sleep(0.1)
    print(f"pybroker down: supervisor {pid} still running after {args.timeout:.0f} s", file=sys.stderr)
    return 1
