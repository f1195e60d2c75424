"""`pybroker consume`: print records of a topic, like kafka-console-consumer.

Each record is one line in the order of Kafka's DefaultMessageFormatter, the enabled
columns joined by ``key.separator`` (tab by default)::

    [CreateTime:TS] [Partition:P] [Offset:O] [h1:v1,h2:v2|NO_HEADERS] [KEY] VALUE

At the end ``Processed a total of N messages`` goes to stderr. Without ``--partition``
every partition of the topic is read; without ``--timeout-ms`` it runs until
``--max-messages`` or Ctrl-C.
"""
from __future__ import annotations

import sys
import time

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, fail, parse_bool, parse_properties, unescape

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
    p.add_argument("--partition", type=int, help="read only this partition")
    p.add_argument("--offset", help="with --partition: a non-negative offset, earliest or latest")
    p.add_argument("--max-messages", type=int, help="exit after this many records")
    p.add_argument("--timeout-ms", type=int, help="exit when no record arrived for this long")
    p.add_argument("--isolation-level", default="read_uncommitted",
                   choices=["read_uncommitted", "read_committed"], help="(default read_uncommitted)")
    p.add_argument("--property", action="append", metavar="KEY=VALUE",
                   help="formatter settings: " + ", ".join(BOOL_PROPERTIES + TEXT_PROPERTIES))
    p.set_defaults(func=run)


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


def run(args) -> int:
    try:
        formatter = RecordFormatter(parse_properties(args.property))
        offset, from_beginning = start_spec(args)
        if args.max_messages is not None and args.max_messages < 0:
            raise UsageError("--max-messages must be >= 0")
    except UsageError as exc:
        return fail(f"Error: {exc}")
    from pybroker.client.consumer import Consumer

    count = 0
    status = 0
    consumer = Consumer(
        args.bootstrap_server,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level=1 if args.isolation_level == "read_committed" else 0,
        client_id="console-consumer",
    )
    out = sys.stdout.buffer
    try:
        partitions = consumer.partitions_for(args.topic)
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
        while limit is None or count < limit:
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
            out.write(b"".join(map(formatter.format, records)))
            out.flush()
            count += len(records)
    except KeyboardInterrupt:
        pass
    except errors.KafkaError as exc:
        status = fail(f"ERROR {errors.name_of(exc.code)}: {exc}")
    finally:
        consumer.close()
        print(f"Processed a total of {count} messages", file=sys.stderr)
    return status
