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


def outcome(fut: asyncio.Future, forget) -> tuple[bool, object]:
    """(done, result) of a waited-on future; a pending one is forgotten (``forget(fut)``)
    and cancelled, and reported as not done: the request timed out."""
    if fut.done() and not fut.cancelled():
        return True, fut.result()
    forget(fut)
    fut.cancel()
    return False, None
