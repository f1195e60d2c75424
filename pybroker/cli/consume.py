"""`pybroker consume`: print records of a topic, like kafka-console-consumer.

Each record is one line in the order of Kafka's DefaultMessageFormatter, the enabled
columns joined by ``key.separator`` (tab by default)::

    [CreateTime:TS] [Partition:P] [Offset:O] [h1:v1,h2:v2|NO_HEADERS] [KEY] VALUE

``--format json`` prints one JSON object per line instead, for scripts::

    {"topic": "t", "partition": 0, "offset": 4, "timestamp": 1700000000000,
     "timestamp_type": "CreateTime", "key": "k", "value": "v", "headers": [{"key": "h", "value": "x"}]}

(a key, value or header value that is not UTF-8 text is ``{"base64": "..."}``; absent is null).

At the end ``Processed a total of N messages`` goes to stderr (also on Ctrl-C and
SIGTERM). Without ``--group`` every partition of the topic is read (or ``--partition``);
with ``--group G`` the consumer joins group G, gets partitions assigned and commits its
offsets. Without ``--timeout-ms`` it runs until ``--max-messages``, Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import base64
import json
import signal
import sys
import time

from pybroker import errors
from pybroker.cli.common import (UsageError, add_bootstrap, client_security, security_options, add_client_properties, client_properties, fail,
                                 parse_bool, parse_properties, unescape)

BOOL_PROPERTIES = ("print.timestamp", "print.partition", "print.offset", "print.headers", "print.key", "print.value")
TEXT_PROPERTIES = ("key.separator", "line.separator", "headers.separator", "headers.key.separator", "null.literal")
POLL_MS = 500


def register(subparsers) -> None:
    p = subparsers.add_parser("consume", help="print records of a topic",
                              description="Print records of a topic, like kafka-console-consumer.")
    add_bootstrap(p)
    p.add_argument("--topic", required=True, help="topic to read")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at the earliest offset (default: only new records)")
    p.add_argument("--group", help="consumer group to join (its committed offsets give the start)")
    p.add_argument("--partition", type=int, help="read only this partition")
    p.add_argument("--offset", help="with --partition: a non-negative offset, earliest or latest")
    p.add_argument("--max-messages", type=int, help="exit after this many records")
    p.add_argument("--timeout-ms", type=int, help="exit when no record arrived for this long")
    p.add_argument("--isolation-level",
                   choices=["read_uncommitted", "read_committed"], help="(default read_uncommitted)")
    p.add_argument("--property", action="append", metavar="KEY=VALUE",
                   help="formatter settings: " + ", ".join(BOOL_PROPERTIES + TEXT_PROPERTIES))
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: Kafka's DefaultMessageFormatter lines (default); json: one JSON object per record")
    add_client_properties(p, "consumer")
    p.set_defaults(func=run)


def _json_bytes(data: bytes | None):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def format_json(rec) -> bytes:
    """One record as a JSON line (see the module docstring)."""
    doc = {
        "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
        "timestamp": rec.timestamp if rec.timestamp >= 0 else None,
        "timestamp_type": rec.timestamp_type if rec.timestamp >= 0 else None,
        "key": _json_bytes(rec.key), "value": _json_bytes(rec.value),
        "headers": [{"key": k, "value": _json_bytes(v)} for k, v in rec.headers or ()],
    }
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


class RecordFormatter:
    """One output line per record, as Kafka's DefaultMessageFormatter writes it."""

    def __init__(self, props: dict[str, str] | None = None):
        props = dict(props or {})
        unknown = set(props) - set(BOOL_PROPERTIES) - set(TEXT_PROPERTIES)
        if unknown:
            raise UsageError(f"unknown --property {', '.join(sorted(unknown))}")
        flag = {k: parse_bool(k, props[k]) if k in props else k == "print.value" for k in BOOL_PROPERTIES}
        self.print_timestamp = flag["print.timestamp"]
        self.print_partition = flag["print.partition"]
        self.print_offset = flag["print.offset"]
        self.print_headers = flag["print.headers"]
        self.print_key = flag["print.key"]
        self.print_value = flag["print.value"]
        self.key_separator = unescape(props.get("key.separator", "\t")).encode()
        self.line_separator = unescape(props.get("line.separator", "\n")).encode()
        self.headers_separator = unescape(props.get("headers.separator", ",")).encode()
        self.headers_key_separator = unescape(props.get("headers.key.separator", ":")).encode()
        self.null_literal = props.get("null.literal", "null").encode()

    def format(self, rec) -> bytes:
        cols = []
        if self.print_timestamp:
            cols.append(f"{rec.timestamp_type}:{rec.timestamp}".encode() if rec.timestamp >= 0 else b"NO_TIMESTAMP")
        if self.print_partition:
            cols.append(b"Partition:%d" % rec.partition)
        if self.print_offset:
            cols.append(b"Offset:%d" % rec.offset)
        if self.print_headers:
            if rec.headers:
                cols.append(self.headers_separator.join(
                    k.encode() + self.headers_key_separator + (self.null_literal if v is None else v)
                    for k, v in rec.headers))
            else:
                cols.append(b"NO_HEADERS")
        if self.print_key:
            cols.append(self.null_literal if rec.key is None else rec.key)
        if self.print_value:
            cols.append(self.null_literal if rec.value is None else rec.value)
        # Kafka ends a line without a value with the line separator too.
        return self.key_separator.join(cols) + self.line_separator


