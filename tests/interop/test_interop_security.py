"""SASL and TLS with real clients against real broker processes.

One 2-broker cluster (topics replicated to both, so replication runs over the brokers'
private socket) with three listeners: SASL_PLAINTEXT (PLAIN and SCRAM), SASL_SSL and SSL,
TLS from ``--tls-self-signed``, and ``--super-user admin:admin-secret``. confluent-kafka,
kafka-python, aiokafka and pybroker's own client produce and consume on SASL_SSL with
SCRAM-SHA-512 and on SASL_PLAINTEXT with PLAIN; wrong passwords and PLAINTEXT clients are
refused; users come and go through ``pybroker users`` and confluent's admin API.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                   UserScramCredentialUpsertion)

from pybroker import errors
from pybroker.client.connection import BrokerConnection
from pybroker.client.security import ClientSecurity
from pybroker.protocol import api
from pybroker.security import scram

pytestmark = pytest.mark.interop

TIMEOUT = 30.0
ADMIN = ("admin", "admin-secret")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from pybroker.testing import BrokerCluster

    c = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=2, start_timeout=60, extra_args=[
        "--listener", "SASL_PLAINTEXT", "--listener", "SASL_SSL", "--listener", "SSL", "--tls-self-signed",
        "--super-user", f"{ADMIN[0]}:{ADMIN[1]}", "--replication-factor", "2",
        "--group-initial-rebalance-delay-ms", "0"])
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _conf(cluster, listener: str, mechanism: str = "PLAIN", user=ADMIN) -> dict:
    conf = {"bootstrap.servers": cluster.listeners[listener], "security.protocol": listener}
    if listener.startswith("SASL"):
        conf.update({"sasl.mechanism": mechanism, "sasl.username": user[0], "sasl.password": user[1]})
    if listener.endswith("SSL"):
        conf["ssl.ca.location"] = cluster.ssl_cafile
    return conf


def _round_trip_confluent(conf: dict, topic: str, count: int = 200) -> list[bytes]:
    producer = Producer({**conf, "acks": "all", "message.timeout.ms": int(TIMEOUT * 1000)})
    failures = []
    for i in range(count):
        producer.produce(topic, f"m{i}".encode(), on_delivery=lambda err, _m: err and failures.append(err))
    assert producer.flush(TIMEOUT) == 0 and not failures, failures[:3]
    consumer = Consumer({**conf, "group.id": f"g-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            got.append(message.value())
    consumer.close()
    return got


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN"),
                                                ("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SSL", None)])
def test_confluent_produces_and_consumes(cluster, listener, mechanism):
    topic = f"confluent-{listener}-{mechanism}".lower()
    got = _round_trip_confluent(_conf(cluster, listener, mechanism or "PLAIN"), topic)
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(200))


def _auth_error(conf: dict) -> str:
    errs = []
    producer = Producer({**conf, "error_cb": lambda e: errs.append(e)})
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not any(e.code() == -169 for e in errs):  # _AUTHENTICATION
        producer.poll(0.2)
    return next((e.str() for e in errs if e.code() == -169), f"no authentication error: {errs}")


def test_confluent_wrong_password_is_refused_with_kafkas_message(cluster):
    assert "Authentication failed during authentication due to invalid credentials with SASL mechanism " \
           "SCRAM-SHA-512" in _auth_error(_conf(cluster, "SASL_SSL", "SCRAM-SHA-512", ("admin", "nope")))
    assert "Authentication failed: Invalid username or password" in \
        _auth_error(_conf(cluster, "SASL_PLAINTEXT", "PLAIN", ("admin", "nope")))


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.split(",")[0].rsplit(":", 1)
    return host, int(port)


def test_plaintext_client_on_a_sasl_listener_is_refused(cluster):
    host, port = _host_port(cluster.listeners["SASL_PLAINTEXT"])
    conn = BrokerConnection(host, port, timeout=10)
    conn.connect()  # ApiVersions is served before authentication
    assert api.SASL_HANDSHAKE in conn.broker_versions
    with pytest.raises(errors.NetworkException):
        conn.request(api.METADATA, {"topics": None})
    # ... and confluent-kafka as PLAINTEXT never gets metadata.
    admin = AdminClient({"bootstrap.servers": cluster.listeners["SASL_PLAINTEXT"]})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_sasl_states_as_kafka_has_them_and_v0_raw_tokens_work(cluster, raw_client):
    """Checked against Kafka 4.4 (tools/kafka_ref.py up --sasl-user): SaslAuthenticate before
    SaslHandshake closes the connection; an unknown mechanism gets UNSUPPORTED_SASL_MECHANISM
    and the list; success carries an empty message; without connections.max.reauth.ms a
    second SaslHandshake or SaslAuthenticate gets ILLEGAL_SASL_STATE on a live connection."""
    host, port = _host_port(cluster.listeners["SASL_PLAINTEXT"])
    conn = BrokerConnection(host, port, timeout=10)
    conn.connect()
    with pytest.raises(errors.NetworkException):
        conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": b"\0a\0b"}, version=1)
    conn = BrokerConnection(host, port, timeout=10)
    reply = conn.request(api.SASL_HANDSHAKE, {"mechanism": "GSSAPI"}, version=1)
    assert reply == {"error_code": errors.UnsupportedSaslMechanism.code,
                     "mechanisms": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]}
    conn = BrokerConnection(host, port, timeout=10)
    assert conn.request(api.SASL_HANDSHAKE, {"mechanism": "PLAIN"}, version=1)["error_code"] == 0
    ok = conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": scram.plain_token(*ADMIN)}, version=2)
    assert ok == {"error_code": 0, "error_message": "", "auth_bytes": b"", "session_lifetime_ms": 0}
    assert conn.request(api.SASL_HANDSHAKE, {"mechanism": "PLAIN"}, version=1) == \
        {"error_code": errors.IllegalSaslState.code, "mechanisms": []}
    again = conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": scram.plain_token(*ADMIN)}, version=2)
    assert (again["error_code"], again["error_message"]) == \
        (errors.IllegalSaslState.code, "SaslAuthenticate request received after successful authentication")
    assert conn.request(api.METADATA, {"topics": None})["brokers"]
    # SaslHandshake v0: the token then travels bare (size + bytes), as old clients send it.
    raw = raw_client((host, port))
    raw.send_bytes(api.encode_request(api.SASL_HANDSHAKE, 0, 1, "raw", {"mechanism": "PLAIN"}))
    _, body = api.decode_response(api.SASL_HANDSHAKE, 0, raw.read_frame())
    assert body["error_code"] == 0 and "SCRAM-SHA-512" in body["mechanisms"]
    token = scram.plain_token(*ADMIN)
    raw.send_bytes(struct.pack(">i", len(token)) + token)
    assert raw.read_frame() == b""
    raw.send_bytes(api.encode_request(api.METADATA, 4, 2, "raw", {"topics": None, "allow_auto_topic_creation": False}))
    _, metadata = api.decode_response(api.METADATA, 4, raw.read_frame())
    assert len(metadata["brokers"]) == 2
    # Advertised: the addresses of the listener this client came in on.
    assert {(b["host"], b["port"]) for b in metadata["brokers"]} == \
        {_host_port(a) for a in cluster.listeners["SASL_PLAINTEXT"].split(",")}


def _kafka_python_options(cluster, listener, mechanism, user=ADMIN):
    options = {"bootstrap_servers": cluster.listeners[listener].split(","), "security_protocol": listener,
               "sasl_mechanism": mechanism, "sasl_plain_username": user[0], "sasl_plain_password": user[1]}
    if listener == "SASL_SSL":
        options["ssl_cafile"] = cluster.ssl_cafile
    return options


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN")])
def test_kafka_python_produces_and_consumes(cluster, listener, mechanism):
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"kafka-python-{listener}-{mechanism}".lower()
    options = _kafka_python_options(cluster, listener, mechanism)
    producer = KafkaProducer(acks="all", **options)
    for i in range(100):
        producer.send(topic, f"k{i}".encode())
    producer.flush(TIMEOUT)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                             consumer_timeout_ms=15000, **options)
    got = []
    for m in consumer:                      # stops 15 s after the last record, or at the 100th
        got.append(m.value)
        if len(got) == 100:
            break
    consumer.close()
    assert sorted(got) == sorted(f"k{i}".encode() for i in range(100))


def test_kafka_python_wrong_password_is_refused(cluster):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KafkaPythonError

    with pytest.raises(KafkaPythonError):
        KafkaProducer(max_block_ms=5000, bootstrap_timeout_ms=5000,
                      **_kafka_python_options(cluster, "SASL_SSL", "SCRAM-SHA-512", ("admin", "no")))


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN")])
def test_aiokafka_produces_and_consumes(cluster, listener, mechanism):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    topic = f"aiokafka-{listener}-{mechanism}".lower()
    options = {"bootstrap_servers": cluster.listeners[listener], "security_protocol": listener,
               "sasl_mechanism": mechanism, "sasl_plain_username": ADMIN[0], "sasl_plain_password": ADMIN[1]}
    if listener == "SASL_SSL":
        options["ssl_context"] = create_ssl_context(cafile=cluster.ssl_cafile)

    async def run():
        producer = AIOKafkaProducer(acks="all", **options)
        await producer.start()
        try:
            for i in range(100):
                await producer.send(topic, f"a{i}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                    **options)
        await consumer.start()
        got = []
        try:
            async def drain():
                async for message in consumer:
                    got.append(message.value)
                    if len(got) == 100:
                        return
            await asyncio.wait_for(drain(), TIMEOUT)
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    assert sorted(got) == sorted(f"a{i}".encode() for i in range(100))


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN")])
def test_pybroker_client_produces_and_consumes(cluster, listener, mechanism):
    from pybroker.client import Admin, Consumer as PyConsumer, NewTopic, Producer as PyProducer

    topic = f"pybroker-{listener}-{mechanism}".lower()
    options = {"security_protocol": listener, "sasl_mechanism": mechanism,
               "sasl_plain_username": ADMIN[0], "sasl_plain_password": ADMIN[1]}
    if listener == "SASL_SSL":
        options["ssl_cafile"] = cluster.ssl_cafile
    with Admin(cluster.listeners[listener], **options) as admin:
        admin.create_topics([NewTopic(topic, 2, 2)])
    producer = PyProducer(cluster.listeners[listener], acks="all", **options)
    for i in range(100):
        producer.send(topic, f"p{i}".encode(), partition=i % 2)
    producer.flush(TIMEOUT)
    producer.close()
    consumer = PyConsumer(cluster.listeners[listener], enable_auto_commit=False, **options)
    consumer.assign([(topic, 0), (topic, 1)])
    consumer.seek_to_beginning()
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 100 and time.monotonic() < deadline:
        got += [r.value for r in consumer.poll(1000)]
    consumer.close()
    assert sorted(got) == sorted(f"p{i}".encode() for i in range(100))
    with pytest.raises(errors.SaslAuthenticationFailed, match="invalid credentials"):
        Admin(cluster.listeners[listener], **{**options, "sasl_plain_password": "bad",
                                              "sasl_mechanism": "SCRAM-SHA-256"}).list_topics()


def _pybroker(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_users_cli_creates_lists_and_deletes(cluster, tmp_path):
    made = _pybroker("users", "--data", str(cluster.data_dir), "--create", "bob", "--password", "bob-secret")
    assert made.returncode == 0, made.stderr
    assert len(_round_trip_confluent(_conf(cluster, "SASL_SSL", "SCRAM-SHA-256", ("bob", "bob-secret")),
                                     "users-bob", 10)) == 10
    config = tmp_path / "client.properties"
    config.write_text("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required '
                      'username="admin" password="admin-secret";\n'
                      f"ssl.truststore.location={cluster.ssl_cafile}\nssl.truststore.type=PEM\n")
    over_kafka = ["--bootstrap-server", cluster.listeners["SASL_SSL"], "--command-config", str(config)]
    made = _pybroker("users", *over_kafka, "--create", "carol", "--password", "carol-secret",
                     "--mechanism", "SCRAM-SHA-512")
    assert made.returncode == 0, made.stderr
    listed = _pybroker("users", *over_kafka, "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    users = {u["name"]: u["mechanisms"] for u in json.loads(listed.stdout)}
    assert users["carol"] == {"SCRAM-SHA-512": 4096}
    assert set(users["bob"]) == set(users["admin"]) == {"SCRAM-SHA-256", "SCRAM-SHA-512"}
    # Other tools take the same file.
    topics = _pybroker("topics", *over_kafka, "--list")
    assert topics.returncode == 0 and "users-bob" in topics.stdout, topics.stderr
    deleted = _pybroker("users", *over_kafka, "--delete", "bob")
    assert deleted.returncode == 0, deleted.stderr
    assert "invalid credentials" in _auth_error(_conf(cluster, "SASL_PLAINTEXT", "SCRAM-SHA-256", ("bob", "bob-secret")))


def test_confluent_admin_alters_and_describes_scram_credentials(cluster):
    admin = AdminClient(_conf(cluster, "SASL_SSL", "SCRAM-SHA-512"))
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion("dave", info, b"dave-secret")])
    for future in futures.values():
        future.result(TIMEOUT)
    described = {u: f.result(TIMEOUT) for u, f in admin.describe_user_scram_credentials(["dave"]).items()}
    dave = described["dave"]
    assert [(c.mechanism, c.iterations) for c in dave.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
    # PLAIN is checked against the same credential.
    assert len(_round_trip_confluent(_conf(cluster, "SASL_PLAINTEXT", "PLAIN", ("dave", "dave-secret")),
                                     "admin-dave", 10)) == 10
    futures = admin.alter_user_scram_credentials([UserScramCredentialDeletion("dave", ScramMechanism.SCRAM_SHA_256)])
    for future in futures.values():
        future.result(TIMEOUT)
    with pytest.raises(KafkaException, match="does not exist"):
        for future in admin.describe_user_scram_credentials(["dave"]).values():
            future.result(TIMEOUT)


def test_users_survive_a_restart(cluster):
    assert _pybroker("users", "--data", str(cluster.data_dir), "--create", "erin", "--password", "erin-pw").returncode == 0
    cluster.restart()
    assert len(_round_trip_confluent(_conf(cluster, "SASL_SSL", "SCRAM-SHA-512", ("erin", "erin-pw")),
                                     "restart-erin", 10)) == 10
    # --super-user does not reset a password on later starts: the admin keeps working too.
    assert len(_round_trip_confluent(_conf(cluster, "SASL_PLAINTEXT", "PLAIN"), "restart-admin", 10)) == 10


# -- re-authentication (KIP-368) --------------------------------------------------------


@pytest.fixture(scope="module")
def reauth_cluster(tmp_path_factory):
    from pybroker.testing import BrokerCluster

    c = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=1, start_timeout=60, extra_args=[
        "--listener", "SASL_PLAINTEXT", "--super-user", f"{ADMIN[0]}:{ADMIN[1]}",
        "--broker-config", "connections.max.reauth.ms=3000"])
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_session_lifetime_is_announced_and_expired_sessions_are_closed(reauth_cluster):
    host, port = _host_port(reauth_cluster.bootstrap)
    security = ClientSecurity("SASL_PLAINTEXT", "PLAIN", *ADMIN)
    conn = BrokerConnection(host, port, timeout=10)
    conn.connect()
    conn.request(api.SASL_HANDSHAKE, {"mechanism": "SCRAM-SHA-256"}, version=1)
    client = scram.ScramClient("SCRAM-SHA-256", *ADMIN)
    first = conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": client.first()}, version=1)
    final = conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": client.final(first["auth_bytes"])}, version=1)
    assert final["error_code"] == 0 and final["session_lifetime_ms"] == 3000
    conn.request(api.METADATA, {"topics": None})
    # Re-authentication on the live connection gives a new session (Kafka allows one a second).
    time.sleep(2)
    conn.request(api.SASL_HANDSHAKE, {"mechanism": "SCRAM-SHA-256"}, version=1)
    client = scram.ScramClient("SCRAM-SHA-256", *ADMIN)
    first = conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": client.first()}, version=1)
    final = conn.request(api.SASL_AUTHENTICATE, {"auth_bytes": client.final(first["auth_bytes"])}, version=1)
    assert final["error_code"] == 0
    time.sleep(2)
    conn.request(api.METADATA, {"topics": None})  # 4 s after the first session began: the second one holds
    time.sleep(3.5)
    with pytest.raises(errors.NetworkException):
        conn.request(api.METADATA, {"topics": None})
    # pybroker's client authenticates on each new connection.
    fresh = BrokerConnection(host, port, timeout=10, security=security)
    assert fresh.request(api.METADATA, {"topics": None})["brokers"]


def test_confluent_keeps_producing_across_reauthentication(reauth_cluster):
    conf = {"bootstrap.servers": reauth_cluster.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": ADMIN[0], "sasl.password": ADMIN[1]}
    errs = []
    producer = Producer({**conf, "error_cb": lambda e: errs.append(e), "message.timeout.ms": 20000})
    delivered = []
    deadline = time.monotonic() + 8  # more than two session lifetimes
    i = 0
    while time.monotonic() < deadline:
        producer.produce("reauth", f"r{i}".encode(), on_delivery=lambda err, m: delivered.append(err))
        i += 1
        producer.poll(0.05)
    assert producer.flush(TIMEOUT) == 0
    assert len(delivered) == i and not any(delivered), [e for e in delivered if e][:3]
    assert not [e for e in errs if e.code() == -169], errs


# -- mTLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    from pybroker.security import tls
    from pybroker.testing import BrokerCluster

    certs = str(tmp_path_factory.mktemp("certs"))
    paths = tls.self_signed(certs)
    cert, key = tls.client_certificate(certs, "alice", "Example")
    c = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"), brokers=1, start_timeout=60, extra_args=[
        "--listener", "SSL", "--ssl-certfile", paths["certfile"], "--ssl-keyfile", paths["keyfile"],
        "--ssl-cafile", paths["cafile"], "--ssl-client-auth", "required"])
    c.start()
    try:
        yield c, paths["cafile"], cert, key
    finally:
        c.stop()


def test_mtls_requires_a_client_certificate(mtls):
    cluster, cafile, cert, key = mtls
    conf = {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SSL", "ssl.ca.location": cafile}
    got = _round_trip_confluent({**conf, "ssl.certificate.location": cert, "ssl.key.location": key}, "mtls", 50)
    assert len(got) == 50
    errs = []
    producer = Producer({**conf, "error_cb": lambda e: errs.append(e)})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not errs:
        producer.poll(0.2)
    assert errs, "a client without a certificate was served"
    host, port = _host_port(cluster.bootstrap)
    with pytest.raises(errors.NetworkException):
        BrokerConnection(host, port, timeout=5, security=ClientSecurity("SSL", ssl_cafile=cafile)).request(
            api.METADATA, {"topics": None})
    with_cert = ClientSecurity("SSL", ssl_cafile=cafile, ssl_certfile=cert, ssl_keyfile=key)
    assert BrokerConnection(host, port, timeout=5, security=with_cert).request(api.METADATA, {"topics": None})


def test_principal_of_a_client_certificate_is_its_subject(tmp_path):
    from pybroker.security import tls

    paths = tls.self_signed(str(tmp_path))
    cert, key = tls.client_certificate(str(tmp_path), "alice", "Example")
    server_ctx = tls.server_context(paths["certfile"], paths["keyfile"], paths["cafile"], "required")
    client_ctx = tls.client_context(paths["cafile"], cert, key)
    a, b = socket.socketpair()
    server = server_ctx.wrap_socket(a, server_side=True, do_handshake_on_connect=False)
    client = client_ctx.wrap_socket(b, server_hostname="localhost", do_handshake_on_connect=False)
    server.setblocking(False)
    client.setblocking(False)
    for _ in range(100):
        done = 0
        for side in (server, client):
            try:
                side.do_handshake()
                done += 1
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
        if done == 2:
            break
    assert tls.principal_of(server) == "User:CN=alice,O=Example"
    server.close()
    client.close()
    assert os.stat(paths["keyfile"]).st_mode & 0o077 == 0
