"""KIP-392 between in-process brokers: a v11+ consumer fetch is served by a follower up to
the follower's own high watermark, fenced by the follower's leader epoch; a leader with
the rack-aware selector names an in-sync follower of the consumer's rack as its
preferred read replica; ListOffsets stays with the leader."""
import dataclasses

from pybroker import errors
from pybroker.broker.replica_selector import RACK_AWARE_REPLICA_SELECTOR
from pybroker.protocol import api
from pybroker.record.batch import iter_records

from replication_harness import Client, Cluster, run, wait_for

FAST = dict(replica_lag_time_max_ms=400, replica_fetch_wait_max_ms=50, replica_fetch_backoff_ms=20)
RACKS = {0: "a", 1: "b", 2: "c"}


async def _cluster(tmp_path, **settings):
    cluster = Cluster(tmp_path, 3, **{**FAST, **settings})
    await cluster.start()
    for node, rack in RACKS.items():
        cluster.image.brokers[node] = dataclasses.replace(cluster.image.brokers[node], rack=rack)
    cluster.create("t", replicas=(0, 1, 2))
    return cluster


def _values(answer) -> list[bytes]:
    return [r.value for r in iter_records(bytes(answer["records"] or b""))]


def test_follower_serves_consumers_up_to_its_high_watermark(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            assert (await Client(cluster.nodes[0]).produce([b"a", b"b", b"c"], acks=-1))["error_code"] == 0
            await wait_for(lambda: cluster.partition(1).high_watermark == 3)
            answer = await Client(cluster.nodes[1]).fetch(0)
            assert answer["error_code"] == 0 and answer["high_watermark"] == 3
            assert _values(answer) == [b"a", b"b", b"c"]
            assert answer["preferred_read_replica"] == -1
        finally:
            await cluster.stop()
    run(scenario())


def test_follower_hides_what_it_holds_above_its_high_watermark(tmp_path):
    async def scenario():
        # Broker 2 stops fetching but stays in the ISR (a long lag time): the high
        # watermark cannot pass 0, while follower 1 holds every record.
        cluster = await _cluster(tmp_path, replica_lag_time_max_ms=30_000)
        try:
            await cluster.pause(2)
            assert (await Client(cluster.nodes[0]).produce([b"x", b"y"], acks=1))["error_code"] == 0
            await wait_for(lambda: cluster.partition(1).log_end_offset == 2)
            follower = Client(cluster.nodes[1])
            answer = await follower.fetch(0)
            assert answer["error_code"] == 0 and answer["high_watermark"] == 0 and _values(answer) == []
            assert (await follower.fetch(2))["error_code"] == 0  # its log end: nothing yet
            assert (await follower.fetch(3))["error_code"] == errors.OffsetOutOfRange.code
        finally:
            await cluster.stop()
    run(scenario())


def test_follower_fences_by_its_own_leader_epoch(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            cluster.elect("t", 0, 0)  # epoch 1
            await wait_for(lambda: cluster.partition(1).leader_epoch == 1)
            follower = Client(cluster.nodes[1])
            assert (await follower.fetch(0, current_leader_epoch=0))["error_code"] == errors.FencedLeaderEpoch.code
            assert (await follower.fetch(0, current_leader_epoch=2))["error_code"] == errors.UnknownLeaderEpoch.code
            assert (await follower.fetch(0, current_leader_epoch=1))["error_code"] == 0
        finally:
            await cluster.stop()
    run(scenario())


def test_list_offsets_stays_with_the_leader(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            body = {"replica_id": -1, "isolation_level": 0, "topics": [
                {"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}
            answer = await Client(cluster.nodes[1]).request(api.LIST_OFFSETS, 4, body)
            assert answer["topics"][0]["partitions"][0]["error_code"] == errors.NotLeaderOrFollower.code
        finally:
            await cluster.stop()
    run(scenario())


def test_leader_sends_a_consumer_to_the_in_sync_follower_of_its_rack(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path, replica_selector_class=RACK_AWARE_REPLICA_SELECTOR)
        try:
            leader = Client(cluster.nodes[0])
            assert (await leader.produce([b"a", b"b"], acks=-1))["error_code"] == 0
            await wait_for(lambda: all(f.log_end_offset == 2 for f in cluster.partition(0).followers.values()))
            answer = await leader.fetch(0, rack_id="c", max_wait_ms=2000)
            assert answer["preferred_read_replica"] == 2 and _values(answer) == []
            assert answer["error_code"] == 0 and answer["high_watermark"] == 2 and answer["log_start_offset"] == 0
            # The leader's own rack, an unknown rack, no rack: read from the leader.
            for rack in ("a", "z", ""):
                answer = await leader.fetch(0, rack_id=rack)
                assert answer["preferred_read_replica"] == -1 and _values(answer) == [b"a", b"b"]
            # Before v11 there is no client metadata, hence no preference.
            assert _values(await leader.fetch(0, version=10)) == [b"a", b"b"]
            # A follower out of the ISR is not offered (stopped, so it cannot rejoin meanwhile).
            await cluster.pause(2)
            state = cluster.states[("t", 0)]
            cluster.push(dataclasses.replace(state, isr=(0, 1), partition_epoch=state.partition_epoch + 1))
            assert (await leader.fetch(0, rack_id="c"))["preferred_read_replica"] == -1
            # Followers never redirect.
            assert (await Client(cluster.nodes[1]).fetch(0, rack_id="c"))["preferred_read_replica"] == -1
        finally:
            await cluster.stop()
    run(scenario())


def test_without_a_selector_the_leader_serves_every_rack(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            leader = Client(cluster.nodes[0])
            assert (await leader.produce([b"a"], acks=-1))["error_code"] == 0
            answer = await leader.fetch(0, rack_id="c")
            assert answer["preferred_read_replica"] == -1 and _values(answer) == [b"a"]
        finally:
            await cluster.stop()
    run(scenario())