def start_spec(args) -> tuple[int | None, bool]:
    """(explicit offset or None, from the beginning?) from --offset / --from-beginning."""
    if args.offset is None:
        return None, args.from_beginning
    if args.partition is None:
        raise UsageError("--offset needs --partition")
    if args.from_beginning:
        raise UsageError("--offset and --from-beginning cannot be used together")
    text = args.offset.strip().lower()
    if text == "earliest":
        return None, True
    if text == "latest":
        return None, False
    try:
        offset = int(text)
    except ValueError:
        raise UsageError(f"--offset must be a non-negative number, earliest or latest, not {args.offset!r}") from None
    if offset < 0:
        raise UsageError(f"--offset must be a non-negative number, earliest or latest, not {args.offset!r}")
    return offset, False


def consumer_config(args, from_beginning: bool) -> dict:
    """The console consumer's settings under --consumer-property, the options on top (as
    kafka-console-consumer merges them); a group given twice must be the same group."""
    props = client_properties(args, "consumer")
    group = props.get("group.id")
    if args.group is not None and group is not None and group != args.group:
        raise UsageError(f"the group ids given by --group and --consumer-property do not match: "
                         f"'{args.group}', '{group}'")
    group = args.group or group
    if group and args.partition is not None:
        raise UsageError("Options group and partition cannot be specified together.")
    config = {"client.id": "console-consumer", "isolation.level": "read_uncommitted", **security_options(args), **props}
    if args.isolation_level is not None:
        config["isolation.level"] = args.isolation_level
    if from_beginning or "auto.offset.reset" not in props:
        config["auto.offset.reset"] = "earliest" if from_beginning else "latest"
    if group:
        config["group.id"] = group
    return config


def run(args) -> int:
    try:
        formatter = RecordFormatter(parse_properties(args.property))
        offset, from_beginning = start_spec(args)
        if args.max_messages is not None and args.max_messages < 0:
            raise UsageError("--max-messages must be >= 0")
        config = consumer_config(args, from_beginning)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    from pybroker.client.consumer import Consumer

    count = 0
    status = 0
    try:
        consumer = Consumer(args.bootstrap_server, config)
    except ValueError as exc:
        return fail(f"Error: {exc}")
    format_record = format_json if args.format == "json" else formatter.format
    out = sys.stdout.buffer
    # SIGTERM ends the run like Ctrl-C, between two polls (so at most POLL_MS late),
    # never inside a request the consumer has on the wire.
    terminated = []
    previous_sigterm = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    try:
        partitions = consumer.partitions_for(args.topic)
        if "group.id" in config:
            consumer.subscribe([args.topic])
        else:
            if args.partition is not None:
                if args.partition not in partitions:
                    raise errors.UnknownTopicOrPartition(
                        f"partition {args.partition} of topic '{args.topic}' does not exist")
                partitions = [args.partition]
            consumer.assign([(args.topic, p) for p in partitions])
        if offset is not None:
            consumer.seek((args.topic, args.partition), offset)
        limit = args.max_messages
        last_record = time.monotonic()
        while (limit is None or count < limit) and not terminated:
            wait = POLL_MS
            if args.timeout_ms is not None:
                left = args.timeout_ms - (time.monotonic() - last_record) * 1000
                if left <= 0:
                    break
                wait = int(min(wait, left))
            records = consumer.poll(wait, max_records=None if limit is None else limit - count)
            if not records:
                continue
            last_record = time.monotonic()
            out.write(b"".join(map(format_record, records)))
            out.flush()
            count += len(records)
    except KeyboardInterrupt:
        pass
    except errors.KafkaError as exc:
        status = fail(f"ERROR {errors.name_of(exc.code)}: {exc}")
    finally:
        # A second SIGTERM while closing ends the process at once.
        signal.signal(signal.SIGTERM, previous_sigterm)
        try:
            consumer.close()
        finally:
            print(f"Processed a total of {count} messages", file=sys.stderr)
    return status
