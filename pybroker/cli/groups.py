"""`pybroker groups`: list, describe, reset and delete consumer groups, like
kafka-consumer-groups. It speaks only the Kafka protocol, so it works against any Kafka.

Output is Kafka's, so scripts written against kafka-consumer-groups keep working. Tables
are left-aligned columns separated by one space; a missing value prints as ``-``::

    --describe --group g            (each table is preceded by an empty line)
    GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    --describe --members
    GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS [ASSIGNMENT with --verbose]
    --describe --state
    GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS
    --reset-offsets                 (dry run unless --execute)
    GROUP TOPIC PARTITION NEW-OFFSET
    --reset-offsets --export        (CSV, no header; the group column only with several groups)
    group,topic,partition,offset    or, for one --group:    topic,partition,offset
    --delete-offsets                (STATUS is Successful or Error: <why>)
    TOPIC PARTITION STATUS

Group conditions go to stderr in Kafka's words ("Consumer group 'g' has no active
members.", "Error: Assignments can only be reset if the group 'g' is inactive, but the
current state is Stable."). Exit code 1 on any error.
"""
from __future__ import annotations

import csv
import io
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from pybroker import errors
from pybroker.cli.common import UsageError, add_bootstrap, client_security, fail

MISSING = "-"
ACTIONS = ("list", "describe", "reset_offsets", "delete", "delete_offsets")
RESET_SPECS = ("to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration", "from_file",
               "to_current")
BY_TIME_SPECS = ("to_datetime", "by_duration")  # answered by ListOffsets for a timestamp
# States in which a group has (or is getting) members: Kafka refuses offset resets then.
ACTIVE_STATES = ("Stable", "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling")
REBALANCING_STATES = ("PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling")
EARLIEST, LATEST = -2, -1  # ListOffsets timestamp sentinels


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "groups", help="list, describe, reset offsets of and delete consumer groups",
        description="Manage consumer groups, like kafka-consumer-groups.")
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    actions.add_argument("--list", action="store_true", help="list all consumer groups")
    actions.add_argument("--describe", action="store_true",
                         help="describe groups: offsets and lag (default), --members or --state")
    actions.add_argument("--reset-offsets", action="store_true",
                         help="reset committed offsets of an inactive group (dry run unless --execute)")
    actions.add_argument("--delete", action="store_true", help="delete groups without active members")
    actions.add_argument("--delete-offsets", action="store_true",
                         help="delete a group's committed offsets of --topic (not of topics its members consume)")
    p.add_argument("--group", action="append", metavar="GROUP", help="group id (repeatable)")
    p.add_argument("--all-groups", action="store_true", help="describe/delete/reset every group")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--members", action="store_true", help="describe: one row per member")
    view.add_argument("--state", action="store_true",
                      help="describe: coordinator, strategy, state, member count; list: with states")
    view.add_argument("--offsets", action="store_true", help="describe: offsets and lag (the default)")
    p.add_argument("--verbose", action="store_true",
                   help="describe --members: add each member's assignment (and epochs in a consumer group); "
                        "describe --state: add a consumer group's epochs")
    p.add_argument("--type", nargs="?", const="", metavar="TYPES",
                   help="list: with each group's type (classic, consumer); a comma-separated list filters by it")
    add_reset_arguments(p, "committed", shift=True, dry_run_default=True)
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the cluster (default 30)")
    p.set_defaults(func=run)


