"""Argument parsing and output formatting of the tools, without a broker."""
import argparse
import os
import uuid

import pytest

from pybroker.cli import consume, produce, topics
from pybroker.cli.common import UsageError, parse_properties, unescape
from pybroker.client.cluster import PartitionInfo, TopicInfo, parse_bootstrap
from pybroker.client.consumer import ConsumerRecord


def parser_for(module):
    parser = argparse.ArgumentParser(prog="pybroker")
    module.register(parser.add_subparsers(dest="command"))
    return parser


def rec(**kw):
    base = dict(topic="t", partition=2, offset=41, timestamp=1700000000000, timestamp_type="CreateTime",
                key=b"k", value=b"hello", headers=[])
    base.update(kw)
    return ConsumerRecord(**base)


# -- common ---------------------------------------------------------------------


def test_properties_split_on_first_equals_only():
    assert parse_properties(["a=1", "key.separator==", "b=x=y"]) == {"a": "1", "key.separator": "=", "b": "x=y"}


def test_property_without_equals_is_a_usage_error():
    with pytest.raises(UsageError):
        parse_properties(["print.key"])


def test_unescape_turns_backslash_t_into_tab():
    assert unescape(r"\t") == "\t"
    assert unescape(r"a\\b") == "a\\b"
    assert unescape(":") == ":"


def test_bootstrap_list_parses_hosts_and_rejects_bad_ports():
    assert parse_bootstrap("127.0.0.1:9092, h2:19093") == [("127.0.0.1", 9092), ("h2", 19093)]
    assert parse_bootstrap(["[::1]:9092"]) == [("::1", 9092)]
    for bad in ("nohost", "h:0", "h:x", ""):
        with pytest.raises(ValueError):
            parse_bootstrap(bad)


# -- topics ---------------------------------------------------------------------


def test_topics_requires_exactly_one_action():
    p = parser_for(topics)
    with pytest.raises(SystemExit):
        p.parse_args(["topics", "--topic", "t"])
    with pytest.raises(SystemExit):
        p.parse_args(["topics", "--create", "--list"])
    args = p.parse_args(["topics", "--create", "--topic", "t", "--partitions", "3", "--config", "retention.ms=1"])
    assert args.create and args.partitions == 3 and args.config == ["retention.ms=1"]
    assert args.bootstrap_server == "127.0.0.1:9092"


@pytest.mark.parametrize("argv, message", [
    (["--create"], "--create needs --topic"),
    (["--alter", "--topic", "t"], "--alter needs --partitions"),
    (["--create", "--topic", "t", "--partitions", "0"], "--partitions must be at least 1"),
    (["--list", "--config", "a=b"], "--config is only valid with --create"),
    (["--create", "--topic", "t", "--config", "novalue"], "expects KEY=VALUE"),
])
def test_topics_bad_arguments_exit_1_before_connecting(capsys, argv, message):
    # Port 1 is never a broker: reaching the network would fail differently.
    args = parser_for(topics).parse_args(["topics", "--bootstrap-server", "127.0.0.1:1", *argv])
    assert args.func(args) == 1
    assert message in capsys.readouterr().err


def test_topics_unreachable_broker_reports_error_and_exits_1(capsys):
    args = parser_for(topics).parse_args(
        ["topics", "--bootstrap-server", "127.0.0.1:1", "--list", "--command-timeout", "2"])
    assert args.func(args) == 1
    assert "Error while executing topic command" in capsys.readouterr().err


def test_describe_block_matches_kafka_topics_format():
    tid = uuid.UUID("0123456789abcdef0123456789abcdef")
    info = TopicInfo("orders", tid, False, {
        1: PartitionInfo("orders", 1, -1, 0, (1, 0), (1,)),
        0: PartitionInfo("orders", 0, 0, 0, (0, 1), (0, 1)),
    })
    text = topics.format_topic(info, {"retention.ms": "60000", "cleanup.policy": "compact"})
    assert text.splitlines() == [
        "Topic: orders\tTopicId: ASNFZ4mrze8BI0VniavN7w\tPartitionCount: 2\tReplicationFactor: 2\t"
        "Configs: cleanup.policy=compact,retention.ms=60000",
        "\tTopic: orders\tPartition: 0\tLeader: 0\tReplicas: 0,1\tIsr: 0,1\tElr: \tLastKnownElr: ",
        "\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 1,0\tIsr: 1\tElr: \tLastKnownElr: ",
    ]


def test_topic_id_zero_prints_like_kafka():
    assert topics.format_topic_id(None) == "AAAAAAAAAAAAAAAAAAAAAA"
    assert topics.format_topic_id(uuid.UUID(int=0)) == "AAAAAAAAAAAAAAAAAAAAAA"


# -- produce --------------------------------------------------------------------


def produce_args(*argv):
    return parser_for(produce).parse_args(["produce", "--topic", "t", *argv])


def test_lines_are_values_unless_parse_key():
    parse, _ = produce.parser_from_args(produce_args())
    assert parse(b"a\tb") == (None, b"a\tb")


