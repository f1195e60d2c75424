"""The news word of a broker row: a tail reader in another process waits on it and wakes
the moment the broker announces new offsets, never misses an announcement made between
its look and its wait, and times out when nothing happens."""
from __future__ import annotations

import time

import pytest

from pybroker.shm import futex
from shm_processes import child

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not futex.SUPPORTED, reason="futex(2) not available on this platform")]

WAITER = """
import sys, time
region = _shm.SharedRegion.attach(sys.argv[1])
word = region.brokers.news_word(int(sys.argv[2]))
seen = word.value()
print("ready", seen, flush=True)
started = time.monotonic()
woken = word.wait(seen, float(sys.argv[3]))
print(woken, word.value(), round(time.monotonic() - started, 3), flush=True)
"""


def test_announce_wakes_a_waiter_in_another_process_at_once(region, region_name):
    proc = child(WAITER, region_name, "3", "20")
    try:
        assert proc.stdout.readline().split()[0] == "ready"
        time.sleep(0.3)  # it is asleep in the kernel now
        announced = time.monotonic()
        region.brokers.announce(3)
        out = proc.stdout.readline().split()
        woke_after = time.monotonic() - announced
    finally:
        proc.kill()
        proc.wait()
    assert out[0] == "True" and int(out[1]) == 1
    assert woke_after < 5.0  # not the 20 s timeout
    assert region.brokers.news_word(3).value() == 1


def test_announcement_before_the_wait_is_not_lost(region):
    word = region.brokers.news_word(0)
    seen = word.value()
    region.brokers.announce(0)  # between the reader's look and its wait
    started = time.monotonic()
    assert word.wait(seen, 10.0) is True
    assert time.monotonic() - started < 1.0


def test_wait_times_out_without_news_and_other_brokers_words_do_not_wake_it(region):
    word = region.brokers.news_word(1)
    region.brokers.announce(2)
    started = time.monotonic()
    assert word.wait(word.value(), 0.2) is False
    assert 0.15 <= time.monotonic() - started < 5.0


def test_news_word_leaves_the_rest_of_the_broker_row_alone(region):
    region.brokers.register(4, pid=1234, port=9092, now_ms=1000)
    before = region.brokers.read(4)
    for _ in range(3):
        region.brokers.announce(4)
    assert region.brokers.read(4) == before
    assert region.brokers.news_word(4).value() == 3