def add_reset_arguments(p, current: str, shift: bool, dry_run_default: bool) -> None:
    """--topic, --all-topics, the reset scenarios and --dry-run/--execute/--export, as
    kafka-consumer-groups (``shift``: also --shift-by and --by-duration) and
    kafka-share-groups have them; ``current`` names the offset --to-current keeps."""
    p.add_argument("--topic", action="append", metavar="TOPIC[:P,...]",
                   help="reset, delete-offsets: topic, optionally with partitions (repeatable)")
    p.add_argument("--all-topics", action="store_true", help="reset: every topic the group has offsets for")
    specs = p.add_mutually_exclusive_group()
    specs.add_argument("--to-earliest", action="store_true", help="reset to the earliest offset")
    specs.add_argument("--to-latest", action="store_true", help="reset to the log-end offset")
    specs.add_argument("--to-current", action="store_true", help=f"reset to the {current} offset")
    specs.add_argument("--to-offset", type=int, metavar="N", help="reset to offset N (clamped to the log)")
    if shift:
        specs.add_argument("--shift-by", type=int, metavar="N", help="move the committed offset by N (may be negative)")
    specs.add_argument("--to-datetime", metavar="YYYY-MM-DDTHH:mm:SS.sss",
                       help="reset to the first offset at or after this time (local time unless a zone is given)")
    if shift:
        specs.add_argument("--by-duration", metavar="PnDTnHnMnS",
                           help="reset to the first offset at or after now minus this ISO-8601 duration, e.g. PT10M")
    specs.add_argument("--from-file", metavar="FILE",
                       help="reset to the offsets of a CSV file as --export writes it")
    run_mode = p.add_mutually_exclusive_group()
    run_mode.add_argument("--dry-run", action="store_true",
                          help="reset: only show the new offsets" + (" (default)" if dry_run_default else ""))
    run_mode.add_argument("--execute", action="store_true", help="reset: apply the new offsets")
    p.add_argument("--export", action="store_true",
                   help="reset: print the new offsets as CSV (the format --from-file reads)")


def run(args, out=None, err=None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        check_args(args)
        from pybroker.client.admin import Admin  # the client is only needed past argument checks

        with Admin(args.bootstrap_server, client_id="pybroker-groups", timeout=args.timeout,
                   security=client_security(args)) as admin:
            return ACTION_HANDLERS[action_of(args)](admin, args, out, err)
    except UsageError as exc:
        return fail(f"Error: {exc}")
    except errors.KafkaError as exc:
        return fail(f"Error: Executing consumer group command failed due to {type(exc).__name__}: {exc}")


def action_of(args) -> str:
    return next(a for a in ACTIONS if getattr(args, a))


def check_args(args) -> None:
    action = action_of(args)
    if action in ("describe", "delete", "reset_offsets") and not (args.group or args.all_groups):
        raise UsageError(f"--{action.replace('_', '-')} needs --group or --all-groups")
    if args.group and args.all_groups:
        raise UsageError("--group and --all-groups cannot be used together")
    if action == "delete_offsets":
        # Kafka's tool acts on one group at a time here.
        if len(set(args.group or ())) != 1 or args.all_groups or not args.topic:
            raise UsageError("--delete-offsets needs one --group and --topic")
        for item in args.topic:
            parse_topic_partitions(item)
    if action == "reset_offsets":
        if args.from_file is not None:
            # The file names the partitions; a scope given as well would be silently ignored.
            if args.topic or args.all_topics:
                raise UsageError("--from-file takes the partitions from the file: "
                                 "--topic and --all-topics are not valid with it")
        elif not (args.topic or args.all_topics):
            raise UsageError("--reset-offsets needs --topic or --all-topics")
        if args.topic and args.all_topics:
            raise UsageError("--topic and --all-topics cannot be used together")
        if reset_spec(args) is None:
            raise UsageError("--reset-offsets needs one of --to-earliest, --to-latest, --to-current, "
                             "--to-offset, --shift-by, --to-datetime, --by-duration, --from-file")
        for item in args.topic or ():
            parse_topic_partitions(item)
        if args.to_datetime is not None:
            parse_datetime(args.to_datetime)
        if args.by_duration is not None:
            parse_duration(args.by_duration)
        if args.from_file is not None:
            read_reset_file(args)  # a bad line is refused before anything is applied
        if args.to_offset is not None and args.to_offset < 0:
            raise UsageError("--to-offset must not be negative")
    else:
        if reset_spec(args) is not None or args.execute or args.dry_run or args.all_topics or args.export:
            raise UsageError("--to-*, --shift-by, --by-duration, --from-file, --execute, --dry-run, --export "
                             "and --all-topics need --reset-offsets")
        if args.topic and action not in ("describe", "delete_offsets"):
            raise UsageError(f"--topic is not valid with --{action}")
    if (args.members or args.offsets) and action != "describe":
        raise UsageError("--members and --offsets are only valid with --describe")
    if args.state and action not in ("describe", "list"):
        raise UsageError("--state is only valid with --describe or --list")
    if args.verbose and not (args.members or (args.state and action == "describe")):
        raise UsageError("--verbose is only valid with --describe --members or --describe --state")
    if args.type is not None and action != "list":
        raise UsageError("--type is only valid with --list")


def reset_spec(args, specs: tuple[str, ...] = RESET_SPECS) -> tuple[str, object] | None:
    """The reset scenario as (name, argument), e.g. ("shift_by", -3); None if not given."""
    for name in specs:
        value = getattr(args, name)
        if value is not None and value is not False:
            return name, value
    return None


# -- parsing ----------------------------------------------------------------------------

def parse_topic_partitions(item: str) -> tuple[str, list[int] | None]:
    """``"t"`` -> ("t", None) meaning every partition; ``"t:0,2"`` -> ("t", [0, 2])."""
    topic, sep, parts = item.partition(":")
    if not topic:
        raise UsageError(f"--topic expects TOPIC or TOPIC:P,P..., got {item!r}")
    if not sep:
        return topic, None
    try:
        partitions = sorted({int(p) for p in parts.split(",")})
    except ValueError:
        raise UsageError(f"--topic partitions must be integers, got {item!r}") from None
    if any(p < 0 for p in partitions):
        raise UsageError(f"--topic partitions must not be negative, got {item!r}")
    return topic, partitions


_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})?$")


