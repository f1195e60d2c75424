"""`pybroker delete-records` as kafka-delete-records: its JSON file, its output lines, and
the new log start as status and consumers see it."""
import json
import os
import subprocess
import sys
import uuid

import pytest

from pybroker.cli.common import UsageError
from pybroker.cli.delete_records import parse_offset_json


def pybroker(*argv, stdin=None, timeout=30):
    # COLUMNS: wide enough that the status table is not wrapped.
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", *argv], input=stdin, capture_output=True,
                          timeout=timeout, text=True, env={**os.environ, "COLUMNS": "200"})


def _offset_file(tmp_path, partitions, version=1):
    path = tmp_path / f"offsets-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"partitions": partitions, "version": version}))
    return str(path)


def _topic_with_records(bootstrap, partitions=2, records=6):
    name = f"dr-{uuid.uuid4().hex[:10]}"
    created = pybroker("topics", "--bootstrap-server", bootstrap, "--create", "--topic", name,
                       "--partitions", str(partitions), "--replication-factor", "1")
    assert created.returncode == 0, created.stderr
    for p in range(partitions):
        produced = pybroker("produce", "--bootstrap-server", bootstrap, "--topic", name, "--partition", str(p),
                            stdin="".join(f"m{i}\n" for i in range(records)))
        assert produced.returncode == 0, produced.stderr
    return name


def test_deletes_and_prints_kafkas_lines(cluster, tmp_path):
    name = _topic_with_records(cluster.bootstrap)
    path = _offset_file(tmp_path, [{"topic": name, "partition": 0, "offset": 3},
                                   {"topic": name, "partition": 1, "offset": -1}])
    out = pybroker("delete-records", "--bootstrap-server", cluster.bootstrap, "--offset-json-file", path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "Executing records delete operation",
        "Records delete operation completed:",
        f"partition: {name}-0\tlow_watermark: 3",
        f"partition: {name}-1\tlow_watermark: 6",
    ]
    consumed = pybroker("consume", "--bootstrap-server", cluster.bootstrap, "--topic", name, "--partition", "0",
                        "--offset", "earliest", "--timeout-ms", "10000", "--max-messages", "3",
                        "--property", "print.offset=true")
    assert consumed.stdout.splitlines() == ["Offset:3\tm3", "Offset:4\tm4", "Offset:5\tm5"]
    status = json.loads(pybroker("status", "--data", str(cluster.data_dir), "--json").stdout)
    starts = {p["partition"]: p["log_start_offset"] for p in status["partitions"] if p["topic"] == name}
    assert starts == {0: 3, 1: 6}
    human = pybroker("status", "--data", str(cluster.data_dir))
    assert human.returncode == 0 and "LOG-START" in human.stdout


def test_partition_errors_are_printed_per_partition(cluster, tmp_path):
    name = _topic_with_records(cluster.bootstrap, partitions=1)
    path = _offset_file(tmp_path, [{"topic": name, "partition": 0, "offset": 99},
                                   {"topic": "no-such-topic", "partition": 0, "offset": 1}])
    out = pybroker("delete-records", "--bootstrap-server", cluster.bootstrap, "--offset-json-file", path)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[:2] == ["Executing records delete operation", "Records delete operation completed:"]
    assert lines[2].startswith(f"partition: {name}-0\terror: OffsetOutOfRange: ")
    assert lines[3].startswith("partition: no-such-topic-0\terror: UnknownTopicOrPartition: ")


def test_a_bad_file_is_refused_before_anything_is_sent(tmp_path):
    path = _offset_file(tmp_path, [{"topic": "t", "partition": 0, "offset": 1},
                                   {"topic": "t", "partition": 0, "offset": 2}])
    out = pybroker("delete-records", "--bootstrap-server", "127.0.0.1:1", "--offset-json-file", path)
    assert out.returncode == 1
    assert out.stderr.strip() == "Error: Offset json file contains duplicate topic partitions: t-0"
    missing = pybroker("delete-records", "--bootstrap-server", "127.0.0.1:1",
                       "--offset-json-file", str(tmp_path / "absent.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ('{"version": 2, "partitions": []}', "Not supported version field value 2"),
    ('{"version": 1}', '"partitions"'),
    ('{"partitions": [{"topic": "t", "partition": "0", "offset": 1}]}', "integers"),
])
def test_parse_rejects_malformed_files(text, message):
    with pytest.raises(UsageError, match=message):
        parse_offset_json(text)


def test_parse_reads_kafkas_format():
    text = '{"partitions": [{"topic": "a", "partition": 0, "offset": 3}, {"topic": "b", "partition": 2, "offset": -1}], "version": 1}'
    assert parse_offset_json(text) == {("a", 0): 3, ("b", 2): -1}