def test_parse_key_splits_on_first_separator():
    parse, _ = produce.parser_from_args(produce_args("--property", "parse.key=true", "--property", "key.separator=:"))
    assert parse(b"k1:v:1") == (b"k1", b"v:1")
    assert parse(b":v") == (b"", b"v")


def test_short_key_separator_option_implies_parse_key():
    parse, _ = produce.parser_from_args(produce_args("--key-separator", ","))
    assert parse(b"a,b") == (b"a", b"b")


def test_line_without_separator_names_its_line_number():
    parse, _ = produce.parser_from_args(produce_args("--property", "parse.key=true"))
    parse(b"k\tv")
    with pytest.raises(UsageError, match="No key separator found on line number 2: 'novalue'"):
        parse(b"novalue")


def test_bad_parse_key_value_is_rejected(capsys):
    args = produce_args("--property", "parse.key=maybe", "--bootstrap-server", "127.0.0.1:1")
    assert args.func(args) == 1
    assert "parse.key" in capsys.readouterr().err


def test_compression_and_acks_choices_are_checked():
    with pytest.raises(SystemExit):
        produce_args("--compression-codec", "brotli")
    with pytest.raises(SystemExit):
        produce_args("--acks", "2")
    assert produce_args("--request-required-acks", "all").acks == "all"


def test_iter_lines_splits_and_strips_line_endings(tmp_path):
    path = tmp_path / "in"
    path.write_bytes(b"one\r\ntwo\n\nlast")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert list(produce.iter_lines(fd, lambda: None, 0.0)) == [b"one", b"two", b"", b"last"]
    finally:
        os.close(fd)


def test_iter_lines_calls_idle_hook_when_input_is_quiet():
    r, w = os.pipe()
    idles = []
    os.write(w, b"a\n")
    lines = produce.iter_lines(r, lambda: (idles.append(1), os.close(w)), 0.01)
    try:
        assert next(lines) == b"a"
        assert list(lines) == []
        assert idles == [1]
    finally:
        os.close(r)


# -- consume --------------------------------------------------------------------


def test_default_output_is_the_value_alone():
    assert consume.RecordFormatter().format(rec()) == b"hello\n"


def test_columns_follow_kafka_formatter_order():
    fmt = consume.RecordFormatter({
        "print.timestamp": "true", "print.partition": "true", "print.offset": "true",
        "print.headers": "true", "print.key": "true",
    })
    line = fmt.format(rec(headers=[("h1", b"x"), ("h2", None)]))
    assert line == b"CreateTime:1700000000000\tPartition:2\tOffset:41\th1:x,h2:null\tk\thello\n"


def test_key_separator_and_null_key():
    fmt = consume.RecordFormatter({"print.key": "true", "key.separator": ":"})
    assert fmt.format(rec(key=None)) == b"null:hello\n"
    assert consume.RecordFormatter({"print.headers": "true"}).format(rec()) == b"NO_HEADERS\thello\n"


def test_unknown_or_bad_property_is_a_usage_error():
    with pytest.raises(UsageError):
        consume.RecordFormatter({"print.everything": "true"})
    with pytest.raises(UsageError):
        consume.RecordFormatter({"print.key": "sure"})


@pytest.mark.parametrize("argv, expected", [
    ([], (None, False)),
    (["--from-beginning"], (None, True)),
    (["--partition", "0", "--offset", "earliest"], (None, True)),
    (["--partition", "0", "--offset", "latest"], (None, False)),
    (["--partition", "0", "--offset", "17"], (17, False)),
])
def test_start_position_options(argv, expected):
    args = parser_for(consume).parse_args(["consume", "--topic", "t", *argv])
    assert consume.start_spec(args) == expected


@pytest.mark.parametrize("argv", [
    ["--offset", "5"],
    ["--partition", "0", "--offset", "-1"],
    ["--partition", "0", "--offset", "soon"],
    ["--partition", "0", "--offset", "5", "--from-beginning"],
])
def test_bad_start_positions_exit_1(capsys, argv):
    args = parser_for(consume).parse_args(["consume", "--topic", "t", "--bootstrap-server", "127.0.0.1:1", *argv])
    assert args.func(args) == 1
    assert "--offset" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", str((1 << 20) + 1)])
def test_up_refuses_a_shm_table_size_outside_its_range(capsys, tmp_path, value):
    from pybroker.cli import up

    args = parser_for(up).parse_args(["up", "--data", str(tmp_path / "d"), "--shm-slots", value])
    assert args.func(args) == 2
    assert "--shm-slots must be between 1 and 1048576" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before anything is created


def test_up_refuses_a_partition_cap_below_one(capsys, tmp_path):
    from pybroker.cli import up

    args = parser_for(up).parse_args(["up", "--data", str(tmp_path / "d"), "--max-partitions", "0"])
    assert args.func(args) == 2
    assert "--max-partitions must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
