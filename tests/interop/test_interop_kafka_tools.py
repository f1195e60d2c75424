"""Apache Kafka 4.4's own admin tools (kafka-log-dirs, kafka-leader-election,
kafka-configs; org.apache.kafka:kafka-tools:4.4.0, fetched with mvn at test time) against
pybroker print what they print against Apache Kafka 4.4 itself: the recorded outputs in
tests/interop/kafka_4_4/ (see its README for how they were made). kafka-reassign-partitions
runs against pybroker step by step beside `pybroker reassign-partitions`, which must
print the same."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.testing import BrokerCluster

pytestmark = pytest.mark.interop

TOOLS = "org.apache.kafka:kafka-tools:4.4.0"
GOLDEN = os.path.join(os.path.dirname(__file__), "kafka_4_4")
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>local</groupId><artifactId>tools</artifactId><version>1</version><dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>4.4.0</version></dependency>
</dependencies></project>"""


def _golden(name: str) -> str:
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def kafka_tool(tmp_path_factory):
    if not all(shutil.which(tool) for tool in ("java", "mvn")):
        pytest.skip("Kafka's tools need java and mvn")
    work = tmp_path_factory.mktemp("kafka-tools")
    (work / "pom.xml").write_text(POM)
    classpath = work / "cp.txt"
    built = subprocess.run(["mvn", "-q", "-f", str(work / "pom.xml"), "dependency:build-classpath",
                            f"-Dmdep.outputFile={classpath}"], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, f"resolving {TOOLS} failed:\n{built.stdout}\n{built.stderr}"
    cp = classpath.read_text().strip()

    def run(main_class: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["java", "-Xmx256m", "-cp", cp, f"org.apache.kafka.tools.{main_class}", *args],
                              capture_output=True, text=True, timeout=180)
    return run


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), start_timeout=40.0) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        for name, partitions in (("ref-a", 5), ("ref-b", 2), ("orders-big", 37), ("x", 3)):
            admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        yield running


def _stdout(run: subprocess.CompletedProcess) -> str:
    return "".join(line + "\n" for line in run.stdout.splitlines() if not line.startswith("SLF4J"))


def _partition_order_free(text: str) -> tuple[list[str], str, list]:
    """The lines around the JSON, the JSON with its partition list emptied (its key order
    kept), and the partition entries sorted: where two partitions share a bucket of the
    tool's HashMap, their order is the broker's answer order, which Kafka's broker takes
    from its own log map."""
    lines = text.splitlines()
    doc = json.loads(lines[2])
    partitions = []
    for broker in doc["brokers"]:
        for log_dir in broker["logDirs"]:
            partitions += log_dir["partitions"]
            log_dir["partitions"] = []
    return lines[:2], json.dumps(doc, separators=(",", ":")), sorted(partitions, key=lambda p: p["partition"])


@pytest.mark.timeout(1200)
def test_kafka_log_dirs_prints_what_it_prints_against_kafka(kafka_tool, cluster):
    run = kafka_tool("LogDirsCommand", "--bootstrap-server", cluster.bootstrap, "--describe")
    assert run.returncode == 0, run.stderr[-2000:]
    lines = _stdout(run).splitlines()
    log_dir = json.loads(lines[2])["brokers"][0]["logDirs"][0]["logDir"]
    # The reference Kafka's node id was 1; pybroker's one broker is 0.
    expected = _golden("log_dirs_describe.txt").replace("from brokers 1\n", "from brokers 0\n") \
        .replace('"broker":1,', '"broker":0,')
    assert _partition_order_free(_stdout(run).replace(json.dumps(log_dir), '"LOG_DIR"')) == \
        _partition_order_free(expected)
    ours = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "log-dirs", "--describe", "--bootstrap-server",
                           cluster.bootstrap], capture_output=True, text=True, timeout=60)
    # pybroker's tool orders partitions as Kafka's does from the same answer: identical.
    assert ours.stdout == _stdout(run)


@pytest.mark.timeout(600)
def test_kafka_leader_election_prints_what_it_prints_against_kafka(kafka_tool, cluster, tmp_path):
    spec = tmp_path / "partitions.json"
    spec.write_text(json.dumps({"partitions": [{"topic": "orders-big", "partition": 1},
                                               {"topic": "orders-big", "partition": 30},
                                               {"topic": "x", "partition": 2}, {"topic": "nope", "partition": 0}]}))
    run = kafka_tool("LeaderElectionCommand", "--bootstrap-server", cluster.bootstrap, "--election-type",
                     "preferred", "--path-to-json-file", str(spec))
    assert run.returncode == 1
    assert _stdout(run) == _golden("leader_election_preferred.txt")
    ours = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "leader-election", "--election-type", "preferred",
                           "--path-to-json-file", str(spec), "--bootstrap-server", cluster.bootstrap],
                          capture_output=True, text=True, timeout=60)
    assert (ours.returncode, ours.stdout) == (1, _stdout(run))


