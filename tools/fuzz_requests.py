"""A mutation fuzzer for the broker's request path.

It captures real requests first: pybroker's own client (producer, group consumer,
admin) runs a short workload against the broker and every frame it encodes is kept.
Then it sends mutations of those frames on a few raw connections: bytes flipped, ints
set to edge values (0, -1, 2**15-1, 2**31-1, -2**31), truncations, garbage appended,
two frames spliced. Each mutated frame keeps a truthful size prefix so the broker reads
all of it; now and then a connection sends a frame whose prefix lies and is dropped.

It asserts what must hold whatever the bytes: no broker process dies or restarts, the
broker's RSS stays under ``--rss-limit-mib`` (sampled every 0.2 s), no topic with an
illegal name exists, and afterwards a normal client still produces and reads back.

    python tools/fuzz_requests.py --seconds 5                 # the bounded run the tests use
    python tools/fuzz_requests.py --frames 200000 --seconds 0 # a long run by hand
    python tools/fuzz_requests.py --bootstrap 127.0.0.1:9092 --broker-pid PID

Exit status 0 when every check held, 1 otherwise; the summary is printed as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pybroker.protocol import api  # noqa: E402  (runnable from a checkout)

MIB = 1024 * 1024
SIZE = struct.Struct(">i")
EDGE_INT16 = [0, -1, 1, 0x7FFF, -0x8000]
EDGE_INT32 = [0, -1, 1, 0x7FFFFFFF, -0x80000000, 0x10000]
LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


# -- capture ----------------------------------------------------------------------------

def capture(bootstrap: str) -> list[bytes]:
    """Request frames (size prefix included) that pybroker's client sends for a small
    workload: metadata, topic admin, produce, group join/sync/heartbeat/commit, fetch."""
    from pybroker.client.admin import Admin, NewTopic
    from pybroker.client.consumer import Consumer
    from pybroker.client.producer import Producer

    frames: list[bytes] = []
    real = api.encode_request

    def recording(*args, **kwargs):
        data = real(*args, **kwargs)
        frames.append(bytes(data))
        return data

    api.encode_request = recording
    try:
        topic = f"fuzz-seed-{uuid.uuid4().hex[:6]}"
        with Admin(bootstrap, timeout=20) as admin:
            admin.create_topics([NewTopic(topic, 2, 1)])
            admin.describe_configs(topic)
            admin.list_groups()
        producer = Producer(bootstrap, {"linger.ms": 0})
        for i in range(20):
            producer.send(topic, value=b"value-%d" % i, key=b"key-%d" % (i % 3))
        producer.flush()
        producer.close()
        consumer = Consumer(bootstrap, {"group.id": f"fuzz-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                                        "enable.auto.commit": False})
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        seen = 0
        while seen < 20 and time.monotonic() < deadline:
            seen += len(consumer.poll(500))
        consumer.commit_sync()
        consumer.close()
        with Admin(bootstrap, timeout=20) as admin:
            admin.list_groups()
            admin.list_offsets({(topic, 0): -1, (topic, 1): -2})
    finally:
        api.encode_request = real
    return frames


# -- mutation ---------------------------------------------------------------------------

def mutate(rng: random.Random, frame: bytes, corpus: list[bytes]) -> bytes:
    """A mutated payload (without size prefix) of ``frame``."""
    body = bytearray(frame[SIZE.size:])
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        if not body:
            body = bytearray(rng.randbytes(rng.randint(1, 16)))
        at = rng.randrange(len(body))
        if kind == 0:
            body[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            body[at] = rng.randrange(256)
        elif kind == 2 and at + 2 <= len(body):
            struct.pack_into(">h", body, at, rng.choice(EDGE_INT16))
        elif kind == 3 and at + 4 <= len(body):
            struct.pack_into(">i", body, at, rng.choice(EDGE_INT32))
        elif kind == 4:
            del body[at:]
        elif kind == 5:
            body += rng.randbytes(rng.randint(1, 64))
        else:
            other = rng.choice(corpus)[SIZE.size:]
            cut = rng.randrange(len(other) + 1)
            body[at:] = other[cut:]
    return bytes(body)


# -- the run ----------------------------------------------------------------------------

class RssWatch(threading.Thread):
    def __init__(self, process: psutil.Process, interval: float = 0.2):
        super().__init__(daemon=True)
        self.process = process
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            self.stop.wait(self.interval)


def _drain(sock: socket.socket) -> tuple[int, bool]:
    """Read what has come back: (responses seen, connection closed)."""
    responses = 0
    sock.settimeout(0.05)
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return responses, True
            responses += 1
    except (socket.timeout, TimeoutError, BlockingIOError):
        return responses, False
    except OSError:
        return responses, True


def fuzz(bootstrap: str, broker: psutil.Process, frames: int, seconds: float, seed: int,
         connections: int = 4) -> dict:
    rng = random.Random(seed)
    corpus = capture(bootstrap)
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    address = (host, int(port))
    socks: list[socket.socket | None] = [None] * connections
    sent = closed = responses = lies = 0
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    try:
        while (frames <= 0 or sent < frames) and time.monotonic() < deadline:
            slot = rng.randrange(connections)
            if socks[slot] is None:
                socks[slot] = socket.create_connection(address, timeout=5)
            sock = socks[slot]
            payload = mutate(rng, rng.choice(corpus), corpus)
            if rng.random() < 0.01:
                # A prefix that lies: longer than what follows, then the connection goes.
                data = SIZE.pack(len(payload) + rng.randint(1, 1 << 20)) + payload
                lies += 1
            else:
                data = SIZE.pack(len(payload)) + payload
            try:
                sock.sendall(data)
                sent += 1
            except OSError:
                pass
            got, gone = _drain(sock) if sent % 8 == 0 or data[:4] != SIZE.pack(len(payload)) else (0, False)
            responses += got
            if gone or data[:4] != SIZE.pack(len(payload)):
                sock.close()
                socks[slot] = None
                closed += 1
    finally:
        for sock in socks:
            if sock is not None:
                sock.close()
    return {"seed": seed, "corpus_frames": len(corpus), "frames_sent": sent, "lying_prefixes": lies,
            "responses": responses, "connections_closed": closed}


def check_serves(bootstrap: str) -> None:
    from pybroker.client.admin import Admin
    from pybroker.client.consumer import Consumer
    from pybroker.client.producer import Producer

    topic = f"fuzz-after-{uuid.uuid4().hex[:6]}"
    producer = Producer(bootstrap, {"linger.ms": 0})
    producer.send(topic, value=b"still-serving").get(30)
    producer.close()
    consumer = Consumer(bootstrap, {"auto.offset.reset": "earliest"})
    consumer.assign([(topic, 0)])
    deadline = time.monotonic() + 20
    values = []
    while not values and time.monotonic() < deadline:
        values = [r.value for r in consumer.poll(500)]
    consumer.close()
    if values != [b"still-serving"]:
        raise AssertionError(f"after fuzzing, a produced record read back as {values!r}")
    with Admin(bootstrap, timeout=20):
        pass


def topic_names(bootstrap: str) -> list[str]:
    from pybroker.client.cluster import Client

    client = Client(bootstrap, client_id="fuzz-check", timeout=20)
    try:
        response = client.request_any(api.METADATA, {"topics": None, "allow_auto_topic_creation": False})
        return [t["name"] for t in response["topics"]]
    finally:
        client.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    p.add_argument("--seconds", type=float, default=10.0, help="stop after this long (0: no limit)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--rss-limit-mib", type=int, default=256, help="the broker's RSS must stay below this")
    p.add_argument("--bootstrap", help="fuzz a running broker instead of starting one")
    p.add_argument("--broker-pid", type=int, help="with --bootstrap: the broker process to watch")
    args = p.parse_args(argv)
    if args.frames <= 0 and args.seconds <= 0:
        p.error("give --frames or --seconds")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)

    cluster = None
    if args.bootstrap:
        if args.broker_pid is None:
            p.error("--bootstrap needs --broker-pid")
        bootstrap, broker = args.bootstrap, psutil.Process(args.broker_pid)
    else:
        from pybroker.testing import BrokerCluster

        cluster = BrokerCluster(data_dir=tempfile.mkdtemp(prefix="pybroker-fuzz-"), brokers=1).start()
        bootstrap = cluster.bootstrap
        root = psutil.Process(cluster.pid)
        broker = next(c for c in root.children(recursive=True) if "pybroker.broker.main" in c.cmdline())
    failures: list[str] = []
    watch = RssWatch(broker)
    watch.start()
    started = time.monotonic()
    try:
        idle = broker.memory_info().rss
        summary = fuzz(bootstrap, broker, args.frames, args.seconds, seed, args.connections)
        summary["seconds"] = round(time.monotonic() - started, 1)
        if not broker.is_running():
            failures.append(f"broker pid {broker.pid} died")
        else:
            time.sleep(2)
            summary["rss_idle_mib"] = round(idle / MIB, 1)
            summary["rss_peak_mib"] = round(watch.peak / MIB, 1)
            summary["rss_after_mib"] = round(broker.memory_info().rss / MIB, 1)
            if watch.peak > args.rss_limit_mib * MIB:
                failures.append(f"broker RSS peaked at {watch.peak / MIB:.0f} MiB (limit {args.rss_limit_mib})")
            try:
                check_serves(bootstrap)
                names = topic_names(bootstrap)
                summary["topics"] = len(names)
                illegal = [n for n in names if not LEGAL_TOPIC.fullmatch(n) or n in (".", "..")]
                if illegal:
                    failures.append(f"topics with illegal names exist: {illegal[:5]}")
            except Exception as exc:  # the summary reports it; the exit status fails the run
                failures.append(f"broker does not serve after fuzzing: {exc!r}")
        if cluster is not None:
            exits = re.findall(r"broker \d+ \(pid \d+\) exited with [^\n]*", cluster.log_text())
            if exits:
                failures.append(f"broker exits: {exits[:3]}")
    finally:
        watch.stop.set()
        if cluster is not None:
            cluster.stop()
    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
