"""The ACL authorizer: may this principal, from this host, do this operation on this
resource? Kafka's StandardAuthorizer rules, in order:

1. A super user (``super.users``) may do everything.
2. The ACLs that apply to the resource are its LITERAL ACLs, the LITERAL "*" ACLs of its
   type, and the PREFIXED ACLs whose name starts its name. Of those, an ACL applies to
   the request when its principal is the request's or ``User:*``, its host is the
   client's address or ``*``, and its operation is the one asked or ALL; an ALLOW of
   READ, WRITE, DELETE or ALTER also grants DESCRIBE, and an ALLOW of ALTER_CONFIGS
   grants DESCRIBE_CONFIGS (a DENY implies nothing).
3. Any applying DENY refuses; else any applying ALLOW grants.
4. A resource no ACL applies to at all (whatever its principal or operation) is allowed
   only with ``allow.everyone.if.no.acl.found`` (default false); one with ACLs, none of
   them granting, is refused.

The ACL set is replaced whole by the controller's pushes (``set_acls``), never edited in
place; decisions are cached per (principal, host, operation, resource) until the next
change, so a hot path that asks once per request and topic costs one dict lookup.

Owned by the broker's event loop thread; not thread-safe.
"""
from __future__ import annotations

from collections.abc import Iterable

from pybroker.security.acls import (
    ALL,
    ALLOW,
    CLUSTER,
    CLUSTER_NAME,
    DENY,
    IMPLIED_BY,
    LITERAL,
    PREFIXED,
    SUPPORTED_OPERATIONS,
    WILDCARD_HOST,
    WILDCARD_PRINCIPAL,
    WILDCARD_RESOURCE,
    AclBinding,
)

# Decisions kept before the cache starts over: a client naming millions of topics must
# not grow it without bound.
MAX_CACHED_DECISIONS = 100_000


def parse_super_users(text: str) -> frozenset[str]:
    """Kafka's ``super.users``: principals separated by semicolons."""
    return frozenset(p.strip() for p in (text or "").split(";") if p.strip())


class Authorizer:
    def __init__(self, super_users: Iterable[str] = (), allow_everyone_if_no_acl_found: bool = False,
                 acls: Iterable[AclBinding] = ()):
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._literal: dict[tuple[int, str], list[AclBinding]] = {}
        self._prefixed: dict[int, list[AclBinding]] = {}
        self._decisions: dict[tuple, bool] = {}
        self.acls: frozenset[AclBinding] = frozenset()
        self.set_acls(acls)

    def set_acls(self, acls: Iterable[AclBinding]) -> None:
        """Replace the whole ACL set (a push from the controller) and forget every
        cached decision."""
        self.acls = frozenset(acls)
        literal: dict[tuple[int, str], list[AclBinding]] = {}
        prefixed: dict[int, list[AclBinding]] = {}
        for acl in self.acls:
            if acl.pattern_type == LITERAL:
                literal.setdefault((acl.resource_type, acl.name), []).append(acl)
            elif acl.pattern_type == PREFIXED:
                prefixed.setdefault(acl.resource_type, []).append(acl)
        self._literal, self._prefixed = literal, prefixed
        self._decisions = {}

    def _applying(self, resource_type: int, name: str):
        yield from self._literal.get((resource_type, name), ())
        if name != WILDCARD_RESOURCE:
            yield from self._literal.get((resource_type, WILDCARD_RESOURCE), ())
        for acl in self._prefixed.get(resource_type, ()):
            if name.startswith(acl.name):
                yield acl

    def authorize(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> bool:
        key = (principal, host, operation, resource_type, name)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(principal, host, operation, resource_type, name)
            if len(self._decisions) >= MAX_CACHED_DECISIONS:
                self._decisions = {}
            self._decisions[key] = decision
        return decision

    def _decide(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> bool:
        if principal in self.super_users:
            return True
        granted = False
        any_acl = False
        implied = IMPLIED_BY.get(operation, (operation,))
        for acl in self._applying(resource_type, name):
            any_acl = True
            if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
                continue
            if acl.host != WILDCARD_HOST and acl.host != host:
                continue
            if acl.permission == DENY:
                if acl.operation == ALL or acl.operation == operation:
                    return False
            elif acl.permission == ALLOW and (acl.operation == ALL or acl.operation in implied):
                granted = True
        if not any_acl:
            return self.allow_everyone_if_no_acl_found
        return granted

    def authorize_any(self, principal: str, host: str, operation: int, resource_type: int) -> bool:
        """May the principal do ``operation`` on some resource of the type? (Kafka's
        authorizeByResourceType: an idempotent producer without IDEMPOTENT_WRITE on the
        cluster needs WRITE on at least one topic.) Some ALLOW must apply that no
        DENY of the same or a shorter prefix, or of "*", overrides."""
        if self.authorize(principal, host, operation, resource_type, "hardcode"):
            return True
        denied_literal, denied_prefixes, allowed = set(), set(), []
        for acl in self.acls:
            if acl.resource_type != resource_type:
                continue
            if acl.host != WILDCARD_HOST and acl.host != host:
                continue
            if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
                continue
            if acl.operation != operation and acl.operation != ALL:
                continue
            if acl.permission == DENY:
                if acl.pattern_type == LITERAL and acl.name == WILDCARD_RESOURCE:
                    return False
                (denied_literal if acl.pattern_type == LITERAL else denied_prefixes).add(acl.name)
            elif acl.permission == ALLOW:
                if acl.pattern_type == LITERAL and acl.name == WILDCARD_RESOURCE:
                    return True
                allowed.append(acl)
        for acl in allowed:
            if acl.pattern_type == LITERAL and acl.name in denied_literal:
                continue
            if not any(acl.name[:n] in denied_prefixes for n in range(1, len(acl.name) + 1)):
                return True
        return False

    def authorized_operations(self, principal: str, host: str, resource_type: int, name: str) -> int:
        """Kafka's authorized-operations bitfield: bit ``op`` set for each operation of
        the resource type the principal may do."""
        bits = 0
        for op in SUPPORTED_OPERATIONS[resource_type]:
            if self.authorize(principal, host, op, resource_type, name):
                bits |= 1 << op
        return bits

    def cluster_operations(self, principal: str, host: str) -> int:
        return self.authorized_operations(principal, host, CLUSTER, CLUSTER_NAME)
