"""ACLs with real clients: confluent-kafka, kafka-python and aiokafka against a pybroker
started with ``--authorizer acl``.

On a PLAINTEXT listener every client is ``User:ANONYMOUS``. The module's cluster first
runs with ANONYMOUS as a super user, which grants ANONYMOUS only ALTER and DESCRIBE on
the cluster (enough to manage ACLs, nothing on topics or groups); it is then restarted
without super users, so every test sees ACLs that survived a full restart and a client
subject to them. The expected answers are the ones Apache Kafka 4.4 gives the same
client in the same situation (checked with tools/kafka_ref.py --acl: a user without
ACLs gets TOPIC_AUTHORIZATION_FAILED on produce, GROUP_AUTHORIZATION_FAILED on a
subscribe, sees no topics in a listing and TOPIC_AUTHORIZATION_FAILED for a named one).
"""
from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

import acl_outcomes
from pybroker.client.admin import Admin
from pybroker.security import acls
from pybroker.testing import BrokerCluster

pytestmark = pytest.mark.interop

ME = "User:ANONYMOUS"
TIMEOUT = 15.0
ANY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                           AclPermissionType.ANY)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data = tmp_path_factory.mktemp("pybroker-acls")
    first = ["--group-initial-rebalance-delay-ms", "0", "--authorizer", "acl"]
    with BrokerCluster(data_dir=data, extra_args=[*first, "--super-users", ME], start_timeout=40.0) as running:
        with Admin(running.bootstrap) as admin:
            admin.create_acls([acls.AclBinding(acls.CLUSTER, acls.CLUSTER_NAME, acls.LITERAL, ME, "*", op, acls.ALLOW)
                               for op in (acls.ALTER, acls.DESCRIBE)])
        confluent_admin = AdminClient({"bootstrap.servers": running.bootstrap})
        for name in ("plain", "prefix-a", "prefix-b", "kp", "aio", "ops", "restart"):
            confluent_admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
        running.extra_args = first
        running.restart()
        yield running


def admin(cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap})


def grant(cluster, resource_type, name, *operations, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW) -> None:
    bindings = [AclBinding(resource_type, name, pattern, ME, "*", op, permission) for op in operations]
    client = admin(cluster)  # kept: a dropped client fails its futures
    for future in client.create_acls(bindings).values():
        assert future.result(TIMEOUT) is None


def produce(cluster, topic: str, value: bytes = b"v") -> str | None:
    return acl_outcomes.produce({"bootstrap.servers": cluster.bootstrap}, topic, value)


def consume(cluster, topic: str, group: str) -> str:
    return acl_outcomes.consume({"bootstrap.servers": cluster.bootstrap}, topic, group)


def visible_topics(cluster) -> list[str]:
    return sorted(admin(cluster).list_topics(timeout=TIMEOUT).topics)


def test_without_acls_a_client_is_refused_and_after_create_acls_it_works(cluster):
    assert produce(cluster, "plain") == "TOPIC_AUTHORIZATION_FAILED"
    assert consume(cluster, "plain", "plain-group") == "GROUP_AUTHORIZATION_FAILED"
    assert "plain" not in visible_topics(cluster)
    named = admin(cluster).list_topics("plain", timeout=TIMEOUT).topics["plain"]
    assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    grant(cluster, ResourceType.TOPIC, "plain", AclOperation.WRITE, AclOperation.READ)
    assert produce(cluster, "plain", b"granted") is None
    assert "plain" in visible_topics(cluster)   # READ and WRITE imply DESCRIBE
    # The group is still refused; the topic alone is not enough.
    assert consume(cluster, "plain", "plain-group") == "GROUP_AUTHORIZATION_FAILED"
    grant(cluster, ResourceType.GROUP, "plain-group", AclOperation.READ)
    assert consume(cluster, "plain", "plain-group") == "granted"


def test_prefixed_acls_grant_and_deny_wins(cluster):
    grant(cluster, ResourceType.TOPIC, "prefix-", AclOperation.ALL, pattern=ResourcePatternType.PREFIXED)
    grant(cluster, ResourceType.GROUP, "prefix-", AclOperation.READ, pattern=ResourcePatternType.PREFIXED)
    assert produce(cluster, "prefix-a", b"a") is None
    assert produce(cluster, "prefix-b", b"b") is None
    assert consume(cluster, "prefix-a", "prefix-g1") == "a"
    grant(cluster, ResourceType.TOPIC, "prefix-b", AclOperation.READ, permission=AclPermissionType.DENY)
    assert consume(cluster, "prefix-b", "prefix-g2") == "TOPIC_AUTHORIZATION_FAILED"
    assert produce(cluster, "prefix-b", b"still writable") is None   # only READ is denied
    assert consume(cluster, "prefix-a", "prefix-g3") == "a"


