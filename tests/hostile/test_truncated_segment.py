"""A segment file cut short underneath a running broker (another process truncating it,
a disk error) must not kill the broker: reads check the file size before touching the
mmap (no SIGBUS), and a sendfile that stops making progress ends the connection instead
of spinning. The broker keeps serving everything else."""
from __future__ import annotations

import glob
import os

from pybroker.errors import KafkaStorageError

OK = 0


def _segment(cluster, topic: str) -> str:
    (path,) = glob.glob(os.path.join(str(cluster.data_dir), "broker-*", f"{topic}-0", "*.log"))
    return path


def test_segment_truncated_underneath_a_live_broker_does_not_kill_it(pybroker_cluster, topic, wire, broker_serves):
    with wire.RawClient(pybroker_cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        for i in range(20):
            part = client.produce(topic, 0, wire.build_batch([(b"k", b"v" * 2000)] * 10), acks=1)
            assert part.error_code == OK
        path = _segment(pybroker_cluster, topic)
        size = os.path.getsize(path)
        os.truncate(path, size // 3)
        # Either an error code for the partition or a closed connection: never a crash,
        # never a hang.
        try:
            part = client.fetch(topic, 0, 0, max_bytes=size)
            closed = False
        except (ConnectionError, OSError, EOFError):
            closed, part = True, None
        if not closed:
            assert part.error_code in (OK, KafkaStorageError.code)
            if part.error_code == OK:
                # Only whole batches that are still in the file may come back.
                assert len(part.records or b"") <= size // 3
    broker_serves(pybroker_cluster.bootstrap)
    assert pybroker_cluster.running
