"""`pybroker groups --reset-offsets` against a real cluster: --by-duration, --export and
--from-file, run as the tool in a subprocess."""
from __future__ import annotations

import time

import pytest

from groups_helpers import committed, create_topic, groups_tool, produce, unique
from pybroker.client import Admin

pytestmark = pytest.mark.interop


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    with Admin(bootstrap, timeout=10) as admin:
        admin.alter_group_offsets(group, offsets)


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.strip().splitlines()]


def test_by_duration_resets_to_the_first_record_newer_than_now_minus_the_duration(cluster):
    from confluent_kafka import Producer

    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 1), unique("duration")
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": bootstrap})
    ages_min = [180, 170, 160, 90, 80, 40, 30, 20]  # offsets 0..7, oldest first
    for i, age in enumerate(ages_min):
        producer.produce(topic, b"v%d" % i, partition=0, timestamp=now - age * 60_000)
    assert producer.flush(15) == 0
    commit(bootstrap, group, {(topic, 0): 8})

    expected = {"PT1H": 5, "PT95M": 3, "P1DT": None, "PT2H30M": 3, "P1D": 0, "PT10M": 8, "PT-10M": 8}
    for duration, offset in expected.items():
        result = groups_tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic,
                             "--by-duration", duration, "--dry-run")
        if offset is None:
            assert result.returncode == 1
            assert result.stderr.strip() == ("Error: --by-duration expects an ISO-8601 duration PnDTnHnMnS "
                                             "(e.g. PT10M, P1DT2H), got 'P1DT'")
            assert "Traceback" not in result.stderr and result.stdout == ""
            continue
        assert result.returncode == 0, result.stderr
        assert rows(result.stdout) == [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], [group, topic, "0", str(offset)]], \
            duration
    assert committed(bootstrap, group) == {(topic, 0): 8}  # dry runs change nothing

    done = groups_tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--by-duration", "PT1H",
                       "--execute")
    assert done.returncode == 0, done.stderr
    assert committed(bootstrap, group) == {(topic, 0): 5}


def test_export_writes_kafkas_csv_and_from_file_applies_it(cluster, tmp_path):
    bootstrap = cluster.bootstrap
    topic = create_topic(bootstrap, 3)
    produce(bootstrap, topic, 30, partitions=3)
    g, h = unique("export"), unique("export")
    ends = {(topic, p): 10 for p in range(3)}
    commit(bootstrap, g, ends)
    commit(bootstrap, h, ends)

    # One group: topic,partition,offset; nothing applied without --execute.
    single = groups_tool(bootstrap, "--reset-offsets", "--group", g, "--topic", topic, "--to-offset", "3",
                         "--dry-run", "--export")
    assert single.returncode == 0, single.stderr
    assert single.stdout == "".join(f"{topic},{p},3\n" for p in range(3))
    assert committed(bootstrap, g) == ends

    plan = tmp_path / "single.csv"
    plan.write_text(single.stdout.replace(f"{topic},1,3", f"{topic},1,99"))  # past the end: clamped
    shown = groups_tool(bootstrap, "--reset-offsets", "--group", g, "--from-file", str(plan), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert rows(shown.stdout)[1:] == [[g, topic, "0", "3"], [g, topic, "1", "10"], [g, topic, "2", "3"]]
    assert committed(bootstrap, g) == ends
    applied = groups_tool(bootstrap, "--reset-offsets", "--group", g, "--from-file", str(plan), "--execute",
                          "--export")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == f"{topic},0,3\n{topic},1,10\n{topic},2,3\n"
    assert committed(bootstrap, g) == {(topic, 0): 3, (topic, 1): 10, (topic, 2): 3}

    # Several groups: group,topic,partition,offset, one line per partition of each group.
    both = groups_tool(bootstrap, "--reset-offsets", "--group", g, "--group", h, "--topic", f"{topic}:0,2",
                       "--to-earliest", "--dry-run", "--export")
    assert both.returncode == 0, both.stderr
    assert both.stdout == f"{g},{topic},0,0\n{g},{topic},2,0\n{h},{topic},0,0\n{h},{topic},2,0\n"
    plan_both = tmp_path / "both.csv"
    plan_both.write_text(both.stdout)
    applied = groups_tool(bootstrap, "--reset-offsets", "--group", g, "--group", h, "--from-file", str(plan_both),
                          "--execute")
    assert applied.returncode == 0, applied.stderr
    assert committed(bootstrap, g) == {(topic, 0): 0, (topic, 1): 10, (topic, 2): 0}
    assert committed(bootstrap, h) == {(topic, 0): 0, (topic, 1): 10, (topic, 2): 0}


def test_from_file_applies_nothing_when_a_line_or_partition_is_bad(cluster, tmp_path):
    bootstrap = cluster.bootstrap
    topic = create_topic(bootstrap, 2)
    produce(bootstrap, topic, 20, partitions=2)
    group = unique("badfile")
    ends = {(topic, 0): 10, (topic, 1): 10}
    commit(bootstrap, group, ends)

    refused = {
        f"{topic},0,1\n{topic},1,one\n":
            f"Error: --from-file line 2: partition and offset must be integers, got '{topic},1,one'",
        f"{topic},0,1\n{topic},7,1\n": f"Error: topic '{topic}' has no partition 7",
        f"someone-else,{topic},0,1\n": f"Error: No reset plan for group '{group}' found.",
    }
    for i, (text, error) in enumerate(refused.items()):
        plan = tmp_path / f"plan{i}.csv"
        plan.write_text(text)
        result = groups_tool(bootstrap, "--reset-offsets", "--group", group, "--from-file", str(plan), "--execute")
        assert (result.returncode, result.stderr.strip()) == (1, error)
        assert committed(bootstrap, group) == ends
