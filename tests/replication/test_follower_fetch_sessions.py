"""Followers fetch in incremental fetch sessions (KIP-227): one full Fetch, then requests
that list only partitions whose fetch offset moved; a lost session falls back to a full
Fetch; a leader change keeps every record."""
from __future__ import annotations

from pybroker.protocol import api

from replication_harness import Client, Cluster, run, wait_for

FAST = dict(replica_lag_time_max_ms=2000, replica_fetch_wait_max_ms=50, replica_fetch_backoff_ms=20)
PARTITIONS = 20


def _spy(node) -> list:
    """Record (replica_id, session_id, epoch, listed partitions, forgotten, answered) of
    each Fetch ``node`` serves."""
    seen = []
    handler, is_async = node._handlers[api.FETCH]

    async def spying(broker, request):
        body = request.body
        response = await handler(broker, request)
        seen.append((body["replica_id"], body["session_id"], body["session_epoch"],
                     sum(len(t["partitions"]) for t in body["topics"]),
                     sum(len(t["partitions"]) for t in body["forgotten_topics_data"]),
                     sum(len(t["partitions"]) for t in response["responses"])))
        return response

    node._handlers[api.FETCH] = (spying, True)
    return seen


def _caught_up(cluster, index_range=range(PARTITIONS)) -> bool:
    for index in index_range:
        leader = cluster.states[("t", index)].leader
        end = cluster.partition(leader, index=index).log_end_offset
        for n in cluster.nodes:
            p = cluster.partition(n, index=index)
            if p.log_end_offset != end or p.high_watermark != end:
                return False
    return True


def test_followers_open_sessions_and_send_only_what_moved(tmp_path):
    async def scenario():
        cluster = Cluster(tmp_path, 3, **FAST)
        seen = _spy(cluster.nodes[0])
        await cluster.start()
        cluster.create("t", replicas=(0, 1, 2), partitions=PARTITIONS)
        try:
            client = Client(cluster.nodes[0])
            for index in range(PARTITIONS):
                assert (await client.produce([b"a%d" % index], acks=-1, index=index))["error_code"] == 0
            await wait_for(lambda: _caught_up(cluster))
            sessions = cluster.nodes[0].fetch_sessions.sessions
            assert len(sessions) == 2
            assert all(s.privileged and len(s.partitions) == PARTITIONS for s in sessions.values())

            # Idle: incremental requests listing nothing, answered with nothing.
            del seen[:]
            await wait_for(lambda: len([s for s in seen if s[2] > 0]) >= 6)
            idle = [s for s in seen if s[2] > 0]
            assert all(s[1] in sessions and s[3] == 0 and s[4] == 0 and s[5] == 0 for s in idle), idle

            # One partition moves: it alone is answered (records, then its high watermark)
            # and listed (its new fetch offset).
            del seen[:]
            assert (await client.produce([b"b", b"c"], acks=-1, index=7))["error_code"] == 0
            await wait_for(lambda: _caught_up(cluster))
            busy = [s for s in seen if s[3] or s[5]]
            assert busy and all(s[3] <= 1 and s[5] <= 1 for s in busy), busy
            assert all(s[2] > 0 for s in seen), "no full request while the session lives"

            # The leader loses the sessions (evicted): 70, then one full request each.
            sessions.clear()
            del seen[:]
            assert (await client.produce([b"d"], acks=-1, index=3))["error_code"] == 0
            await wait_for(lambda: _caught_up(cluster) and len(sessions) == 2)
            full = [s for s in seen if s[2] == 0]
            assert len(full) == 2 and all(s[3] == PARTITIONS for s in full), full
        finally:
            await cluster.stop()
    run(scenario())


def test_a_new_leader_gets_sessions_and_nothing_is_lost(tmp_path):
    async def scenario():
        cluster = Cluster(tmp_path, 3, **FAST)
        await cluster.start()
        cluster.create("t", replicas=(0, 1, 2), partitions=PARTITIONS)
        try:
            old = Client(cluster.nodes[0])
            for index in range(PARTITIONS):
                assert (await old.produce([b"x%d" % index] * 3, acks=-1, index=index))["error_code"] == 0
            await wait_for(lambda: _caught_up(cluster))
            # Half the partitions move to broker 1 (a new leader epoch each).
            moved = range(0, PARTITIONS, 2)
            for index in moved:
                cluster.elect("t", index, 1)
            new = Client(cluster.nodes[1])
            for index in moved:
                assert (await new.produce([b"y%d" % index], acks=-1, index=index))["error_code"] == 0
            for index in range(1, PARTITIONS, 2):
                assert (await old.produce([b"z%d" % index], acks=-1, index=index))["error_code"] == 0
            await wait_for(lambda: _caught_up(cluster), timeout=10.0)
            for index in range(PARTITIONS):
                logs = [await Client(cluster.nodes[n]).values(index=index) if n == cluster.states[("t", index)].leader
                        else None for n in cluster.nodes]
                values = next(v for v in logs if v is not None)
                extra = b"y%d" % index if index in moved else b"z%d" % index
                assert values == [b"x%d" % index] * 3 + [extra]
                ends = {cluster.partition(n, index=index).log_end_offset for n in cluster.nodes}
                assert ends == {4}
            # Broker 0 now follows broker 1 in a session of its own; 2 follows both.
            assert any(s.privileged for s in cluster.nodes[1].fetch_sessions.sessions.values())
        finally:
            await cluster.stop()
    run(scenario())
