"""The tools as subprocesses against a real pybroker broker."""
import glob
import os
import subprocess
import sys
import uuid

import pytest



@pytest.fixture(scope="module")
def bootstrap(cluster):
    return cluster.bootstrap


def tool(bootstrap, *argv, stdin=None, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "pybroker.cli.main", *argv, "--bootstrap-server", bootstrap],
        input=stdin, capture_output=True, timeout=timeout,
    )


def new_topic(bootstrap, partitions=1, *extra):
    name = f"cli-{uuid.uuid4().hex[:10]}"
    out = tool(bootstrap, "topics", "--create", "--topic", name, "--partitions", str(partitions),
               "--replication-factor", "1", *extra)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == f"Created topic {name}.\n"
    return name


def test_create_list_describe_delete(bootstrap):
    name = new_topic(bootstrap, 2, "--config", "retention.ms=60000")
    listed = tool(bootstrap, "topics", "--list")
    assert name in listed.stdout.decode().splitlines()

    desc = tool(bootstrap, "topics", "--describe", "--topic", name)
    assert desc.returncode == 0, desc.stderr
    lines = desc.stdout.decode().splitlines()
    head = lines[0].split("\t")
    assert head[0] == f"Topic: {name}"
    assert head[1].startswith("TopicId: ")
    assert head[2:] == ["PartitionCount: 2", "ReplicationFactor: 1", "Configs: retention.ms=60000"]
    # Kafka 4's columns; pybroker has no eligible leader replicas (KIP-966), so both are empty.
    assert lines[1] == f"\tTopic: {name}\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: \tLastKnownElr: "
    assert lines[2] == f"\tTopic: {name}\tPartition: 1\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: \tLastKnownElr: "

    deleted = tool(bootstrap, "topics", "--delete", "--topic", name)
    assert deleted.returncode == 0, deleted.stderr
    assert name not in tool(bootstrap, "topics", "--list").stdout.decode().splitlines()


def test_create_existing_topic_fails_unless_if_not_exists(bootstrap):
    name = new_topic(bootstrap)
    again = tool(bootstrap, "topics", "--create", "--topic", name, "--partitions", "1")
    assert again.returncode == 1
    assert again.stderr.decode().strip() == f"Error while executing topic command : Topic '{name}' already exists."
    quiet = tool(bootstrap, "topics", "--create", "--topic", name, "--partitions", "1", "--if-not-exists")
    assert quiet.returncode == 0 and quiet.stdout == b""


def test_alter_grows_partitions_and_refuses_to_shrink(bootstrap):
    name = new_topic(bootstrap, 2)
    grow = tool(bootstrap, "topics", "--alter", "--topic", name, "--partitions", "4")
    assert grow.returncode == 0, grow.stderr
    desc = tool(bootstrap, "topics", "--describe", "--topic", name).stdout.decode()
    assert "PartitionCount: 4" in desc
    shrink = tool(bootstrap, "topics", "--alter", "--topic", name, "--partitions", "3")
    assert shrink.returncode == 1
    err = shrink.stderr.decode()
    assert err.startswith("Error while executing topic command : ")
    assert "4" in err and "3" in err


def test_missing_topic_errors_unless_if_exists(bootstrap):
    for action in ("--describe", "--delete"):
        out = tool(bootstrap, "topics", action, "--topic", "no-such-topic-here")
        assert out.returncode == 1
        assert "does not exist" in out.stderr.decode()
        quiet = tool(bootstrap, "topics", action, "--topic", "no-such-topic-here", "--if-exists")
        assert quiet.returncode == 0, quiet.stderr


