"""Incremental fetch sessions (KIP-227) over a raw connection to a real broker process:
creating a session, incremental requests answered with only what changed, long poll,
forgotten partitions, the session errors (70, 71), closing, and a full cache."""
from __future__ import annotations

import threading
import time

import pytest

from pybroker.protocol import api
from pybroker.testing import BrokerCluster

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
TIMEOUT = 20.0

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with BrokerCluster(data_dir=tmp_path_factory.mktemp("fsessions"), start_timeout=40.0) as cluster:
        yield cluster


class Fetcher:
    """A consumer's fetch session spoken with pybroker's own codec."""

    def __init__(self, raw_client, bootstrap: str, version: int = 12):
        self.raw = raw_client(bootstrap, timeout=TIMEOUT)
        self.version = version
        self.correlation = 0

    def call(self, key: int, body: dict, version: int) -> dict:
        self.correlation += 1
        self.raw.send_bytes(api.encode_request(key, version, self.correlation, "fsessions", body))
        got, response = api.decode_response(key, version, self.raw.read_frame())
        assert got == self.correlation
        return response

    def fetch(self, session_id: int, epoch: int, partitions: dict | None = None, forgotten: dict | None = None,
              max_wait_ms: int = 0, min_bytes: int = 1, replica_id: int = -1) -> dict:
        """``partitions``: {(topic, index): fetch offset}; ``forgotten``: {topic: [index]}."""
        by_topic: dict[str, list] = {}
        for (topic, index), offset in (partitions or {}).items():
            by_topic.setdefault(topic, []).append({
                "partition": index, "current_leader_epoch": -1, "fetch_offset": offset,
                "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20})
        return self.call(api.FETCH, {
            "replica_id": replica_id, "max_wait_ms": max_wait_ms, "min_bytes": min_bytes, "max_bytes": 1 << 24,
            "isolation_level": 0, "session_id": session_id, "session_epoch": epoch,
            "topics": [{"topic": t, "partitions": p} for t, p in by_topic.items()],
            "forgotten_topics_data": [{"topic": t, "partitions": p} for t, p in (forgotten or {}).items()],
            "rack_id": "",
        }, self.version)


def answered(response: dict) -> dict:
    """{(topic, index): (error, high watermark, record bytes)} of a Fetch response."""
    out = {}
    for topic in response["responses"]:
        for p in topic["partitions"]:
            out[(topic["topic"], p["partition_index"])] = (p["error_code"], p["high_watermark"], len(p["records"] or b""))
    return out


def make_topic(wire, bootstrap: str, name: str, partitions: int) -> None:
    with wire.RawClient(bootstrap, timeout=TIMEOUT) as client:
        assert client.create_topic(name, partitions=partitions).error_code == 0
        client.wait_for_leaders(name, timeout=TIMEOUT, auto_create=False)


def produce(wire, bootstrap: str, name: str, index: int, count: int) -> None:
    with wire.RawClient(bootstrap, timeout=TIMEOUT) as client:
        part = client.produce(name, index, wire.build_batch([(b"k", b"v%d" % i) for i in range(count)]))
        assert part.error_code == 0


@pytest.mark.parametrize("version", [7, 12])
def test_session_answers_only_what_changed(broker, raw_client, wire, topic, version):
    make_topic(wire, broker.bootstrap, topic, 3)
    produce(wire, broker.bootstrap, topic, 0, 2)
    f = Fetcher(raw_client, broker.bootstrap, version)
    full = f.fetch(0, 0, {(topic, 0): 0, (topic, 1): 0, (topic, 2): 0})
    assert full["error_code"] == 0
    sid = full["session_id"]
    assert sid > 0
    got = answered(full)
    assert set(got) == {(topic, 0), (topic, 1), (topic, 2)}
    assert got[(topic, 0)][1] == 2 and got[(topic, 0)][2] > 0

    # The fetch offset of p0 moves past what it read; nothing else changed: an empty answer,
    # after the long poll.
    started = time.monotonic()
    inc = f.fetch(sid, 1, {(topic, 0): 2}, max_wait_ms=400)
    assert time.monotonic() - started >= 0.35
    assert (inc["error_code"], inc["session_id"], inc["responses"]) == (0, sid, [])

    # New records on p1 (in the session since the full request, at offset 0) wake the long poll.
    timer = threading.Timer(0.3, produce, (wire, broker.bootstrap, topic, 1, 3))
    timer.start()
    started = time.monotonic()
    inc = f.fetch(sid, 2, max_wait_ms=10_000)
    timer.join()
    assert time.monotonic() - started < 5.0
    got = answered(inc)
    assert list(got) == [(topic, 1)]
    assert got[(topic, 1)][0] == 0 and got[(topic, 1)][1] == 3 and got[(topic, 1)][2] > 0

    # Forget p1; records on p1 are no longer news, records on p2 are.
    inc = f.fetch(sid, 3, {(topic, 1): 3}, forgotten={topic: [1]})
    assert inc["error_code"] == 0 and answered(inc) == {}
    produce(wire, broker.bootstrap, topic, 1, 1)
    produce(wire, broker.bootstrap, topic, 2, 1)
    got = answered(f.fetch(sid, 4, max_wait_ms=2000))
    assert list(got) == [(topic, 2)]

    # A partition added by an incremental request is answered in full the first time.
    got = answered(f.fetch(sid, 5, {(topic, 2): 1, (topic, 1): 0}))
    assert list(got) == [(topic, 1)] and got[(topic, 1)][1] == 4 and got[(topic, 1)][2] > 0


def test_session_errors_close_and_replace(broker, raw_client, wire, topic):
    make_topic(wire, broker.bootstrap, topic, 1)
    f = Fetcher(raw_client, broker.bootstrap)
    sid = f.fetch(0, 0, {(topic, 0): 0})["session_id"]
    assert sid > 0

    wrong = f.fetch(sid, 7, {(topic, 0): 0})
    assert (wrong["error_code"], wrong["session_id"], wrong["responses"]) == (INVALID_FETCH_SESSION_EPOCH, 0, [])
    # The session survives a wrong epoch: the expected one still works.
    assert f.fetch(sid, 1)["error_code"] == 0
    # ... and the epoch it just used is now wrong (a duplicate request).
    assert f.fetch(sid, 1)["error_code"] == INVALID_FETCH_SESSION_EPOCH

    unknown = f.fetch(sid ^ 0x5A5A5A, 1, {(topic, 0): 0})
    assert (unknown["error_code"], unknown["session_id"], unknown["responses"]) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])

    # Epoch 0 with a session id closes it and opens another.
    renewed = f.fetch(sid, 0, {(topic, 0): 0})
    assert renewed["error_code"] == 0 and renewed["session_id"] not in (0, sid)
    assert f.fetch(sid, 2)["error_code"] == FETCH_SESSION_ID_NOT_FOUND
    new_sid = renewed["session_id"]

    # Epoch -1 closes it and is answered as sessionless, in full.
    closed = f.fetch(new_sid, -1, {(topic, 0): 0})
    assert closed["error_code"] == 0 and closed["session_id"] == 0
    assert list(answered(closed)) == [(topic, 0)]
    assert f.fetch(new_sid, 1)["error_code"] == FETCH_SESSION_ID_NOT_FOUND

    # Sessionless stays sessionless.
    assert f.fetch(0, -1, {(topic, 0): 0})["session_id"] == 0

    # Forgetting every partition ends the session; the answer is sessionless.
    sid = f.fetch(0, 0, {(topic, 0): 0})["session_id"]
    emptied = f.fetch(sid, 1, forgotten={topic: [0]})
    assert emptied["error_code"] == 0 and emptied["session_id"] == 0
    assert f.fetch(sid, 2)["error_code"] == FETCH_SESSION_ID_NOT_FOUND


