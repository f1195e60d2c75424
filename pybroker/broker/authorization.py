"""What the handlers ask before they act: may this request's principal, from its
client's address, do this operation on this resource?

Without an authorizer (``pybroker up`` without ``--authorizer acl``) everything is
allowed and every authorized-operations bitfield has all of the resource type's bits, as
Kafka without an authorizer. With one, each question is one lookup in the authorizer's
decision cache (keyed by principal and host, i.e. per connection identity) after its
first asking; the cache is dropped whenever the controller pushes new ACLs, so a
produce costs one dict lookup per topic per request, never anything per record.
"""
from __future__ import annotations

from pybroker.security import INTER_BROKER_PRINCIPAL
from pybroker.security.acls import (CLUSTER, CLUSTER_NAME, CREATE, DENIED_ERRORS, DESCRIBE_CONFIGS, GROUP,
                                    SUPPORTED_OPERATIONS, TOPIC)
from pybroker.security.authorizer import Authorizer, parse_super_users


def make_authorizer(config) -> Authorizer | None:
    kind = (config.authorizer or "").strip().lower()
    if not kind or kind == "none":
        return None
    if kind != "acl":
        raise SystemExit(f"unknown authorizer {config.authorizer!r}: 'acl' or none")
    # The brokers' own principal (replication, local tools over the private inter-broker
    # socket) is always a super user, as Kafka's inter-broker principal must be.
    return Authorizer(parse_super_users(config.super_users) | {INTER_BROKER_PRINCIPAL},
                      config.allow_everyone_if_no_acl_found)


def client_host(request) -> str:
    peer = request.peer
    return peer[0] if peer else ""


def allowed(broker, request, operation: int, resource_type: int, name: str) -> bool:
    authorizer = broker.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize(request.principal, client_host(request), operation, resource_type, name)


def allowed_on_cluster(broker, request, operation: int) -> bool:
    return allowed(broker, request, operation, CLUSTER, CLUSTER_NAME)


def allowed_on_any(broker, request, operation: int, resource_type: int) -> bool:
    """Some resource of the type (Kafka's authorizeByResourceType)."""
    authorizer = broker.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize_any(request.principal, client_host(request), operation, resource_type)


def denied_error(resource_type: int, operation_text: str, name: str | None = None):
    """The exception a denial is answered with: TOPIC_AUTHORIZATION_FAILED and its kin."""
    cls = DENIED_ERRORS[resource_type]
    return cls(f"Not authorized to {operation_text}" + (f" {name}" if name else ""))


def require(broker, request, operation: int, resource_type: int, name: str, operation_text: str = "access") -> None:
    """Raise the resource type's authorization error unless allowed."""
    if not allowed(broker, request, operation, resource_type, name):
        raise denied_error(resource_type, operation_text, name if resource_type != CLUSTER else "the cluster")


def require_cluster(broker, request, operation: int, operation_text: str = "access") -> None:
    require(broker, request, operation, CLUSTER, CLUSTER_NAME, operation_text)


def operations(broker, request, resource_type: int, name: str) -> int:
    """The authorized-operations bitfield of one resource."""
    authorizer = broker.authorizer
    if authorizer is None:
        return sum(1 << op for op in SUPPORTED_OPERATIONS[resource_type])
    return authorizer.authorized_operations(request.principal, client_host(request), resource_type, name)


def may_create_topic(broker, request, name: str) -> bool:
    """Kafka's rule for creating (and auto-creating) a topic: CREATE on the cluster or
    on the topic."""
    return (allowed(broker, request, CREATE, CLUSTER, CLUSTER_NAME)
            or allowed(broker, request, CREATE, TOPIC, name))


def denied_entry(name: str, operation_text: str) -> dict:
    """A per-topic result of an admin request the principal may not make."""
    from pybroker.errors import TopicAuthorizationFailed

    return {"name": name, "error_code": TopicAuthorizationFailed.code,
            "error_message": f"Not authorized to {operation_text} {name}"}


# DescribeConfigs / AlterConfigs resource types (ConfigResource.Type) -> ACL resource type.
_CONFIG_RESOURCES = {2: TOPIC, 4: CLUSTER, 32: GROUP}


def require_config_access(broker, request, operation: int, config_resource_type: int, name: str) -> None:
    """DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, the cluster (for a broker's
    configs) or the group the config resource names; other types are left to the
    handler to refuse."""
    resource_type = _CONFIG_RESOURCES.get(config_resource_type)
    if resource_type is None:
        return
    text = "describe configs of" if operation == DESCRIBE_CONFIGS else "alter configs of"
    if resource_type == CLUSTER:
        require_cluster(broker, request, operation, text)
    else:
        require(broker, request, operation, resource_type, name, text)
