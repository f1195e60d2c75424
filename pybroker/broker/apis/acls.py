"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), as Kafka's AclApis answers them.

Without an authorizer each answers SECURITY_DISABLED. Describing needs DESCRIBE on the
cluster, creating and deleting ALTER on it (CLUSTER_AUTHORIZATION_FAILED). Describing
reads this broker's copy of the ACLs (kept in step by the controller's pushes, as a
Kafka broker reads its metadata image); creating and deleting go to the controller,
which makes the change durable in the metadata log before any broker applies it.
"""
from __future__ import annotations

from pybroker import errors
from pybroker.broker.authorization import allowed_on_cluster
from pybroker.security.acls import ALTER, DESCRIBE, AclFilter

_NO_AUTHORIZER = "No Authorizer is configured on the broker"


def _filter(doc: dict) -> AclFilter:
    return AclFilter(doc["resource_type_filter"], doc["resource_name_filter"], doc["pattern_type_filter"],
                     doc["principal_filter"], doc["host_filter"], doc["operation"], doc["permission_type"])


def describe_acls(broker, request) -> dict:
    def refused(error: type[errors.KafkaError], message: str) -> dict:
        return {"throttle_time_ms": 0, "error_code": error.code, "error_message": message, "resources": []}

    if broker.authorizer is None:
        return refused(errors.SecurityDisabled, _NO_AUTHORIZER)
    if not allowed_on_cluster(broker, request, DESCRIBE):
        return refused(errors.ClusterAuthorizationFailed, errors.ClusterAuthorizationFailed.message)
    wanted = _filter(request.body)
    try:
        wanted.check()
    except errors.KafkaError as exc:
        return refused(type(exc), exc.detail)
    by_pattern: dict[tuple, list] = {}
    for acl in sorted(broker.authorizer.acls):
        if wanted.matches(acl):
            by_pattern.setdefault((acl.resource_type, acl.name, acl.pattern_type), []).append(
                {"principal": acl.principal, "host": acl.host, "operation": acl.operation,
                 "permission_type": acl.permission})
    return {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "resources": [
        {"resource_type": rt, "resource_name": name, "pattern_type": pt, "acls": entries}
        for (rt, name, pt), entries in by_pattern.items()]}


async def create_acls(broker, request) -> dict:
    creations = request.body["creations"]

    def answer(results: list[list]) -> dict:
        return {"throttle_time_ms": 0, "results": [{"error_code": c, "error_message": m} for c, m in results]}

    if broker.authorizer is None:
        return answer([[errors.SecurityDisabled.code, "No Authorizer is configured."]] * len(creations))
    if not allowed_on_cluster(broker, request, ALTER):
        return answer([[errors.ClusterAuthorizationFailed.code, errors.ClusterAuthorizationFailed.message]]
                      * len(creations))
    if not creations:
        return answer([])
    bindings = [[c["resource_type"], c["resource_name"], c["resource_pattern_type"], c["principal"], c["host"],
                 c["operation"], c["permission_type"]] for c in creations]
    try:
        return answer(await broker.controller.create_acls(bindings))
    except errors.KafkaError as exc:
        return answer([[exc.code, exc.detail or exc.message]] * len(creations))


async def delete_acls(broker, request) -> dict:
    filters = request.body["filters"]

    def failed(code: int, message: str) -> dict:
        return {"throttle_time_ms": 0, "filter_results": [
            {"error_code": code, "error_message": message, "matching_acls": []} for _ in filters]}

    if broker.authorizer is None:
        return failed(errors.SecurityDisabled.code, "No Authorizer is configured.")
    if not allowed_on_cluster(broker, request, ALTER):
        return failed(errors.ClusterAuthorizationFailed.code, errors.ClusterAuthorizationFailed.message)
    if not filters:
        return {"throttle_time_ms": 0, "filter_results": []}
    try:
        results = await broker.controller.delete_acls([list(_filter(f)) for f in filters])
    except errors.KafkaError as exc:
        return failed(exc.code, exc.detail or exc.message)
    return {"throttle_time_ms": 0, "filter_results": [
        {"error_code": r["error_code"], "error_message": r["error_message"], "matching_acls": [
            {"error_code": 0, "error_message": None, "resource_type": rt, "resource_name": name, "pattern_type": pt,
             "principal": principal, "host": host, "operation": op, "permission_type": perm}
            for rt, name, pt, principal, host, op, perm in r["acls"]]}
        for r in results]}
