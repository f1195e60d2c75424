"""What the console does besides showing: read messages, produce a test message, reset a
group's offsets. Each goes through the Kafka protocol to the brokers, as any client would,
with pybroker's own client, so the answer is what a client would get; they block, and the
server runs them on a worker thread, never on the supervisor's event loop.

Offset resets are ``pybroker groups --reset-offsets --execute`` itself (the same checks: a
group with active members is refused, offsets are clamped to the log), fed the console's
form as a command line.

Message values are shown decoded three ways, for the page to pick: ``text`` (UTF-8, or
None), ``json`` (re-indented, or None) and ``hex``; each shown value is cut at
``MAX_SHOWN_BYTES``.
"""
from __future__ import annotations

import argparse
import io
import json
import time

from pybroker import errors

MAX_MESSAGES = 100
MAX_SHOWN_BYTES = 16 * 1024
BROWSE_TIMEOUT_S = 5.0
RESET_SCENARIOS = {"earliest": ["--to-earliest"], "latest": ["--to-latest"], "offset": ["--to-offset"],
                   "datetime": ["--to-datetime"], "shift": ["--shift-by"]}


class ActionError(Exception):
    """A request the console refuses or the cluster answered with an error: shown as is."""


def decoded(data: bytes | None) -> dict | None:
    if data is None:
        return None
    shown = data[:MAX_SHOWN_BYTES]
    out = {"size": len(data), "truncated": len(data) > MAX_SHOWN_BYTES, "hex": shown.hex(" "),
           "text": None, "json": None}
    try:
        out["text"] = shown.decode("utf-8")
    except UnicodeDecodeError:
        return out
    if not out["truncated"]:
        try:
            out["json"] = json.dumps(json.loads(out["text"]), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return out


def browse(bootstrap: str, topic: str, partition: int, offset: int | None = None,
           timestamp_ms: int | None = None, limit: int = 20) -> dict:
    """Up to ``limit`` records of one partition from ``offset`` (or the first at or after
    ``timestamp_ms``; neither: the last ``limit`` records)."""
    from pybroker.client.admin import Admin
    from pybroker.client.consumer import Consumer

    limit = max(1, min(int(limit), MAX_MESSAGES))
    tp = (topic, int(partition))
    try:
        with Admin(bootstrap, client_id="pybroker-console", timeout=BROWSE_TIMEOUT_S) as admin:
            (start, _), = admin.list_offsets({tp: -2}).values()
            (end, _), = admin.list_offsets({tp: -1}).values()
        consumer = Consumer(bootstrap, client_id="pybroker-console", enable_auto_commit=False,
                            auto_offset_reset="earliest", fetch_max_wait_ms=200,
                            request_timeout_ms=int(BROWSE_TIMEOUT_S * 1000))
    except errors.KafkaError as exc:
        raise ActionError(f"{topic}-{partition}: {exc}") from None
    try:
        consumer.assign([tp])
        if timestamp_ms is not None:
            consumer.seek_to_timestamp([tp], int(timestamp_ms))
            first = consumer.position(tp)
        else:
            first = max(start, end - limit) if offset is None else min(max(int(offset), start), end)
            consumer.seek(tp, first)
        records = []
        deadline = time.monotonic() + BROWSE_TIMEOUT_S
        while len(records) < limit and consumer.position(tp) < end and time.monotonic() < deadline:
            records.extend(consumer.poll(200, max_records=limit - len(records)))
    except errors.KafkaError as exc:
        raise ActionError(f"{topic}-{partition}: {exc}") from None
    finally:
        consumer.close(autocommit=False)
    return {
        "topic": topic, "partition": tp[1], "log_start_offset": start, "high_watermark": end, "first": first,
        "records": [{"offset": r.offset, "timestamp": r.timestamp, "timestamp_type": r.timestamp_type,
                     "key": decoded(r.key), "value": decoded(r.value),
                     "headers": [{"key": k, "value": decoded(v)} for k, v in r.headers]}
                    for r in records[:limit]],
    }


def produce(bootstrap: str, topic: str, value: str, key: str | None = None, partition: int | None = None,
            headers: list[tuple[str, str]] = ()) -> dict:
    from pybroker.client.producer import Producer

    producer = Producer(bootstrap, client_id="pybroker-console", acks="all", request_timeout_ms=10_000)
    try:
        future = producer.send(topic, value=value.encode(), key=None if key is None else key.encode(),
                               partition=partition, headers=[(k, v.encode()) for k, v in headers])
        producer.flush(15)
        metadata = future.get(0)
    except errors.KafkaError as exc:
        raise ActionError(f"produce to {topic}: {exc}") from None
    finally:
        producer.close()
    return {"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset}


def reset_offsets(bootstrap: str, group: str, topic: str | None, scenario: str, value: str | None = None) -> dict:
    """``pybroker groups --reset-offsets --execute`` for one group; ``topic`` None means
    every topic the group has offsets for."""
    from pybroker.cli import groups
    from pybroker.cli.common import UsageError
    from pybroker.client.admin import Admin

    if scenario not in RESET_SCENARIOS:
        raise ActionError(f"unknown reset scenario {scenario!r}: one of {', '.join(RESET_SCENARIOS)}")
    argv = ["groups", "--bootstrap-server", bootstrap, "--reset-offsets", "--execute", "--group", group,
            *(["--topic", topic] if topic else ["--all-topics"]), *RESET_SCENARIOS[scenario]]
    if scenario in ("offset", "datetime", "shift"):
        if not value:
            raise ActionError(f"the {scenario} scenario needs a value")
        argv.append(value)
    parser = argparse.ArgumentParser(prog="pybroker", exit_on_error=False)
    groups.register(parser.add_subparsers())
    out, err = io.StringIO(), io.StringIO()
    try:
        args = parser.parse_args(argv)
        groups.check_args(args)
        with Admin(bootstrap, client_id="pybroker-console", timeout=args.timeout) as admin:
            code = groups.reset_offsets(admin, args, out, err)
    except (UsageError, argparse.ArgumentError, SystemExit) as exc:
        raise ActionError(f"Error: {exc}") from None
    except errors.KafkaError as exc:
        raise ActionError(f"Error: {type(exc).__name__}: {exc}") from None
    if code:
        raise ActionError(err.getvalue().strip() or "the reset failed")
    return {"output": out.getvalue()}