def parse_datetime(text: str) -> int:
    """Kafka's --to-datetime ``YYYY-MM-DDTHH:mm:SS.sss`` with an optional zone (``Z``,
    ``+05:30``, ``-0800``); without one, local time as Kafka does. Returns epoch ms."""
    m = _DATETIME.match(text.strip())
    if not m:
        raise UsageError(f"--to-datetime expects YYYY-MM-DDTHH:mm:SS.sss[zone], got {text!r}")
    base, fraction, zone = m.groups()
    try:
        moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    except ValueError as exc:
        raise UsageError(f"--to-datetime {text!r}: {exc}") from None
    millis = int((fraction or ".0")[1:].ljust(3, "0"))
    if zone:
        if zone == "Z":
            moment = moment.replace(tzinfo=timezone.utc)
        else:
            moment = datetime.strptime(base + zone.replace(":", ""), "%Y-%m-%dT%H:%M:%S%z")
    else:
        moment = moment.astimezone()  # naive means local, as Kafka parses it
    return int(moment.timestamp()) * 1000 + millis


_DURATION = re.compile(
    r"^([-+]?)P(?:([-+]?\d+)D)?"
    r"(T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?$", re.IGNORECASE)


def parse_duration(text: str) -> int:
    """Kafka's --by-duration: an ISO-8601 duration as Java's ``Duration.parse`` reads it,
    ``PnDTnHnMn.nS`` (days, hours, minutes, seconds; any part may carry a sign, and so
    may the whole). Returns milliseconds."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.group(i) for i in (2, 4, 5, 6)) or (m.group(3) and not any(m.group(i) for i in (4, 5, 6))):
        raise UsageError(f"--by-duration expects an ISO-8601 duration PnDTnHnMnS (e.g. PT10M, P1DT2H), got {text!r}")
    sign, days, _, hours, minutes, seconds, fraction = m.groups()
    nanos = (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)) \
        * 1_000_000_000
    if fraction:
        # The fraction takes the sign of its seconds, as in Java ("PT-1.5S" is -1.5 s).
        nanos += int(fraction.ljust(9, "0")) * (-1 if seconds.startswith("-") else 1)
    return (-nanos if sign == "-" else nanos) // 1_000_000


def duration_timestamp(duration_ms: int, now_ms: int) -> int:
    """The ListOffsets timestamp of --by-duration: now minus the duration. A moment before
    1970 asks for the first record; negative timestamps are ListOffsets' sentinels
    (-1 latest, -2 earliest, ...), so it must not go below 0."""
    return max(now_ms - duration_ms, 0)


RESET_FILE_FORMATS = {3: "TOPIC,PARTITION,OFFSET", 4: "GROUP,TOPIC,PARTITION,OFFSET"}


def parse_reset_file(text: str, single_group: str | None) -> dict[str, dict[tuple[str, int], int]]:
    """A --from-file plan, ``{group: {(topic, partition): offset}}``, from the CSV that
    --export writes. As in Kafka, lines without the group column (``topic,partition,offset``)
    are read only when exactly one --group is given (``single_group``); otherwise each line
    is ``group,topic,partition,offset``. The first line sets the format and every line must
    follow it; blank lines are skipped. Any bad line raises UsageError naming its number,
    before anything is applied."""
    plan: dict[str, dict[tuple[str, int], int]] = {}
    width = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"--from-file line {number}"
        try:
            (fields,) = csv.reader([line], strict=True)
        except csv.Error as exc:
            raise UsageError(f"{where}: {exc}: {line!r}") from None
        if width is None:
            width = len(fields)
            if width == 3 and single_group is None:
                raise UsageError(f"{where}: lines without the group column need exactly one --group; "
                                 f"with several groups each line is {RESET_FILE_FORMATS[4]}")
        if len(fields) != width or width not in RESET_FILE_FORMATS:
            expected = RESET_FILE_FORMATS.get(width) or " or ".join(RESET_FILE_FORMATS.values())
            raise UsageError(f"{where}: expected {expected}, got {line!r}")
        group = single_group if width == 3 else fields[0]
        topic, partition, offset = fields[-3:]
        if not group or not topic:
            raise UsageError(f"{where}: empty group or topic in {line!r}")
        try:
            tp, value = (topic, int(partition)), int(offset)
        except ValueError:
            raise UsageError(f"{where}: partition and offset must be integers, got {line!r}") from None
        if tp[1] < 0 or value < 0:
            raise UsageError(f"{where}: partition and offset must not be negative, got {line!r}")
        plan.setdefault(group, {})[tp] = value
    return plan


# -- reset planning (pure) --------------------------------------------------------------

def plan_reset(spec: tuple[str, object], partitions: list[tuple[str, int]],
               committed: dict[tuple[str, int], int],
               earliest: dict[tuple[str, int], int], latest: dict[tuple[str, int], int],
               by_time: dict[tuple[str, int], int] | None = None) -> dict[tuple[str, int], int]:
    """New committed offset of each partition. Offsets outside [earliest, latest] are
    clamped to the nearest end, as Kafka does; ``by_time`` holds the ListOffsets answer
    for --to-datetime and --by-duration (-1: no record that late, so the log end), and
    ``spec`` of --from-file carries the requested offset of each partition."""
    name, value = spec
    out = {}
    for tp in partitions:
        low, high = earliest[tp], latest[tp]
        if name == "to_earliest":
            target = low
        elif name == "to_latest":
            target = high
        elif name == "to_offset":
            target = value
        elif name in ("shift_by", "to_current"):
            if tp not in committed:
                raise UsageError(f"cannot use --{name.replace('_', '-')} on {tp[0]}:{tp[1]}: "
                                 "the group has no committed offset there")
            target = committed[tp] + (value if name == "shift_by" else 0)
        elif name == "from_file":
            target = value[tp]
        elif name in BY_TIME_SPECS:
            found = by_time[tp]
            target = high if found < 0 else found
        else:
            raise ValueError(f"unknown reset scenario {name!r}")
        out[tp] = min(max(target, low), high)
    return out


# -- formatting (pure) ------------------------------------------------------------------

@dataclass(frozen=True)
class OffsetRow:
    group: str
    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int | None
    consumer_id: str | None
    host: str | None
    client_id: str | None

    @property
    def lag(self) -> int | None:
        if self.current_offset is None or self.log_end_offset is None:
            return None
        return max(self.log_end_offset - self.current_offset, 0)


def _cell(value) -> str:
    return MISSING if value is None or value == "" else str(value)


def format_table(headers: list[str], rows: list[list], min_widths: dict[int, int] | None = None) -> str:
    """Columns left-aligned to their widest cell (at least ``min_widths[i]``), one space
    apart, the last column unpadded; preceded by an empty line like Kafka's tables."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = []
    for i, head in enumerate(headers):
        widths.append(max([len(head), (min_widths or {}).get(i, 0)] + [len(r[i]) for r in cells]))
    lines = []
    for row in [headers] + cells:
        padded = [c.ljust(widths[i]) for i, c in enumerate(row[:-1])] + [row[-1]]
        lines.append(" ".join(padded).rstrip())
    return "\n" + "\n".join(lines) + "\n"


