"""A replica fetcher cancelled without stop() (an event loop shutting down) ends even
when the cancellation is swallowed on the way, as asyncio.wait_for can do before
Python 3.12: the loop's shutdown must not spin forever."""
import asyncio
import types

import pytest

from pybroker.broker.replica_fetcher import ReplicaFetcher


@pytest.mark.timeout(30)
def test_a_cancel_swallowed_inside_a_round_still_ends_the_fetcher():
    rounds = []

    async def main():
        broker = types.SimpleNamespace(node_id=1, config=types.SimpleNamespace(replica_fetch_backoff_ms=1))
        fetcher = ReplicaFetcher(broker, leader_id=0)
        fetcher._active = lambda: [object()]

        async def swallowing_round():
            rounds.append(1)
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass                      # what a racing wait_for does with the cancel

        async def nothing():
            pass

        fetcher._connect = fetcher._truncate = nothing
        fetcher._fetch = swallowing_round
        fetcher.start()
        await asyncio.sleep(0.05)
        fetcher._task.cancel()
        done, _ = await asyncio.wait({fetcher._task}, timeout=2)
        return bool(done)

    assert asyncio.run(main()), "the cancelled fetcher kept running"
    assert rounds
