"""The controller's ACL set: CreateAcls / DeleteAcls semantics, durability in the
metadata log (replay and snapshot) and the pushes brokers apply."""
from __future__ import annotations

from pybroker import errors
from pybroker.cluster.controller import Controller, ControllerService, delta_to_json, image_to_json
from pybroker.cluster.metadata_log import MetadataLog
from pybroker.security.acls import (
    ALLOW, ANY_PATTERN, DENY, GROUP, LITERAL, MATCH, PREFIXED, READ, TOPIC, UNKNOWN_OPERATION, WRITE, AclBinding,
    AclFilter,
)

READ_ORDERS = AclBinding(TOPIC, "orders", LITERAL, "User:alice", "*", READ, ALLOW)
WRITE_PREFIX = AclBinding(TOPIC, "ord", PREFIXED, "User:bob", "*", WRITE, ALLOW)
DENY_GROUP = AclBinding(GROUP, "g", LITERAL, "User:*", "*", READ, DENY)


def _service(tmp_path, controller=None):
    log = MetadataLog(str(tmp_path / "meta"))
    log.load_into(Controller())
    published = []
    return ControllerService(controller or Controller(), persist=log.append, publish=published.append), log, published


def _reload(tmp_path) -> Controller:
    restarted = Controller()
    log = MetadataLog(str(tmp_path / "meta"))
    log.load_into(restarted)
    log.close()
    return restarted


def test_created_acls_are_durable_and_published_whole(tmp_path):
    service, log, published = _service(tmp_path)
    results = service.create_acls([a.to_json() for a in (READ_ORDERS, WRITE_PREFIX, DENY_GROUP)])
    assert results == [[0, None]] * 3
    assert len(published) == 1 and published[0].acls_changed
    pushed = delta_to_json(published[0], service.controller)["acls"]
    assert sorted(AclBinding.from_json(a) for a in pushed) == sorted([READ_ORDERS, WRITE_PREFIX, DENY_GROUP])
    log.close()
    assert _reload(tmp_path).acls == {READ_ORDERS, WRITE_PREFIX, DENY_GROUP}


def test_creating_an_existing_acl_succeeds_and_changes_nothing(tmp_path):
    service, log, published = _service(tmp_path)
    service.create_acls([READ_ORDERS.to_json()])
    published.clear()
    assert service.create_acls([READ_ORDERS.to_json()]) == [[0, None]]
    assert published == []


def test_invalid_acls_are_refused_one_by_one(tmp_path):
    service, log, _ = _service(tmp_path)
    bad = READ_ORDERS._replace(operation=UNKNOWN_OPERATION)
    results = service.create_acls([bad.to_json(), WRITE_PREFIX.to_json()])
    assert results[0][0] == errors.InvalidRequest.code and results[1] == [0, None]
    assert service.controller.acls == {WRITE_PREFIX}


def test_delete_reports_what_each_filter_matched_and_is_durable(tmp_path):
    service, log, published = _service(tmp_path)
    service.create_acls([a.to_json() for a in (READ_ORDERS, WRITE_PREFIX, DENY_GROUP)])
    published.clear()
    results = service.delete_acls([
        list(AclFilter(TOPIC, "orders", MATCH)),          # the literal and the prefix that apply
        list(AclFilter(TOPIC, "orders", ANY_PATTERN)),    # the literal, already matched above
        list(AclFilter(resource_type=0)),                 # UNKNOWN: refused
    ])
    assert [sorted(AclBinding.from_json(a) for a in r["acls"]) for r in results[:2]] == [
        sorted([READ_ORDERS, WRITE_PREFIX]), [READ_ORDERS]]
    assert results[2]["error_code"] == errors.InvalidRequest.code
    assert service.controller.acls == {DENY_GROUP}
    assert len(published) == 1
    log.close()
    assert _reload(tmp_path).acls == {DENY_GROUP}


def test_snapshot_keeps_the_acls(tmp_path, monkeypatch):
    import pybroker.cluster.metadata_log as metadata_log

    service, log, _ = _service(tmp_path)
    service.create_acls([a.to_json() for a in (READ_ORDERS, DENY_GROUP)])
    service.delete_acls([list(AclFilter(GROUP))])
    monkeypatch.setattr(metadata_log, "SNAPSHOT_BYTES", 0)
    assert log.maybe_snapshot(service.controller)
    log.close()
    assert _reload(tmp_path).acls == {READ_ORDERS}


def test_a_failed_persist_creates_nothing(tmp_path):
    def broken(records):
        raise OSError("disk full")

    service = ControllerService(Controller(), persist=broken, publish=lambda d: None)
    [[code, message]] = service.create_acls([READ_ORDERS.to_json()])
    assert code == errors.UnknownServerError.code and "disk full" in message
    assert service.controller.acls == set()


def test_the_full_image_carries_every_acl():
    c = Controller()
    c.create_acls([READ_ORDERS])
    assert image_to_json(c)["acls"] == [READ_ORDERS.to_json()]
