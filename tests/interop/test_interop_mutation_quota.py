"""controller_mutation_rate (KIP-599) against a real broker process: a client's bucket
holds quota x 11 windows of partitions; CreateTopics v6+ (strict) refuses the topics
asked while it is below zero with THROTTLING_QUOTA_EXCEEDED and the time to wait, the
topic that takes it below zero still goes through; v5 (permissive) creates and only
throttles; DeleteTopics and CreatePartitions count their partitions; other client-ids
and validate_only are not limited."""
from __future__ import annotations

import time
import uuid

import pytest

from pybroker import errors
from pybroker.client.admin import Admin
from pybroker.client.cluster import Client
from pybroker.protocol import api

pytestmark = pytest.mark.timeout(90)

RATE = 2.0            # partitions per second: a burst of 22


def _topics(*counts):
    tag = uuid.uuid4().hex[:8]
    return [{"name": f"mq-{tag}-{i}", "num_partitions": n, "replication_factor": 1, "assignments": [],
             "configs": []} for i, n in enumerate(counts)]


def _create(conn, topics, version, validate_only=False):
    return conn.request(api.CREATE_TOPICS, {"topics": topics, "timeout_ms": 10_000, "validate_only": validate_only},
                        version=version)


def test_a_client_over_its_mutation_rate_is_refused_then_throttled(pybroker_cluster):
    bootstrap = pybroker_cluster.bootstrap
    with Admin(bootstrap) as admin:
        admin.alter_client_quotas([((("client-id", "mutator"),), {"controller_mutation_rate": RATE})])
    time.sleep(0.5)                                      # the brokers get the quota pushed
    client, other = Client(bootstrap, "mutator", 10.0), Client(bootstrap, "bystander", 10.0)
    second, third = Client(bootstrap, "mutator", 10.0), Client(bootstrap, "mutator", 10.0)
    try:
        conn = client.any_connection()
        # Strict: 10 + 10 fit the burst of 22, the third takes it to -8 and still goes, the
        # fourth is refused with the wait until the bucket is back at zero.
        answer = _create(conn, _topics(10, 10, 10, 1), version=7)
        codes = [t["error_code"] for t in answer["topics"]]
        assert codes == [0, 0, 0, errors.ThrottlingQuotaExceeded.code], answer
        assert answer["topics"][3]["error_message"] == "The throttling quota has been exceeded."
        assert 3000 <= answer["throttle_time_ms"] <= 4000, answer["throttle_time_ms"]
        # validate_only is never throttled; another client-id has no quota.
        assert _create(conn, _topics(5), version=7, validate_only=True)["topics"][0]["error_code"] == 0
        other_conn = other.any_connection()
        assert _create(other_conn, _topics(5), version=7)["topics"][0]["error_code"] == 0
        # Permissive (v5): carried out, and the response says how long to wait.
        answer = _create(conn, _topics(10), version=5)
        assert answer["topics"][0]["error_code"] == 0 and answer["throttle_time_ms"] > 3000, answer
        # Strict CreatePartitions and DeleteTopics refuse while the bucket is below zero
        # (each asked on another connection of the client: a throttled one is muted meanwhile).
        name = answer["topics"][0]["name"]
        conn = second.any_connection()
        grown = conn.request(api.CREATE_PARTITIONS, {"topics": [{"name": name, "count": 12, "assignments": None}],
                                                     "timeout_ms": 10_000, "validate_only": False}, version=3)
        assert grown["results"][0]["error_code"] == errors.ThrottlingQuotaExceeded.code, grown
        conn = third.any_connection()
        deleted = conn.request(api.DELETE_TOPICS, {"topics": [{"name": name}], "timeout_ms": 10_000}, version=6)
        assert deleted["responses"][0]["error_code"] == errors.ThrottlingQuotaExceeded.code, deleted
        # A bystander deletes by topic id (v6); an unknown id is UNKNOWN_TOPIC_ID.
        created = _create(other_conn, _topics(1), version=7)["topics"][0]
        assert created["topic_id"].int != 0
        deleted = other_conn.request(api.DELETE_TOPICS, {"topics": [{"name": None, "topic_id": created["topic_id"]},
                                                                    {"name": None, "topic_id": uuid.uuid4()}],
                                                         "timeout_ms": 10_000}, version=6)
        assert [(r["name"], r["error_code"]) for r in deleted["responses"]] == [
            (created["name"], 0), (None, errors.UnknownTopicId.code)], deleted
        assert deleted["responses"][0]["topic_id"] == created["topic_id"]
    finally:
        client.close()
        second.close()
        third.close()
        other.close()
