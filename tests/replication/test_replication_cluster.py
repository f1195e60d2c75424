"""Replication between in-process brokers: followers catch up, the high watermark follows
the ISR, acks=all waits for it, the ISR shrinks and expands, and followers of a new leader
truncate by leader epoch."""

from pybroker import errors
from pybroker.config import TopicConfig
from pybroker.record.batch import iter_records

from replication_harness import Client, Cluster, run, wait_for

FAST = dict(replica_lag_time_max_ms=400, replica_fetch_wait_max_ms=50, replica_fetch_backoff_ms=20)


async def _cluster(tmp_path, count=3, config=None, **settings):
    cluster = Cluster(tmp_path, count, **{**FAST, **settings})
    await cluster.start()
    cluster.create("t", replicas=tuple(range(count)), config=config)
    return cluster


def test_followers_catch_up_and_high_watermark_follows(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            client = Client(cluster.nodes[0])
            answer = await client.produce([b"a", b"b", b"c"], acks=1)
            assert answer["error_code"] == 0 and answer["base_offset"] == 0
            await wait_for(lambda: all(cluster.partition(n).log_end_offset == 3 for n in (1, 2)))
            await wait_for(lambda: cluster.partition(0).high_watermark == 3)
            assert await client.values() == [b"a", b"b", b"c"]
            # Followers carry the leader's epoch in their cache and learn the HW.
            await wait_for(lambda: cluster.partition(1).high_watermark == 3)
            assert cluster.partition(1).epochs.entries == cluster.partition(0).epochs.entries
        finally:
            await cluster.stop()
    run(scenario())


def test_acks_all_waits_for_the_isr(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            answer = await Client(cluster.nodes[0]).produce([b"x"] * 5, acks=-1)
            assert answer["error_code"] == 0
            # Answered only once committed: every ISR member holds the data.
            for n in (1, 2):
                assert cluster.partition(n).log_end_offset >= 5
            assert cluster.partition(0).high_watermark == 5
        finally:
            await cluster.stop()
    run(scenario())


def test_consumers_never_see_data_above_high_watermark(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path, count=2)
        try:
            await cluster.pause(1)  # the follower stops fetching
            client = Client(cluster.nodes[0])
            answer = await client.produce([b"u"], acks=1)
            assert answer["error_code"] == 0
            assert cluster.partition(0).log_end_offset == 1
            assert cluster.partition(0).high_watermark == 0
            fetched = await client.fetch(0)
            assert fetched["high_watermark"] == 0 and not fetched["records"]
            # A follower's fetch reads up to the log end.
            replica = await client.fetch(0, replica_id=1)
            assert replica["error_code"] == 0 and replica["records"]
        finally:
            await cluster.stop()
    run(scenario())


def test_acks_all_times_out_when_followers_stop(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path, replica_lag_time_max_ms=60_000)
        try:
            for n in (1, 2):
                await cluster.pause(n)
            answer = await Client(cluster.nodes[0]).produce([b"late"], acks=-1, timeout_ms=200)
            assert answer["error_code"] == errors.RequestTimedOut.code
            assert cluster.partition(0).log_end_offset == 1
        finally:
            await cluster.stop()
    run(scenario())


def test_stopped_follower_leaves_isr_and_rejoins_when_caught_up(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            client = Client(cluster.nodes[0])
            await cluster.pause(2)
            await wait_for(lambda: cluster.states[("t", 0)].isr == (0, 1), timeout=5)
            # With the laggard out, acks=all commits on the remaining ISR.
            answer = await client.produce([b"m"] * 3, acks=-1)
            assert answer["error_code"] == 0
            assert cluster.partition(2).log_end_offset == 0
            cluster.resume(2)
            await wait_for(lambda: set(cluster.states[("t", 0)].isr) == {0, 1, 2}, timeout=5)
            assert cluster.partition(2).log_end_offset == 3
        finally:
            await cluster.stop()
    run(scenario())


def test_min_insync_replicas_refuses_acks_all_when_isr_is_small(tmp_path):
    async def scenario():
        config = TopicConfig.parse({"min.insync.replicas": "2"})
        cluster = await _cluster(tmp_path, count=2, config=config)
        try:
            client = Client(cluster.nodes[0])
            assert (await client.produce([b"ok"], acks=-1))["error_code"] == 0
            await cluster.pause(1)
            await wait_for(lambda: cluster.states[("t", 0)].isr == (0,), timeout=5)
            answer = await client.produce([b"no"], acks=-1)
            assert answer["error_code"] == errors.NotEnoughReplicas.code
            # acks=1 is still accepted.
            assert (await client.produce([b"one"], acks=1))["error_code"] == 0
        finally:
            await cluster.stop()
    run(scenario())


def test_non_leader_refuses_produce_and_consumer_fetch_before_v11(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            follower = Client(cluster.nodes[1])
            assert (await follower.produce([b"x"], acks=1))["error_code"] == errors.NotLeaderOrFollower.code
            # Without client metadata (Fetch < v11) a consumer reads from the leader only.
            assert (await follower.fetch(0, version=10))["error_code"] == errors.NotLeaderOrFollower.code
        finally:
            await cluster.stop()
    run(scenario())


def test_stale_and_future_leader_epochs_are_fenced(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            cluster.elect("t", 0, 0)  # epoch 1, same leader
            client = Client(cluster.nodes[0])
            assert (await client.fetch(0, current_leader_epoch=0))["error_code"] == errors.FencedLeaderEpoch.code
            assert (await client.fetch(0, current_leader_epoch=2))["error_code"] == errors.UnknownLeaderEpoch.code
            assert (await client.fetch(0, current_leader_epoch=1))["error_code"] == 0
        finally:
            await cluster.stop()
    run(scenario())


def test_older_state_is_ignored(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path)
        try:
            old = cluster.states[("t", 0)]
            cluster.elect("t", 0, 1)
            assert not cluster.partition(0).apply_state(old)
            assert cluster.partition(0).leader == 1
        finally:
            await cluster.stop()
    run(scenario())


def test_new_follower_truncates_divergent_suffix_by_epoch(tmp_path):
    """KIP-101: the old leader wrote a suffix no one else has; after a leader change it
    must drop exactly that suffix, even where its high watermark would keep it."""
    async def scenario():
        cluster = await _cluster(tmp_path, count=2)
        try:
            old, new = Client(cluster.nodes[0]), Client(cluster.nodes[1])
            assert (await old.produce([b"c1", b"c2"], acks=-1))["error_code"] == 0
            await wait_for(lambda: cluster.partition(1).high_watermark == 2)
            await cluster.pause(1)
            assert (await old.produce([b"lost1", b"lost2"], acks=1))["error_code"] == 0
            assert cluster.partition(0).log_end_offset == 4
            # Broker 0 "dies": broker 1 is elected with epoch 1 and takes new writes.
            await cluster.pause(0)
            cluster.elect("t", 0, 1, isr=[1])
            cluster.resume(1)
            assert (await new.produce([b"n1"], acks=-1))["error_code"] == 0
            # Broker 0 comes back as a follower: it holds offsets 2-3 of epoch 0, the new
            # leader's epoch 0 ends at 2, so it truncates to 2 and fetches n1.
            cluster.resume(0)
            await wait_for(lambda: cluster.partition(0).log_end_offset == 3 and not cluster.partition(0).needs_truncation)
            await wait_for(lambda: set(cluster.states[("t", 0)].isr) == {0, 1})
            assert await new.values() == [b"c1", b"c2", b"n1"]
            got = cluster.partition(0).log.read_bytes(0, 1 << 20)
            from pybroker.record.batch import iter_records
            assert [r.value for r in iter_records(got)] == [b"c1", b"c2", b"n1"]
            assert [tuple(e) for e in cluster.partition(0).epochs.entries] == [(0, 0), (1, 2)]
        finally:
            await cluster.stop()
    run(scenario())


def test_offset_for_leader_epoch_answers_from_the_cache(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path, count=1)
        try:
            client = Client(cluster.nodes[0])
            await client.produce([b"a", b"b"], acks=1)
            cluster.elect("t", 0, 0)
            await client.produce([b"c"], acks=1)
            from pybroker.protocol import api

            async def ask(epoch):
                body = {"replica_id": -1, "topics": [{"topic": "t", "partitions": [
                    {"partition": 0, "current_leader_epoch": -1, "leader_epoch": epoch}]}]}
                answer = (await client.request(api.OFFSET_FOR_LEADER_EPOCH, 3, body))["topics"][0]["partitions"][0]
                return answer["error_code"], answer["leader_epoch"], answer["end_offset"]
            assert await ask(0) == (0, 0, 2)
            assert await ask(1) == (0, 1, 3)
            assert await ask(7) == (0, -1, -1)
        finally:
            await cluster.stop()
    run(scenario())


def test_follower_deduplicates_retries_after_becoming_leader(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path, count=2)
        try:
            args = dict(producer_id=7, producer_epoch=0, base_sequence=0)
            first = await Client(cluster.nodes[0]).produce([b"once"], acks=-1, **args)
            assert first["error_code"] == 0
            cluster.elect("t", 0, 1)
            retry = await Client(cluster.nodes[1]).produce([b"once"], acks=-1, **args)
            assert retry["error_code"] == 0 and retry["base_offset"] == first["base_offset"]
            assert cluster.partition(1).log_end_offset == 1
        finally:
            await cluster.stop()
    run(scenario())


def test_high_watermark_survives_restart_from_checkpoint(tmp_path):
    async def scenario():
        cluster = await _cluster(tmp_path, count=2)
        try:
            await Client(cluster.nodes[0]).produce([b"a", b"b"], acks=-1)
            await cluster.pause(1)
            await Client(cluster.nodes[0]).produce([b"c"], acks=1)
        finally:
            await cluster.stop()
        from pybroker.broker.partition import Partition
        from pybroker.log.log import Log
        plog = Log.open(str(tmp_path / "b0" / "t-0"), TopicConfig())
        reopened = Partition("t", 0, plog, node_id=0)
        assert reopened.log_end_offset == 3
        state = cluster.states[("t", 0)]
        reopened.apply_state(state.__class__(**{**state.__dict__, "leader": 1, "leader_epoch": 5}))
        assert reopened.high_watermark == 2
        reopened.close()
    run(scenario())


async def _follower_with_an_epoch_the_leader_never_saw(tmp_path):
    """Node 2 leads epoch 2 without appending anything while nodes 0 and 1 are away;
    node 1 then leads epoch 3, having seen epochs 0 and 1 only. Node 2 comes back as a
    follower holding [(0, 0), (2, 2)]; the leader answers its question about epoch 2 with
    epoch 1, which node 2 does not know, so node 2 must drop epoch 2 and ask about 0."""
    cluster = await _cluster(tmp_path, count=3)
    leader0, leader1 = Client(cluster.nodes[0]), Client(cluster.nodes[1])
    assert (await leader0.produce([b"a", b"b"], acks=-1))["error_code"] == 0
    await wait_for(lambda: all(cluster.partition(n).log_end_offset == 2 for n in (1, 2)))
    await cluster.pause(2)
    cluster.elect("t", 0, 1, isr=[0, 1])
    assert (await leader1.produce([b"c"], acks=-1))["error_code"] == 0
    await cluster.pause(0)
    await cluster.pause(1)
    cluster.elect("t", 0, 2, isr=[2])
    cluster.resume(2)
    await wait_for(lambda: [tuple(e) for e in cluster.partition(2).epochs.entries] == [(0, 0), (2, 2)])
    await cluster.pause(2)
    cluster.elect("t", 0, 1, isr=[0, 1])
    cluster.resume(0)
    cluster.resume(1)
    assert [tuple(e) for e in cluster.partition(1).epochs.entries] == [(0, 0), (1, 2), (3, 3)]
    return cluster


def test_follower_drops_an_epoch_that_wrote_nothing_and_rejoins(tmp_path):
    async def scenario():
        cluster = await _follower_with_an_epoch_the_leader_never_saw(tmp_path)
        try:
            cluster.resume(2)
            await wait_for(lambda: cluster.partition(2).log_end_offset == 3
                           and not cluster.partition(2).needs_truncation)
            await wait_for(lambda: set(cluster.states[("t", 0)].isr) == {0, 1, 2})
            assert [tuple(e) for e in cluster.partition(2).epochs.entries] == [(0, 0), (1, 2)]
            got = cluster.partition(2).log.read_bytes(0, 1 << 20)
            assert [r.value for r in iter_records(got)] == [b"a", b"b", b"c"]
        finally:
            await cluster.stop()
    run(scenario())


def test_divergence_loop_ends_even_if_a_round_drops_no_epoch(tmp_path, monkeypatch):
    """Should truncation ever leave the latest epoch in place, the follower must not ask
    the same question again: it ends truncation at its high watermark and fetches."""
    from pybroker.broker.partition import Partition

    async def scenario():
        cluster = await _follower_with_an_epoch_the_leader_never_saw(tmp_path)
        try:
            follower = cluster.partition(2)
            truncations = []
            real = Partition.truncate_to

            def truncate_without_trimming(self, offset):
                if self is follower and offset >= self.log_end_offset:
                    truncations.append(offset)
                    return 0  # the old behaviour: nothing done at the log end
                return real(self, offset)
            monkeypatch.setattr(Partition, "truncate_to", truncate_without_trimming)
            cluster.resume(2)
            await wait_for(lambda: follower.log_end_offset == 3 and not follower.needs_truncation)
            assert len(truncations) <= 2
            got = follower.log.read_bytes(0, 1 << 20)
            assert [r.value for r in iter_records(got)] == [b"a", b"b", b"c"]
        finally:
            await cluster.stop()
    run(scenario())
