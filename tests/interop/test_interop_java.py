"""The Java client (Apache Kafka's kafka-clients, fetched from Maven Central at test time)
against a 3-broker cluster: admin create/describe of an RF 3 topic, an idempotent acks=all
producer with each codec, a consumer group reading everything back and committing
(tests/interop/java/Interop.java); a transactional producer (commit, abort,
sendOffsetsToTransaction) with read_committed consumers (TxnInterop.java); and the admin
sequence a Kafka UI runs on start, then the cluster admin calls of Kafka 4's tools
(UiSequence.java); three consumers with group.protocol=consumer (KIP-848,
ConsumerProtocol.java); three KafkaShareConsumers of one share group (KIP-932,
ShareInterop.java); and partition reassignment through Admin (Reassign.java). The programs
are built by the ``java_program`` fixture
(tests/interop/conftest.py)."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.interop

@pytest.fixture(scope="module")
def three_brokers(tmp_path_factory):
    from pybroker.testing import BrokerCluster

    cluster = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=3,
                            extra_args=["--group-initial-rebalance-delay-ms", "0"])
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_java_client_admin_idempotent_producer_and_group_consumer(java_program, three_brokers, codec):
    run = subprocess.run([*java_program, "Interop", three_brokers.bootstrap, codec], capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert "topics: true" in run.stdout
    assert "partitions: 3 isr0: 3" in run.stdout
    assert "consumed 5000 of 5000" in run.stdout


@pytest.mark.timeout(300)
def test_java_transactional_producer_and_read_committed_consumer(java_program, three_brokers):
    program = [*java_program, "TxnInterop"]
    run = subprocess.run([*program, three_brokers.bootstrap], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert "read_committed in: 100" in run.stdout, run.stdout
    assert "read_uncommitted in: 150" in run.stdout, run.stdout
    assert "moved 100" in run.stdout, run.stdout
    assert "group committed: 100" in run.stdout, run.stdout
    assert "read_committed out: 100 distinct 100" in run.stdout, run.stdout


@pytest.mark.timeout(300)
def test_java_admin_ui_sequence_completes_without_error(java_program, three_brokers):
    run = subprocess.run([*java_program, "UiSequence", three_brokers.bootstrap], capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    assert run.stdout.startswith("consumed 300")
    assert lines["cluster"].endswith("brokers [0, 1, 2]")
    assert lines["listTopics"] == "true"
    assert lines["describeTopics"] == "partitions 3 replicas 3 elr []"
    assert lines["describeLogDirs"] == "brokers 3 topic bytes>0 true"
    assert lines["describeConfigs"] == "4 retention.ms 604800000 DEFAULT_CONFIG"
    assert lines["listConsumerGroups"] == "1"
    assert lines["describeConsumerGroups"] == "Empty Classic"
    assert lines["listConsumerGroupOffsets"] == "3 sum 300"
    assert lines["listOffsets"] == "end 300 maxTimestamp>0 true"
    assert lines["describeFeatures"] == "metadata.version 25"
    assert lines["dynamicDefault"] == "20000 DYNAMIC_DEFAULT_BROKER_CONFIG"
    assert lines["electLeaders"] == "ElectionNotNeededException"


@pytest.mark.timeout(300)
def test_java_consumers_with_the_consumer_protocol_share_and_take_over(java_program, three_brokers):
    run = subprocess.run([*java_program, "ConsumerProtocol", three_brokers.bootstrap], capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert "balanced: true" in run.stdout, run.stdout
    assert "consumed: 600 duplicates 0" in run.stdout, run.stdout
    assert "taken over: true" in run.stdout, run.stdout
    assert "committed: 600" in run.stdout, run.stdout
    assert "type: Consumer" in run.stdout, run.stdout


@pytest.fixture(scope="module")
def sasl_brokers(tmp_path_factory):
    from pybroker.testing import BrokerCluster

    cluster = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=2, start_timeout=60,
                            extra_args=["--listener", "SASL_SSL", "--listener", "SASL_PLAINTEXT", "--tls-self-signed",
                                        "--super-user", "admin:admin-secret", "--group-initial-rebalance-delay-ms", "0"])
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN")])
def test_java_client_over_sasl(java_program, sasl_brokers, listener, mechanism):
    args = [sasl_brokers.listeners[listener], listener, mechanism, "admin", "admin-secret"]
    if listener == "SASL_SSL":
        args.append(sasl_brokers.ssl_cafile)
    run = subprocess.run([*java_program, "SaslInterop", *args], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert "cluster: 2 brokers" in run.stdout
    assert "consumed 200 of 200" in run.stdout
    expected = ("Authentication failed: Invalid username or password" if mechanism == "PLAIN" else
                f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
    assert f"wrong password: SaslAuthenticationException: {expected}" in run.stdout, run.stdout


@pytest.mark.timeout(300)
def test_java_share_consumers_split_one_partition_and_acknowledge(java_program, three_brokers):
    run = subprocess.run([*java_program, "ShareInterop", three_brokers.bootstrap], capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert "accepted: 299 duplicates 0" in run.stdout, run.stdout  # all but the REJECTed one, each once
    assert "released came back with delivery count 2" in run.stdout, run.stdout
    assert "rejected came back: 0" in run.stdout, run.stdout
    busy = int(run.stdout.split("consumers with records: ")[1].split()[0])
    assert busy >= 2, run.stdout  # one partition, yet the group's members share it
    assert "group state: Empty members 0" in run.stdout, run.stdout  # all three closed
    assert "start offset: 300 " in run.stdout, run.stdout  # every record acknowledged or archived


@pytest.mark.timeout(300)
def test_java_admin_reassigns_partitions_with_kafkas_errors(java_program, three_brokers):
    run = subprocess.run([*java_program, "Reassign", three_brokers.bootstrap], capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    assert lines["move p0"] == "ok"
    assert lines["move p1 to 1,7"] == "InvalidReplicaAssignmentException"
    assert lines["move p9"] == "UnknownTopicOrPartitionException"
    assert lines["ongoing after catch-up"] == "0"
    assert lines["p0 replicas"] == "[0, 1, 2] isr: [0, 1, 2]"
    assert lines["cancel p0"] == "NoReassignmentInProgressException"
    assert lines["p1 to 1,2 at a fixed factor"] == "InvalidReplicationFactorException"
    assert lines["p1 to 2 at a fixed factor"] == "ok"
    assert lines["consumed"] == "1000 of 1000"
