"""`pybroker configs`, as kafka-configs: argument checks, and describe / alter as
subprocesses against a real broker."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from pybroker.cli import configs
from pybroker.cli.common import UsageError
from pybroker.cli.main import main


def test_add_config_keeps_bracketed_lists_whole():
    assert configs.parse_add_config(["retention.ms=1000,cleanup.policy=[compact,delete]", "segment.bytes=2048"]) == {
        "retention.ms": "1000", "cleanup.policy": "compact,delete", "segment.bytes": "2048"}
    assert configs.parse_delete_config(["retention.ms,segment.bytes", "flush.ms"]) == [
        "retention.ms", "segment.bytes", "flush.ms"]
    with pytest.raises(UsageError, match="--add-config expects KEY=VALUE"):
        configs.parse_add_config(["retention.ms"])


@pytest.mark.parametrize("argv, message", [
    (["--describe"], "a topic is needed"),
    (["--alter", "--topic", "t"], "--alter needs --add-config or --delete-config"),
    (["--describe", "--topic", "t", "--add-config", "a=1"], "only valid with --alter"),
    (["--describe", "--entity-type", "brokers", "--entity-name", "0"], "topics, users, clients or ips"),
    (["--describe", "--entity-type", "users", "--entity-name", "a", "--entity-name", "b"], "More entity names"),
    (["--describe", "--entity-type", "ips", "--entity-type", "users"], "cannot be combined"),
    (["--alter", "--entity-type", "users", "--add-config", "producer_byte_rate=1"], "Exactly one entity name"),
    (["--alter", "--topic", "t", "--add-config", "retention.ms=1", "--delete-config", "retention.ms"],
     "both added and deleted: retention.ms"),
])
def test_bad_arguments_exit_1_before_connecting(capsys, argv, message):
    assert main(["configs", "--bootstrap-server", "127.0.0.1:1", *argv]) == 1
    assert message in capsys.readouterr().err


def tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", *argv, "--bootstrap-server", bootstrap],
                          capture_output=True, text=True, timeout=60)


def test_describe_and_alter_like_kafka_configs(pybroker_cluster):
    bootstrap = pybroker_cluster.bootstrap
    topic = f"cfg-{uuid.uuid4().hex[:8]}"
    created = tool(bootstrap, "topics", "--create", "--topic", topic, "--config", "retention.ms=60000")
    assert created.returncode == 0, created.stderr

    described = tool(bootstrap, "configs", "--describe", "--topic", topic)
    assert described.returncode == 0, described.stderr
    assert described.stdout == (f"Dynamic configs for topic {topic} are:\n"
                                "  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000}\n")

    altered = tool(bootstrap, "configs", "--alter", "--entity-type", "topics", "--entity-name", topic,
                   "--add-config", "retention.bytes=4096,cleanup.policy=[delete,compact]",
                   "--delete-config", "retention.ms")
    assert altered.returncode == 0, altered.stderr
    assert altered.stdout == f"Completed updating config for topic {topic}.\n"

    lines = tool(bootstrap, "configs", "--describe", "--topic", topic).stdout.splitlines()
    assert lines[1:] == [
        "  cleanup.policy=delete,compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=delete,compact}",
        "  retention.bytes=4096 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.bytes=4096}",
    ]
    everything = tool(bootstrap, "configs", "--describe", "--topic", topic, "--all").stdout.splitlines()
    assert everything[0] == f"All configs for topic {topic} are:"
    assert "  retention.ms=604800000 sensitive=false synonyms={DEFAULT_CONFIG:retention.ms=604800000}" in everything

    # The topics tool sees the same overrides.
    head = tool(bootstrap, "topics", "--describe", "--topic", topic).stdout.splitlines()[0]
    assert head.endswith("Configs: cleanup.policy=delete,compact,retention.bytes=4096")


def test_errors_carry_the_brokers_message(pybroker_cluster):
    bootstrap = pybroker_cluster.bootstrap
    topic = f"cfg-{uuid.uuid4().hex[:8]}"
    assert tool(bootstrap, "topics", "--create", "--topic", topic).returncode == 0
    bad = tool(bootstrap, "configs", "--alter", "--topic", topic, "--add-config", "retention.ms=soon")
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error while executing config command : Invalid value 'soon'")
    unknown = tool(bootstrap, "configs", "--alter", "--topic", topic, "--add-config", "no.such=1")
    assert unknown.returncode == 1 and "Unknown topic config name: no.such" in unknown.stderr
    missing = tool(bootstrap, "configs", "--alter", "--topic", topic + "-x", "--add-config", "retention.ms=1")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    missing = tool(bootstrap, "configs", "--describe", "--topic", topic + "-x")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_describe_lists_only_topic_overrides_as_kafka_configs_does():
    """Against Kafka a topic inherits DYNAMIC_DEFAULT_BROKER_CONFIG and STATIC_BROKER_CONFIG
    entries; kafka-configs --describe shows only the topic's own (DYNAMIC_TOPIC_CONFIG)."""
    import io

    from pybroker.cli import configs
    from pybroker.client.admin import ConfigEntry

    class KafkaLikeAdmin:
        def describe_configs(self, topic):
            entries = [("retention.ms", "60000", "DYNAMIC_TOPIC_CONFIG"),
                       ("min.insync.replicas", "2", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                       ("segment.bytes", "1073741824", "STATIC_BROKER_CONFIG"),
                       ("cleanup.policy", "delete", "DEFAULT_CONFIG")]
            return {name: ConfigEntry(name, value, source, source == "DEFAULT_CONFIG", False, False)
                    for name, value, source in entries}

    out = io.StringIO()
    configs.describe(KafkaLikeAdmin(), "t", False, out)
    assert out.getvalue() == ("Dynamic configs for topic t are:\n"
                              "  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000}\n")
    out = io.StringIO()
    configs.describe(KafkaLikeAdmin(), "t", True, out)
    assert len(out.getvalue().splitlines()) == 5


def test_client_quotas_like_kafka_configs(pybroker_cluster):
    """kafka-configs' quota lines (checked against Kafka 4.4's ConfigCommand; it prints
    the keys of one entity in its hash map's order, pybroker sorted)."""
    bootstrap = pybroker_cluster.bootstrap

    def ok(*argv: str) -> str:
        done = tool(bootstrap, "configs", *argv)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert ok("--alter", "--entity-type", "users", "--entity-name", "zed", "--add-config",
              "producer_byte_rate=1024,consumer_byte_rate=20000000") == "Completed updating config for user zed.\n"
    assert ok("--alter", "--entity-type", "clients", "--entity-default", "--add-config",
              "producer_byte_rate=10") == "Completed updating default config for clients in the cluster.\n"
    assert ok("--alter", "--entity-type", "users", "--entity-name", "zed", "--entity-type", "clients",
              "--entity-name", "c9", "--add-config", "producer_byte_rate=5") == "Completed updating config for user zed.\n"
    assert ok("--describe", "--entity-type", "users", "--entity-name", "zed") == (
        "Quota configs for user-principal 'zed' are consumer_byte_rate=2.0E7, producer_byte_rate=1024.0\n")
    assert ok("--describe", "--entity-type", "clients", "--entity-default") == (
        "Quota configs for the default client-id are producer_byte_rate=10.0\n")
    assert ok("--describe", "--entity-type", "users", "--entity-name", "zed", "--entity-type", "clients") == (
        "Quota configs for user-principal 'zed', client-id 'c9' are producer_byte_rate=5.0\n")
    missing = tool(bootstrap, "configs", "--alter", "--entity-type", "users", "--entity-name", "zed",
                   "--delete-config", "request_percentage")
    assert missing.returncode == 1 and "Invalid config(s): request_percentage" in missing.stderr
    unknown = tool(bootstrap, "configs", "--alter", "--entity-type", "clients", "--entity-name", "c9",
                   "--add-config", "foo=5")
    assert unknown.returncode == 1 and ("Only quota configs can be added for 'clients' using --bootstrap-server. "
                                        "Unexpected config names: foo") in unknown.stderr
    ok("--alter", "--entity-type", "users", "--entity-name", "zed", "--delete-config", "consumer_byte_rate")
    from pybroker.client.admin import Admin

    with Admin(bootstrap) as admin:
        admin.alter_user_scram_credentials(upsert=[("zed", "SCRAM-SHA-256", "secret")], iterations=8192)
    scram = "SCRAM credential configs for user-principal 'zed' are SCRAM-SHA-256=iterations=8192\n"
    assert ok("--describe", "--entity-type", "users") == (
        "Quota configs for user-principal 'zed' are producer_byte_rate=1024.0\n" + scram)
    assert ok("--describe", "--entity-type", "users", "--entity-name", "nobody") == ""
    assert ok("--describe", "--entity-type", "users", "--entity-default") == ""
    assert ok("--alter", "--entity-type", "ips", "--entity-name", "127.0.0.1", "--add-config",
              "connection_creation_rate=10") == "Completed updating config for ip 127.0.0.1.\n"
    assert ok("--describe", "--entity-type", "ips") == (
        "Quota configs for ip '127.0.0.1' are connection_creation_rate=10.0\n")
