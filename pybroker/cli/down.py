"""`pybroker down --data DIR`: stop a cluster started with `pybroker up --daemon`.

The supervisor stops its brokers. A supervisor that is gone (SIGKILLed, crashed) leaves
its brokers serving — a new ``pybroker up`` would adopt them — so ``down`` then stops
those orphans itself, found through their pid files in ``<data>/run``, and clears what
the dead supervisor left behind (its pid file, control socket, shared-memory region).
"""
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
    from pybroker.supervisor.arbiter import pid_alive, read_pid, run_dir, running_brokers

    data = os.path.abspath(args.data)
    pid = read_pid(os.path.join(run_dir(data), "supervisor.pid"))
    if pid is not None and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        if _wait_gone([pid], args.timeout):
            print(f"stopped supervisor {pid}")
            return 0
        print(f"pybroker down: supervisor {pid} still running after {args.timeout:.0f} s", file=sys.stderr)
        return 1
    orphans = running_brokers(data)
    if pid is None and not orphans:
        print(f"pybroker down: no supervisor pid file in {run_dir(data)}", file=sys.stderr)
        return 1
    if pid is not None:
        print(f"supervisor pid {pid} is not running; stopping the {len(orphans)} broker(s) it left")
    return stop_orphans(data, orphans, args.timeout)


def stop_orphans(data: str, orphans: dict[int, int], timeout: float) -> int:
    """SIGTERM each broker (it flushes and marks a clean shutdown), wait, then clear the
    dead supervisor's leftovers; brokers still running after ``timeout`` are named."""
    for pid in orphans.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _wait_gone(list(orphans.values()), timeout)
    from pybroker.supervisor.arbiter import pid_alive

    left = {node: pid for node, pid in orphans.items() if pid_alive(pid)}
    for node, pid in sorted(orphans.items()):
        if node not in left:
            print(f"stopped broker {node} (pid {pid})")
    if left:
        pids = " ".join(str(pid) for pid in left.values())
        print(f"pybroker down: broker pid(s) {pids} still running after {timeout:.0f} s; "
              f"stop them with: kill -9 {pids}", file=sys.stderr)
        return 1
    _clear_leftovers(data)
    return 0


def _clear_leftovers(data: str) -> None:
    from pybroker.supervisor.arbiter import SOCKET_NAME, run_dir

    for name in ("supervisor.pid", SOCKET_NAME):
        try:
            os.unlink(os.path.join(run_dir(data), name))
        except FileNotFoundError:
            pass
    unlink_region(data)


def unlink_region(data_dir) -> None:
    """Remove the cluster's shared-memory region, which only a clean supervisor stop
    unlinks: a killed cluster's would stay in /dev/shm."""
    import posix_ipc

    from pybroker.shm import region_name

    try:
        posix_ipc.unlink_shared_memory(region_name(str(data_dir)))
    except posix_ipc.ExistentialError:
        pass


def _wait_gone(pids: list[int], timeout: float) -> bool:
    from pybroker.supervisor.arbiter import pid_alive

    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
