"""TLS with the standard ``ssl`` module: the broker's and the client's contexts, the
principal of a client certificate, and self-signed certificates for local use.

Principal of an mTLS client (Kafka's DefaultKafkaPrincipalBuilder without
``ssl.principal.mapping.rules``): ``User:`` + the subject's RFC 2253 string, most specific
RDN first, e.g. ``User:CN=alice,O=Example``.

``self_signed(directory)`` writes, once, a CA (``ca.pem``, ``ca.key``) and a broker
certificate signed by it (``broker.pem``, ``broker.key``; SANs 127.0.0.1, ::1 and
localhost) into ``directory`` (0700, keys 0600), and ``client_certificate`` issues client
certificates from that CA (for mTLS tests and local users).
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl

CA_FILE, CA_KEY = "ca.pem", "ca.key"
BROKER_CERT, BROKER_KEY = "broker.pem", "broker.key"
# Long enough for a development data dir; it is local and re-creatable.
VALID_DAYS = 3650


def server_context(certfile: str, keyfile: str, cafile: str = "", client_auth: str = "none") -> ssl.SSLContext:
    if not certfile or not keyfile:
        raise ValueError("an SSL listener needs --ssl-certfile and --ssl-keyfile (or --tls-self-signed)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if client_auth not in ("none", "requested", "required"):
        raise ValueError(f"ssl.client.auth must be none, requested or required, not {client_auth!r}")
    if client_auth != "none":
        if not cafile:
            raise ValueError(f"ssl.client.auth={client_auth} needs --ssl-cafile (the CA of client certificates)")
        context.load_verify_locations(cafile)
        context.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
    return context


def client_context(cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                   check_hostname: bool = True, password: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile or None)
    context.check_hostname = check_hostname
    if not check_hostname:
        context.verify_mode = ssl.CERT_REQUIRED if cafile else ssl.CERT_NONE
    if certfile:
        context.load_cert_chain(certfile, keyfile or None, password=password)
    return context


def principal_of(ssl_object) -> str | None:
    """``User:<subject>`` of a verified peer certificate, None without one."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return f"User:{cert.subject.rfc4514_string()}"


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_bytes(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(subject, public_key, issuer, issuer_key, *, ca: bool, sans=None, client: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def self_signed(directory: str, hosts: tuple[str, ...] = ()) -> dict[str, str]:
    """The CA and broker certificate under ``directory``, made on first use; returns
    their paths (``cafile``, ``certfile``, ``keyfile``, ``ca_keyfile``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = {"cafile": os.path.join(directory, CA_FILE), "ca_keyfile": os.path.join(directory, CA_KEY),
             "certfile": os.path.join(directory, BROKER_CERT), "keyfile": os.path.join(directory, BROKER_KEY)}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pybroker"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "pybroker local CA")])
    ca_cert = _issue(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    broker_key = _key()
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]
    for host in hosts:
        try:
            entry = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            entry = x509.DNSName(host)
        if host and entry not in sans:
            sans.append(entry)
    broker_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pybroker"),
                             x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    broker_cert = _issue(broker_name, broker_key.public_key(), ca_name, ca_key, ca=False, sans=sans)
    pem = serialization.Encoding.PEM
    _write_private(paths["ca_keyfile"], _key_bytes(ca_key))
    _write_private(paths["keyfile"], _key_bytes(broker_key))
    _write_private(paths["certfile"], broker_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write_private(paths["cafile"], ca_cert.public_bytes(pem))
    return paths


def client_certificate(directory: str, common_name: str, organization: str | None = None,
                       name: str | None = None) -> tuple[str, str]:
    """A client certificate signed by ``directory``'s CA (see ``self_signed``): returns
    (certfile, keyfile)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    with open(os.path.join(directory, CA_FILE), "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(directory, CA_KEY), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    attributes = []
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    key = _key()
    cert = _issue(x509.Name(attributes), key.public_key(), ca_cert.subject, ca_key, ca=False, client=True)
    base = os.path.join(directory, name or f"client-{common_name}")
    _write_private(base + ".pem", cert.public_bytes(serialization.Encoding.PEM))
    _write_private(base + ".key", _key_bytes(key))
    return base + ".pem", base + ".key"
