"""ACLs with SCRAM users, as the README's walk-through runs them: a 2-broker cluster
started with ``--listener SASL_PLAINTEXT --super-user admin:admin-secret --authorizer
acl``; the super user creates SCRAM users (AlterUserScramCredentials) and grants them
ACLs; each client library, logged in as a user without ACLs, gets Kafka's authorization
errors, and after the grants works. Kafka's own kafka-acls (AclCommand, with
``--command-config``) and the Java client run against the same cluster. Expectations are
those Apache Kafka 4.4 gives (tools/kafka_ref.py --sasl-user ... --acl)."""
from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from acl_outcomes import consume, produce
from pybroker.testing import BrokerCluster

pytestmark = pytest.mark.interop

TIMEOUT = 15.0
USERS = ("alice", "kp", "aio", "java", "tool")


def sasl(cluster, user: str, password: str | None = None, mechanism: str = "SCRAM-SHA-256") -> dict:
    return {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password or f"{user}-secret"}


ADMIN = ("admin", "admin-secret")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker-sasl-acls"), brokers=2, start_timeout=60.0,
                       extra_args=["--group-initial-rebalance-delay-ms", "0", "--listener", "SASL_PLAINTEXT",
                                   "--super-user", "admin:admin-secret", "--authorizer", "acl"]) as running:
        admin = AdminClient(sasl(running, *ADMIN, mechanism="SCRAM-SHA-512"))
        created = admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                         f"{user}-secret".encode()) for user in USERS])
        for future in created.values():
            assert future.result(30) is None
        for topic in ("alice-t", "kp-t", "aio-t", "java-t"):
            admin.create_topics([NewTopic(topic, 1, 2)])[topic].result(30)   # RF 2: replication under ACLs
        yield running


def grant(cluster, user: str, resource_type, name: str, *operations, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW) -> None:
    admin = AdminClient(sasl(cluster, *ADMIN))
    bindings = [AclBinding(resource_type, name, pattern, f"User:{user}", "*", op, permission) for op in operations]
    for future in admin.create_acls(bindings).values():
        assert future.result(TIMEOUT) is None


def test_a_scram_user_without_acls_is_refused_and_works_after_create_acls(cluster):
    alice = sasl(cluster, "alice")
    assert produce(alice, "alice-t", b"x") == "TOPIC_AUTHORIZATION_FAILED"
    assert consume(alice, "alice-t", "alice-g") == "GROUP_AUTHORIZATION_FAILED"
    assert "alice-t" not in AdminClient(alice).list_topics(timeout=TIMEOUT).topics
    grant(cluster, "alice", ResourceType.TOPIC, "alice-", AclOperation.READ, AclOperation.WRITE,
          pattern=ResourcePatternType.PREFIXED)
    grant(cluster, "alice", ResourceType.GROUP, "alice-g", AclOperation.READ)
    assert produce(alice, "alice-t", b"hello") is None
    assert consume(alice, "alice-t", "alice-g") == "hello"
    # DENY wins over the prefix grant.
    grant(cluster, "alice", ResourceType.TOPIC, "alice-t", AclOperation.WRITE, permission=AclPermissionType.DENY)
    assert produce(alice, "alice-t", b"no") == "TOPIC_AUTHORIZATION_FAILED"


def test_the_super_user_may_do_everything(cluster):
    admin = sasl(cluster, *ADMIN, mechanism="PLAIN")
    assert produce(admin, "su-topic", b"root") is None          # auto-created: CREATE too
    assert consume(admin, "su-topic", "any-group") == "root"


def test_describe_and_delete_acls_of_a_user(cluster):
    grant(cluster, "tool", ResourceType.TOPIC, "tool-t", AclOperation.DESCRIBE)
    admin = AdminClient(sasl(cluster, *ADMIN))
    mine = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:tool", None, AclOperation.ANY,
                            AclPermissionType.ANY)
    assert [(b.name, b.operation) for b in admin.describe_acls(mine).result(TIMEOUT)] == [
        ("tool-t", AclOperation.DESCRIBE)]
    [deleted] = admin.delete_acls([mine]).values()
    assert len(deleted.result(TIMEOUT)) == 1
    assert admin.describe_acls(mine).result(TIMEOUT) == []


