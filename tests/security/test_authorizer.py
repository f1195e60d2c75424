"""The ACL authorizer's rules (Kafka's StandardAuthorizer), as pure logic."""
from __future__ import annotations

import pytest

from pybroker import errors
from pybroker.security.acls import (
    ALL, ALLOW, ALTER, ALTER_CONFIGS, ANY_OPERATION, ANY_PATTERN, ANY_PERMISSION, ANY_RESOURCE, CLUSTER,
    CLUSTER_NAME, CREATE, DELETE, DENY, DESCRIBE, DESCRIBE_CONFIGS, GROUP, IDEMPOTENT_WRITE, LITERAL, MATCH,
    PREFIXED, READ, TOPIC, TRANSACTIONAL_ID, WRITE, AclBinding, AclFilter, OPERATIONS, parse_code,
)
from pybroker.security.authorizer import Authorizer, parse_super_users

ALICE, BOB = "User:alice", "User:bob"


def acl(name, op, permission=ALLOW, principal=ALICE, host="*", resource_type=TOPIC, pattern=LITERAL):
    return AclBinding(resource_type, name, pattern, principal, host, op, permission)


def test_no_acl_denies_by_default_and_allows_with_allow_everyone():
    assert not Authorizer().authorize(ALICE, "1.2.3.4", READ, TOPIC, "t")
    assert Authorizer(allow_everyone_if_no_acl_found=True).authorize(ALICE, "1.2.3.4", READ, TOPIC, "t")


def test_allow_everyone_applies_only_where_no_acl_exists():
    auth = Authorizer(allow_everyone_if_no_acl_found=True, acls=[acl("t", READ, principal=BOB)])
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "t")   # t has an ACL, not for alice
    assert auth.authorize(ALICE, "h", READ, TOPIC, "other")


def test_super_user_may_do_everything_even_when_denied():
    auth = Authorizer(super_users=parse_super_users("User:admin; User:ops"),
                      acls=[acl("t", ALL, DENY, principal="User:*")])
    assert auth.authorize("User:admin", "h", DELETE, TOPIC, "t")
    assert auth.authorize("User:ops", "h", ALTER, CLUSTER, CLUSTER_NAME)
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "t")


def test_literal_acl_names_exactly_one_resource():
    auth = Authorizer(acls=[acl("orders", READ)])
    assert auth.authorize(ALICE, "h", READ, TOPIC, "orders")
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "orders-eu")
    assert not auth.authorize(ALICE, "h", READ, GROUP, "orders")   # another resource type
    assert not auth.authorize(BOB, "h", READ, TOPIC, "orders")


def test_wildcard_resource_principal_and_host():
    auth = Authorizer(acls=[acl("*", WRITE, principal="User:*")])
    assert auth.authorize(BOB, "10.0.0.1", WRITE, TOPIC, "anything")
    hosts = Authorizer(acls=[acl("t", READ, host="10.0.0.1")])
    assert hosts.authorize(ALICE, "10.0.0.1", READ, TOPIC, "t")
    assert not hosts.authorize(ALICE, "10.0.0.2", READ, TOPIC, "t")


def test_prefixed_acl_covers_names_starting_with_it():
    auth = Authorizer(acls=[acl("orders-", READ, pattern=PREFIXED)])
    assert auth.authorize(ALICE, "h", READ, TOPIC, "orders-eu")
    assert auth.authorize(ALICE, "h", READ, TOPIC, "orders-")
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "orders")
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "xorders-eu")


def test_deny_wins_over_allow_wherever_it_comes_from():
    auth = Authorizer(acls=[acl("orders-", ALL, pattern=PREFIXED), acl("orders-secret", READ, DENY)])
    assert auth.authorize(ALICE, "h", READ, TOPIC, "orders-eu")
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "orders-secret")
    assert auth.authorize(ALICE, "h", WRITE, TOPIC, "orders-secret")   # only READ is denied
    wildcard_deny = Authorizer(acls=[acl("t", READ), acl("*", READ, DENY, principal="User:*")])
    assert not wildcard_deny.authorize(ALICE, "h", READ, TOPIC, "t")
    host_deny = Authorizer(acls=[acl("t", READ), acl("t", READ, DENY, host="6.6.6.6")])
    assert host_deny.authorize(ALICE, "1.1.1.1", READ, TOPIC, "t")
    assert not host_deny.authorize(ALICE, "6.6.6.6", READ, TOPIC, "t")


@pytest.mark.parametrize("granted", [READ, WRITE, DELETE, ALTER, DESCRIBE])
def test_allow_of_read_write_delete_alter_implies_describe(granted):
    auth = Authorizer(acls=[acl("t", granted)])
    assert auth.authorize(ALICE, "h", DESCRIBE, TOPIC, "t")


def test_create_and_describe_configs_do_not_imply_describe():
    assert not Authorizer(acls=[acl("t", CREATE)]).authorize(ALICE, "h", DESCRIBE, TOPIC, "t")
    assert not Authorizer(acls=[acl("t", DESCRIBE_CONFIGS)]).authorize(ALICE, "h", DESCRIBE, TOPIC, "t")


