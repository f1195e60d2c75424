"""Security: listeners and their protocols, SASL (PLAIN, SCRAM) and TLS.

- ``listener``: what a listener is (name, security protocol, port) and the broker's
  security settings.
- ``scram``: SCRAM credentials and the exchange (pure logic), SASL/PLAIN tokens.
- ``credentials``: the user store the supervisor keeps durable and pushes to brokers.
- ``authenticator``: the broker's per-connection SASL state machine.
- ``tls``: SSL contexts, the principal of a client certificate, self-signed certificates.
"""
from __future__ import annotations

ANONYMOUS = "User:ANONYMOUS"
# The principal of brokers replicating over the private inter-broker socket (and of
# local tools using it): only processes of the user owning the data dir can connect.
INTER_BROKER_PRINCIPAL = "User:pybroker-broker"
