"""SCRAM and PLAIN as pure logic: RFC 7677's test vector, the server against the client,
refusals, and the credential store's rules (Kafka's ScramControlManager / ScramImage)."""
from __future__ import annotations

import base64

import pytest

from pybroker import errors
from pybroker.security import scram
from pybroker.security.credentials import CredentialStore, user_records


def test_client_matches_rfc7677_vector():
    client = scram.ScramClient(scram.SCRAM_SHA_256, "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = client.final(server_first)
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(scram.ScramError):
        client.verify(b"v=" + base64.b64encode(b"x" * 32))


@pytest.mark.parametrize("mechanism", [scram.SCRAM_SHA_256, scram.SCRAM_SHA_512])
def test_server_authenticates_client_and_proves_itself(mechanism):
    cred = scram.make_credential(mechanism, "s3cret", 4096)
    server = scram.ScramServer(mechanism, lambda user: cred if user == "al,i=ce" else None)
    client = scram.ScramClient(mechanism, "al,i=ce", "s3cret")
    client_final = client.final(server.step(client.first()))
    assert not server.complete
    client.verify(server.step(client_final))
    assert server.complete and server.username == "al,i=ce"


def test_server_refuses_wrong_password_unknown_user_and_replayed_nonce():
    cred = scram.make_credential(scram.SCRAM_SHA_512, "right")
    lookup = lambda user: cred if user == "alice" else None  # noqa: E731
    server = scram.ScramServer(scram.SCRAM_SHA_512, lookup)
    client = scram.ScramClient(scram.SCRAM_SHA_512, "alice", "wrong")
    with pytest.raises(scram.ScramError, match="Invalid client credentials"):
        server.step(client.final(server.step(client.first())))
    with pytest.raises(scram.ScramError, match="Invalid user credentials"):
        scram.ScramServer(scram.SCRAM_SHA_512, lookup).step(scram.ScramClient(scram.SCRAM_SHA_512, "bob", "x").first())
    server = scram.ScramServer(scram.SCRAM_SHA_512, lookup)
    other = scram.ScramClient(scram.SCRAM_SHA_512, "alice", "right")
    server.step(scram.ScramClient(scram.SCRAM_SHA_512, "alice", "right").first())
    # A final message built for another exchange's nonce is refused.
    forged = other.final(b"r=" + other._nonce.encode() + b"zz,s=" + base64.b64encode(cred.salt) + b",i=4096")
    with pytest.raises(scram.ScramError, match="nonce"):
        server.step(forged)


def test_plain_is_checked_against_the_scram_credential_without_a_password_stored():
    store = CredentialStore()
    for record in user_records("admin", "admin-secret"):
        store.apply_record(record)
    assert "admin-secret" not in repr(store.records())
    assert store.verify_plain("admin", "admin-secret")
    assert not store.verify_plain("admin", "admin-secreT")
    assert not store.verify_plain("nobody", "admin-secret")
    assert scram.parse_plain(scram.plain_token("admin", "pw")) == ("admin", "pw")
    with pytest.raises(scram.ScramError, match="authorization id"):
        scram.parse_plain(b"other\0admin\0pw")
    with pytest.raises(scram.ScramError):
        scram.parse_plain(b"admin\0pw")


def _upsert(name, mechanism=1, iterations=4096):
    salt = b"salt" * 8
    return {"name": name, "mechanism": mechanism, "iterations": iterations, "salt": salt,
            "salted_password": scram.salted_password(scram.MECHANISM_NAMES.get(mechanism, "SCRAM-SHA-256"),
                                                     "pw", salt, iterations)}


def test_alter_follows_kafkas_rules():
    store = CredentialStore()
    results, records = store.plan_alter(
        deletions=[{"name": "ghost", "mechanism": 1}],
        upsertions=[_upsert("alice"), _upsert("few", iterations=4095), _upsert("many", iterations=16385),
                    _upsert("", 1), _upsert("mech", mechanism=9), _upsert("twice"), _upsert("twice", 2)])
    by_user = {r["user"]: (r["error_code"], r["error_message"]) for r in results}
    assert by_user == {
        "alice": (0, None),
        "ghost": (errors.ResourceNotFound.code, "Attempt to delete a user credential that does not exist"),
        "few": (errors.UnacceptableCredential.code, "Too few iterations"),
        "many": (errors.UnacceptableCredential.code, "Too many iterations"),
        "": (errors.UnacceptableCredential.code, "Username must not be empty"),
        "mech": (errors.UnsupportedSaslMechanism.code, "Unknown SCRAM mechanism"),
        "twice": (errors.DuplicateResource.code, "A user credential cannot be altered twice in the same request"),
    }
    for record in records:
        store.apply_record(record)
    assert store.users() == ["alice"]
    cred = store.lookup("alice", scram.SCRAM_SHA_256)
    assert cred.iterations == 4096 and scram.password_matches(scram.SCRAM_SHA_256, cred, "pw")
    described = store.describe(["alice", "bob", "alice"])
    assert [(d["user"], d["error_code"]) for d in described] == [
        ("alice", errors.DuplicateResource.code), ("bob", errors.ResourceNotFound.code)]
    assert store.describe(None) == [{"user": "alice", "error_code": 0, "error_message": None,
                                     "credential_infos": [{"mechanism": 1, "iterations": 4096}]}]


def test_credentials_replay_from_the_metadata_log_and_its_snapshot(tmp_path, monkeypatch):
    from pybroker.cluster import metadata_log
    from pybroker.cluster.controller import Controller, ControllerService

    log = metadata_log.MetadataLog(str(tmp_path))
    controller = Controller()
    log.load_into(controller)
    service = ControllerService(controller, persist=log.append, publish=lambda delta: None)
    # A password no salt, key or CRC byte can spell by chance (b"pw" did, now and then).
    password = "correct-horse-battery-staple"
    service.put_credentials(user_records("alice", password))
    results = service.alter_scram_credentials([{"name": "alice", "mechanism": 2}], [])
    assert results == [{"user": "alice", "error_code": 0, "error_message": None}]
    log.close()
    on_disk = (tmp_path / "metadata.log").read_bytes()
    assert password.encode() not in on_disk  # salted keys only
    replayed = Controller()
    metadata_log.MetadataLog(str(tmp_path)).load_into(replayed)
    assert list(replayed.credentials.mechanisms("alice")) == [scram.SCRAM_SHA_256]
    assert replayed.credentials.verify_plain("alice", password)
    monkeypatch.setattr(metadata_log, "SNAPSHOT_BYTES", 0)
    log = metadata_log.MetadataLog(str(tmp_path))
    log.load_into(Controller())
    assert log.maybe_snapshot(replayed)
    log.close()
    again = Controller()
    metadata_log.MetadataLog(str(tmp_path)).load_into(again)
    assert again.credentials.records() == replayed.credentials.records()
