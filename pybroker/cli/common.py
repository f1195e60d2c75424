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
    parser.add_argument(
        "--command-config", metavar="FILE",
        help="Kafka client properties for connecting: security.protocol, sasl.mechanism, sasl.jaas.config "
             "(or sasl.username/sasl.password), ssl.ca.location / ssl.truststore.location (PEM), ... "
             "as Kafka's tools take them",
    )


def client_security(args):
    """The ClientSecurity of ``--command-config`` (None without one); a bad file is a
    usage error."""
    path = getattr(args, "command_config", None)
    if not path:
        return None
    from pybroker.client.security import from_properties, read_properties

    try:
        return from_properties(read_properties(path))
    except OSError as exc:
        raise UsageError(f"--command-config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--command-config {path}: {exc}") from None


def security_options(args) -> dict:
    """``--command-config``'s settings as client options (kafka-python's names)."""
    security = client_security(args)
    if security is None:
        return {}
    from dataclasses import asdict

    return {k: v for k, v in asdict(security).items() if v is not None}


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


def check_reachable(bootstrap: str, client_id: str, topic: str | None = None, auto_create: bool = False,
                    security=None) -> None:
    """Fail at once instead of retrying until a client timeout: NetworkException ("no
    broker reachable among ...") when no bootstrap broker answers, and with ``topic``
    UnknownTopicOrPartition when the cluster does not have it (``auto_create``: nor
    creates it on this Metadata request, as a producer's would)."""
    from pybroker import errors
    from pybroker.client.cluster import Client

    with Client(bootstrap, client_id=client_id, timeout=10.0, security=security) as client:
        if topic is None:
            client.any_connection()
            return
        info = client.refresh([topic], allow_auto_create=auto_create).topics.get(topic)
        if info is None or info.error_code == errors.UnknownTopicOrPartition.code:
            raise errors.UnknownTopicOrPartition(f"Topic '{topic}' does not exist")


def add_client_properties(parser: argparse.ArgumentParser, role: str) -> None:
    """``--producer-property`` / ``--consumer-property KEY=VALUE``: Kafka client settings
    passed as they are (repeatable), as kafka-console-producer/-consumer take them."""
    parser.add_argument(f"--{role}-property", dest=f"{role}_property", action="append", metavar="KEY=VALUE",
                        help=f"a {role} setting by its Kafka name, e.g. "
                             + ("linger.ms=5" if role == "producer" else "max.poll.records=100")
                             + " (repeatable)")


def client_properties(args, role: str) -> dict[str, str | bool]:
    """The --ROLE-property settings; ``true``/``false`` become booleans (the clients take
    numbers as text, but ``bool("false")`` would be True)."""
    props = parse_properties(getattr(args, f"{role}_property"), f"--{role}-property")
    return {k: v.strip().lower() == "true" if v.strip().lower() in ("true", "false") else v
            for k, v in props.items()}


class UsageError(Exception):
    """A bad command line: reported on stderr with exit code 1."""


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


async def supervisor_request(data: str, doc: dict, timeout: float = 10.0) -> dict:
    """Send ``doc`` to the supervisor of data dir ``data`` over its control socket and
    return the answer (a Kafka error in it is raised; no supervisor: OSError)."""
    import asyncio

    from pybroker.control.channel import Channel
    from pybroker.supervisor.arbiter import socket_path

    channel = await Channel.connect(socket_path(data), name=doc["type"])
    task = asyncio.get_running_loop().create_task(channel.serve(lambda d: None))
    try:
        return await channel.request(doc, timeout=timeout)
    finally:
        channel.close()
        task.cancel()