def test_produce_then_consume_with_keys_and_columns(bootstrap):
    name = new_topic(bootstrap)
    lines = b"".join(b"k%d:value %d\n" % (i, i) for i in range(10))
    prod = tool(bootstrap, "produce", "--topic", name, "--property", "parse.key=true",
                "--property", "key.separator=:", stdin=lines)
    assert prod.returncode == 0, prod.stderr
    cons = tool(bootstrap, "consume", "--topic", name, "--from-beginning", "--max-messages", "10",
                "--timeout-ms", "10000", "--property", "print.key=true", "--property", "print.offset=true",
                "--property", "print.partition=true", "--property", "print.timestamp=true")
    assert cons.returncode == 0, cons.stderr
    out = cons.stdout.decode().splitlines()
    assert len(out) == 10
    for i, line in enumerate(out):
        ts, part, off, key, value = line.split("\t")
        assert ts.startswith("CreateTime:") and int(ts.split(":")[1]) > 0
        assert (part, off, key, value) == ("Partition:0", f"Offset:{i}", f"k{i}", f"value {i}")
    assert cons.stderr.decode().strip().endswith("Processed a total of 10 messages")


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce_round_trips(bootstrap, codec):
    name = new_topic(bootstrap)
    prod = tool(bootstrap, "produce", "--topic", name, "--compression-codec", codec,
                stdin=b"".join(b"line-%d\n" % i for i in range(50)))
    assert prod.returncode == 0, prod.stderr
    cons = tool(bootstrap, "consume", "--topic", name, "--from-beginning", "--timeout-ms", "10000",
                "--max-messages", "50")
    assert cons.stdout.decode().splitlines() == [f"line-{i}" for i in range(50)]


def test_consume_from_explicit_partition_and_offset(bootstrap):
    name = new_topic(bootstrap, 3)
    prod = tool(bootstrap, "produce", "--topic", name, "--partition", "1",
                stdin=b"".join(b"m%d\n" % i for i in range(6)))
    assert prod.returncode == 0, prod.stderr
    cons = tool(bootstrap, "consume", "--topic", name, "--partition", "1", "--offset", "4",
                "--timeout-ms", "10000", "--max-messages", "2", "--property", "print.offset=true")
    assert cons.stdout.decode().splitlines() == ["Offset:4\tm4", "Offset:5\tm5"]
    assert "Processed a total of 2 messages" in cons.stderr.decode()
    other = tool(bootstrap, "consume", "--topic", name, "--partition", "0", "--offset", "earliest",
                 "--timeout-ms", "500")
    assert other.stdout == b""


def test_consume_without_from_beginning_sees_only_new_records(bootstrap):
    name = new_topic(bootstrap)
    tool(bootstrap, "produce", "--topic", name, stdin=b"old\n")
    cons = tool(bootstrap, "consume", "--topic", name, "--timeout-ms", "800")
    assert cons.returncode == 0 and cons.stdout == b""
    assert "Processed a total of 0 messages" in cons.stderr.decode()


def test_produce_to_missing_partition_fails(bootstrap):
    name = new_topic(bootstrap, 1)
    prod = tool(bootstrap, "produce", "--topic", name, "--partition", "5", stdin=b"x\n")
    assert prod.returncode == 1
    assert "partition 5" in prod.stderr.decode()


def test_produce_line_without_separator_stops_with_message(bootstrap):
    name = new_topic(bootstrap)
    prod = tool(bootstrap, "produce", "--topic", name, "--property", "parse.key=true",
                stdin=b"k\tv\nbroken\n")
    assert prod.returncode == 1
    assert "No key separator found on line number 2" in prod.stderr.decode()
    cons = tool(bootstrap, "consume", "--topic", name, "--from-beginning", "--timeout-ms", "10000",
                "--max-messages", "1", "--property", "print.key=true")
    assert cons.stdout.decode().splitlines() == ["k\tv"]


def test_dump_log_reads_the_brokers_segment(bootstrap, cluster):
    data_dir = str(cluster.data_dir)
    name = new_topic(bootstrap)
    tool(bootstrap, "produce", "--topic", name, "--property", "parse.key=true", stdin=b"a\t1\nb\t2\n")
    segments = glob.glob(os.path.join(data_dir, "**", f"{name}-0", "*.log"), recursive=True)
    assert segments, f"no segment of {name} under {data_dir}"
    out = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "dump-log", "--files", segments[0],
                          "--print-data-log"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].startswith("baseOffset: 0 lastOffset: 1 count: 2 ")
    assert lines[2].endswith("crcValid: true")
    assert lines[3].endswith("key: a payload: 1")
    assert lines[4].endswith("key: b payload: 2")
