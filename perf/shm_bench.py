"""What the shared-memory tail ring buys over sockets for moving record batches.

A writer process hands record batches (``--records`` records of ``--size`` bytes each, a
real v2 batch built by pybroker.record) to a reader process over three transports:

- ring: the writer appends to its tail ring (pybroker.shm), the reader polls a
  ``TailReader``; flow control is the reader's acknowledged offset, published in the
  offsets table, so the writer never laps it (a lap would fall back to the socket);
- unix: length-prefixed frames over a Unix stream socket;
- tcp: the same frames over loopback TCP.

Each transport runs twice: flat out (throughput, and latency under that load) and paced
at one batch per ``--pace-ms`` (latency without queueing). Latency is one way, from just
before the writer hands a batch over to just after the reader holds a copy of it, on
CLOCK_MONOTONIC (system-wide, so comparable across processes); the writer stamps the
time into the batch's baseOffset field, which a broker rewrites anyway.

The ring reader busy-polls, which costs a core while idle; the socket readers sleep in
recv. The ring figures are therefore a best case for a reader with a core to spare.

    python perf/shm_bench.py                   # 2,000 batches of 1,000 x 100 B, ~10 s

Prints a markdown table ready for perf/RESULTS.md.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pybroker import shm  # noqa: E402
from pybroker.record.batch import build_batch  # noqa: E402

STAMP = struct.Struct(">q")   # baseOffset field, reused as the send time (ns)
FRAME = struct.Struct(">I")   # length prefix of a socket frame
# The topic id of the benchmark's partitions (ring entries and rows name one).
BENCH_TOPIC_ID = bytes(range(1, 17))
# One batch per read, as one socket frame carries: larger reads return one joined bytes
# object per call, and allocating ~1 MiB afresh each time costs page faults that swamp
# the copy (measured ~28 us per batch at 1 MiB against ~6 us at one batch).
FETCH_MAX_BYTES = 1


def make_batch(records: int, size: int) -> bytes:
    value = os.urandom(size)
    return build_batch([(None, value, [], None)] * records)


# --- writers (child process) -------------------------------------------------------

def ring_writer(name: str, slot: int, ack_slot: int, batch: bytes, records: int, count: int,
                pace_s: float, window: int, go) -> None:
    region = shm.SharedRegion.attach(name)
    ring = region.ring(0)
    buf = bytearray(batch)
    key = shm.RingKey(slot, BENCH_TOPIC_ID, 0)
    # One lap of filler first: a fresh shared-memory page costs a zero-fill fault on first
    # touch, which a long-lived broker's ring pays once, not per batch.
    for lap in range(ring.capacity // len(buf) + 1):
        ring.append(shm.RingKey(slot + 1, BENCH_TOPIC_ID, 0), lap, lap, buf)
    go.wait()
    for i in range(count):
        base = i * records
        while base - window * records > _acked(region, ack_slot):
            pass  # the reader is a window behind: wait rather than lap it
        if pace_s:
            time.sleep(pace_s)
        STAMP.pack_into(buf, 0, time.monotonic_ns())
        ring.append(key, base, base + records - 1, buf)
        # As a leader does: publish the new log end, which tells readers what to expect.
        region.offsets.write(slot, BENCH_TOPIC_ID, 0, 0, 0, base + records, base + records, 0)
    region.close()


def _acked(region, ack_slot: int) -> int:
    return region.offsets.read(ack_slot).log_end_offset


def socket_writer(family: int, address, batch: bytes, count: int, pace_s: float, go) -> None:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.connect(address)
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(batch)
    header = FRAME.pack(len(buf))
    go.wait()
    for _ in range(count):
        if pace_s:
            time.sleep(pace_s)
        STAMP.pack_into(buf, 0, time.monotonic_ns())
        sock.sendmsg([header, buf])
    sock.close()


# --- readers (this process) ---------------------------------------------------------

def run_ring(batch: bytes, records: int, count: int, pace_s: float, ring_bytes: int,
             window: int):
    name = f"/pybroker-bench-{uuid.uuid4().hex[:12]}"
    region = shm.SharedRegion.create(name, brokers=2, slots=8, ring_bytes=ring_bytes,
                                     ring_count=1)
    try:
        slot = region.offsets.allocate("bench", 0, BENCH_TOPIC_ID)
        region.offsets.write(slot, BENCH_TOPIC_ID, 0, 0, 0, 0, 0, 0)
        ack_slot = region.offsets.allocate("bench-ack", 0, BENCH_TOPIC_ID)
        region.offsets.write(ack_slot, BENCH_TOPIC_ID, 1, 0, 0, 0, 0, 0)
        entry = shm.tail_ring.ENTRY_SIZE + len(batch)
        window = max(1, min(window, ring_bytes // entry // 2))
        go = multiprocessing.Event()
        writer = multiprocessing.Process(daemon=True, target=ring_writer, args=(
            name, slot, ack_slot, batch, records, count, pace_s, window, go))
        writer.start()
        reader = shm.TailReader(region.ring(0))
        latencies = []
        want = 0
        end = count * records
        size = len(batch)
        go.set()
        started = time.monotonic_ns()
        while want < end:
            # The log end is read first: the writer appends before publishing it, so any
            # offset below it must then be in the ring.
            log_end = region.offsets.read(slot).log_end_offset
            data = reader.read_from(shm.RingKey(slot, BENCH_TOPIC_ID, 0), want, FETCH_MAX_BYTES)
            if not data:
                # None before the first batch (an empty ring vouches for nothing); after
                # that, only a lap, which the flow control rules out.
                if data is None and want < log_end:
                    raise RuntimeError(f"ring lost offset {want}: the flow control failed")
                continue
            now = time.monotonic_ns()
            for pos in range(0, len(data), size):
                latencies.append(now - STAMP.unpack_from(data, pos)[0])
            want += len(data) // size * records
            region.offsets.write(ack_slot, BENCH_TOPIC_ID, 1, 0, 0, want, want, 0)
        elapsed = time.monotonic_ns() - started
        writer.join()
        return elapsed, latencies
    finally:
        region.close()
        region.unlink()


def run_socket(family: int, batch: bytes, count: int, pace_s: float):
    with tempfile.TemporaryDirectory() as tmp:
        listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            address = os.path.join(tmp, "bench.sock")
        else:
            address = ("127.0.0.1", 0)
        listener.bind(address)
        listener.listen(1)
        address = listener.getsockname()
        go = multiprocessing.Event()
        writer = multiprocessing.Process(daemon=True, target=socket_writer,
                                         args=(family, address, batch, count, pace_s, go))
        writer.start()
        conn, _ = listener.accept()
        listener.close()
        size = len(batch)
        frame = bytearray(FRAME.size + size)
        view = memoryview(frame)
        latencies = []
        go.set()
        started = time.monotonic_ns()
        for _ in range(count):
            got = 0
            while got < len(frame):
                n = conn.recv_into(view[got:])
                if n == 0:
                    raise RuntimeError("writer closed the socket early")
                got += n
            data = bytes(view[FRAME.size:])  # the same one copy the ring reader makes
            latencies.append(time.monotonic_ns() - STAMP.unpack_from(data, 0)[0])
        elapsed = time.monotonic_ns() - started
        view.release()
        conn.close()
        writer.join()
        return elapsed, latencies


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000, help="batches per throughput run")
    parser.add_argument("--records", type=int, default=1000, help="records per batch")
    parser.add_argument("--size", type=int, default=100, help="bytes per record value")
    parser.add_argument("--ring-mib", type=int, default=16, help="tail ring size")
    parser.add_argument("--window", type=int, default=8,
                        help="batches the ring writer may run ahead of the reader (a socket "
                             "buffer holds about two)")
    parser.add_argument("--paced", type=int, default=300, help="batches per paced run")
    parser.add_argument("--pace-ms", type=float, default=1.0, help="gap between paced batches")
    args = parser.parse_args(argv)
    multiprocessing.set_start_method("fork")
    batch = make_batch(args.records, args.size)
    mb = len(batch) / 1e6
    transports = {
        "ring (shm)": lambda n, pace: run_ring(batch, args.records, n, pace, args.ring_mib << 20,
                                              args.window),
        "unix socket": lambda n, pace: run_socket(socket.AF_UNIX, batch, n, pace),
        "tcp loopback": lambda n, pace: run_socket(socket.AF_INET, batch, n, pace),
    }
    print(f"{args.batches} batches of {args.records} x {args.size} B records "
          f"({len(batch):,} B per batch); paced: {args.paced} batches, one per "
          f"{args.pace_ms} ms; {os.cpu_count()} CPUs\n")
    print("| transport | MB/s | batches/s | records/s | p50 µs loaded | p99 µs loaded "
          "| p50 µs paced | p99 µs paced |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, run in transports.items():
        elapsed, loaded = run(args.batches, 0.0)
        _, paced = run(args.paced, args.pace_ms / 1000)
        seconds = elapsed / 1e9
        print(f"| {label} | {args.batches * mb / seconds:,.0f} | {args.batches / seconds:,.0f} "
              f"| {args.batches * args.records / seconds:,.0f} "
              f"| {percentile(loaded, 0.5) / 1e3:,.0f} | {percentile(loaded, 0.99) / 1e3:,.0f} "
              f"| {percentile(paced, 0.5) / 1e3:,.1f} | {percentile(paced, 0.99) / 1e3:,.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
