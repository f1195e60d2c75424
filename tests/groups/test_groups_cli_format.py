"""`pybroker groups` without a broker: argument checks, parsing, reset planning, tables."""
import re
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


# -- --by-duration, --export, --from-file ----------------------------------------------

def test_by_duration_reads_iso8601_durations_as_java_does():
    assert groups.parse_duration("PT10M") == 600_000
    assert groups.parse_duration("P1DT2H") == 26 * 3600_000
    assert groups.parse_duration("p2d") == 2 * 86400_000
    assert groups.parse_duration("PT1H30M15.25S") == 5415_250
    assert groups.parse_duration("PT0,5S") == 500
    assert groups.parse_duration("PT-1.5S") == -1500
    assert groups.parse_duration("-PT1H") == -3600_000
    assert groups.parse_duration("PT1H-10M") == 3000_000
    for bad in ("", "P", "PT", "P1DT", "10M", "PT10", "P1Y", "P1W", "P1M", "PT1.5M", "PT1.1234567890S", "1 day"):
        with pytest.raises(UsageError, match="ISO-8601 duration"):
            groups.parse_duration(bad)


def test_by_duration_timestamp_is_now_minus_the_duration_and_never_a_sentinel():
    assert groups.duration_timestamp(600_000, 1_700_000_000_000) == 1_699_999_400_000
    assert groups.duration_timestamp(10**15, 1_700_000_000_000) == 0


def test_bad_duration_fails_before_connecting(capsys):
    args = parse("--reset-offsets", "--group", "g", "--all-topics", "--by-duration", "10m",
                 "--bootstrap-server", "127.0.0.1:1")
    assert groups.run(args) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("Error: --by-duration expects an ISO-8601 duration PnDTnHnMnS (e.g. PT10M, P1DT2H), "
                           "got '10m'")


def test_by_duration_plans_like_to_datetime():
    assert plan(("by_duration", "PT1M"), by_time={TP0: 12, TP1: -1}) == {TP0: 12, TP1: 10}


def test_by_duration_and_from_file_are_scenarios_exclusive_with_the_others():
    with pytest.raises(SystemExit):
        parse("--reset-offsets", "--group", "g", "--all-topics", "--by-duration", "PT1M", "--to-latest")
    with pytest.raises(SystemExit):
        parse("--reset-offsets", "--group", "g", "--from-file", "f", "--by-duration", "PT1M")
    args = parse("--reset-offsets", "--group", "g", "--all-topics", "--by-duration", "PT1M")
    assert groups.reset_spec(args) == ("by_duration", "PT1M")


def test_export_needs_reset_offsets():
    with pytest.raises(UsageError, match="need --reset-offsets"):
        groups.check_args(parse("--describe", "--group", "g", "--export"))


def test_export_csv_has_the_group_column_only_for_several_groups():
    offsets = {("t", 1): 4, ("t", 0): 8, ("a,b", 0): 1}
    assert groups.format_export("g", offsets, with_group=False) == '"a,b",0,1\nt,0,8\nt,1,4\n'
    assert groups.format_export("g", offsets, with_group=True) == 'g,"a,b",0,1\ng,t,0,8\ng,t,1,4\n'
    assert groups.format_export("g", {}, with_group=True) == ""


def test_single_group_is_one_named_group_not_all_groups():
    assert groups._single_group(parse("--reset-offsets", "--group", "g", "--group", "g")) == "g"
    assert groups._single_group(parse("--reset-offsets", "--group", "g", "--group", "h")) is None
    assert groups._single_group(parse("--reset-offsets", "--all-groups")) is None


def test_reset_file_round_trips_what_export_writes():
    offsets = {("t", 0): 8, ("t", 1): 4, ("u", 2): 0}
    assert groups.parse_reset_file(groups.format_export("g", offsets, False), "g") == {"g": offsets}
    both = groups.format_export("g", offsets, True) + "\n" + groups.format_export("h,1", {("t", 0): 3}, True)
    assert groups.parse_reset_file(both, None) == {"g": offsets, "h,1": {("t", 0): 3}}
    # One --group but a file with the group column: the column decides, as in Kafka.
    assert groups.parse_reset_file("g,t,0,5\nh,t,0,6\n", "g") == {"g": {("t", 0): 5}, "h": {("t", 0): 6}}


