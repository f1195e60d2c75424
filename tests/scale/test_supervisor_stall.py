"""The supervisor does not fence a broker for heartbeats it could not read because its own
loop was held up (a change to thousands of partitions, a loaded machine): such fencing
failed over every partition the broker led, and at 20,000 partitions set off a cascade."""
from __future__ import annotations

import time

from pybroker.supervisor.arbiter import BrokerProcess, Supervisor


def test_a_stalled_supervisor_excuses_the_heartbeats_it_could_not_read(tmp_path):
    supervisor = Supervisor(str(tmp_path), brokers=1, session_timeout_s=6.0)
    proc = supervisor.brokers[0] = BrokerProcess(0, 0)
    proc.registered = True
    proc.pid = 1  # not spawned by manage_brokers
    now = time.monotonic()
    proc.last_heartbeat = now - 5.0  # the last one read, before a 10 s stall
    supervisor._excuse_stall(now - 10.0)
    assert time.monotonic() - proc.last_heartbeat < 1.0
    supervisor.manage_brokers()
    assert not proc.fenced


def test_a_broker_silent_while_the_supervisor_ran_is_still_fenced(tmp_path):
    supervisor = Supervisor(str(tmp_path), brokers=1, session_timeout_s=6.0)
    proc = supervisor.brokers[0] = BrokerProcess(0, 0)
    proc.registered = True
    proc.pid = 1  # not spawned by manage_brokers
    now = time.monotonic()
    proc.last_heartbeat = now - 7.0
    supervisor._excuse_stall(now - 0.1)  # the loop turned on time
    supervisor.manage_brokers()
    assert proc.fenced