def format_offsets(rows: list[OffsetRow]) -> str:
    # Kafka pads PARTITION to 10 and the three offset columns to 15.
    return format_table(
        ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
         "CLIENT-ID"],
        [[r.group, r.topic, r.partition, r.current_offset, r.log_end_offset, r.lag, r.consumer_id, r.host,
          r.client_id] for r in rows],
        {2: 10, 3: 15, 4: 15, 5: 15},
    )


def format_members(group: str, members, verbose: bool = False, target_epoch: int | None = None) -> str:
    """Kafka's --members table. With --verbose, a consumer group (KIP-848: its target
    epoch is given) shows each member's epoch and its current and target assignments, as
    Kafka 4's tool does; a classic one its assignment."""
    headers = ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
    if verbose:
        headers += ["ASSIGNMENT"] if target_epoch is None else \
            ["CURRENT-EPOCH", "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT"]
    rows = []
    for m in sorted(members, key=lambda m: m.member_id):
        row = [group, m.member_id, m.client_host, m.client_id, len(m.assignment)]
        if verbose and target_epoch is None:
            row.append(format_assignment(m.assignment))
        elif verbose:
            row += [m.member_epoch, format_assignment(m.assignment), target_epoch,
                    format_assignment(m.target_assignment or [])]
        rows.append(row)
    return format_table(headers, rows, {4: 15})


