"""The machine's own ceilings for a broker: sequential append and loopback transfer.

- append: ``os.write`` of 1 MiB chunks to a fresh file in ``--dir`` (page cache), and the
  same with an ``fsync`` every 16 MiB (what a flush policy costs);
- sendfile: ``os.sendfile`` from that file into a loopback TCP socket, a reader thread
  draining it with ``recv_into`` (what a zero-copy Fetch can reach); and, for comparison,
  ``send`` of 1 MiB ``memoryview`` slices of an ``mmap`` of the same file, and both over a
  Unix socket.

    python perf/machine_limits.py              # 1 GiB each, a few seconds
    python perf/machine_limits.py --mib 256 --dir /var/tmp

Prints a markdown table ready for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import mmap
import os
import socket
import sys
import tempfile
import threading
import time

MIB = 1024 * 1024
CHUNK = MIB
FSYNC_EVERY = 16 * MIB


def append_bandwidth(path: str, total: int, fsync_every: int | None) -> float:
    """Bytes per second of sequential 1 MiB appends to a new file at ``path``."""
    block = os.urandom(CHUNK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        written = since_sync = 0
        start = time.perf_counter()
        while written < total:
            n = os.write(fd, block)
            written += n
            since_sync += n
            if fsync_every and since_sync >= fsync_every:
                os.fsync(fd)
                since_sync = 0
        if fsync_every:
            os.fsync(fd)
        return written / (time.perf_counter() - start)
    finally:
        os.close(fd)


def _drain(conn: socket.socket, expected: int, received: list[int]) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    got = 0
    while got < expected:
        n = conn.recv_into(view)
        if not n:
            break
        got += n
    received.append(got)


def _socket_pair(family: int) -> tuple[socket.socket, socket.socket, object]:
    """(sender, receiver, cleanup) connected over loopback TCP or a Unix socket."""
    if family == socket.AF_INET:
        listener = socket.create_server(("127.0.0.1", 0))
        address = listener.getsockname()
        cleanup = None
    else:
        tmp = tempfile.mkdtemp(prefix="pb-limits-")
        address = os.path.join(tmp, "s")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(1)
        cleanup = (address, tmp)
    sender = socket.socket(family, socket.SOCK_STREAM)
    sender.connect(address)
    receiver, _ = listener.accept()
    listener.close()
    return sender, receiver, cleanup


def transfer_bandwidth(path: str, family: int, method: str) -> float:
    """Bytes per second moving the whole file at ``path`` through a socket pair."""
    size = os.path.getsize(path)
    sender, receiver, cleanup = _socket_pair(family)
    received: list[int] = []
    reader = threading.Thread(target=_drain, args=(receiver, size, received))
    reader.start()
    try:
        with open(path, "rb") as f:
            start = time.perf_counter()
            if method == "sendfile":
                offset = 0
                while offset < size:
                    sent = os.sendfile(sender.fileno(), f.fileno(), offset, size - offset)
                    if sent == 0:  # the file shrank underneath us: sendfile would spin
                        raise RuntimeError("sendfile returned 0 before the end of file")
                    offset += sent
            else:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    view = memoryview(mapped)
                    try:
                        for offset in range(0, size, CHUNK):
                            sender.sendall(view[offset:offset + CHUNK])
                    finally:
                        view.release()
            sender.shutdown(socket.SHUT_WR)
            reader.join()
            elapsed = time.perf_counter() - start
    finally:
        sender.close()
        receiver.close()
        if cleanup:
            os.unlink(cleanup[0])
            os.rmdir(cleanup[1])
    if received != [size]:
        raise RuntimeError(f"receiver got {received} of {size} bytes")
    return size / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB written and transferred per test")
    parser.add_argument("--dir", default=None, help="directory for the test file (default: tmp)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per test; the median is shown")
    args = parser.parse_args(argv)
    total = args.mib * MIB

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pb-limits-", dir=args.dir) as tmp:
        path = os.path.join(tmp, "segment.log")

        def median(fn) -> float:
            values = sorted(fn() for _ in range(args.repeat))
            return values[len(values) // 2]

        rows.append(("append, os.write 1 MiB (page cache)",
                     median(lambda: append_bandwidth(path, total, None))))
        rows.append((f"append, os.write 1 MiB + fsync every {FSYNC_EVERY // MIB} MiB",
                     median(lambda: append_bandwidth(path, total, FSYNC_EVERY))))
        append_bandwidth(path, total, None)  # the file the transfers read, now in page cache
        for family, label in ((socket.AF_INET, "TCP loopback"), (socket.AF_UNIX, "Unix socket")):
            for method, how in (("sendfile", "os.sendfile"), ("mmap", "send(memoryview(mmap)) 1 MiB")):
                rows.append((f"{label}, {how}",
                             median(lambda: transfer_bandwidth(path, family, method))))

    print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{args.mib} MiB per run, median of {args.repeat}.")
    print()
    print("| ceiling | GB/s |")
    print("|---|---:|")
    for name, bandwidth in rows:
        print(f"| {name} | {bandwidth / 1e9:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
