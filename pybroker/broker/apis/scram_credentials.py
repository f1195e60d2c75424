"""SaslHandshake (17) and SaslAuthenticate (36) outside authentication, and the SCRAM
credential APIs: DescribeUserScramCredentials (50), AlterUserScramCredentials (51).

On a SASL listener the connection's gate (pybroker.security.authenticator) answers 17 and
36 itself, before the broker sees them; what reaches these handlers comes on a listener
without SASL, and Kafka answers it with ILLEGAL_SASL_STATE.

Describe answers from the broker's copy of the user store; Alter goes to the controller,
which validates it as Kafka's does, records it in the metadata log and pushes it to every
broker before it answers.
"""
from __future__ import annotations

from pybroker import errors


def sasl_handshake(broker, request) -> dict:
    return {"error_code": errors.IllegalSaslState.code, "mechanisms": []}


def sasl_authenticate(broker, request) -> dict:
    return {"error_code": errors.IllegalSaslState.code,
            "error_message": "SaslAuthenticate request received on a listener without SASL",
            "auth_bytes": b"", "session_lifetime_ms": 0}


def describe(broker, request) -> dict:
    users = request.body.get("users")
    names = None if not users else [u["name"] for u in users]
    return {"throttle_time_ms": 0, "error_code": 0, "error_message": None,
            "results": broker.credentials.describe(names)}


async def alter(broker, request) -> dict:
    body = request.body
    deletions = [{"name": d["name"], "mechanism": d["mechanism"]} for d in body["deletions"]]
    upsertions = [{"name": u["name"], "mechanism": u["mechanism"], "iterations": u["iterations"],
                   "salt": bytes(u["salt"]), "salted_password": bytes(u["salted_password"])}
                  for u in body["upsertions"]]
    try:
        results = await broker.controller.alter_scram_credentials(deletions, upsertions)
    except errors.KafkaError as exc:
        users = dict.fromkeys([d["name"] for d in deletions] + [u["name"] for u in upsertions])
        results = [{"user": user, "error_code": exc.code, "error_message": exc.detail or exc.message} for user in users]
    return {"throttle_time_ms": 0, "results": results}
