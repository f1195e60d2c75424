"""pybroker.broker.quotas and pybroker.cluster.client_quotas as pure logic: Kafka's
sampled rate and throttle time, its precedence of quota entities, and the controller's
plan for an AlterClientQuotas (no sockets, explicit clock)."""
from __future__ import annotations

import pytest

from pybroker import errors
from pybroker.broker.quotas import QuotaManager, Rate
from pybroker.cluster import client_quotas

USER, CLIENT = client_quotas.USER, client_quotas.CLIENT_ID


def test_rate_counts_at_least_num_minus_one_windows():
    rate = Rate(0.0)
    rate.record(10_000.0, 0.0, 1000.0, 11)
    # At t=500 ms only half a window has passed, but the rate is over 10.5 s.
    assert rate.measure(500.0, 1000.0, 11) == (pytest.approx(10_000 / 10.5), 10_500.0)
    # Once every sample is older than the whole window, nothing is left.
    assert rate.measure(12_000.0, 1000.0, 11)[0] == 0.0


def test_throttle_time_is_kafkas_formula():
    manager = QuotaManager("producer_byte_rate", window_num=11, window_size_s=1)
    manager.set_limits({((CLIENT, "c"),): {"producer_byte_rate": 1000.0}})
    # 10 s of quota at once: exactly at the bound over the 10 s minimum window.
    assert manager.record("User:ANONYMOUS", "c", 10_000.0, 0.0) == 0
    # 2,000 bytes more: observed 1,200 B/s over 10 s -> (1200 - 1000) / 1000 * 10 s.
    assert manager.record("User:ANONYMOUS", "c", 2_000.0, 0.0) == 2000
    # Unrecorded, the client is back within its quota.
    manager.unrecord("User:ANONYMOUS", "c", 2_000.0, 0.0)
    assert manager.record("User:ANONYMOUS", "c", 0.0, 0.0) == 0


def _limits(**named):
    entities = {
        "user_client": ((USER, "u"), (CLIENT, "c")), "user_default_client": ((USER, "u"), (CLIENT, None)),
        "user": ((USER, "u"),), "default_user_client": ((USER, None), (CLIENT, "c")),
        "default_user_default_client": ((USER, None), (CLIENT, None)), "default_user": ((USER, None),),
        "client": ((CLIENT, "c"),), "default_client": ((CLIENT, None),),
    }
    return {entities[name]: {"producer_byte_rate": value} for name, value in named.items()}


@pytest.mark.parametrize("limits, expected", [
    (_limits(user_client=1, user_default_client=2, user=3, default_user_client=4, default_user_default_client=5,
             default_user=6, client=7, default_client=8), 1),
    (_limits(user_default_client=2, user=3, default_user_client=4, client=7), 2),
    (_limits(user=3, default_user_client=4, default_user=6, client=7), 3),
    (_limits(default_user_client=4, default_user_default_client=5, default_user=6, client=7), 4),
    (_limits(default_user_default_client=5, default_user=6, client=7), 5),
    (_limits(default_user=6, client=7, default_client=8), 6),
    (_limits(client=7, default_client=8), 7),
    (_limits(default_client=8), 8),
    (_limits(user=3) | {((USER, "other"),): {"producer_byte_rate": 9.0}}, 3),
    ({}, None),
])
def test_precedence_is_kafkas(limits, expected):
    manager = QuotaManager("producer_byte_rate")
    manager.set_limits(limits)
    assert manager.quota("User:u", "c") == expected
    assert manager.enabled == bool(limits)


def test_a_user_quota_is_shared_by_its_client_ids():
    manager = QuotaManager("producer_byte_rate", window_num=2, window_size_s=1)
    manager.set_limits(_limits(user=1000))
    assert manager.record("User:u", "a", 1000.0, 0.0) == 0
    assert manager.record("User:u", "b", 1000.0, 0.0) > 0
    assert manager.record("User:v", "b", 1000.0, 0.0) == 0  # no quota for v


def test_idle_rates_expire():
    manager = QuotaManager("producer_byte_rate", window_num=2, window_size_s=1)
    manager.set_limits(_limits(client=1000))
    manager.record("User:u", "c", 10.0, 0.0)
    manager.expire(1999.0)
    assert manager._sensors
    manager.expire(2000.0)
    assert not manager._sensors


def test_plan_alter_keeps_other_entities_and_refuses_duplicates():
    bob, carol = ((USER, "bob"),), ((USER, "carol"),)
    results, changes = client_quotas.plan_alter({}, [
        (bob, [("producer_byte_rate", 5.0)]),
        (carol, [("producer_byte_rate", 1.5)]),
        (bob, [("consumer_byte_rate", 6.0)]),
    ])
    assert str(results[bob]) == "Ignoring duplicate entity ClientQuotaEntity(entries={user=bob})"
    assert isinstance(results[carol], errors.InvalidRequest)
    # Kafka applies the first entry of a duplicated entity all the same.
    assert changes == {bob: {"producer_byte_rate": 5.0}}


def test_describe_filters():
    quotas = {((USER, "a"),): {"k": 1.0}, ((USER, "a"), (CLIENT, None)): {"k": 2.0}, ((CLIENT, "c"),): {"k": 3.0}}
    names = lambda comps, strict: [tuple(e["entity_name"] for e in entry["entity"])
                                   for entry in client_quotas.describe(quotas, comps, strict)]
    exact = [{"entity_type": USER, "match_type": 0, "match": "a"}]
    assert names(exact, False) == [("a",), ("a", None)]
    assert names(exact, True) == [("a",)]
    assert sorted(names([{"entity_type": CLIENT, "match_type": 2, "match": None}], False), key=str) == [
        ("a", None), ("c",)]
    assert names([], True) == []


def test_a_request_changing_more_than_10000_keys_is_refused_whole():
    from pybroker.cluster.controller import Controller, ControllerService

    service = ControllerService(Controller(), persist=lambda records: None, publish=lambda delta: None)
    entries = [{"entity": [[USER, f"u{n}"]], "ops": [["producer_byte_rate", 1.0], ["consumer_byte_rate", 1.0]]}
               for n in range(5001)]
    results = service.alter_client_quotas(entries)
    assert len(results) == 5001
    assert {(r["error_code"], r["error_message"]) for r in results} == {
        (44, "Request parameters do not satisfy the configured policy.")}
    assert service.controller.client_quotas == {}
    assert all(r["error_code"] == 0 for r in service.alter_client_quotas(entries[:5000]))
    assert len(service.controller.client_quotas) == 5000


def test_mutation_quota_is_a_token_bucket_with_kafkas_burst_and_wait():
    from pybroker.broker.quotas import MutationQuotaManager

    manager = MutationQuotaManager("controller_mutation_rate", window_num=11, window_size_s=1)
    manager.set_limits({((CLIENT, "c"),): {"controller_mutation_rate": 2.0}})
    assert manager.enabled
    assert manager.throttle_ms("User:ANONYMOUS", "c", 0.0) == 0
    manager.take("User:ANONYMOUS", "c", 30, 0.0)                 # burst 22: 8 below zero
    assert manager.throttle_ms("User:ANONYMOUS", "c", 0.0) == 4000  # 8 partitions at 2/s
    assert manager.throttle_ms("User:ANONYMOUS", "c", 3000.0) == 1000
    assert manager.throttle_ms("User:ANONYMOUS", "c", 4000.0) == 0
    assert manager.throttle_ms("User:ANONYMOUS", "other", 0.0) == 0  # no quota for this client-id
    manager.expire(100_000.0)                                    # refilled: the bucket goes
    assert manager._sensors == {}
