"""SaslHandshake (17) and SaslAuthenticate (36) outside authentication, and the SCRAM
credential APIs: DescribeUserScramCredentials (50), AlterUserScramCredentials (51).

On a SASL listener the connection's gate (pybroker.security.authenticator) answers 17 and
36 itself during authentication and re-authentication; what reaches these handlers comes
on a listener without SASL or on an authenticated connection that may not re-authenticate,
and Kafka answers it with ILLEGAL_SASL_STATE (the same message in both cases).

Describe answers from the broker's copy of the user store; Alter goes to the controller,
which validates it as Kafka's does, records it in the metadata log and pushes it to every
broker before it answers. With an authorizer, Describe needs DESCRIBE and Alter ALTER on
the cluster (CLUSTER_AUTHORIZATION_FAILED), as Kafka's.
"""
from __future__ import annotations

from pybroker import errors
from pybroker.broker.authorization import allowed_on_cluster
from pybroker.security.acls import ALTER, DESCRIBE


def sasl_handshake(broker, request) -> dict:
    return {"error_code": errors.IllegalSaslState.code, "mechanisms": []}


def sasl_authenticate(broker, request) -> dict:
    return {"error_code": errors.IllegalSaslState.code,
            "error_message": "SaslAuthenticate request received after successful authentication",
            "auth_bytes": b"", "session_lifetime_ms": 0}


def describe(broker, request) -> dict:
    users = request.body.get("users")
    names = None if not users else [u["name"] for u in users]
    if not allowed_on_cluster(broker, request, DESCRIBE):
        return {"throttle_time_ms": 0, "error_code": errors.ClusterAuthorizationFailed.code,
                "error_message": errors.ClusterAuthorizationFailed.message, "results": []}
    return {"throttle_time_ms": 0, "error_code": 0, "error_message": None,
            "results": broker.credentials.describe(names)}


async def alter(broker, request) -> dict:
    body = request.body
    deletions = [{"name": d["name"], "mechanism": d["mechanism"]} for d in body["deletions"]]
    upsertions = [{"name": u["name"], "mechanism": u["mechanism"], "iterations": u["iterations"],
                   "salt": bytes(u["salt"]), "salted_password": bytes(u["salted_password"])}
                  for u in body["upsertions"]]
    users = dict.fromkeys([d["name"] for d in deletions] + [u["name"] for u in upsertions])
    try:
        if not allowed_on_cluster(broker, request, ALTER):
            raise errors.ClusterAuthorizationFailed()
        results = await broker.controller.alter_scram_credentials(deletions, upsertions)
    except errors.KafkaError as exc:
        results = [{"user": user, "error_code": exc.code, "error_message": exc.detail or exc.message} for user in users]
    return {"throttle_time_ms": 0, "results": results}
