"""The supervisor does not fence a broker for heartbeats it could not read because its own
loop was held up (a change to thousands of partitions, a loaded machine): such fencing
failed over every partition the broker led, and at 20,000 partitions set off a cascade."""
from __future__ import annotations

import time

from pybroker.supervisor.arbiter import BrokerProcess, Supervisor


def supervisor_with_broker(tmp_path, heartbeat_age_s: float) -> tuple[Supervisor, BrokerProcess]:
    supervisor = Supervisor(str(tmp_path), brokers=1, session_timeout_s=6.0)
    proc = supervisor.brokers[0] = BrokerProcess(0, 0)
    proc.registered = True
    proc.pid = 1  # not spawned by manage_brokers
    proc.last_heartbeat = time.monotonic() - heartbeat_age_s
    return supervisor, proc


def test_a_stalled_supervisor_excuses_the_heartbeats_it_could_not_read(tmp_path):
    supervisor, proc = supervisor_with_broker(tmp_path, 5.0)  # the last one read before a 10 s stall
    supervisor._excuse_stall(time.monotonic() - 10.0)
    assert time.monotonic() - proc.last_heartbeat < 1.0
    supervisor.manage_brokers()
    assert not proc.fenced


def test_a_broker_silent_while_the_supervisor_ran_is_still_fenced(tmp_path):
    supervisor, proc = supervisor_with_broker(tmp_path, 7.0)
    supervisor._excuse_stall(time.monotonic() - 0.1)  # the loop turned on time
    supervisor.manage_brokers()
    assert proc.fenced
