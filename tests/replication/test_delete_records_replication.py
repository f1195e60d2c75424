"""DeleteRecords between in-process brokers: the leader moves its log start, followers
follow it from Fetch answers, the answer waits for the low watermark, and a new leader
never serves what was deleted."""
from pybroker import errors
from pybroker.protocol import api

from replication_harness import Client, run, wait_for
from test_replication_cluster import _cluster

OK = 0


async def _filled(tmp_path, records=10):
    cluster = await _cluster(tmp_path)
    client = Client(cluster.nodes[0])
    for i in range(records):
        assert (await client.produce([b"%d" % i], acks=-1))["error_code"] == OK
    return cluster, client


def test_answer_waits_for_every_replica_then_reports_the_low_watermark(tmp_path):
    async def scenario():
        cluster, client = await _filled(tmp_path)
        try:
            assert await client.delete_records({("t", 0): 4}) == {("t", 0): (OK, 4)}
            # Answered once the low watermark got there: every replica already moved.
            assert [cluster.partition(n).log_start_offset for n in (0, 1, 2)] == [4, 4, 4]
            answer = await client.fetch(3)
            assert answer["error_code"] == errors.OffsetOutOfRange.code
            assert await client.values(4) == [b"%d" % i for i in range(4, 10)]
            # A lower offset later changes nothing: the start never moves back.
            assert await client.delete_records({("t", 0): 2}) == {("t", 0): (OK, 4)}
        finally:
            await cluster.stop()
    run(scenario())


def test_a_stopped_follower_times_the_request_out_then_catches_up(tmp_path):
    async def scenario():
        cluster, client = await _filled(tmp_path)
        try:
            await wait_for(lambda: cluster.partition(0).low_watermark == 0)
            await cluster.pause(2)
            code, _ = (await client.delete_records({("t", 0): 6}, timeout_ms=300))[("t", 0)]
            assert code == errors.RequestTimedOut.code
            assert cluster.partition(0).log_start_offset == 6  # the leader did delete
            cluster.resume(2)
            await wait_for(lambda: cluster.partition(2).log_start_offset == 6)
            await wait_for(lambda: cluster.partition(0).low_watermark == 6)
            assert await client.delete_records({("t", 0): 6}, timeout_ms=300) == {("t", 0): (OK, 6)}
        finally:
            await cluster.stop()
    run(scenario())


def test_a_new_leader_keeps_the_deleted_start(tmp_path):
    async def scenario():
        cluster, client = await _filled(tmp_path)
        try:
            assert await client.delete_records({("t", 0): 7}) == {("t", 0): (OK, 7)}
            cluster.elect("t", 0, leader=1)
            new = Client(cluster.nodes[1])
            assert cluster.partition(1).log_start_offset == 7
            assert (await new.fetch(6, current_leader_epoch=1))["error_code"] == errors.OffsetOutOfRange.code
            assert await new.values(7) == [b"7", b"8", b"9"]
            # The old leader, now a follower, is told it no longer leads.
            old = await client.delete_records({("t", 0): 8})
            assert old == {("t", 0): (errors.NotLeaderOrFollower.code, -1)}
        finally:
            await cluster.stop()
    run(scenario())


def test_bad_requests_get_kafkas_errors(tmp_path):
    async def scenario():
        cluster, client = await _filled(tmp_path)
        try:
            out_of_range = errors.OffsetOutOfRange.code
            assert await client.delete_records({("t", 0): 11}) == {("t", 0): (out_of_range, -1)}
            assert await client.delete_records({("t", 0): -2}) == {("t", 0): (out_of_range, -1)}
            assert await client.delete_records({("nope", 0): 1}) == {
                ("nope", 0): (errors.UnknownTopicOrPartition.code, -1)}
            assert await Client(cluster.nodes[1]).delete_records({("t", 0): 1}) == {
                ("t", 0): (errors.NotLeaderOrFollower.code, -1)}
            assert cluster.partition(0).log_start_offset == 0
            # -1 is the high watermark; every version speaks it.
            for version in (0, 1):
                assert await client.delete_records({("t", 0): 3}, version=version) == {("t", 0): (OK, 3)}
            assert await client.delete_records({("t", 0): -1}) == {("t", 0): (OK, 10)}
            assert [cluster.partition(n).log_start_offset for n in (0, 1, 2)] == [10, 10, 10]
        finally:
            await cluster.stop()
    run(scenario())


def test_a_partition_named_twice_is_answered_once_for_the_last_offset(tmp_path):
    async def scenario():
        cluster, client = await _filled(tmp_path)
        try:
            body = {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 2},
                                                            {"partition_index": 0, "offset": 5}]}],
                    "timeout_ms": 5000}
            response = await client.request(api.DELETE_RECORDS, 2, body)
            assert response["topics"] == [{"name": "t", "partitions": [
                {"partition_index": 0, "low_watermark": 5, "error_code": OK}]}]
        finally:
            await cluster.stop()
    run(scenario())