def test_describe_and_delete_acls_with_filters(cluster):
    client = admin(cluster)
    grant(cluster, ResourceType.TOPIC, "filters", AclOperation.READ)
    grant(cluster, ResourceType.TOPIC, "filt", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED)
    match = AclBindingFilter(ResourceType.TOPIC, "filters", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    found = client.describe_acls(match).result(TIMEOUT)
    assert sorted((b.name, b.resource_pattern_type, b.operation) for b in found) == sorted([
        ("filt", ResourcePatternType.PREFIXED, AclOperation.WRITE),
        ("filters", ResourcePatternType.LITERAL, AclOperation.READ)])
    literal = AclBindingFilter(ResourceType.TOPIC, "filters", ResourcePatternType.LITERAL, None, None,
                               AclOperation.ANY, AclPermissionType.ANY)
    [deleted] = client.delete_acls([literal]).values()
    assert [(b.name, b.operation) for b in deleted.result(TIMEOUT)] == [("filters", AclOperation.READ)]
    remaining = {(b.name, b.resource_pattern_type) for b in client.describe_acls(ANY_ACL).result(TIMEOUT)}
    assert ("filt", ResourcePatternType.PREFIXED) in remaining
    assert ("filters", ResourcePatternType.LITERAL) not in remaining


def test_acls_survive_a_restart(cluster):
    grant(cluster, ResourceType.TOPIC, "restart", AclOperation.WRITE)
    cluster.restart()
    client = admin(cluster)
    bindings = client.describe_acls(ANY_ACL).result(TIMEOUT)
    assert ("restart", AclOperation.WRITE) in {(b.name, b.operation) for b in bindings}
    # confluent-kafka calls the CLUSTER resource type BROKER (both are 4).
    assert (ResourceType.BROKER, "kafka-cluster") in {(b.restype, b.name) for b in bindings}
    assert produce(cluster, "restart") is None


def test_authorized_operations_are_the_principals(cluster):
    grant(cluster, ResourceType.TOPIC, "ops", AclOperation.READ, AclOperation.ALTER_CONFIGS)
    client = admin(cluster)
    from confluent_kafka import TopicCollection

    [described] = client.describe_topics(TopicCollection(["ops"]), include_authorized_operations=True).values()
    assert sorted(op.name for op in described.result(TIMEOUT).authorized_operations) == [
        "ALTER_CONFIGS", "DESCRIBE", "DESCRIBE_CONFIGS", "READ"]
    described_cluster = client.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    assert sorted(op.name for op in described_cluster.authorized_operations) == ["ALTER", "DESCRIBE"]


def test_kafka_python_gets_the_authorization_errors(cluster):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    # kafka-python is idempotent by default: InitProducerId needs IDEMPOTENT_WRITE on the
    # cluster or WRITE on some topic, which the other tests' grants give.
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, max_block_ms=5000, request_timeout_ms=5000,
                             retries=0)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("kp", b"x").get(TIMEOUT)
        grant(cluster, ResourceType.TOPIC, "kp", AclOperation.WRITE, AclOperation.READ)
        # kafka-python keeps a topic it was refused in its unauthorized set until a new
        # producer asks again.
    finally:
        producer.close(timeout=5)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, max_block_ms=10000)
    try:
        assert producer.send("kp", b"kp-value").get(TIMEOUT).offset >= 0
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer("kp", bootstrap_servers=cluster.bootstrap, group_id="kp-group",
                             auto_offset_reset="earliest", consumer_timeout_ms=8000)
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            for _ in consumer:
                break
    finally:
        consumer.close()
    grant(cluster, ResourceType.GROUP, "kp-group", AclOperation.READ)
    consumer = KafkaConsumer("kp", bootstrap_servers=cluster.bootstrap, group_id="kp-group",
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)
    try:
        assert next(iter(consumer)).value == b"kp-value"   # the first record; none in 15 s fails
    finally:
        consumer.close()


def test_aiokafka_gets_the_authorization_errors(cluster):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, request_timeout_ms=5000)
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(producer.send_and_wait("aio", b"x"), TIMEOUT)
        finally:
            await producer.stop()
        grant(cluster, ResourceType.TOPIC, "aio", AclOperation.WRITE, AclOperation.READ)
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap)
        await producer.start()
        try:
            await asyncio.wait_for(producer.send_and_wait("aio", b"aio-value"), TIMEOUT)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("aio", bootstrap_servers=cluster.bootstrap, group_id="aio-group",
                                    auto_offset_reset="earliest")
        try:
            with pytest.raises(GroupAuthorizationFailedError):
                await consumer.start()   # it joins the group before it returns
                await asyncio.wait_for(consumer.getone(), TIMEOUT)
        finally:
            await consumer.stop()
        grant(cluster, ResourceType.GROUP, "aio-group", AclOperation.READ)
        consumer = AIOKafkaConsumer("aio", bootstrap_servers=cluster.bootstrap, group_id="aio-group",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), TIMEOUT)
            assert msg.value == b"aio-value"
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_a_super_user_may_do_everything_without_any_acl(pybroker_cluster_factory):
    cluster = pybroker_cluster_factory(extra_args=["--authorizer", "acl", "--super-users", f"User:ops;{ME}"])
    client = admin(cluster)
    client.create_topics([NewTopic("su", 1, 1)])["su"].result(30)
    assert produce(cluster, "su", b"root") is None
    assert consume(cluster, "su", "su-group") == "root"
    assert client.describe_acls(ANY_ACL).result(TIMEOUT) == []
    assert produce(cluster, "su-auto-created", b"x") is None   # CREATE too: auto-created


def test_without_an_authorizer_the_acl_apis_answer_security_disabled(pybroker_cluster):
    with Admin(pybroker_cluster.bootstrap) as client:
        with pytest.raises(Exception) as refused:
            client.describe_acls()
    assert type(refused.value).__name__ == "SecurityDisabled"
    assert produce(pybroker_cluster, "open") is None   # and everything else is allowed, as before
    with pytest.raises(KafkaException) as refused:
        grant(pybroker_cluster, ResourceType.TOPIC, "open", AclOperation.READ)
    assert refused.value.args[0].code() == KafkaError.SECURITY_DISABLED
