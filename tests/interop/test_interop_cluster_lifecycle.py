"""The `pybroker up` contract as the test fixtures rely on it: clean SIGTERM shutdown,
restart on the same data dir and ports, recovery after SIGKILL, startup failure reported."""
from __future__ import annotations

import socket

import pytest

from pybroker.testing import BrokerCluster, BrokerStartError

pytestmark = pytest.mark.interop


def produce_values(cluster, topic, wire, values):
    with wire.RawClient(cluster.bootstrap) as client:
        client.wait_for_leaders(topic)
        for value in values:
            assert client.produce(topic, 0, wire.build_batch([(None, value)]), acks=-1).error_code == 0


def fetch_values(cluster, topic, wire):
    with wire.RawClient(cluster.bootstrap) as client:
        client.wait_for_leaders(topic, auto_create=False)
        return [r.value for b in client.fetch_batches(topic, 0, 0) for r in b]


def test_sigterm_stops_cleanly_with_exit_code_zero(pybroker_cluster):
    assert pybroker_cluster.running
    assert pybroker_cluster.stop() == 0
    assert not pybroker_cluster.running
    with pytest.raises(OSError):
        socket.create_connection(pybroker_cluster.addresses[0], timeout=2).close()


def test_restart_keeps_records_and_listens_on_same_port(pybroker_cluster, topic, wire):
    produce_values(pybroker_cluster, topic, wire, [b"one", b"two"])
    bootstrap = pybroker_cluster.bootstrap
    pybroker_cluster.restart()
    assert pybroker_cluster.bootstrap == bootstrap
    assert fetch_values(pybroker_cluster, topic, wire) == [b"one", b"two"]
    produce_values(pybroker_cluster, topic, wire, [b"three"])
    assert fetch_values(pybroker_cluster, topic, wire) == [b"one", b"two", b"three"]


def test_acknowledged_records_survive_sigkill(pybroker_cluster, topic, wire):
    produce_values(pybroker_cluster, topic, wire, [b"a", b"b", b"c"])
    pybroker_cluster.restart(hard=True)
    assert pybroker_cluster.returncode is None  # running again
    assert fetch_values(pybroker_cluster, topic, wire) == [b"a", b"b", b"c"]


def test_startup_failure_is_reported_with_the_log(tmp_path):
    cluster = BrokerCluster(data_dir=tmp_path / "data", extra_args=["--no-such-option"],
                            start_timeout=10)
    with pytest.raises(BrokerStartError) as failure:
        cluster.start()
    assert "--no-such-option" in str(failure.value)
    assert not cluster.running
