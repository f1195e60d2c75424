"""The request memory budget (queued.max.request.bytes): waiters in order, and one
overdraft at a time so half-read requests cannot wait on each other forever."""
from pybroker.broker.memory_pool import MemoryPool


def test_reservations_wait_when_spent_and_wake_in_order_on_release():
    pool = MemoryPool(100)
    assert pool.try_reserve(100, key=1)
    pool.request_read(1)
    woken = []
    assert pool.try_reserve(10, key=2)
    # key 2 took the overdraft (the pool was spent and nobody held it); key 3 must wait.
    assert not pool.try_reserve(10, key=3)
    pool.wait(3, lambda: woken.append(3))
    assert not pool.try_reserve(10, key=4)
    pool.wait(4, lambda: woken.append(4))
    pool.release(100)
    assert woken == [3, 4]


def test_only_one_connection_holds_the_overdraft_until_its_request_is_read():
    pool = MemoryPool(10)
    assert pool.try_reserve(10, key=1)
    assert pool.try_reserve(50, key=1)        # the overdraft: key 1 keeps growing
    assert not pool.try_reserve(1, key=2)
    woken = []
    pool.wait(2, lambda: woken.append(pool.try_reserve(1, key=2)))
    pool.request_read(1)                      # key 1 is done growing: the overdraft passes on
    assert woken == [True]
    assert pool.used == 61


def test_unbounded_pool_never_refuses():
    pool = MemoryPool(-1)
    assert all(pool.try_reserve(1 << 30, key=k) for k in range(8))
    assert pool.take_peak() == 8 << 30
