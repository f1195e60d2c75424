"""`pybroker produce`: one record per stdin line, like kafka-console-producer.

With ``--property parse.key=true`` each line is ``KEY<key.separator>VALUE`` (the
separator defaults to a tab, as in Kafka). Records are batched; a batch is sent when it
is full, when stdin has been quiet for ``--linger-ms``, and at end of input, so an
interactive session sees each line delivered right after Enter.
"""
from __future__ import annotations

import os
import select
import sys

from pybroker import errors
from pybroker.cli.common import (UsageError, add_bootstrap, client_security, security_options, add_client_properties, check_reachable, client_properties,
                                 fail, parse_bool, parse_properties, unescape)

READ_CHUNK = 64 * 1024
# A line longer than this without a newline is refused rather than buffered without bound.
MAX_LINE_BYTES = 16 * 1024 * 1024


def register(subparsers) -> None:
    p = subparsers.add_parser("produce", help="send stdin lines as records",
                              description="Read lines from stdin and produce one record per line, "
                                          "like kafka-console-producer.")
    add_bootstrap(p)
    p.add_argument("--topic", required=True, help="topic to produce to")
    p.add_argument("--partition", type=int, help="send every record to this partition")
    p.add_argument("--acks", "--request-required-acks", dest="acks",
                   choices=["0", "1", "-1", "all"], help="acknowledgements to wait for (default 1)")
    p.add_argument("--compression-codec", choices=["none", "gzip", "snappy", "lz4", "zstd"],
                   help="compression of record batches (default none)")
    p.add_argument("--property", action="append", metavar="KEY=VALUE",
                   help="parse.key=true|false, key.separator=SEP, ignore.error=true|false")
    p.add_argument("--key-separator", help="same as --property key.separator=SEP (implies parse.key=true)")
    p.add_argument("--batch-size", type=int, help="bytes per batch (default 16384)")
    p.add_argument("--linger-ms", type=int, default=100,
                   help="send a partial batch once stdin is quiet this long (default 100)")
    p.add_argument("--request-timeout-ms", type=int, help="broker ack timeout (default 30000)")
    add_client_properties(p, "producer")
    p.set_defaults(func=run)


# The tool's own defaults; --producer-property overrides them, and an option given on
# the command line overrides both (as kafka-console-producer merges them).
PRODUCER_DEFAULTS = {"acks": "1", "compression.type": "none", "batch.size": 16384, "request.timeout.ms": 30000}
OPTION_PROPERTIES = {"acks": "acks", "compression_codec": "compression.type", "batch_size": "batch.size",
                     "request_timeout_ms": "request.timeout.ms"}


def producer_config(args) -> dict:
    config = {**PRODUCER_DEFAULTS, "client.id": "console-producer", **security_options(args),
              **client_properties(args, "producer")}
    for option, name in OPTION_PROPERTIES.items():
        if getattr(args, option) is not None:
            config[name] = getattr(args, option)
    return config


class LineParser:
    """Turns one input line into (key, value) as Kafka's LineMessageReader does."""

    def __init__(self, parse_key: bool, separator: bytes):
        self.parse_key = parse_key
        self.separator = separator
        self.line_number = 0

    def __call__(self, line: bytes) -> tuple[bytes | None, bytes]:
        self.line_number += 1
        if not self.parse_key:
            return None, line
        key, sep, value = line.partition(self.separator)
        if not sep:
            raise UsageError(
                f"No key separator found on line number {self.line_number}: "
                f"'{line.decode('utf-8', 'replace')}'"
            )
        return key, value


def parser_from_args(args) -> tuple[LineParser, bool]:
    props = parse_properties(args.property)
    parse_key = parse_bool("parse.key", props["parse.key"]) if "parse.key" in props else False
    separator = props.get("key.separator", "\t")
    if args.key_separator is not None:
        separator = args.key_separator
        parse_key = True
    separator = unescape(separator)
    if not separator:
        raise UsageError("key.separator must not be empty")
    ignore_error = parse_bool("ignore.error", props["ignore.error"]) if "ignore.error" in props else False
    return LineParser(parse_key, separator.encode()), ignore_error


def iter_lines(fd: int, on_idle, idle_seconds: float):
    """Lines of ``fd`` without their line ending; calls ``on_idle()`` whenever no input
    arrived for ``idle_seconds`` (so records typed by hand go out at once)."""
    pending = b""
    while True:
        if idle_seconds > 0:
            ready, _, _ = select.select([fd], [], [], idle_seconds)
            if not ready:
                on_idle()
                continue
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            break
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise UsageError(f"input line longer than {MAX_LINE_BYTES} bytes")
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


def run(args) -> int:
    from pybroker.client.producer import Producer

    try:
        parse_line, ignore_error = parser_from_args(args)
        config = producer_config(args)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    try:
        check_reachable(args.bootstrap_server, "console-producer", args.topic, auto_create=True,
                        security=client_security(args))
    except errors.KafkaError as exc:
        return fail(f"ERROR {errors.name_of(exc.code)}: {exc}")
    except ValueError as exc:
        return fail(f"Error: {exc}")
    failures = []

    def on_batch_error(topic, partition, count, exc):
        failures.append(count)
        print(f"ERROR Error when sending {count} message(s) to topic {topic} partition {partition}: "
              f"{errors.name_of(getattr(exc, 'code', -1))}: {exc}", file=sys.stderr)

    try:
        producer = Producer(args.bootstrap_server, config, on_batch_error=on_batch_error)
    except ValueError as exc:
        return fail(f"Error: {exc}")
    status = 0
    try:
        send = producer.send
        topic, partition = args.topic, args.partition
        for line in iter_lines(sys.stdin.fileno(), producer.flush, args.linger_ms / 1000.0):
            try:
                key, value = parse_line(line)
            except UsageError as exc:
                if not ignore_error:
                    raise
                print(f"WARN {exc}", file=sys.stderr)
                continue
            send(topic, value, key=key, partition=partition)
        producer.flush()
    except UsageError as exc:
        status = fail(f"ERROR {exc}")
        producer.flush()
    except KeyboardInterrupt:
        # Like Kafka's console producer: lines already read are still delivered.
        producer.flush()
        status = 130
    except errors.KafkaError as exc:
        status = fail(f"ERROR {errors.name_of(exc.code)}: {exc}")
    finally:
        producer.close()
    return 1 if failures else status
