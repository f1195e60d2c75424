"""`pybroker delete-records --offset-json-file FILE`: delete the records below given
offsets, like kafka-delete-records.

The file is kafka-delete-records' JSON (offset -1 means the high watermark)::

    {"partitions": [{"topic": "t", "partition": 0, "offset": 3}], "version": 1}

Output lines are Kafka's::

    Executing records delete operation
    Records delete operation completed:
    partition: t-0\tlow_watermark: 3
    partition: t-1\terror: OffsetOutOfRange: <broker's message>

A bad file prints ``Error: <reason>`` on stderr and exits with 1; so does any partition
that failed, after every line is printed.
"""
from __future__ import annotations

import json
import sys

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, add_command_timeout, fail

SUPPORTED_VERSION = 1


def register(subparsers) -> None:
    p = subparsers.add_parser("delete-records", help="delete records below given offsets",
                              description="Delete the records of partitions below given offsets, "
                                          "like kafka-delete-records.")
    add_bootstrap(p)
    p.add_argument("--offset-json-file", required=True, metavar="FILE",
                   help='JSON: {"partitions": [{"topic": "t", "partition": 0, "offset": 3}], "version": 1}')
    add_command_timeout(p)
    p.set_defaults(func=run)


def parse_offset_json(text: str) -> dict[tuple[str, int], int]:
    """{(topic, partition): offset} from kafka-delete-records' JSON; a malformed file, or
    one naming a partition twice, is a usage error (Kafka's tool refuses both)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the offset JSON file is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError("the offset JSON file must hold an object")
    version = doc.get("version", SUPPORTED_VERSION)
    if version != SUPPORTED_VERSION:
        raise UsageError(f"Not supported version field value {version}")
    partitions = doc.get("partitions")
    if not isinstance(partitions, list):
        raise UsageError('the offset JSON file has no "partitions" list')
    out: dict[tuple[str, int], int] = {}
    duplicates = []
    for item in partitions:
        if not isinstance(item, dict):
            raise UsageError(f"each partition must be an object, got {item!r}")
        topic, partition, offset = item.get("topic"), item.get("partition"), item.get("offset")
        if not isinstance(topic, str) or not _is_int(partition) or not _is_int(offset):
            raise UsageError(f'each partition needs "topic" (string), "partition" and "offset" (integers), got {item!r}')
        if (topic, partition) in out:
            duplicates.append(f"{topic}-{partition}")
        out[(topic, partition)] = offset
    if duplicates:
        raise UsageError(f"Offset json file contains duplicate topic partitions: {','.join(duplicates)}")
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run(args) -> int:
    try:
        try:
            with open(args.offset_json_file, encoding="utf-8") as f:
                offsets = parse_offset_json(f.read())
        except OSError as exc:
            raise UsageError(f"cannot read {args.offset_json_file}: {exc.strerror}") from None
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, timeout=args.command_timeout, security=client_security(args)) as admin:
            out = sys.stdout
            out.write("Executing records delete operation\n")
            results = admin.delete_records(offsets, timeout=args.command_timeout)
            out.write("Records delete operation completed:\n")
            failed = False
            for (topic, partition), result in results.items():
                if isinstance(result, errors.KafkaError):
                    failed = True
                    out.write(f"partition: {topic}-{partition}\terror: {type(result).__name__}: {result}\n")
                else:
                    out.write(f"partition: {topic}-{partition}\tlow_watermark: {result}\n")
            return 1 if failed else 0
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error while executing delete records command : {exc}")