def test_errors_are_answered_until_they_clear(broker, raw_client, wire, topic):
    make_topic(wire, broker.bootstrap, topic, 1)
    f = Fetcher(raw_client, broker.bootstrap)
    # Partition 5 does not exist: an error each time, in every incremental answer.
    full = f.fetch(0, 0, {(topic, 0): 0, (topic, 5): 0})
    sid = full["session_id"]
    assert answered(full)[(topic, 5)][0] == 3
    for epoch in (1, 2):
        got = answered(f.fetch(sid, epoch))
        assert list(got) == [(topic, 5)] and got[(topic, 5)][0] == 3


def test_full_cache_answers_without_session_and_stale_sessions_make_room(tmp_path, raw_client, wire):
    settings = ["--broker-config", "max.incremental.fetch.session.cache.slots=1",
                "--broker-config", "min.incremental.fetch.session.eviction.ms=1500"]
    with BrokerCluster(data_dir=tmp_path, extra_args=settings, start_timeout=40.0) as cluster:
        make_topic(wire, cluster.bootstrap, "full-cache", 2)
        a, b = Fetcher(raw_client, cluster.bootstrap), Fetcher(raw_client, cluster.bootstrap)
        first = a.fetch(0, 0, {("full-cache", 0): 0})
        sid = first["session_id"]
        assert sid > 0
        # No room, and the one session is young: a full answer without a session.
        second = b.fetch(0, 0, {("full-cache", 0): 0, ("full-cache", 1): 0})
        assert second["error_code"] == 0 and second["session_id"] == 0
        assert len(answered(second)) == 2
        assert a.fetch(sid, 1)["error_code"] == 0
        # Unused for longer than the eviction time: the next new session takes its slot.
        time.sleep(1.7)
        third = b.fetch(0, 0, {("full-cache", 0): 0})
        assert third["session_id"] > 0
        assert a.fetch(sid, 2)["error_code"] == FETCH_SESSION_ID_NOT_FOUND
