"""`pybroker acls`, as kafka-acls: argument checks, and add / list / remove as
subprocesses against a broker with ``--authorizer acl``. The outputs are kafka-acls'
(Kafka 4.4's AclCommand prints the same lines for the same ACLs)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pybroker.cli.main import main
from pybroker.testing import BrokerCluster


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory):
    running = BrokerCluster(data_dir=tmp_path_factory.mktemp("pybroker"),
                            extra_args=["--authorizer", "acl", "--super-users", "User:ANONYMOUS"])
    running.start()
    try:
        yield running
    finally:
        running.stop()


def acls(cluster, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "acls", "--bootstrap-server", cluster.bootstrap,
                           *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv, message", [
    (["--add", "--topic", "t"], "You must specify one of: --allow-principal, --deny-principal"),
    (["--add", "--allow-principal", "User:a"], "You must provide at least one resource"),
    (["--add", "--allow-principal", "User:a", "--topic", "t", "--resource-pattern-type", "match"],
     "'MATCH' is not valid when adding acls"),
    (["--add", "--allow-principal", "alice", "--topic", "t"], "Could not parse principal"),
    (["--add", "--allow-principal", "User:a", "--operation", "Fly", "--topic", "t"], "unknown operation 'Fly'"),
    (["--add", "--allow-principal", "User:a", "--operation", "Read", "--cluster"],
     "ResourceType CLUSTER only supports operations"),
    (["--add", "--consumer", "--allow-principal", "User:a", "--topic", "t"], "With --consumer you must specify a --group"),
])
def test_bad_arguments_exit_1_before_connecting(capsys, argv, message):
    assert main(["acls", "--bootstrap-server", "127.0.0.1:1", *argv]) == 1
    assert message in capsys.readouterr().err


def test_add_list_remove_print_what_kafka_acls_prints(acl_cluster):
    added = acls(acl_cluster, "--add", "--allow-principal", "User:alice", "--allow-principal", "User:bob",
                 "--operation", "Read", "--operation", "Write", "--topic", "orders")
    assert added.returncode == 0, added.stderr
    assert added.stdout == (
        "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`: \n"
        " \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n"
        "\t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)\n"
        "\t(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)\n"
        "\t(principal=User:bob, host=*, operation=WRITE, permissionType=ALLOW)\n\n")
    denied = acls(acl_cluster, "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.9", "--operation", "Read",
                  "--topic", "ord", "--resource-pattern-type", "prefixed")
    assert denied.returncode == 0, denied.stderr
    group = acls(acl_cluster, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--group", "g1")
    assert group.returncode == 0, group.stderr

    matching = acls(acl_cluster, "--list", "--topic", "orders", "--resource-pattern-type", "match")
    # Resources in name order (kafka-acls prints them in its hash map's order).
    assert matching.stdout == (
        "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=ord, patternType=PREFIXED)`:\n"
        "\t(principal=User:bob, host=10.0.0.9, operation=READ, permissionType=DENY)\n\n"
        "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`:\n"
        "\t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n"
        "\t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)\n"
        "\t(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)\n"
        "\t(principal=User:bob, host=*, operation=WRITE, permissionType=ALLOW)\n\n")
    literal_only = acls(acl_cluster, "--list", "--topic", "orders")
    assert "PREFIXED" not in literal_only.stdout and literal_only.stdout.count("\t(") == 4
    alice = acls(acl_cluster, "--list", "--principal", "User:alice")
    assert alice.stdout.startswith("ACLs for principal `User:alice`\n")
    assert "User:bob" not in alice.stdout and "resourceType=GROUP, name=g1" in alice.stdout

    removed = acls(acl_cluster, "--remove", "--force", "--allow-principal", "User:bob", "--operation", "Read",
                   "--topic", "orders")
    assert removed.returncode == 0 and removed.stdout == "", removed.stderr
    everything = acls(acl_cluster, "--remove", "--force", "--topic", "ord", "--resource-pattern-type", "prefixed")
    assert everything.returncode == 0, everything.stderr
    left = acls(acl_cluster, "--list", "--topic", "orders", "--resource-pattern-type", "match").stdout
    assert "User:bob, host=*, operation=READ" not in left and "PREFIXED" not in left
    assert "User:bob, host=*, operation=WRITE" in left


def test_producer_and_consumer_roles(acl_cluster):
    added = acls(acl_cluster, "--add", "--producer", "--consumer", "--idempotent", "--allow-principal", "User:app",
                 "--topic", "events", "--group", "app")
    assert added.returncode == 0, added.stderr
    listed = acls(acl_cluster, "--list", "--principal", "User:app").stdout
    for line in ("resourceType=TOPIC, name=events", "operation=WRITE", "operation=CREATE", "operation=DESCRIBE",
                 "operation=READ", "resourceType=GROUP, name=app", "resourceType=CLUSTER, name=kafka-cluster",
                 "operation=IDEMPOTENT_WRITE"):
        assert line in listed


def test_remove_asks_first_and_keeps_the_acls_on_no(acl_cluster):
    acls(acl_cluster, "--add", "--allow-principal", "User:carol", "--operation", "Read", "--topic", "ask")
    asked = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "acls", "--bootstrap-server",
                            acl_cluster.bootstrap, "--remove", "--topic", "ask"],
                           input="n\n", capture_output=True, text=True, timeout=60)
    assert "Are you sure you want to delete all ACLs for resource filter" in asked.stdout
    assert "User:carol" in acls(acl_cluster, "--list", "--topic", "ask").stdout


def test_a_cluster_without_authorizer_says_so(cluster):
    listed = acls(cluster, "--list")
    assert listed.returncode == 1
    assert "Error while executing ACL command: " in listed.stderr and "No Authorizer is configured" in listed.stderr