def test_kafka_python_and_aiokafka_users(cluster):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    def kp_conf(user):
        return {"bootstrap_servers": cluster.bootstrap, "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": user, "sasl_plain_password": f"{user}-secret"}

    producer = KafkaProducer(**kp_conf("kp"), enable_idempotence=False, max_block_ms=5000, retries=0)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("kp-t", b"x").get(TIMEOUT)
    finally:
        producer.close(timeout=5)
    grant(cluster, "kp", ResourceType.TOPIC, "kp-t", AclOperation.WRITE, AclOperation.READ)
    grant(cluster, "kp", ResourceType.GROUP, "kp-g", AclOperation.READ)
    producer = KafkaProducer(**kp_conf("kp"), max_block_ms=10000)   # idempotent: WRITE on a topic suffices
    try:
        producer.send("kp-t", b"kp-value").get(TIMEOUT)
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer("kp-t", **kp_conf("kp"), group_id="kp-g", auto_offset_reset="earliest",
                             consumer_timeout_ms=15000)
    try:
        assert next(iter(consumer)).value == b"kp-value"   # the first record; none in 15 s fails
    finally:
        consumer.close()

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import GroupAuthorizationFailedError

    def aio_conf():
        return {"bootstrap_servers": cluster.bootstrap, "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "aio", "sasl_plain_password": "aio-secret"}

    async def scenario():
        grant(cluster, "aio", ResourceType.TOPIC, "aio-t", AclOperation.WRITE, AclOperation.READ)
        producer = AIOKafkaProducer(**aio_conf())
        await producer.start()
        try:
            await asyncio.wait_for(producer.send_and_wait("aio-t", b"aio-value"), TIMEOUT)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("aio-t", **aio_conf(), group_id="aio-g", auto_offset_reset="earliest")
        try:
            with pytest.raises(GroupAuthorizationFailedError):
                await consumer.start()
        finally:
            await consumer.stop()
        grant(cluster, "aio", ResourceType.GROUP, "aio-g", AclOperation.READ)
        consumer = AIOKafkaConsumer("aio-t", **aio_conf(), group_id="aio-g", auto_offset_reset="earliest")
        await consumer.start()
        try:
            assert (await asyncio.wait_for(consumer.getone(), TIMEOUT)).value == b"aio-value"
        finally:
            await consumer.stop()

    asyncio.run(scenario())


# -- Kafka's own tools and the Java client --------------------------------------------------

KAFKA_LIBS = os.path.expanduser("~/.cache/pybroker-kafka-ref/4.4.0/libs")


def _command_config(tmp_path, user: str, password: str) -> str:
    path = tmp_path / f"{user}.properties"
    path.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{user}" password="{password}";\n')
    return str(path)


@pytest.mark.timeout(300)
def test_kafka_acls_adds_lists_and_removes(cluster, tmp_path):
    if not shutil.which("java") or not glob.glob(os.path.join(KAFKA_LIBS, "kafka-tools-*.jar")):
        pytest.skip("kafka-acls needs java and Kafka's jars (python tools/kafka_ref.py fetch)")

    def kafka_acls(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["java", "-Xmx256m", "-cp", os.path.join(KAFKA_LIBS, "*"),
                               "org.apache.kafka.tools.AclCommand", "--bootstrap-server", cluster.bootstrap,
                               "--command-config", _command_config(tmp_path, *ADMIN), *args],
                              capture_output=True, text=True, timeout=120)

    added = kafka_acls("--add", "--allow-principal", "User:tool", "--operation", "Read", "--operation", "Write",
                       "--topic", "tool-orders", "--resource-pattern-type", "prefixed")
    assert added.returncode == 0, added.stderr
    group = kafka_acls("--add", "--allow-principal", "User:tool", "--operation", "Read", "--group", "tool-",
                       "--resource-pattern-type", "prefixed")
    assert group.returncode == 0, group.stderr
    assert "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=tool-orders, patternType=PREFIXED)`" \
        in added.stdout
    listed = kafka_acls("--list", "--principal", "User:tool")
    assert listed.returncode == 0, listed.stderr
    assert "ACLs for principal `User:tool`" in listed.stdout
    assert "(principal=User:tool, host=*, operation=READ, permissionType=ALLOW)" in listed.stdout
    assert "resourceType=GROUP, name=tool-, patternType=PREFIXED" in listed.stdout
    removed = kafka_acls("--remove", "--force", "--topic", "tool-orders", "--group", "tool-",
                         "--resource-pattern-type", "prefixed")
    assert removed.returncode == 0, removed.stderr
    assert "(principal=User:tool" not in kafka_acls("--list", "--principal", "User:tool").stdout
    refused = subprocess.run(["java", "-Xmx256m", "-cp", os.path.join(KAFKA_LIBS, "*"),
                              "org.apache.kafka.tools.AclCommand", "--bootstrap-server", cluster.bootstrap,
                              "--command-config", _command_config(tmp_path, "tool", "tool-secret"),
                              "--add", "--allow-principal", "User:tool", "--operation", "All", "--cluster"],
                             capture_output=True, text=True, timeout=120)
    assert "ClusterAuthorizationException" in refused.stdout + refused.stderr


@pytest.mark.timeout(300)
def test_java_client_is_refused_then_granted(cluster, java_program):
    admin_props = _command_config_text(*ADMIN)
    user_props = _command_config_text("java", "java-secret")
    run = subprocess.run([*java_program, "AclInterop", cluster.bootstrap, admin_props, user_props, "java-t"],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert "produce refused: TopicAuthorizationException" in run.stdout, run.stdout
    # The Java consumer asks for the topic's metadata before it joins: as against Kafka,
    # the topic is refused first, then (with the topic granted) the group.
    assert run.stdout.count("consume refused: ") == 2, run.stdout
    assert "consume refused: TopicAuthorizationException\nconsume refused: GroupAuthorizationException" in run.stdout
    assert "produced 10" in run.stdout and "consumed 10" in run.stdout, run.stdout
    assert "described 3, deleted 3" in run.stdout, run.stdout


def _command_config_text(user: str, password: str) -> str:
    return ("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";')

