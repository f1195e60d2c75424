"""A broker's logs of topics the controller does not know are set aside, never deleted on
that evidence alone (lost controller metadata must not cost the data)."""
from __future__ import annotations

import asyncio
import os

from pybroker.broker.broker import Broker
from pybroker.config import BrokerConfig, TopicConfig
from pybroker.log.log import Log
from pybroker.record.batch import build_batch, parse_batches


def _write_log(directory: str, records: int) -> bytes:
    log = Log.open(directory, TopicConfig())
    buf = bytearray(build_batch([(b"k", b"v%d" % i, [], None) for i in range(records)]))
    log.append(memoryview(buf), parse_batches(memoryview(buf), 1 << 20))
    log.close()
    with open(os.path.join(directory, "00000000000000000000.log"), "rb") as f:
        return f.read()


def test_unknown_topic_logs_are_set_aside_with_their_bytes(tmp_path):
    data = tmp_path / "broker-0"
    data.mkdir()
    stored = _write_log(str(data / "ghost-0"), 5)

    async def main():
        broker = Broker(BrokerConfig(data_dir=str(data), port=0))
        await broker.start()
        try:
            return sorted(os.listdir(data)), dict(broker.image.topics)
        finally:
            await broker.stop()

    entries, topics = asyncio.run(main())
    assert "ghost" not in topics
    assert "ghost-0" not in entries
    (stray,) = [e for e in entries if e.startswith("ghost-0.") and e.endswith("-stray")]
    with open(data / stray / "00000000000000000000.log", "rb") as f:
        assert f.read() == stored