def test_alter_configs_implies_describe_configs_but_not_the_reverse():
    assert Authorizer(acls=[acl("t", ALTER_CONFIGS)]).authorize(ALICE, "h", DESCRIBE_CONFIGS, TOPIC, "t")
    assert not Authorizer(acls=[acl("t", DESCRIBE_CONFIGS)]).authorize(ALICE, "h", ALTER_CONFIGS, TOPIC, "t")


def test_deny_implies_nothing():
    auth = Authorizer(acls=[acl("t", DESCRIBE), acl("t", READ, DENY)])
    assert auth.authorize(ALICE, "h", DESCRIBE, TOPIC, "t")
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "t")


def test_decisions_are_cached_until_the_acls_change():
    auth = Authorizer(acls=[acl("t", READ)])
    assert auth.authorize(ALICE, "h", READ, TOPIC, "t")
    auth.set_acls([acl("t", READ, DENY)])
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "t")
    auth.set_acls([])
    assert not auth.authorize(ALICE, "h", READ, TOPIC, "t")


def test_authorize_any_topic_for_idempotent_producers():
    assert Authorizer(acls=[acl("t", WRITE)]).authorize_any(ALICE, "h", WRITE, TOPIC)
    assert not Authorizer(acls=[acl("t", READ)]).authorize_any(ALICE, "h", WRITE, TOPIC)
    assert not Authorizer(acls=[acl("t", WRITE), acl("t", WRITE, DENY)]).authorize_any(ALICE, "h", WRITE, TOPIC)
    # a prefix deny that covers the allowed prefix
    shadowed = [acl("orders-eu", WRITE, pattern=PREFIXED), acl("orders", WRITE, DENY, pattern=PREFIXED)]
    assert not Authorizer(acls=shadowed).authorize_any(ALICE, "h", WRITE, TOPIC)
    assert not Authorizer(acls=[acl("t", WRITE), acl("*", WRITE, DENY)]).authorize_any(ALICE, "h", WRITE, TOPIC)
    assert Authorizer(acls=[acl(CLUSTER_NAME, IDEMPOTENT_WRITE, resource_type=CLUSTER)]).authorize(
        ALICE, "h", IDEMPOTENT_WRITE, CLUSTER, CLUSTER_NAME)


def test_authorized_operations_bitfield():
    auth = Authorizer(acls=[acl("t", READ), acl("t", ALTER_CONFIGS)])
    bits = auth.authorized_operations(ALICE, "h", TOPIC, "t")
    assert bits == (1 << READ) | (1 << DESCRIBE) | (1 << ALTER_CONFIGS) | (1 << DESCRIBE_CONFIGS)
    everything = Authorizer(super_users={ALICE}).authorized_operations(ALICE, "h", GROUP, "g")
    assert everything == sum(1 << op for op in (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS))


def test_new_acls_are_checked_as_kafka_checks_them():
    acl("t", READ).check_new()
    for bad in (acl("t", ANY_OPERATION), acl("t", READ, ANY_PERMISSION), acl("t", READ, pattern=MATCH),
                acl("t", READ, resource_type=ANY_RESOURCE), acl("", READ), acl("t", READ, principal="alice"),
                acl("other-cluster", ALTER, resource_type=CLUSTER)):
        with pytest.raises(errors.InvalidRequest):
            bad.check_new()


def test_filters_match_as_kafka_filters():
    lit = acl("orders", READ)
    pre = acl("ord", WRITE, pattern=PREFIXED)
    star = acl("*", DESCRIBE)
    other = acl("g", READ, resource_type=GROUP)
    every = [lit, pre, star, other]

    def matching(f):
        return [a for a in every if f.matches(a)]

    assert matching(AclFilter()) == every
    assert matching(AclFilter(TOPIC)) == [lit, pre, star]
    assert matching(AclFilter(TOPIC, "orders", LITERAL)) == [lit]
    assert matching(AclFilter(TOPIC, "orders", ANY_PATTERN)) == [lit]
    assert matching(AclFilter(TOPIC, "orders", MATCH)) == [lit, pre, star]
    assert matching(AclFilter(TOPIC, None, PREFIXED)) == [pre]
    assert matching(AclFilter(operation=WRITE)) == [pre]
    assert matching(AclFilter(principal=BOB)) == []
    assert matching(AclFilter(TRANSACTIONAL_ID)) == []


def test_names_parse_in_kafka_acls_spellings():
    assert parse_code(OPERATIONS, "DescribeConfigs", "operation") == DESCRIBE_CONFIGS
    assert parse_code(OPERATIONS, "describe_configs", "operation") == DESCRIBE_CONFIGS
    assert parse_code(OPERATIONS, "IDEMPOTENT-WRITE", "operation") == IDEMPOTENT_WRITE
    with pytest.raises(ValueError):
        parse_code(OPERATIONS, "Fly", "operation")
