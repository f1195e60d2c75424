"""ACLs as data: Kafka's AclBinding (a resource pattern plus an access control entry) and
AclBindingFilter, with the numeric codes the wire protocol carries.

An ACL reads "principal P is ALLOWed / DENYed operation O on resource R from host H"::

    AclBinding(resource_type=TOPIC, name="orders", pattern_type=PREFIXED,
               principal="User:alice", host="*", operation=READ, permission=ALLOW)

LITERAL patterns name one resource ("*" is every resource of the type); PREFIXED patterns
name every resource whose name starts with the pattern. Filters (DescribeAcls,
DeleteAcls) add ANY (any value of a field) and, for the pattern type, MATCH: every
pattern that would apply to the named resource (its literal, the "*" literal and the
prefixes of its name). Codes and names are Kafka's (AclOperation, AclPermissionType,
ResourceType, PatternType); the matching rules are ResourcePatternFilter's and
AccessControlEntryFilter's.

Pure logic, no I/O.
"""
from __future__ import annotations

from typing import NamedTuple

from pybroker import errors

# ResourceType
UNKNOWN_RESOURCE, ANY_RESOURCE, TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN, USER = range(8)
RESOURCE_TYPES = {"Unknown": 0, "Any": 1, "Topic": 2, "Group": 3, "Cluster": 4, "TransactionalId": 5,
                  "DelegationToken": 6, "User": 7}
# PatternType
UNKNOWN_PATTERN, ANY_PATTERN, MATCH, LITERAL, PREFIXED = range(5)
PATTERN_TYPES = {"UNKNOWN": 0, "ANY": 1, "MATCH": 2, "LITERAL": 3, "PREFIXED": 4}
# AclOperation
(UNKNOWN_OPERATION, ANY_OPERATION, ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
 DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, CREATE_TOKENS, DESCRIBE_TOKENS, TWO_PHASE_COMMIT) = range(16)
OPERATIONS = {"Unknown": 0, "Any": 1, "All": 2, "Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7,
              "Describe": 8, "ClusterAction": 9, "DescribeConfigs": 10, "AlterConfigs": 11,
              "IdempotentWrite": 12, "CreateTokens": 13, "DescribeTokens": 14, "TwoPhaseCommit": 15}
# AclPermissionType
UNKNOWN_PERMISSION, ANY_PERMISSION, DENY, ALLOW = range(4)
PERMISSIONS = {"Unknown": 0, "Any": 1, "Deny": 2, "Allow": 3}

WILDCARD_RESOURCE = "*"
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"
# The one name of the CLUSTER resource.
CLUSTER_NAME = "kafka-cluster"

# Operations an ALLOW of the key grants besides itself (DENY ACLs imply nothing).
IMPLIED_BY = {
    DESCRIBE: frozenset({DESCRIBE, READ, WRITE, DELETE, ALTER}),
    DESCRIBE_CONFIGS: frozenset({DESCRIBE_CONFIGS, ALTER_CONFIGS}),
}

# The operations each resource type has (Kafka's AclEntry.supportedOperations): what
# the authorized-operations bitfields of Metadata, DescribeCluster and DescribeGroups report.
SUPPORTED_OPERATIONS = {
    TOPIC: (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS),
    GROUP: (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS),
    CLUSTER: (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE),
    TRANSACTIONAL_ID: (WRITE, DESCRIBE),
    DELEGATION_TOKEN: (DESCRIBE,),
    USER: (CREATE_TOKENS, DESCRIBE_TOKENS),
}

# The error a denied request gets, by the resource type it was denied on.
DENIED_ERRORS = {
    TOPIC: errors.TopicAuthorizationFailed,
    GROUP: errors.GroupAuthorizationFailed,
    CLUSTER: errors.ClusterAuthorizationFailed,
    TRANSACTIONAL_ID: errors.TransactionalIdAuthorizationFailed,
    DELEGATION_TOKEN: errors.DelegationTokenAuthorizationFailed,
}


def _name(table: dict[str, int], code: int) -> str:
    for name, value in table.items():
        if value == code:
            return name
    return "Unknown"


def resource_type_name(code: int) -> str:
    return _name(RESOURCE_TYPES, code)


def operation_name(code: int) -> str:
    return _name(OPERATIONS, code)


def permission_name(code: int) -> str:
    return _name(PERMISSIONS, code)


def pattern_type_name(code: int) -> str:
    return _name(PATTERN_TYPES, code)


def parse_code(table: dict[str, int], text: str, what: str) -> int:
    """A name as kafka-acls.sh takes it, in any case and with or without underscores
    ("describe-configs", "DESCRIBE_CONFIGS", "DescribeConfigs")."""
    wanted = text.replace("_", "").replace("-", "").lower()
    for name, code in table.items():
        if name.lower() == wanted and name.lower() != "unknown":
            return code
    raise ValueError(f"unknown {what} {text!r}: one of {', '.join(n for n in table if n != 'Unknown')}")


