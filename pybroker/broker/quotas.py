"""Client quota enforcement (KIP-13 byte rates, KIP-124 request time, KIP-219 throttling):
Kafka's ClientQuotaManager, one ``QuotaManager`` per quota key.

Rates are Kafka's ``Rate`` over a ``SampledStat``: ``quota.window.num`` samples of
``quota.window.size.seconds`` each (11 x 1 s); the rate is the sum of the live samples
over the time since the oldest one started, counted as at least ``num - 1`` whole
windows (so a new client is not judged on its first millisecond). A request is recorded
first, then the rate checked; over the bound ``T`` with observed rate ``O`` over window
``W``, the client waits ``(O - T) / T * W`` — the delay that brings the rate back to
the quota if nothing more comes (QuotaUtils.throttleTime). The broker answers at once
with ``throttle_time_ms`` and stops reading that connection for that long (the
connection's mute, pybroker.broker.connection).

Which quota applies to a (user, client-id) follows Kafka's precedence, most specific
first: /users/<user>/clients/<client-id>, /users/<user>/clients/<default>,
/users/<user>, /users/<default>/clients/<client-id>, /users/<default>/clients/<default>,
/users/<default>, /clients/<client-id>, /clients/<default>. Clients that resolve to a
shared entity (a user quota, say) share one rate; with a per-client-id entity each
client-id has its own.

Cost: a manager whose key no entity sets is disabled (``enabled`` False) and handlers
check just that attribute; enabled, a request costs a dict lookup and a few float
operations. Rates idle longer than the whole window are dropped, so memory follows the
clients active in the last ``num x size`` seconds.

Owned by the broker's event loop thread.
"""
from __future__ import annotations

from pybroker.cluster.client_quotas import (CLIENT_ID, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE,
                                            PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, USER)

DEFAULT_WINDOW_NUM = 11
DEFAULT_WINDOW_SIZE_S = 1
# request_percentage is recorded per request as the percentage of one thread's second
# that handling took (Kafka's NanosToPercentagePerSecond).
PERCENT_PER_SECOND = 100.0