@pytest.mark.timeout(600)
def test_kafka_reassign_partitions_and_pybrokers_print_the_same(kafka_tool, cluster, tmp_path):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("moving", 2, 1)])["moving"].result(30)
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"version": 1, "topics": [{"topic": "moving"}]}))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "moving", "partition": 1, "replicas": [0]},
                                                             {"topic": "moving", "partition": 0, "replicas": [0]}]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "partitions": [{"topic": "moving", "partition": 0, "replicas": [0, 4]}]}))
    steps = [["--generate", "--topics-to-move-json-file", str(topics), "--broker-list", "0"], ["--list"],
             ["--execute", "--reassignment-json-file", str(plan)], ["--verify", "--reassignment-json-file", str(plan)],
             ["--cancel", "--reassignment-json-file", str(plan)], ["--execute", "--reassignment-json-file", str(bad)]]
    for step in steps:
        theirs = kafka_tool("reassign.ReassignPartitionsCommand", "--bootstrap-server", cluster.bootstrap, *step)
        ours = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "reassign-partitions", *step,
                               "--bootstrap-server", cluster.bootstrap], capture_output=True, text=True, timeout=60)
        expected = _stdout(theirs)
        if theirs.returncode:
            # Kafka's tool follows an error with its Java stack trace.
            expected = expected.splitlines()[0] + "\n"
        assert (ours.returncode, ours.stdout) == (theirs.returncode, expected), step


@pytest.mark.timeout(600)
def test_kafka_configs_describes_topics_and_groups_as_against_kafka(kafka_tool, cluster):
    # Kafka's storage formatter sets the cluster default min.insync.replicas=1; so does this.
    altered = kafka_tool("ConfigCommand", "--bootstrap-server", cluster.bootstrap, "--entity-type", "brokers",
                         "--entity-default", "--alter", "--add-config", "log.retention.ms=3600000,min.insync.replicas=1")
    assert altered.returncode == 0, altered.stderr[-2000:]
    topic = kafka_tool("ConfigCommand", "--bootstrap-server", cluster.bootstrap, "--entity-type", "topics",
                       "--entity-name", "x", "--describe", "--all")
    assert _stdout(topic) == _golden("configs_describe_topic_all.txt")
    group_altered = kafka_tool("ConfigCommand", "--bootstrap-server", cluster.bootstrap, "--entity-type", "groups",
                               "--entity-name", "g1", "--alter", "--add-config", "consumer.session.timeout.ms=50000")
    assert group_altered.returncode == 0, group_altered.stderr[-2000:]
    group = kafka_tool("ConfigCommand", "--bootstrap-server", cluster.bootstrap, "--entity-type", "groups",
                       "--entity-name", "g1", "--describe", "--all")
    assert _stdout(group) == _golden("configs_describe_group_all.txt")


@pytest.mark.timeout(600)
def test_kafka_configs_adds_describes_and_deletes_scram_users(kafka_tool, tmp_path_factory):
    """kafka-configs --entity-type users over SASL with --command-config, as against Kafka:
    one mechanism per --alter (Kafka's controller refuses two for one user in one request)."""
    from confluent_kafka import Producer

    work = tmp_path_factory.mktemp("scram")
    config = work / "admin.properties"
    config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
                      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                      'username="admin" password="admin-secret";\n')
    with BrokerCluster(data_dir=work / "data", start_timeout=60.0,
                       extra_args=["--listener", "SASL_PLAINTEXT", "--super-user", "admin:admin-secret"]) as sasl:
        common = ["--bootstrap-server", sasl.bootstrap, "--command-config", str(config), "--entity-type", "users"]
        added = kafka_tool("ConfigCommand", *common, "--entity-name", "alice", "--alter", "--add-config",
                           "SCRAM-SHA-256=[iterations=8192,password=alice-secret]")
        assert added.returncode == 0, added.stderr[-2000:]
        assert "Completed updating config for user alice." in added.stdout
        # (kafka-configs --describe --entity-type users also asks DescribeClientQuotas, which
        # pybroker does not serve yet: the credential is described with Kafka's admin API.)
        from confluent_kafka.admin import AdminClient, ScramMechanism

        admin = AdminClient({"bootstrap.servers": sasl.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
                             "sasl.password": "admin-secret"})
        alice = admin.describe_user_scram_credentials(["alice"])["alice"].result(30)
        assert [(c.mechanism, c.iterations) for c in alice.scram_credential_infos] == \
            [(ScramMechanism.SCRAM_SHA_256, 8192)]
        errs = []
        producer = Producer({"bootstrap.servers": sasl.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret",
                             "error_cb": errs.append})
        producer.produce("scram-tool", b"x")
        assert producer.flush(30) == 0 and not errs, errs
        deleted = kafka_tool("ConfigCommand", *common, "--entity-name", "alice", "--alter", "--delete-config",
                             "SCRAM-SHA-256")
        assert deleted.returncode == 0, deleted.stderr[-2000:]
        assert "Completed updating config for user alice." in deleted.stdout
        with pytest.raises(Exception, match="does not exist"):
            admin.describe_user_scram_credentials(["alice"])["alice"].result(30)