def valid_principal(principal: str | None) -> bool:
    """Kafka's "Type:name" principal (SecurityUtils.parseKafkaPrincipal)."""
    if not principal:
        return False
    kind, sep, name = principal.partition(":")
    return bool(sep and kind and name)


class AclBinding(NamedTuple):
    """One ACL. Hashable: the controller keeps a set of them, and a second create of
    the same ACL changes nothing (as Kafka's)."""

    resource_type: int
    name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission: int

    def to_json(self) -> list:
        return list(self)

    @classmethod
    def from_json(cls, doc) -> "AclBinding":
        rt, name, pt, principal, host, op, perm = doc
        return cls(int(rt), str(name), int(pt), str(principal), str(host), int(op), int(perm))

    def check_new(self) -> None:
        """Refuse what Kafka refuses to create (AclControlManager.validateNewAcl and
        AclApis), with INVALID_REQUEST and Kafka's words."""
        if self.resource_type not in SUPPORTED_OPERATIONS:
            raise errors.InvalidRequest(f"Invalid resourceType {resource_type_name(self.resource_type).upper()}")
        if self.pattern_type not in (LITERAL, PREFIXED):
            raise errors.InvalidRequest(f"Invalid patternType {pattern_type_name(self.pattern_type)}")
        if self.operation in (UNKNOWN_OPERATION, ANY_OPERATION) or self.operation not in OPERATIONS.values():
            raise errors.InvalidRequest(f"Invalid operation {operation_name(self.operation).upper()}")
        if self.permission not in (ALLOW, DENY):
            raise errors.InvalidRequest(f"Invalid permissionType {permission_name(self.permission).upper()}")
        if self.resource_type == CLUSTER and self.name != CLUSTER_NAME:
            raise errors.InvalidRequest(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
        if not self.name:
            raise errors.InvalidRequest("Invalid empty resource name")
        if not valid_principal(self.principal):
            raise errors.InvalidRequest(f"Could not parse principal from `{self.principal}` "
                                        "(no colon is present separating the principal type from name)")
        if not self.host:
            raise errors.InvalidRequest("Invalid empty host")

    def __str__(self) -> str:
        return (f"(principal={self.principal}, host={self.host}, operation={operation_name(self.operation).upper()}, "
                f"permissionType={permission_name(self.permission).upper()}) on "
                f"{resource_type_name(self.resource_type)}:{pattern_type_name(self.pattern_type)}:{self.name}")


class AclFilter(NamedTuple):
    """A DescribeAcls / DeleteAcls filter: None is "any" for the strings, ANY for the codes."""

    resource_type: int = ANY_RESOURCE
    name: str | None = None
    pattern_type: int = ANY_PATTERN
    principal: str | None = None
    host: str | None = None
    operation: int = ANY_OPERATION
    permission: int = ANY_PERMISSION

    def check(self) -> None:
        """A filter with an UNKNOWN field matches nothing Kafka would name: refused."""
        if UNKNOWN_RESOURCE in (self.resource_type, self.pattern_type, self.operation, self.permission) \
                or self.resource_type not in RESOURCE_TYPES.values() or self.pattern_type not in PATTERN_TYPES.values() \
                or self.operation not in OPERATIONS.values() or self.permission not in PERMISSIONS.values():
            raise errors.InvalidRequest("The filter has an unknown resource type, pattern type, operation or "
                                        "permission type")

    def matches(self, acl: AclBinding) -> bool:
        return self.matches_pattern(acl) and self.matches_entry(acl)

    def matches_pattern(self, acl: AclBinding) -> bool:
        if self.resource_type != ANY_RESOURCE and self.resource_type != acl.resource_type:
            return False
        if self.pattern_type not in (ANY_PATTERN, MATCH) and self.pattern_type != acl.pattern_type:
            return False
        if self.name is None:
            return True
        if self.pattern_type in (ANY_PATTERN, acl.pattern_type):
            return self.name == acl.name
        # MATCH: the patterns that apply to the resource named by the filter.
        if acl.pattern_type == LITERAL:
            return self.name == acl.name or acl.name == WILDCARD_RESOURCE
        return self.name.startswith(acl.name)

    def matches_entry(self, acl: AclBinding) -> bool:
        return ((self.principal is None or self.principal == acl.principal)
                and (self.host is None or self.host == acl.host)
                and self.operation in (ANY_OPERATION, acl.operation)
                and self.permission in (ANY_PERMISSION, acl.permission))