def format_assignment(assignment: list[tuple[str, int]]) -> str:
    """Kafka's ``t1(0,1),t2(3)``."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in assignment:
        by_topic.setdefault(topic, []).append(partition)
    return ",".join(f"{t}({','.join(map(str, sorted(ps)))})" for t, ps in sorted(by_topic.items())) or MISSING


def format_state(group: str, coordinator: str, strategy: str, state: str, members: int,
                 epochs: tuple[int, int] | None = None) -> str:
    """Kafka's --state table; with --verbose a consumer group (KIP-848) adds its group
    and target assignment epochs, as Kafka 4's tool does."""
    headers = ["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE"]
    row = [group, coordinator, strategy, state]
    if epochs is not None:
        headers += ["GROUP-EPOCH", "TARGET-ASSIGNMENT-EPOCH"]
        row += list(epochs)
    return format_table(headers + ["#MEMBERS"], [row + [members]], {2: 20, 3: 20})


def format_reset(group: str, offsets: dict[tuple[str, int], int]) -> str:
    # Kafka's fixed widths: %-30s %-30s %-10s %-15s.
    return format_table(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                        [[group, t, p, o] for (t, p), o in sorted(offsets.items())],
                        {0: 30, 1: 30, 2: 10, 3: 15})


def format_export(group: str, offsets: dict[tuple[str, int], int], with_group: bool) -> str:
    """Kafka's --export CSV: ``group,topic,partition,offset`` lines, or
    ``topic,partition,offset`` when the command named a single --group."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for (topic, partition), offset in sorted(offsets.items()):
        writer.writerow(([group] if with_group else []) + [topic, partition, offset])
    return buf.getvalue()


def format_delete_offsets(results: dict[tuple[str, int], str]) -> str:
    """Kafka's --delete-offsets table; partition -1 (a topic that could not be
    described) prints as ``-``. Widths: TOPIC at least 15, PARTITION 10, STATUS 15."""
    return format_table(["TOPIC", "PARTITION", "STATUS"],
                        [[t, p if p >= 0 else MISSING, status] for (t, p), status in sorted(results.items())],
                        {0: 15, 1: 10, 2: 15})


def offset_rows(group: str, description, committed: dict[tuple[str, int], int],
                log_ends: dict[tuple[str, int], int]) -> list[OffsetRow]:
    """Kafka's describe rows: every assigned partition with its member, then every
    partition with a committed offset but no owner, with ``-`` member columns."""
    rows = []
    owned = set()
    for m in (description.members if description else ()):
        for tp in m.assignment:
            owned.add(tp)
            rows.append(OffsetRow(group, tp[0], tp[1], committed.get(tp), log_ends.get(tp),
                                  m.member_id, m.client_host, m.client_id))
    for tp in committed:
        if tp not in owned:
            rows.append(OffsetRow(group, tp[0], tp[1], committed[tp], log_ends.get(tp), None, None, None))
    return sorted(rows, key=lambda r: (r.topic, r.partition))


# -- actions ----------------------------------------------------------------------------

def list_(admin, args, out, err) -> int:
    groups = admin.list_groups()
    if args.type:
        wanted = {t.strip().lower() for t in args.type.split(",") if t.strip()}
        groups = [g for g in groups if (g.type or "classic") in wanted]
    if args.state or args.type is not None:
        headers = ["GROUP"] + (["TYPE"] if args.type is not None else []) + (["STATE"] if args.state else [])
        rows = [[g.group_id] + ([(g.type or "classic").title()] if args.type is not None else []) +
                ([g.state or MISSING] if args.state else []) for g in groups]
        out.write(format_table(headers, rows).lstrip("\n"))
    else:
        for g in groups:
            out.write(g.group_id + "\n")
    return 0


def _group_ids(admin, args) -> list[str]:
    if args.all_groups:
        return [g.group_id for g in admin.list_groups()]
    return list(dict.fromkeys(args.group))


def describe(admin, args, out, err) -> int:
    code = 0
    for group in _group_ids(admin, args):
        (description,) = admin.describe_groups([group])
        if description.state == "Dead":
            err.write(f"Error: Consumer group '{group}' does not exist.\n")
            code = 1
            continue
        if args.state:
            node_id, host, port = find_coordinator(admin, group)
            epochs = (description.group_epoch, description.assignment_epoch) \
                if args.verbose and description.type == "consumer" else None
            out.write(format_state(group, f"{host}:{port} ({node_id})", description.protocol or "",
                                   description.state, len(description.members), epochs))
            continue
        _warn_state(group, description.state, err)
        if args.members:
            if description.members:
                out.write(format_members(group, description.members, args.verbose,
                                         description.assignment_epoch if description.type == "consumer" else None))
            continue
        committed = admin.list_group_offsets(group)
        wanted = {parse_topic_partitions(t)[0] for t in args.topic or ()}
        rows = [r for r in offset_rows(group, description, committed, {}) if not wanted or r.topic in wanted]
        log_ends = _log_ends(admin, [(r.topic, r.partition) for r in rows])
        rows = [r for r in offset_rows(group, description, committed, log_ends) if not wanted or r.topic in wanted]
        if rows:
            out.write(format_offsets(rows))
    return code


def _warn_state(group: str, state: str, err) -> None:
    if state == "Empty":
        err.write(f"\nConsumer group '{group}' has no active members.\n")
    elif state in REBALANCING_STATES:
        err.write(f"\nWarning: Consumer group '{group}' is rebalancing.\n")


def _log_ends(admin, partitions) -> dict[tuple[str, int], int]:
    """High watermark of each partition that still exists (a deleted topic's committed
    offsets stay listed, with ``-`` for its log end)."""
    if not partitions:
        return {}
    existing = set(admin.list_topics())
    wanted = {tp: LATEST for tp in partitions if tp[0] in existing}
    return {tp: offset for tp, (offset, _) in admin.list_offsets(wanted).items()} if wanted else {}


def find_coordinator(admin, group: str) -> tuple[int, str, int]:
    from pybroker.protocol import api

    body = {"key": group, "key_type": 0, "coordinator_keys": [group]}
    response = admin.client.request_any(api.FIND_COORDINATOR, body)
    entry = response["coordinators"][0] if response.get("coordinators") else response
    if entry["error_code"]:
        raise errors.for_code(entry["error_code"])(entry.get("error_message") or None)
    return entry["node_id"], entry["host"], entry["port"]


def reset_offsets(admin, args, out, err) -> int:
    spec = reset_spec(args)
    groups = _group_ids(admin, args)
    single_group = _single_group(args)
    from_file = None
    if spec[0] == "from_file":
        from_file = read_reset_file(args)
        _check_partitions(admin, {tp for g in groups for tp in from_file.get(g, {})})
    stamp = None
    if spec[0] == "to_datetime":
        stamp = parse_datetime(spec[1])
    elif spec[0] == "by_duration":
        stamp = duration_timestamp(parse_duration(spec[1]), int(time.time() * 1000))
    code = 0
    for group in groups:
        (description,) = admin.describe_groups([group])
        if description.state in ACTIVE_STATES:
            err.write(f"Error: Assignments can only be reset if the group '{group}' is inactive, "
                      f"but the current state is {description.state}.\n")
            return 1
        committed = admin.list_group_offsets(group)
        group_spec = spec
        if from_file is not None:
            if group not in from_file:
                err.write(f"Error: No reset plan for group '{group}' found.\n")
                code = 1
                continue
            group_spec = ("from_file", from_file[group])
            partitions = sorted(from_file[group])
        else:
            partitions = _reset_partitions(admin, args, committed)
        earliest = {tp: o for tp, (o, _) in admin.list_offsets({tp: EARLIEST for tp in partitions}).items()}
        latest = {tp: o for tp, (o, _) in admin.list_offsets({tp: LATEST for tp in partitions}).items()}
        by_time = None
        if stamp is not None:
            by_time = {tp: o for tp, (o, _) in admin.list_offsets({tp: stamp for tp in partitions}).items()}
        plan = plan_reset(group_spec, partitions, committed, earliest, latest, by_time)
        if args.execute:
            if plan:
                admin.alter_group_offsets(group, plan)
        elif not args.dry_run:
            err.write("WARN: No action will be performed as the --execute option is missing. "
                      "Add --dry-run to say so explicitly, or --execute to apply the new offsets.\n")
        if args.export:
            out.write(format_export(group, plan, with_group=single_group is None))
        else:
            out.write(format_reset(group, plan))
    return code


def _single_group(args) -> str | None:
    """The group when the command names exactly one --group: Kafka's CSV then has no
    group column."""
    named = list(dict.fromkeys(args.group or ()))
    return named[0] if len(named) == 1 and not args.all_groups else None


def read_reset_file(args) -> dict[str, dict[tuple[str, int], int]]:
    try:
        with open(args.from_file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --from-file {args.from_file}: {exc}") from None
    return parse_reset_file(text, _single_group(args))


def _check_partitions(admin, partitions) -> None:
    """Every partition exists, else UsageError naming the first that does not."""
    by_topic: dict[str, set[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, set()).add(partition)
    for topic, wanted in sorted(by_topic.items()):
        _existing_partitions(admin, topic, wanted)


def _existing_partitions(admin, topic: str, wanted: set[int] | None) -> set[int]:
    """The partitions of ``topic`` (only ``wanted`` if given), each checked to exist."""
    try:
        (info,) = admin.describe_topics([topic])
    except errors.UnknownTopicOrPartition:
        raise UsageError(f"topic {topic!r} does not exist") from None
    existing = set(info.partitions)
    chosen = existing if wanted is None else set(wanted)
    missing = chosen - existing
    if missing:
        raise UsageError(f"topic {topic!r} has no partition {', '.join(map(str, sorted(missing)))}")
    return chosen


def _reset_partitions(admin, args, committed) -> list[tuple[str, int]]:
    if args.all_topics:
        return sorted(committed)
    out = set()
    for item in args.topic:
        topic, partitions = parse_topic_partitions(item)
        out.update((topic, p) for p in _existing_partitions(admin, topic, partitions))
    return sorted(out)


def delete(admin, args, out, err) -> int:
    return delete_reporting(admin, _group_ids(admin, args), out, err, "consumer")


def delete_reporting(admin, groups: list[str], out, err, kind: str) -> int:
    """DeleteGroups for each group, reported in Kafka's words (``kind``: "consumer" or
    "share"); 1 when any failed."""
    ok, failed = [], {}
    for group in groups:
        try:
            admin.delete_groups([group])
            ok.append(group)
        except errors.KafkaError as exc:
            failed[group] = exc
    if ok:
        out.write(f"Deletion of requested {kind} groups (" + ", ".join(f"'{g}'" for g in ok)
                  + ") was successful.\n")
    if failed:
        err.write(f"Error: Deletion of some {kind} groups failed:\n")
        for group, exc in failed.items():
            err.write(f"* Group '{group}' could not be deleted due to: {type(exc).__name__}: {exc}\n")
        return 1
    return 0


def delete_offsets(admin, args, out, err) -> int:
    """Kafka's wording: a success line, or the group's error, or a pointer to the
    partition errors; then one row per partition."""
    (group,) = set(args.group)
    results: dict[tuple[str, int], str] = {}
    partitions: set[tuple[str, int]] = set()
    for item in args.topic:
        topic, chosen = parse_topic_partitions(item)
        if chosen is not None:
            partitions.update((topic, p) for p in chosen)
            continue
        try:
            (info,) = admin.describe_topics([topic])
        except errors.KafkaError as exc:
            results[(topic, -1)] = f"Error: {exc}"
            continue
        partitions.update((topic, p) for p in info.partitions)
    group_error = None
    if partitions:
        try:
            outcome = admin.delete_group_offsets(group, sorted(partitions))
        except errors.KafkaError as exc:
            group_error = exc
            outcome = {tp: exc for tp in partitions}
        results.update({tp: "Successful" if exc is None else f"Error: {exc.message}" for tp, exc in outcome.items()})
    failed = any(status != "Successful" for status in results.values())
    if group_error is not None:
        err.write(f"Error: {group_error.message}\n")
    elif failed:
        err.write("Error: Encountered some partition-level error, see the follow-up details.\n")
    else:
        out.write(f"Request succeeded for deleting offsets from group {group}.\n")
    out.write(format_delete_offsets(results))
    return 1 if failed else 0


ACTION_HANDLERS = {"list": list_, "describe": describe, "reset_offsets": reset_offsets, "delete": delete,
                   "delete_offsets": delete_offsets}
