"""`pybroker` — one entry point, one module per subcommand.

Each module listed in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
subparser and sets ``func=run``; ``run(args)`` returns the exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = [
    "pybroker.cli.up",
    "pybroker.cli.down",
    "pybroker.cli.status",
    "pybroker.cli.scale",
    "pybroker.cli.topics",
    "pybroker.cli.configs",
    "pybroker.cli.acls",
    "pybroker.cli.produce",
    "pybroker.cli.consume",
    "pybroker.cli.dump_log",
    "pybroker.cli.verify_log",
    "pybroker.cli.perf",
    "pybroker.cli.groups",
    "pybroker.cli.share_groups",
    "pybroker.cli.delete_records",
    "pybroker.cli.top",
    "pybroker.cli.transactions",
    "pybroker.cli.log_dirs",
    "pybroker.cli.leader_election",
    "pybroker.cli.reassign_partitions",
    "pybroker.cli.users",
]


def build_parser() -> argparse.ArgumentParser:
    from pybroker import __version__

    parser = argparse.ArgumentParser(
        prog="pybroker", description="A Kafka-compatible message broker and its tools."
    )
    parser.add_argument("--version", action="version", version=f"pybroker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
