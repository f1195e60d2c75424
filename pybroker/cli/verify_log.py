"""`pybroker verify-log PATH... [--json]`: scrub partition logs — every batch's CRC-32C
and every index entry — and report the damaged ranges (pybroker.log.verify).

PATH is a partition directory (``<topic>-<partition>``), a broker's data dir or a
cluster's (``pybroker up --data``). Read only, safe beside a running broker. Exit 0 when
everything checked is whole, 1 when anything is damaged (including ranges quarantined
earlier as ``.corrupt`` files: delete those once handled), 2 when a path has no logs.
"""
from __future__ import annotations

import json
import os
import sys
import time

from pybroker.log import verify


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify-log", help="check every batch CRC and index entry of partition logs",
        description="Scrub partition logs: every batch's CRC-32C and every index entry. "
                    "Exit 1 when anything is damaged.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a partition directory, a broker data dir or a cluster data dir")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _damage_rows(report: verify.PartitionReport) -> list[dict]:
    rows = []
    for q in report.quarantined:
        rows.append({"kind": "quarantined", "first_offset": q.first_offset, "last_offset": q.end_offset - 1,
                     "bytes": q.size, "file": os.path.basename(q.path)})
    for segment in report.segments:
        name = os.path.basename(segment.path)
        for d in segment.damaged:
            rows.append({"kind": "corrupt", "segment": name, "position": d.position, "bytes": d.length,
                         "first_offset": d.first_offset, "last_offset": d.end_offset - 1, "reason": d.reason})
        if segment.torn_tail is not None:
            t = segment.torn_tail
            rows.append({"kind": "torn-tail", "segment": name, "position": t.position, "bytes": t.length,
                         "first_offset": t.first_offset, "reason": t.reason})
        for problem in segment.index_problems:
            rows.append({"kind": "index", "segment": name, "reason": problem})
    return rows


def _describe(row: dict) -> str:
    if row["kind"] == "index":
        return f"  index: {row['reason']}"
    if row["kind"] == "quarantined":
        return (f"  quarantined earlier: offsets {row['first_offset']}..{row['last_offset']}, "
                f"{row['bytes']} bytes in {row['file']}")
    offsets = (f"offsets from {row['first_offset']}" if row["kind"] == "torn-tail"
               else f"offsets {row['first_offset']}..{row['last_offset']}")
    return (f"  {row['kind']}: {row['segment']} bytes {row['position']}..{row['position'] + row['bytes'] - 1} "
            f"({row['bytes']} bytes), {offsets}: {row['reason']}")


def run(args) -> int:
    started = time.monotonic()
    reports = []
    for path in args.paths:
        dirs = verify.partition_dirs(os.path.abspath(path))
        if not dirs:
            print(f"pybroker verify-log: no partition logs under {path}", file=sys.stderr)
            return 2
        reports.extend(verify.verify_partition(d) for d in dirs)
    elapsed = time.monotonic() - started
    checked = sum(r.bytes_checked for r in reports)
    damaged = [r for r in reports if not r.ok]
    if args.json:
        print(json.dumps({
            "partitions": [{"directory": r.directory, "ok": r.ok, "segments": len(r.segments),
                            "batches": sum(s.batches for s in r.segments), "bytes": r.bytes_checked,
                            "damage": _damage_rows(r)} for r in reports],
            "bytes_checked": checked, "seconds": round(elapsed, 3), "damaged_partitions": len(damaged),
        }, indent=2, sort_keys=True))
        return 1 if damaged else 0
    for r in reports:
        batches = sum(s.batches for s in r.segments)
        state = "ok" if r.ok else "DAMAGED"
        print(f"{state:8} {r.directory}: {len(r.segments)} segments, {batches} batches, {r.bytes_checked} bytes")
        for row in _damage_rows(r):
            print(_describe(row))
    rate = checked / elapsed / 1e6 if elapsed > 0 else 0.0
    print(f"checked {len(reports)} partitions, {checked} bytes in {elapsed:.2f} s ({rate:.0f} MB/s): "
          f"{len(damaged)} damaged")
    return 1 if damaged else 0
