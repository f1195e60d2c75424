"""Options and output helpers shared by the Kafka-style tools."""
from __future__ import annotations

import argparse
import sys

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def add_bootstrap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-server", "--bootstrap-servers", dest="bootstrap_server",
        default=DEFAULT_BOOTSTRAP, metavar="HOST:PORT",
        help=f"broker(s) to connect to, comma separated (default {DEFAULT_BOOTSTRAP})",
    )


def add_command_timeout(parser: argparse.ArgumentParser) -> None:
    """How long an admin command waits for the cluster (kafka-topics' --command-config
    timeouts, as one option)."""
    parser.add_argument("--command-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the cluster (default 30)")


def parse_properties(items: list[str] | None, option: str = "--property") -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> {"a": "1", "b": "x=y"}; a malformed item is a usage error."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def parse_bool(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise UsageError(f"property {key} must be true or false, got {value!r}")


def unescape(text: str) -> str:
    """Separators given on a shell line: ``\\t`` and ``\\n`` mean tab and newline."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


class UsageError(Exception):
    """A bad command line: reported on stderr with exit code 1."""


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1