@pytest.mark.parametrize("text, single, message", [
    ("t,0,5\n", None, "line 1: lines without the group column need exactly one --group"),
    ("t,0,5\nt,1\n", "g", "line 2: expected TOPIC,PARTITION,OFFSET, got 't,1'"),
    ("g,t,0,5\n\ng,t,1,6,7\n", None, "line 3: expected GROUP,TOPIC,PARTITION,OFFSET"),
    ("t,0\n", "g", "line 1: expected TOPIC,PARTITION,OFFSET or GROUP,TOPIC,PARTITION,OFFSET"),
    ("t,0,5\nt,x,5\n", "g", "line 2: partition and offset must be integers"),
    ("t,0,5.5\n", "g", "line 1: partition and offset must be integers"),
    ("t,0,-1\n", "g", "line 1: partition and offset must not be negative"),
    (",t,0,1\n", None, "line 1: empty group or topic"),
    ('g,"t,0,1\n', None, "line 1: "),
])
def test_reset_file_rejects_bad_lines_by_number(text, single, message):
    with pytest.raises(UsageError, match="--from-file " + re.escape(message)):
        groups.parse_reset_file(text, single)


def test_from_file_checks_the_file_before_connecting(tmp_path, capsys):
    path = tmp_path / "plan.csv"
    path.write_text("t,0,5\nt,zero,5\n")
    args = parse("--reset-offsets", "--group", "g", "--from-file", str(path), "--execute",
                 "--bootstrap-server", "127.0.0.1:1")
    assert groups.run(args) == 1
    assert capsys.readouterr().err.strip() == \
        "Error: --from-file line 2: partition and offset must be integers, got 't,zero,5'"
    assert groups.run(parse("--reset-offsets", "--group", "g", "--from-file", str(tmp_path / "none.csv"))) == 1
    assert "cannot read --from-file" in capsys.readouterr().err


def test_from_file_takes_no_scope():
    with pytest.raises(UsageError, match="--topic and --all-topics are not valid"):
        groups.check_args(parse("--reset-offsets", "--group", "g", "--from-file", "f", "--all-topics"))


def test_from_file_plan_is_clamped_to_the_log():
    assert plan(("from_file", {TP0: 99, TP1: 3})) == {TP0: 50, TP1: 3}
    assert plan(("from_file", {TP0: 1, TP1: 3})) == {TP0: 5, TP1: 3}


def test_delete_offsets_needs_exactly_one_group_and_a_topic():
    for argv in (("--topic", "t"), ("--group", "g"), ("--all-groups", "--topic", "t"),
                 ("--group", "g", "--group", "h", "--topic", "t")):
        with pytest.raises(UsageError, match="--delete-offsets needs one --group and --topic"):
            groups.check_args(parse("--delete-offsets", *argv))
    with pytest.raises(UsageError, match="partitions must be integers"):
        groups.check_args(parse("--delete-offsets", "--group", "g", "--topic", "t:x"))
    with pytest.raises(UsageError, match="need --reset-offsets"):
        groups.check_args(parse("--delete-offsets", "--group", "g", "--topic", "t", "--execute"))
    groups.check_args(parse("--delete-offsets", "--group", "g", "--group", "g", "--topic", "t:0,1"))


def test_delete_offsets_table_has_kafkas_columns_and_a_dash_for_a_missing_topic():
    text = groups.format_delete_offsets({("t", 1): "Successful", ("gone", -1): "Error: no such topic",
                                         ("t", 0): "Error: subscribed"})
    lines = text.split("\n")
    assert lines[0] == ""
    assert lines[1] == "TOPIC           PARTITION  STATUS"
    assert [line.split(maxsplit=2) for line in lines[2:5]] == [
        ["gone", "-", "Error: no such topic"], ["t", "0", "Error: subscribed"], ["t", "1", "Successful"]]
