"""How pybroker's client connects: security protocol, SASL mechanism and credentials, TLS
files — named as kafka-python names them (``security_protocol``, ``sasl_mechanism``,
``sasl_plain_username``, ``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``,
``ssl_keyfile``, ``ssl_check_hostname``), and read from Kafka client properties
(``security.protocol``, ``sasl.mechanism``, ``sasl.jaas.config`` or
``sasl.username``/``sasl.password``, ``ssl.ca.location``/``ssl.truststore.location``, ...)
for ``--command-config`` files.

A bootstrap address that is a path (``/.../run/broker-0.sock``) is a broker's private
inter-broker socket: no TLS, no SASL (the file system decides who may connect).
"""
from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field

from pybroker.security.listener import MECHANISMS, PROTOCOLS

OPTION_NAMES = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
                "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_check_hostname")


@dataclass(frozen=True)
class ClientSecurity:
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True

    def __post_init__(self):
        protocol = self.security_protocol.upper()
        object.__setattr__(self, "security_protocol", protocol)
        object.__setattr__(self, "sasl_mechanism", self.sasl_mechanism.upper())
        if protocol not in PROTOCOLS:
            raise ValueError(f"security_protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ValueError(f"sasl_mechanism must be one of {', '.join(MECHANISMS)}, not {self.sasl_mechanism!r}")
            if self.sasl_plain_username is None or self.sasl_plain_password is None:
                raise ValueError(f"{protocol} needs sasl_plain_username and sasl_plain_password")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        from pybroker.security.tls import client_context

        return client_context(self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile, self.ssl_check_hostname,
                              self.ssl_password)

    @classmethod
    def from_options(cls, options: dict) -> "ClientSecurity | None":
        """From a client's keyword options (None when none of them is given)."""
        given = {k: options[k] for k in OPTION_NAMES if options.get(k) is not None}
        return cls(**given) if given else None


_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def from_properties(props: dict[str, str]) -> ClientSecurity | None:
    """Kafka client properties (a ``--command-config`` file) -> ClientSecurity, None when
    they say nothing about security. Unknown security properties are an error, not ignored."""
    protocol = props.get("security.protocol")
    if protocol is None and not any(k.startswith(("sasl.", "ssl.")) for k in props):
        return None
    username = props.get("sasl.username")
    password = props.get("sasl.password")
    jaas = props.get("sasl.jaas.config")
    if jaas:
        options = {k: v.replace('\\"', '"') for k, v in _JAAS_OPTION.findall(jaas)}
        username = options.get("username", username)
        password = options.get("password", password)
    cafile = props.get("ssl.ca.location") or props.get("ssl.truststore.location")
    if cafile and props.get("ssl.truststore.type", "PEM").upper() != "PEM" and not cafile.endswith((".pem", ".crt")):
        raise ValueError(f"{cafile}: only PEM trust stores are supported (ssl.truststore.type=PEM)")
    certfile = props.get("ssl.certificate.location") or props.get("ssl.keystore.location")
    keyfile = props.get("ssl.key.location") or (props.get("ssl.keystore.location") if certfile else None)
    check = props.get("ssl.endpoint.identification.algorithm", "https").strip().lower()
    return ClientSecurity(
        security_protocol=protocol or "PLAINTEXT",
        sasl_mechanism=props.get("sasl.mechanism", props.get("sasl.mechanisms", "PLAIN")),
        sasl_plain_username=username, sasl_plain_password=password,
        ssl_cafile=cafile, ssl_certfile=certfile, ssl_keyfile=keyfile,
        ssl_password=props.get("ssl.key.password") or props.get("ssl.keystore.password"),
        ssl_check_hostname=check not in ("", "none"),
    )


def read_properties(path: str) -> dict[str, str]:
    """A Java-style properties file: ``key=value`` or ``key: value`` lines, ``#``/``!``
    comments, ``\\`` line continuations."""
    props: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    pending = ""
    for raw in lines:
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
        if match is None:
            props[line] = ""
        else:
            props[match.group(1)] = match.group(2)
    return props


# The options every client class takes (kafka-python's names), and librdkafka's names for them.
DEFAULTS = {name: None for name in OPTION_NAMES}
ALIASES = {"sasl_username": "sasl_plain_username", "sasl_password": "sasl_plain_password",
           "sasl_mechanisms": "sasl_mechanism", "ssl_ca_location": "ssl_cafile",
           "ssl_certificate_location": "ssl_certfile", "ssl_key_location": "ssl_keyfile",
           "ssl_key_password": "ssl_password"}