class Rate:
    """Kafka's Rate over a windowed sum: ``samples`` of [start_ms, last_event_ms,
    value], one more than ``num`` as Kafka keeps (the overlapping sample)."""

    __slots__ = ("samples", "current", "last_event_ms")

    def __init__(self, now_ms: float):
        self.samples = [[now_ms, now_ms, 0.0]]
        self.current = 0
        self.last_event_ms = now_ms

    def record(self, value: float, now_ms: float, window_ms: float, num: int) -> None:
        sample = self.samples[self.current]
        if now_ms - sample[0] >= window_ms:
            self.current = (self.current + 1) % (num + 1)
            if self.current >= len(self.samples):
                sample = [now_ms, now_ms, 0.0]
                self.samples.append(sample)
            else:
                sample = self.samples[self.current]
                sample[0] = sample[1] = now_ms
                sample[2] = 0.0
        sample[2] += value
        sample[1] = now_ms
        self.last_event_ms = now_ms

    def _purge(self, now_ms: float, window_ms: float, num: int) -> None:
        expire = num * window_ms
        for sample in self.samples:
            if now_ms - sample[1] >= expire:
                sample[0] = sample[1] = now_ms
                sample[2] = 0.0

    def window_ms(self, now_ms: float, window_ms: float, num: int) -> float:
        self._purge(now_ms, window_ms, num)
        elapsed = now_ms - min(s[0] for s in self.samples)
        full = int(elapsed // window_ms)
        if full < num - 1:
            elapsed += (num - 1 - full) * window_ms
        return max(elapsed, 1.0)

    def measure(self, now_ms: float, window_ms: float, num: int) -> tuple[float, float]:
        """(rate per second, the window it was measured over in ms)."""
        window = self.window_ms(now_ms, window_ms, num)
        return sum(s[2] for s in self.samples) / (window / 1000.0), window


def _user(principal: str) -> str:
    return principal[5:] if principal.startswith("User:") else principal


class QuotaManager:
    """The rates and limits of one quota key (producer_byte_rate, consumer_byte_rate or
    request_percentage)."""

    def __init__(self, key: str, window_num: int = DEFAULT_WINDOW_NUM,
                 window_size_s: float = DEFAULT_WINDOW_SIZE_S, max_throttle_ms: int | None = None):
        self.key = key
        self.window_num = window_num
        self.window_ms = window_size_s * 1000.0
        # request_percentage throttles at most one window (ClientRequestQuotaManager).
        self.max_throttle_ms = max_throttle_ms
        self.enabled = False
        self._limits: dict[tuple, float] = {}
        # (user tag, client-id tag) -> [Rate, limit]; Kafka's quota sensors.
        self._sensors: dict[tuple[str, str], list] = {}
        # (user, client-id) -> the sensor key and limit it resolves to, until quotas change.
        self._resolved: dict[tuple[str, str], tuple[tuple[str, str], float] | None] = {}

    def set_limits(self, quotas: dict[tuple, dict[str, float]]) -> None:
        """Take the cluster's quotas (entity -> {key: value}) after a change."""
        self._limits = {entity: values[self.key] for entity, values in quotas.items()
                        if self.key in values and all(t in (USER, CLIENT_ID) for t, _ in entity)}
        self.enabled = bool(self._limits)
        self._resolved.clear()
        if not self.enabled:
            self._sensors.clear()
            return
        for tags, sensor in list(self._sensors.items()):
            limit = self._limit_for_tags(*tags)
            if limit is None:
                del self._sensors[tags]
            else:
                sensor[1] = limit

    def _limit_for_tags(self, user: str, client_id: str) -> float | None:
        limits = self._limits
        if user and client_id:
            chain = (((USER, user), (CLIENT_ID, client_id)), ((USER, user), (CLIENT_ID, None)),
                     ((USER, None), (CLIENT_ID, client_id)), ((USER, None), (CLIENT_ID, None)))
        elif user:
            chain = (((USER, user),), ((USER, None),))
        elif client_id:
            chain = (((CLIENT_ID, client_id),), ((CLIENT_ID, None),))
        else:
            return None
        for entity in chain:
            limit = limits.get(entity)
            if limit is not None:
                return limit
        return None

    def _tags(self, user: str, client_id: str) -> tuple[str, str]:
        """Kafka's quotaMetricTags: which rate a (user, client-id) is counted in."""
        has = self._limits.__contains__
        if has(((USER, user), (CLIENT_ID, client_id))) or has(((USER, user), (CLIENT_ID, None))):
            return user, client_id
        if has(((USER, user),)):
            return user, ""
        if has(((USER, None), (CLIENT_ID, client_id))) or has(((USER, None), (CLIENT_ID, None))):
            return user, client_id
        if has(((USER, None),)):
            return user, ""
        return "", client_id

    def _resolve(self, principal: str, client_id: str | None) -> tuple[tuple[str, str], float] | None:
        key = (principal, client_id or "")
        try:
            return self._resolved[key]
        except KeyError:
            pass
        tags = self._tags(_user(principal), client_id or "")
        limit = self._limit_for_tags(*tags)
        found = None if limit is None else (tags, limit)
        self._resolved[key] = found
        return found

    def quota(self, principal: str, client_id: str | None) -> float | None:
        found = self._resolve(principal, client_id)
        return None if found is None else found[1]

    def record(self, principal: str, client_id: str | None, value: float, now_ms: float) -> int:
        """Record ``value`` for the client; the throttle time in ms (0: within quota)."""
        found = self._resolve(principal, client_id)
        if found is None:
            return 0
        tags, _limit = found
        sensor = self._sensors.get(tags)
        if sensor is None:
            sensor = self._sensors[tags] = [Rate(now_ms), _limit]
        rate, limit = sensor
        rate.record(value, now_ms, self.window_ms, self.window_num)
        observed, window = rate.measure(now_ms, self.window_ms, self.window_num)
        if observed <= limit:
            return 0
        throttle = round((observed - limit) / limit * window)
        if self.max_throttle_ms is not None:
            throttle = min(throttle, self.max_throttle_ms)
        return int(throttle)

    def unrecord(self, principal: str, client_id: str | None, value: float, now_ms: float) -> None:
        """Take back a value recorded for a response that was not sent (a throttled fetch)."""
        found = self._resolve(principal, client_id)
        if found is not None and found[0] in self._sensors:
            self._sensors[found[0]][0].record(-value, now_ms, self.window_ms, self.window_num)

    def max_value_in_window(self, principal: str, client_id: str | None) -> float | None:
        """The most one request may carry without being throttled for sure (Kafka's
        getMaxValueInQuotaWindow: a fetch's max_bytes is capped to it)."""
        limit = self.quota(principal, client_id)
        if limit is None:
            return None
        return limit * (self.window_num - 1) * self.window_ms / 1000.0

    def expire(self, now_ms: float) -> None:
        """Drop the sensors a new one would equal (``_spent``)."""
        for tags in [t for t, s in self._sensors.items() if self._spent(s, now_ms)]:
            del self._sensors[tags]
        if len(self._resolved) > 4 * len(self._sensors) + 1024:
            self._resolved.clear()

    def _spent(self, sensor: list, now_ms: float) -> bool:
        """A rate with nothing recorded over the whole window: it measures zero."""
        return now_ms - sensor[0].last_event_ms >= self.window_num * self.window_ms


class TokenBucket:
    """Kafka's TokenBucket: up to ``burst`` tokens, refilled at the quota's rate; a
    record takes tokens and may leave the bucket below zero."""

    __slots__ = ("tokens", "last_event_ms")

    def __init__(self, burst: float, now_ms: float):
        self.tokens = burst
        self.last_event_ms = now_ms

    def refill(self, rate: float, burst: float, now_ms: float) -> float:
        self.tokens = min(burst, self.tokens + rate * max(0.0, now_ms - self.last_event_ms) / 1000.0)
        self.last_event_ms = now_ms
        return self.tokens


class MutationQuotaManager(QuotaManager):
    """controller_mutation_rate (KIP-599): partitions created, added or deleted per second,
    as Kafka's ControllerMutationQuotaManager. A token bucket holds ``quota x
    quota.window.num x quota.window.size.seconds`` partitions of burst; while it is
    below zero the client is over its quota and waits ``-tokens / quota`` seconds.

    ``throttle_ms`` answers whether a mutation may start now (strict requests —
    CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+ — get
    THROTTLING_QUOTA_EXCEEDED for the topics asked while it is > 0); ``take`` records
    the partitions one changed (older, permissive versions are always carried out and
    only throttled)."""

    def _bucket(self, principal: str, client_id: str | None, now_ms: float):
        found = self._resolve(principal, client_id)
        if found is None:
            return None, 0.0
        tags, limit = found
        burst = self._burst(limit)
        sensor = self._sensors.get(tags)
        if sensor is None:
            sensor = self._sensors[tags] = [TokenBucket(burst, now_ms), limit]
        sensor[0].refill(limit, burst, now_ms)
        return sensor[0], limit

    def throttle_ms(self, principal: str, client_id: str | None, now_ms: float) -> int:
        bucket, limit = self._bucket(principal, client_id, now_ms)
        if bucket is None or bucket.tokens >= 0 or limit <= 0:
            return 0
        return int(round(-bucket.tokens / limit * 1000.0))

    def take(self, principal: str, client_id: str | None, permits: float, now_ms: float) -> None:
        bucket, _ = self._bucket(principal, client_id, now_ms)
        if bucket is not None:
            bucket.tokens -= permits

    def _spent(self, sensor: list, now_ms: float) -> bool:
        """A bucket that has refilled: a new one starts full, the same."""
        bucket, limit = sensor
        burst = self._burst(limit)
        return bucket.refill(limit, burst, now_ms) >= burst

    def _burst(self, limit: float) -> float:
        return limit * self.window_num * self.window_ms / 1000.0


class ClientQuotas:
    """A broker's quota managers: produce and fetch byte rates, request time, and
    partition mutations."""

    def __init__(self, window_num: int = DEFAULT_WINDOW_NUM, window_size_s: float = DEFAULT_WINDOW_SIZE_S):
        self.produce = QuotaManager(PRODUCER_BYTE_RATE, window_num, window_size_s)
        self.fetch = QuotaManager(CONSUMER_BYTE_RATE, window_num, window_size_s)
        self.request = QuotaManager(REQUEST_PERCENTAGE, window_num, window_size_s,
                                    max_throttle_ms=int(window_size_s * 1000))
        self.mutation = MutationQuotaManager(CONTROLLER_MUTATION_RATE, window_num, window_size_s)
        self.managers = (self.produce, self.fetch, self.request, self.mutation)

    def set_quotas(self, quotas: dict[tuple, dict[str, float]]) -> None:
        for manager in self.managers:
            manager.set_limits(quotas)

    def expire(self, now_ms: float) -> None:
        for manager in self.managers:
            if manager.enabled:
                manager.expire(now_ms)
