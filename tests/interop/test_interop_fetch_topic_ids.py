"""Fetch v13-v17 (KIP-516 topic ids) against a real broker process: topics asked and
answered by id, an id no topic has answered UNKNOWN_TOPIC_ID, forgotten topics by id in
a fetch session, and a session whose topic was deleted and made again under the same
name gets UNKNOWN_TOPIC_ID for it instead of the new topic's records."""
from __future__ import annotations

import time
import uuid

import pytest

from pybroker import errors
from pybroker.client.admin import Admin, NewTopic
from pybroker.client.cluster import Client
from pybroker.client.producer import Producer
from pybroker.protocol import api

pytestmark = pytest.mark.timeout(90)


def _fetch(conn, topics, version, session_id=0, session_epoch=-1, forgotten=()):
    return conn.request(api.FETCH, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
        "session_id": session_id, "session_epoch": session_epoch,
        "topics": [{"topic_id": tid, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset,
                                                     "last_fetched_epoch": -1, "log_start_offset": -1,
                                                     "partition_max_bytes": 1 << 20}]}
                   for tid, offset in topics],
        "forgotten_topics_data": [{"topic_id": tid, "partitions": [0]} for tid in forgotten], "rack_id": ""},
        version=version)


def _topic_id(client, name):
    client.refresh([name])
    return uuid.UUID(str(client.metadata.topics[name].topic_id))


@pytest.mark.parametrize("version", [13, 15, 17])
def test_fetch_by_topic_id(pybroker_cluster, version):
    bootstrap = pybroker_cluster.bootstrap
    name = f"ids-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap) as admin:
        admin.create_topics([NewTopic(name, 1, 1)])
    with Producer(bootstrap) as producer:
        for i in range(5):
            producer.send(name, b"v%d" % i, partition=0)
        producer.flush()
    client = Client(bootstrap, "ids", 10.0)
    try:
        tid = _topic_id(client, name)
        leader = client.metadata.topics[name].partitions[0].leader
        conn = client.connection(leader)
        missing = uuid.uuid4()
        answer = _fetch(conn, [(tid, 0), (missing, 0)], version)
        assert answer["error_code"] == 0
        by_id = {t["topic_id"]: t["partitions"][0] for t in answer["responses"]}
        assert by_id[tid]["error_code"] == 0 and by_id[tid]["high_watermark"] == 5
        assert len(bytes(by_id[tid]["records"])) > 0
        assert by_id[missing]["error_code"] == errors.UnknownTopicId.code
    finally:
        client.close()


def test_a_session_forgets_by_id_and_does_not_serve_a_topic_made_again(pybroker_cluster):
    bootstrap = pybroker_cluster.bootstrap
    name, other = f"ids-{uuid.uuid4().hex[:8]}", f"ids-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap) as admin:
        admin.create_topics([NewTopic(name, 1, 1), NewTopic(other, 1, 1)])
    client = Client(bootstrap, "ids", 10.0)
    try:
        tid, oid = _topic_id(client, name), _topic_id(client, other)
        conn = client.connection(client.metadata.topics[name].partitions[0].leader)   # one broker leads both
        full = _fetch(conn, [(tid, 0), (oid, 0)], 17, session_epoch=0)
        session = full["session_id"]
        assert session > 0 and {t["topic_id"] for t in full["responses"]} == {tid, oid}
        # Forget the other topic by its id: the next round has nothing new.
        assert _fetch(conn, [], 17, session, 1, forgotten=[oid])["responses"] == []
        with Admin(bootstrap) as admin:
            admin.delete_topics([name])
            deadline = time.monotonic() + 20
            while True:
                try:
                    admin.create_topics([NewTopic(name, 1, 1)])
                    break
                except errors.KafkaError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        with Producer(bootstrap) as producer:
            producer.send(name, b"of the new topic", partition=0)
            producer.flush()
        time.sleep(0.5)
        answer = _fetch(conn, [], 17, session, 2)
        (entry,) = answer["responses"]
        assert entry["topic_id"] == tid
        assert entry["partitions"][0]["error_code"] == errors.UnknownTopicId.code
        assert not bytes(entry["partitions"][0]["records"] or b"")
    finally:
        client.close()
