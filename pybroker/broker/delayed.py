"""Waiting on parked requests (Kafka's delayed operations): an acks=all Produce waits for
the high watermark, a DeleteRecords for the low watermark. Each partition resolves its
own future (``Partition.commit_waiter`` / ``low_watermark_waiter``); the request waits
for all of them, bounded by its ``timeout_ms`` and by the broker stopping."""
from __future__ import annotations

import asyncio


async def wait_all(broker, futures: list[asyncio.Future], timeout_ms: int) -> None:
    """Return once every future is done, ``timeout_ms`` has passed or the broker stops.
    Futures still pending are left to the caller, which forgets and cancels them."""
    loop = asyncio.get_running_loop()
    # One future for "every partition settled, or the broker is stopping".
    settled = loop.create_future()
    remaining = len(futures)

    def one_done(_fut) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not settled.done():
            settled.set_result(None)

    for fut in futures:
        fut.add_done_callback(one_done)
    broker.register_stop_waiter(settled)
    try:
        await asyncio.wait_for(asyncio.shield(settled), max(0, timeout_ms) / 1000.0)
    except asyncio.TimeoutError:
        pass
    finally:
        broker.unregister_stop_waiter(settled)


async def settle(broker, pending: list, timeout_ms: int, forget, timed_out) -> list:
    """Wait for the futures of ``pending`` [(partition, response entry, future)] (see
    ``wait_all``), then return [(partition, entry, result)]: a future's result, or for one
    still pending (forgotten with ``forget(partition, future)`` and cancelled) the error
    ``timed_out(partition)``."""
    await wait_all(broker, [fut for _, _, fut in pending], timeout_ms)
    out = []
    for partition, entry, fut in pending:
        if fut.done() and not fut.cancelled():
            result = fut.result()
        else:
            forget(partition, fut)
            fut.cancel()
            result = timed_out(partition)
        out.append((partition, entry, result))
    return out
