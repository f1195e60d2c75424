"""`pybroker scale` refusals and scaling down: a broker is removed only when it holds no
replica (else a clear message and nothing changes), is then unregistered (no topic or
reassignment may name it) and stays removed across a restart; `pybroker up --brokers M`
with more brokers than the data dir had adds them, as scaling up does."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker import errors
from pybroker.client.admin import Admin
from pybroker.cluster.controller import Controller
from pybroker.cluster.metadata_log import MetadataLog
from pybroker.supervisor.arbiter import pid_alive, read_pid, run_dir
from pybroker.testing import wait_until

pytestmark = pytest.mark.timeout(120)


def scale(data_dir, brokers: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "scale", "--data", str(data_dir),
                           "--brokers", str(brokers)], capture_output=True, text=True, timeout=90)


def broker_ids(bootstrap: str) -> list[int]:
    return sorted(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15).brokers)


def wait_for_brokers(bootstrap: str, expected: list[int]) -> None:
    """Metadata reaches the brokers a moment after the supervisor changes it."""
    wait_until(lambda: broker_ids(bootstrap) == expected, 30, f"brokers {expected} in Metadata")


def test_scale_without_a_supervisor_or_to_an_impossible_count_is_refused(tmp_path, pybroker_cluster_factory):
    gone = scale(tmp_path, 4)
    assert gone.returncode == 1 and "pybroker scale: no supervisor answers on" in gone.stderr
    cluster = pybroker_cluster_factory(brokers=1)
    for count in (0, 65):
        refused = scale(cluster.data_dir, count)
        assert (refused.returncode, refused.stderr) == (
            1, f"pybroker scale: a cluster runs 1 to 64 brokers, not {count}\n")
    same = scale(cluster.data_dir, 1)
    assert (same.returncode, same.stdout.splitlines()[0]) == (0, "brokers: 1 (0)")


def test_a_broker_with_replicas_is_not_removed_and_an_empty_one_is_unregistered(pybroker_cluster_factory, topic):
    cluster = pybroker_cluster_factory(brokers=3)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replica_assignment=[[0], [1]])])[topic].result(15)
    refused = scale(cluster.data_dir, 1)
    assert refused.returncode == 1
    assert refused.stderr == (f"pybroker scale: cannot remove brokers 1,2: 1 partition has replicas there: "
                              f"{topic}-1 (on 1). Move them first with `pybroker reassign-partitions`\n")
    wait_for_brokers(cluster.bootstrap, [0, 1, 2])
    # Broker 2 holds nothing: it goes, and no reassignment may name it afterwards.
    removed = scale(cluster.data_dir, 2)
    assert (removed.returncode, removed.stdout.splitlines()[0]) == (0, "brokers: 2 (0,1)"), removed.stderr
    wait_for_brokers(cluster.bootstrap, [0, 1])
    with Admin(cluster.bootstrap) as admin:
        (error,) = admin.alter_partition_reassignments({(topic, 1): [0, 2]}).values()
        assert isinstance(error, errors.InvalidReplicaAssignment) and "no such broker is registered" in str(error)
        # Once its replica has moved away, broker 1 may go too.
        assert admin.alter_partition_reassignments({(topic, 1): [0]}) == {(topic, 1): None}
        wait_until(lambda: not admin.list_partition_reassignments(), 30, "the move off broker 1")
    removed = scale(cluster.data_dir, 1)
    assert (removed.returncode, removed.stdout.splitlines()[0]) == (0, "brokers: 1 (0)"), removed.stderr
    wait_for_brokers(cluster.bootstrap, [0])
    # The count is durable: a restart runs one broker ...
    cluster.brokers = 1
    cluster.restart()
    wait_for_brokers(cluster.bootstrap, [0])
    # ... and `up --brokers 2` on the data dir adds broker 1 back, as `scale --brokers 2` would.
    cluster.brokers = 2
    cluster.restart()
    wait_for_brokers(cluster.bootstrap, [0, 1])
    assert "as the data dir has" not in cluster.log_text()


def test_a_broker_unregistered_by_a_supervisor_that_died_is_stopped_by_the_next(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(brokers=2)
    cluster.kill(whole_group=False)  # the brokers keep serving
    leftover = read_pid(os.path.join(run_dir(str(cluster.data_dir)), "broker-1.pid"))
    assert pid_alive(leftover)
    # What the dead supervisor had written before stopping broker 1.
    log = MetadataLog(str(cluster.data_dir / "meta"))
    controller = Controller()
    log.load_into(controller)
    controller.unregister_brokers([1], 1)
    log.append(controller.take_records())
    log.close()
    cluster.brokers = 1
    cluster.start()
    wait_until(lambda: not pid_alive(leftover), 20, "the unregistered broker to stop")
    wait_for_brokers(cluster.bootstrap, [0])
    assert "broker 1 (pid %d) runs but the cluster has 1 brokers: stopping it" % leftover in cluster.log_text()
