"""Listeners (Kafka's ``listeners`` / ``listener.security.protocol.map``) and the broker's
security settings.

A listener is ``PROTOCOL[:PORT]`` on the command line; its name is its security protocol
(Kafka's default map, where each protocol names a listener of its own), so a cluster has at
most one listener per protocol. Every broker gets a port per listener: a listener with
PORT uses PORT..PORT+N-1 for brokers 0..N-1; the first listener without one uses
``--port``, the next ones continue after it (``--port 0``: every port is picked by the
system). Metadata answers a client with the addresses of the listener it connected to
(Kafka's advertised listeners).

The inter-broker (replication) listener: while every client listener is PLAINTEXT,
followers fetch from the leader's PLAINTEXT port, as before; once any listener is
secured, each broker also listens on a Unix socket in the data dir's private run
directory (0700), which only processes of the data dir's owner can reach, and followers
and local tools (the console, ``pybroker top --data``) use it as INTER_BROKER_PRINCIPAL.
"""
from __future__ import annotations

from dataclasses import dataclass

PLAINTEXT = "PLAINTEXT"
SSL = "SSL"
SASL_PLAINTEXT = "SASL_PLAINTEXT"
SASL_SSL = "SASL_SSL"
PROTOCOLS = (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)
# The name of the Unix-socket listener brokers replicate over.
INTERNAL = "INTERNAL"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class Listener:
    name: str
    protocol: str
    port: int          # 0: the system picks one

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in (SASL_PLAINTEXT, SASL_SSL)

    @property
    def uses_tls(self) -> bool:
        return self.protocol in (SSL, SASL_SSL)

    def spec(self) -> str:
        return f"{self.protocol}:{self.port}"


def parse_listener(spec: str) -> tuple[str, int | None]:
    """``"SASL_SSL:9093"`` -> ("SASL_SSL", 9093); ``"SSL"`` -> ("SSL", None). Kafka's
    ``PROTOCOL://host:port`` form is accepted too (the host must be the cluster's)."""
    text = spec.strip()
    if "://" in text:
        protocol, _, address = text.partition("://")
        _host, _, port = address.rpartition(":")
        text = f"{protocol}:{port}" if port else protocol
    protocol, _, port = text.partition(":")
    protocol = protocol.strip().upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown security protocol {protocol!r} in listener {spec!r} "
                         f"(one of {', '.join(PROTOCOLS)})")
    if not port:
        return protocol, None
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"listener {spec!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"listener {spec!r}: port {number} is out of range")
    return protocol, number


def broker_ports(specs: list[tuple[str, int | None]], base_port: int, brokers: int) -> list[dict[str, int]]:
    """Per broker id, the port of each listener (see the module doc)."""
    protocols = [protocol for protocol, _ in specs]
    duplicates = sorted({p for p in protocols if protocols.count(p) > 1})
    if duplicates:
        raise ValueError(f"more than one {duplicates[0]} listener (a listener is named by its protocol)")
    starts: dict[str, int] = {}
    next_free = base_port
    for protocol, port in specs:
        if port is not None:
            starts[protocol] = port
        elif base_port:
            starts[protocol] = next_free
            next_free += brokers
        else:
            starts[protocol] = 0
    ports = [{p: (start + n if start else 0) for p, start in starts.items()} for n in range(brokers)]
    taken: dict[int, str] = {}
    for n, per_broker in enumerate(ports):
        for protocol, port in per_broker.items():
            if port and port in taken:
                raise ValueError(f"port {port} is given to two listeners ({taken[port]} and {protocol} of broker {n})")
            if port:
                taken[port] = f"{protocol} of broker {n}"
    return ports


def parse_mechanisms(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(m.strip().upper() for m in text.split(",") if m.strip()))
    unknown = [m for m in names if m not in MECHANISMS]
    if unknown or not names:
        raise ValueError(f"unsupported SASL mechanism {', '.join(unknown) or '(none)'} "
                         f"(supported: {', '.join(MECHANISMS)})")
    return names
