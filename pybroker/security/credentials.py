"""The SCRAM user store: (user, mechanism) -> ScramCredential (salt, StoredKey, ServerKey,
iterations). No password is ever kept; SASL/PLAIN is checked by deriving the user's
SCRAM credential from the offered password with the stored salt and iterations.

Owned by the controller (the supervisor), which records every change in its metadata log
(``scram_credential`` records) before pushing it to the brokers; each broker holds a
copy it replaces entry by entry. Pure data and rules, no I/O: the rules of Kafka's
ScramControlManager (AlterUserScramCredentials) and ScramImage (Describe...) are here.
"""
from __future__ import annotations

from pybroker import errors
from pybroker.security import scram


class CredentialStore:
    def __init__(self) -> None:
        self._users: dict[str, dict[str, scram.ScramCredential]] = {}

    def __len__(self) -> int:
        return len(self._users)

    def users(self) -> list[str]:
        return sorted(self._users)

    def mechanisms(self, user: str) -> dict[str, scram.ScramCredential]:
        return dict(self._users.get(user, {}))

    def lookup(self, user: str, mechanism: str) -> scram.ScramCredential | None:
        return self._users.get(user, {}).get(mechanism)

    def put(self, user: str, mechanism: str, credential: scram.ScramCredential | None) -> None:
        """Set (or with None remove) one credential."""
        if credential is None:
            per_user = self._users.get(user)
            if per_user is not None:
                per_user.pop(mechanism, None)
                if not per_user:
                    del self._users[user]
        else:
            self._users.setdefault(user, {})[mechanism] = credential

    def verify_plain(self, user: str, password: str) -> bool:
        """SASL/PLAIN against the SCRAM store (SHA-256's credential first, else SHA-512's)."""
        creds = self._users.get(user, {})
        for mechanism in (scram.SCRAM_SHA_256, scram.SCRAM_SHA_512):
            credential = creds.get(mechanism)
            if credential is not None:
                return scram.password_matches(mechanism, credential, password)
        return False

    # -- records (metadata log, pushes) ----------------------------------------------------

    def records(self) -> list[dict]:
        return [credential_record(user, mechanism, cred)
                for user, per_user in sorted(self._users.items()) for mechanism, cred in sorted(per_user.items())]

    def apply_record(self, record: dict) -> None:
        cred = record.get("credential")
        self.put(record["user"], record["mechanism"], None if cred is None else scram.ScramCredential.from_json(cred))

    # -- Kafka's APIs ---------------------------------------------------------------------

    def describe(self, users: list[str] | None) -> list[dict]:
        """DescribeUserScramCredentials results (ScramImage.describe)."""
        if not users:
            wanted = {user: False for user in self._users}
        else:
            wanted = {}
            for user in users:
                wanted[user] = user in wanted
        results = []
        for user, duplicate in wanted.items():
            if duplicate:
                results.append({"user": user, "error_code": errors.DuplicateResource.code,
                                "error_message": f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}",
                                "credential_infos": []})
                continue
            creds = self._users.get(user)
            if not creds:
                results.append({"user": user, "error_code": errors.ResourceNotFound.code,
                                "error_message": f"Attempt to describe a user credential that does not exist: {user}",
                                "credential_infos": []})
                continue
            results.append({"user": user, "error_code": 0, "error_message": None, "credential_infos": [
                {"mechanism": scram.MECHANISM_CODES[m], "iterations": c.iterations} for m, c in sorted(creds.items())]})
        return results

    def plan_alter(self, deletions: list[dict], upsertions: list[dict]) -> tuple[list[dict], list[dict]]:
        """Validate AlterUserScramCredentials as Kafka's controller does: returns (results,
        records to apply). Upsertions carry the client's salted password; the record
        keeps only the keys derived from it."""
        to_delete: dict[str, dict] = {}
        to_upsert: dict[str, dict] = {}
        failed: dict[str, tuple[int, str]] = {}
        twice = (errors.DuplicateResource.code, "A user credential cannot be altered twice in the same request")
        for d in deletions:
            name = d["name"]
            if name in failed:
                continue
            if to_delete.pop(name, None) is not None:
                failed[name] = twice
                continue
            error = _check_name_and_mechanism(name, d["mechanism"])
            if error is None and self.lookup(name, scram.MECHANISM_NAMES[d["mechanism"]]) is None:
                error = (errors.ResourceNotFound.code, "Attempt to delete a user credential that does not exist")
            if error is not None:
                failed[name] = error
            else:
                to_delete[name] = d
        for u in upsertions:
            name = u["name"]
            if name in failed:
                continue
            if to_delete.pop(name, None) is not None or to_upsert.pop(name, None) is not None:
                failed[name] = twice
                continue
            error = _check_name_and_mechanism(name, u["mechanism"])
            if error is None and u["iterations"] < scram.MIN_ITERATIONS:
                error = (errors.UnacceptableCredential.code, "Too few iterations")
            elif error is None and u["iterations"] > scram.MAX_ITERATIONS:
                error = (errors.UnacceptableCredential.code, "Too many iterations")
            if error is not None:
                failed[name] = error
            else:
                to_upsert[name] = u
        results, records = [], []
        for name, d in to_delete.items():
            results.append({"user": name, "error_code": 0, "error_message": None})
            records.append(credential_record(name, scram.MECHANISM_NAMES[d["mechanism"]], None))
        for name, u in to_upsert.items():
            mechanism = scram.MECHANISM_NAMES[u["mechanism"]]
            cred = scram.credential_from_salted(mechanism, bytes(u["salted_password"]), bytes(u["salt"]),
                                                u["iterations"])
            results.append({"user": name, "error_code": 0, "error_message": None})
            records.append(credential_record(name, mechanism, cred))
        for name, (code, message) in failed.items():
            results.append({"user": name, "error_code": code, "error_message": message})
        return results, records


def credential_record(user: str, mechanism: str, credential: scram.ScramCredential | None) -> dict:
    return {"type": "scram_credential", "user": user, "mechanism": mechanism,
            "credential": None if credential is None else credential.to_json()}


def _check_name_and_mechanism(name: str, mechanism: int) -> tuple[int, str] | None:
    if not name:
        return errors.UnacceptableCredential.code, "Username must not be empty"
    if mechanism not in scram.MECHANISM_NAMES:
        return errors.UnsupportedSaslMechanism.code, "Unknown SCRAM mechanism"
    return None


def user_records(user: str, password: str, mechanisms=(scram.SCRAM_SHA_256, scram.SCRAM_SHA_512),
                 iterations: int = scram.DEFAULT_ITERATIONS) -> list[dict]:
    """Records creating ``user`` with fresh salted credentials (``pybroker users --create``,
    ``--super-user``)."""
    return [credential_record(user, m, scram.make_credential(m, password, iterations)) for m in mechanisms]
