"""`pybroker groups` without a broker: argument checks, parsing, reset planning, tables."""
from datetime import datetime

import pytest

from pybroker.cli import groups
from pybroker.cli.common import UsageError
from pybroker.cli.main import build_parser
from pybroker.client.admin import MemberDescription


def parse(*argv):
    return build_parser().parse_args(["groups", *argv])


def test_describe_without_group_is_a_usage_error(capsys):
    assert groups.run(parse("--describe")) == 1
    assert "--describe needs --group" in capsys.readouterr().err


def test_reset_needs_a_scenario_and_a_scope():
    with pytest.raises(UsageError, match="needs one of --to-earliest"):
        groups.check_args(parse("--reset-offsets", "--group", "g", "--topic", "t"))
    with pytest.raises(UsageError, match="--topic or --all-topics"):
        groups.check_args(parse("--reset-offsets", "--group", "g", "--to-latest"))


def test_reset_scenarios_are_mutually_exclusive():
    with pytest.raises(SystemExit):
        parse("--reset-offsets", "--group", "g", "--topic", "t", "--to-latest", "--to-earliest")


def test_execute_without_reset_is_refused():
    with pytest.raises(UsageError, match="need --reset-offsets"):
        groups.check_args(parse("--describe", "--group", "g", "--execute"))


def test_reset_spec_keeps_a_zero_shift_and_offset():
    assert groups.reset_spec(parse("--reset-offsets", "--group", "g", "--all-topics", "--shift-by", "0")) == ("shift_by", 0)
    assert groups.reset_spec(parse("--reset-offsets", "--group", "g", "--all-topics", "--to-offset", "0")) == ("to_offset", 0)


def test_topic_partitions_parse_with_and_without_a_list():
    assert groups.parse_topic_partitions("orders") == ("orders", None)
    assert groups.parse_topic_partitions("orders:2,0,2") == ("orders", [0, 2])
    for bad in (":1", "orders:x", "orders:-1", "orders:"):
        with pytest.raises(UsageError):
            groups.parse_topic_partitions(bad)


def test_datetime_with_zone_is_exact_and_without_zone_is_local():
    assert groups.parse_datetime("2024-01-02T03:04:05.678Z") == 1704164645678
    assert groups.parse_datetime("2024-01-02T05:04:05.678+02:00") == 1704164645678
    assert groups.parse_datetime("2024-01-02T03:04:05-0100") == 1704168245000
    local = datetime(2024, 1, 2, 3, 4, 5).astimezone()
    assert groups.parse_datetime("2024-01-02T03:04:05.5") == int(local.timestamp()) * 1000 + 500
    for bad in ("2024-01-02", "2024-13-02T03:04:05", "yesterday", "2024-01-02T03:04:05.1234"):
        with pytest.raises(UsageError):
            groups.parse_datetime(bad)


TP0, TP1 = ("t", 0), ("t", 1)
EARLIEST = {TP0: 5, TP1: 0}
LATEST = {TP0: 50, TP1: 10}


def plan(spec, committed=None, by_time=None):
    return groups.plan_reset(spec, [TP0, TP1], committed or {}, EARLIEST, LATEST, by_time)


def test_reset_to_either_end():
    assert plan(("to_earliest", True)) == {TP0: 5, TP1: 0}
    assert plan(("to_latest", True)) == {TP0: 50, TP1: 10}


def test_reset_to_offset_is_clamped_to_the_log():
    assert plan(("to_offset", 7)) == {TP0: 7, TP1: 7}
    assert plan(("to_offset", 2)) == {TP0: 5, TP1: 2}
    assert plan(("to_offset", 99)) == {TP0: 50, TP1: 10}


def test_shift_by_moves_from_the_committed_offset_and_clamps():
    assert plan(("shift_by", -3), {TP0: 20, TP1: 2}) == {TP0: 17, TP1: 0}
    assert plan(("shift_by", 5), {TP0: 48, TP1: 2}) == {TP0: 50, TP1: 7}


def test_shift_by_without_a_committed_offset_is_an_error():
    with pytest.raises(UsageError, match="no committed offset"):
        plan(("shift_by", 1), {TP0: 20})


def test_to_datetime_past_the_last_record_goes_to_the_log_end():
    assert plan(("to_datetime", "x"), by_time={TP0: 30, TP1: -1}) == {TP0: 30, TP1: 10}


def member(mid, assignment, host="/127.0.0.1", client="c"):
    return MemberDescription(mid, None, client, host, assignment)


class Description:
    def __init__(self, members):
        self.members = members


def test_offset_rows_cover_owned_and_orphaned_partitions():
    desc = Description([member("m1", [("t", 1)]), member("m2", [("t", 0)])])
    rows = groups.offset_rows("g", desc, {("t", 0): 4, ("u", 0): 9}, {("t", 0): 10, ("t", 1): 3, ("u", 0): 9})
    assert [(r.topic, r.partition, r.current_offset, r.lag, r.consumer_id) for r in rows] == [
        ("t", 0, 4, 6, "m2"), ("t", 1, None, None, "m1"), ("u", 0, 9, 0, None)]


def test_offsets_table_has_kafkas_header_and_dashes():
    rows = [groups.OffsetRow("g", "t", 0, 3, 10, None, None, None)]
    text = groups.format_offsets(rows)
    lines = text.split("\n")
    assert lines[0] == ""
    assert lines[1].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                "CONSUMER-ID", "HOST", "CLIENT-ID"]
    assert lines[2].split() == ["g", "t", "0", "3", "10", "7", "-", "-", "-"]
    # Kafka's fixed widths: PARTITION 10, offsets 15 each, so columns line up across groups.
    assert lines[1].index("CURRENT-OFFSET") == lines[2].index("3") == len("GROUP TOPIC PARTITION  ")


def test_members_table_counts_partitions_and_prints_assignment_when_verbose():
    text = groups.format_members("g", [member("b", [("t", 2), ("t", 0), ("u", 1)]), member("a", [])], verbose=True)
    lines = text.strip("\n").split("\n")
    assert lines[0].split() == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"]
    assert lines[1].split() == ["g", "a", "/127.0.0.1", "c", "0", "-"]
    assert lines[2].split() == ["g", "b", "/127.0.0.1", "c", "3", "t(0,2),u(1)"]


def test_state_and_reset_tables():
    state = groups.format_state("g", "127.0.0.1:9092 (0)", "range", "Stable", 3).strip("\n").split("\n")
    assert state[0].startswith("GROUP COORDINATOR (ID)")
    assert state[1].split() == ["g", "127.0.0.1:9092", "(0)", "range", "Stable", "3"]
    reset = groups.format_reset("g", {("t", 1): 4, ("t", 0): 8}).strip("\n").split("\n")
    assert [line.split() for line in reset] == [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                                                ["g", "t", "0", "8"], ["g", "t", "1", "4"]]
    assert reset[0].index("TOPIC") == 31
