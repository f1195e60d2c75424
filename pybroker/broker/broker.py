"""The broker: a Kafka listener in front of the partition replicas this process hosts.

One asyncio event loop thread owns everything here (connections, partitions, logs); there
is no locking because nothing is shared across threads. Requests are decoded, dispatched
to one handler per API (``pybroker.broker.apis``), and answered in order per connection.

The controller (the supervisor, or an in-process one: ``controller_link``) owns topics,
leaders and ISR; the broker applies the cluster image it pushes (``apply_update``) and
asks it for topic changes, ISR changes and group coordination.
"""
from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from pybroker.broker.acceptor import Acceptor, listen_sockets, listen_unix
from pybroker.broker.authorization import make_authorizer
from pybroker.broker.apis import HANDLERS
from pybroker.broker.apis.fetch import empty_for_throttle, release_regions
from pybroker.broker.fetch_session import FetchSessionCache
from pybroker.broker.apis.metadata import TopicEntryCache
from pybroker.broker.connection import Connection
from pybroker.broker.log_limit import RateLimitedLog
from pybroker.broker.log_manager import LogManager
from pybroker.broker.quotas import PERCENT_PER_SECOND, ClientQuotas
from pybroker.broker.replica_manager import ReplicaManager
from pybroker.broker.replica_repair import ReplicaRepairer
from pybroker.broker.replica_selector import selector_for
from pybroker.broker.shm_link import ShmLink
from pybroker.broker.stats import BrokerStats
from pybroker.cluster.client_quotas import entity_from_json
from pybroker.cluster.metadata import BrokerInfo, ClusterImage, PartitionState
from pybroker.cluster.topics import TopicMetadata, validate_topic_name
from pybroker.config import RESOURCE_BROKER, BrokerConfig, TopicConfig, topic_defaults_with
from pybroker.errors import KafkaError, UnknownTopicOrPartition
from pybroker.protocol import api
from pybroker.security import INTER_BROKER_PRINCIPAL, listener as listeners
from pybroker.security.authenticator import AuthFailures, SaslGate
from pybroker.security.credentials import CredentialStore
from pybroker.security.acls import AclBinding

log = logging.getLogger("pybroker.broker")

# How long a controller push may hold the event loop before it lets others run (opening a
# partition's files takes milliseconds on a busy disk, and a push may open thousands).
APPLY_STEP_S = 0.05
# Replicas whose logs are opened in one go on the log manager's threads (between two
# batches the event loop serves whatever else is waiting).
OPEN_BATCH = 200
# Partitions named in the one line that reports the leaderships a step of a push gave.
LEADERS_LOGGED = 10
# Frames the broker cannot serve are logged a line per interval, whatever their rate.
_refused_frame_log = RateLimitedLog(log, logging.INFO)


class Broker:
    def __init__(self, config: BrokerConfig, controller=None):
        self.config = config
        self.node_id = config.broker_id
        self.logs = LogManager(config)
        self.image = ClusterImage(cluster_id=config.cluster_id, topics=self.logs.topics)
        # KIP-392: replica.selector.class (None: consumers read from the leader).
        self.replica_selector = selector_for(config.replica_selector_class)
        # The static topic defaults with the cluster's dynamic broker defaults on top.
        self.topic_defaults: TopicConfig = topic_defaults_with(config.topic_defaults, {})
        if controller is None:
            from pybroker.broker.controller_link import LocalController
            from pybroker.group.host import GroupHost

            controller = LocalController(groups=GroupHost(self.logs.data_dir),
                                         default_partitions=config.num_partitions)
        self.controller = controller
        # The ACL authorizer (``--authorizer acl``), its ACLs kept in step with the
        # controller's pushes; None lets every client do everything.
        self.authorizer = make_authorizer(config)
        self.replicas = ReplicaManager(self)
        # Quarantined ranges of replicated partitions refetched from another replica.
        self.repairer = ReplicaRepairer(self)
        # Incremental fetch sessions (KIP-227) of consumers and followers fetching here.
        self.fetch_sessions = FetchSessionCache(config.max_incremental_fetch_session_cache_slots,
                                                config.min_incremental_fetch_session_eviction_ms)
        # Counters reported to the supervisor (per request and per batch-set, never per record).
        self.stats = BrokerStats()
        # Client quotas as the controller pushes them, enforced per request (pybroker.broker.quotas).
        self.quotas = ClientQuotas(config.quota_window_num, config.quota_window_size_seconds)
        # The shared-memory link, when the cluster has a region this broker could attach.
        self.shm: ShmLink | None = None
        self.port = config.port
        self.connections: set[Connection] = set()
        self.stopping = False
        self.stop_requested = asyncio.Event()
        self.acceptor: Acceptor | None = None
        # Every listener's acceptor (the first is ``acceptor``; see pybroker.security.listener).
        self.acceptors: list[Acceptor] = []
        self.listeners = self._listeners(config)
        self.sasl_mechanisms = listeners.parse_mechanisms(config.sasl_enabled_mechanisms)
        self.internal_socket = config.internal_socket or None
        # SCRAM users, as the controller pushes them (pybroker.security.credentials).
        self.credentials = CredentialStore()
        self.auth_failures = AuthFailures(config.connection_failed_authentication_delay_ms / 1000.0)
        self._tasks: list[asyncio.Task] = []
        self._stop_waiters: set[asyncio.Future] = set()
        self._creating: set[str] = set()
        self._heap_frozen = False
        # Set once the first full image is applied and its logs are open: until then
        # every request but ApiVersions waits (Kafka serves nothing before its logs are
        # loaded and it has caught up with the metadata), so a restarted broker never
        # answers for topics it has not loaded yet.
        self.serving = asyncio.Event()
        self._apply_lock = asyncio.Lock()
        # Metadata's encoded topic entries, kept in step with the image by _apply_steps.
        self.topic_entries = TopicEntryCache()
        self.api_versions = {k: v for k, v in api.SUPPORTED_VERSIONS.items() if k in HANDLERS}
        self._handlers = {k: (h, inspect.iscoroutinefunction(h)) for k, h in HANDLERS.items()}

    @staticmethod
    def _listeners(config: BrokerConfig) -> list:
        if not config.listeners:
            return [listeners.Listener(listeners.PLAINTEXT, listeners.PLAINTEXT, config.port)]
        out = []
        for n, spec in enumerate(s for s in config.listeners.split(",") if s.strip()):
            protocol, port = listeners.parse_listener(spec)
            out.append(listeners.Listener(protocol, protocol, config.port if n == 0 else (port or 0)))
        return out

    def sasl_gate(self) -> SaslGate:
        """The authenticator of a new connection on a SASL listener."""
        return SaslGate(self, self.auth_failures)

    def listener_ports(self) -> list[list]:
        """[name, port] of every client listener, as bound."""
        return [[a.listener.name, a.port] for a in self.acceptors if a.listener.name != listeners.INTERNAL]

    # -- cluster view --------------------------------------------------------------------

    def apply_update(self, doc: dict, full: bool = False) -> None:
        """Apply the controller's push: live brokers, topics, deleted topics, partition
        states. ``full`` means the whole image (first contact): local replicas of topics
        the image no longer has are deleted."""
        for _ in self._apply_steps(doc, full):
            pass
        if full:
            self.serving.set()

    async def apply_update_in_steps(self, doc: dict, full: bool = False) -> None:
        """``apply_update``, giving the event loop a turn every ``APPLY_STEP_S`` while
        local partitions are opened or changed: an image of thousands of partitions takes seconds to
        open, and meanwhile the broker must keep heartbeating (or the supervisor fences it)
        and serving. Pushes are applied whole and in the order they arrive."""
        async with self._apply_lock:
            try:
                for to_open in self._apply_steps(doc, full):
                    if to_open:
                        await self.logs.open_logs(to_open)
                    else:
                        await asyncio.sleep(0)
            finally:
                self.logs.close_unused_opened()
                if full:
                    self.serving.set()

    def _apply_steps(self, doc: dict, full: bool):
        """The cluster view first (brokers, topics, deletions, every partition state: dict
        work), then the local replicas, yielding between batches of them. A state already
        replaced in the image, or of a topic deleted meanwhile, is skipped.

        The logs of new local replicas are opened first, off the event loop (the async
        caller does that with the lists yielded here; ``apply_update`` opens them
        inline), before anything of the push is applied: until it is, the cluster view
        says what it said before, so no client is told of a leader whose log is not
        open yet (and requests wait for the first full image: ``serving``). A topic
        the push deletes is not opened early: its name may come back in the same push
        as a new topic, on a new directory."""
        states = [PartitionState.from_json(d) for d in doc["partitions"]]
        deleted = set(doc["deleted_topics"])
        to_open = self._replicas_to_open(doc, states, deleted)
        for at in range(0, len(to_open), OPEN_BATCH):
            yield to_open[at:at + OPEN_BATCH]
        self.image.cluster_id = doc.get("cluster_id", self.image.cluster_id)
        brokers = {b["node_id"]: BrokerInfo.from_json(b) for b in doc["brokers"]}
        if brokers != self.image.brokers:
            self.topic_entries.clear()
        self.image.brokers = brokers
        for record in doc.get("scram_credentials", ()):
            self.credentials.apply_record(record)
        for r in doc.get("resource_configs", ()):
            key = (int(r["resource_type"]), r["resource_name"])
            if r["configs"]:
                self.image.resource_configs[key] = dict(r["configs"])
            else:
                self.image.resource_configs.pop(key, None)
            if key == (RESOURCE_BROKER, ""):
                # The topics whose effective config changed come in this same update.
                self.topic_defaults = topic_defaults_with(self.config.topic_defaults, r["configs"])
        if doc.get("client_quotas"):
            for r in doc["client_quotas"]:
                entity = entity_from_json(r["entity"])
                if r["quotas"]:
                    self.image.client_quotas[entity] = {k: float(v) for k, v in r["quotas"].items()}
                else:
                    self.image.client_quotas.pop(entity, None)
            self.quotas.set_quotas(self.image.client_quotas)
        acls = doc.get("acls")
        if acls is not None and self.authorizer is not None:
            self.authorizer.set_acls(AclBinding.from_json(a) for a in acls)
        for t in doc["topics"]:
            topic = TopicMetadata.from_json(t, self.topic_defaults)
            self.image.topics[topic.name] = topic
            self.topic_entries.forget(topic.name)
            for index in range(topic.partitions):
                partition = self.logs.partitions.get((topic.name, index))
                if partition is not None and partition.log.config != topic.config:
                    partition.log.update_config(topic.config)
        stray: set[str] = set()
        local = self.logs.local_partition_dirs() if deleted or full else set()
        if full:
            # Topics the controller does not know: deleted while this broker was away, or
            # the controller's metadata was lost. Their logs are set aside, never deleted
            # on this evidence alone (Kafka's "stray" replicas).
            incoming = {t["name"] for t in doc["topics"]}
            stray = {name for name in self.image.topics if name not in incoming}
            stray |= {name for name, _ in local if name not in incoming}
            stray -= deleted
        gone = deleted | stray
        if gone:
            for name in gone:
                self.image.topics.pop(name, None)
                self.topic_entries.forget(name)
                self.stats.forget_topic(name)
            for key in [k for k in self.image.partitions if k[0] in gone]:
                del self.image.partitions[key]
            for topic, index in sorted(k for k in local | set(self.logs.partitions) if k[0] in gone):
                partition = self.logs.partitions.get((topic, index))
                if partition is not None:
                    self.replicas.remove_partition(partition)
                if topic in stray:
                    self.logs.set_aside_partition(topic, index)
                else:
                    self.logs.drop_partition(topic, index)
        local_states = []
        moved_away = {key for key in local if key[0] not in gone} if full else set()
        for state in states:
            self.image.partitions[state.key] = state
            self.topic_entries.forget(state.topic)
            if self.node_id in state.replicas and state.topic in self.image.topics:
                local_states.append(state)
            elif state.key in self.logs.partitions:
                moved_away.add(state.key)
        self._drop_moved_replicas(moved_away)
        changed = []
        led: list = []
        step_began = time.monotonic()
        for n, state in enumerate(local_states, 1):
            topic = self.image.topics.get(state.topic)
            if topic is not None and self.image.partitions.get(state.key) is state:
                partition = self.logs.ensure_partition(topic, state.partition)
                partition.broker_alive = self._broker_alive
                led_before = partition.leader_epoch if partition.state is not None and partition.is_leader else None
                if partition.apply_state(state):
                    changed.append(partition)
                    if partition.is_leader and partition.leader_epoch != led_before:
                        led.append(partition)
            if n < len(local_states) and time.monotonic() - step_began < APPLY_STEP_S:
                continue
            if led:
                log.info("leader of %d partition(s): %s%s", len(led),
                         ", ".join(f"{p.topic}-{p.index} (epoch {p.leader_epoch} from offset {p.log_end_offset})"
                                   for p in led[:LEADERS_LOGGED]),
                         ", ..." if len(led) > LEADERS_LOGGED else "")
                led = []
            if changed or gone or moved_away:
                self.replicas.on_states_applied(changed)
            changed = []
            if n < len(local_states):
                yield
                step_began = time.monotonic()
        if (gone or moved_away) and not local_states:
            self.replicas.on_states_applied([])
        for partition in self.logs.partitions.values():
            # A dead broker's replicas no longer hold back a waiting DeleteRecords.
            partition.check_low_watermark()
        if full and not self._heap_frozen:
            self._heap_frozen = True
            # The partitions opened at start live as long as the process: keep them out
            # of the cyclic collector's full passes, which otherwise stall the event loop
            # for ~0.5 s per 2,000 partitions (perf/flush_lag_bench.py).
            gc.collect()
            gc.freeze()

    def _drop_moved_replicas(self, keys) -> None:
        """Delete the local replicas whose partition, in the image, no longer lists this
        broker: a reassignment moved them away (while this broker ran, or while it was
        down: a full image). The controller takes a replica out only once the target
        replicas are all in sync, so nothing acknowledged lives only here."""
        for key in sorted(keys):
            state = self.image.partitions.get(key)
            if state is None or self.node_id in state.replicas:
                continue
            partition = self.logs.partitions.get(key)
            if partition is not None:
                self.replicas.remove_partition(partition)
            log.info("%s-%d: no longer a replica here (replicas %s)", key[0], key[1], list(state.replicas))
            self.logs.drop_partition(*key)

    def _replicas_to_open(self, doc: dict, states: list, deleted: set) -> list:
        """(topic, index) of the push's local replicas whose logs are not open yet."""
        pushed = {t["name"]: t for t in doc["topics"]}
        topics: dict[str, TopicMetadata | None] = {}
        to_open = []
        for state in states:
            if self.node_id not in state.replicas or state.topic in deleted or state.key in self.logs.partitions:
                continue
            if state.topic not in topics:
                t = pushed.get(state.topic)
                topics[state.topic] = TopicMetadata.from_json(t, self.topic_defaults) if t is not None \
                    else self.image.topics.get(state.topic)
            if topics[state.topic] is not None:
                to_open.append((topics[state.topic], state.partition))
        return to_open

    def _broker_alive(self, node_id: int) -> bool:
        return node_id in self.image.brokers

    def report(self) -> dict:
        """The periodic ``report`` to the supervisor: counters and led partitions."""
        sessions = self.fetch_sessions
        return {**self.stats.report(self.logs.partitions.values()),
                "fetch_sessions": [len(sessions), sessions.partitions_cached, sessions.evictions]}

    def describe_partitions(self) -> list[dict]:
        rows = []
        for p in self.logs.partitions.values():
            row = {"topic": p.topic, "partition": p.index, "leader": p.leader,
                   "log_start_offset": p.log_start_offset, "log_end_offset": p.log_end_offset,
                   "high_watermark": p.high_watermark}
            if p.log.quarantined:
                # Offsets set aside as corrupt here (pybroker.log.damage): status shows them.
                row["quarantined"] = [{"first_offset": q.first_offset, "last_offset": q.end_offset - 1,
                                       "bytes": q.size, "file": os.path.basename(q.path)}
                                      for q in p.log.quarantined]
            rows.append(row)
        return rows

    def ensure_topic(self, name: str, may_create: bool = True) -> KafkaError | None:
        """A produce to a topic the cluster doesn't have: with ``auto.create.topics.enable``
        (and ``may_create``: the client is authorized to create it) the controller is
        asked to create it, and the producer is told to retry (UNKNOWN_TOPIC_OR_PARTITION
        is retriable; its metadata refresh then finds it)."""
        if name in self.image.topics:
            return None
        try:
            validate_topic_name(name)
        except KafkaError as exc:
            return exc
        if self.config.auto_create_topics_enable and may_create and name not in self._creating:
            self._creating.add(name)
            task = asyncio.get_running_loop().create_task(self.create_topic_now(name))
            task.add_done_callback(lambda _t: self._creating.discard(name))
        return UnknownTopicOrPartition(f"Topic {name} not present in metadata")

    async def create_topic_now(self, name: str) -> dict:
        """Auto-create with the cluster's defaults; returns the controller's result."""
        try:
            results = await self.controller.create_topics([{"name": name, "num_partitions": -1, "replication_factor": -1}])
        except KafkaError as exc:
            return {"name": name, "error_code": exc.code, "error_message": exc.detail}
        return results[0]

    async def alter_partition(self, topic: str, partition: int, leader_epoch: int, partition_epoch: int,
                              new_isr: list[int]) -> PartitionState:
        state = await self.controller.alter_partition(topic, partition, self.node_id, leader_epoch, partition_epoch, new_isr)
        local = self.logs.partitions.get((topic, partition))
        if local is not None and local.apply_state(state):
            self.replicas.on_states_applied([local])
        return state

    def request_stop(self) -> None:
        self.stop_requested.set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._start_listeners()
        self.logs.start_flusher(loop.call_soon_threadsafe)
        link = ShmLink(self)
        link.start()
        if link.attached:
            self.shm = link
        self._tasks.append(loop.create_task(self._housekeeping()))
        self._tasks.append(loop.create_task(self._log_cleaner()))
        self._tasks.append(loop.create_task(self.repairer.run()))
        if self.config.log_scrub_interval_ms > 0:
            self._tasks.append(loop.create_task(self._log_scrubber()))
        self.controller.start(self)
        self.replicas.start()
        log.info("broker %d listening on %s", self.node_id, ", ".join(
            f"{a.listener.name} {a.port}" if a.listener.name != listeners.INTERNAL else f"{a.listener.name} {self.internal_socket}"
            for a in self.acceptors))

    def _start_listeners(self) -> None:
        """Bind every listener (an OSError, e.g. a port taken, fails the start), TLS
        contexts first so a bad certificate fails before anything listens."""
        from pybroker.security import tls

        contexts = {}
        for listener in self.listeners:
            if listener.uses_tls:
                contexts[listener.name] = tls.server_context(self.config.ssl_certfile, self.config.ssl_keyfile,
                                                             self.config.ssl_cafile, self.config.ssl_client_auth)
        bound = []
        try:
            for listener in self.listeners:
                bound.append((listener, listen_sockets(self.config.host, listener.port)))
            if self.internal_socket:
                internal = listeners.Listener(listeners.INTERNAL, listeners.PLAINTEXT, 0)
                bound.append((internal, listen_unix(self.internal_socket)))
        except OSError:
            for _listener, sockets in bound:
                for sock in sockets:
                    sock.close()
            raise
        memory = None
        for listener, sockets in bound:
            acceptor = Acceptor(self, sockets, listener, contexts.get(listener.name), memory=memory,
                                expires=not self.acceptors)
            memory = acceptor.memory
            acceptor.start()
            self.acceptors.append(acceptor)
        self.acceptor = self.acceptors[0]
        self.port = self.acceptor.port

    async def stop(self) -> None:
        """Stop accepting, answer waiting fetches, close connections, flush and mark the
        shutdown clean."""
        self.stopping = True
        for fut in list(self._stop_waiters):
            if not fut.done():
                fut.set_result(None)
        for acceptor in self.acceptors:
            acceptor.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.sleep(0)
        for conn in list(self.connections):
            conn.close()
        await self.replicas.stop()
        if self.shm is not None:
            await self.shm.stop()
        await self.controller.stop()
        self.logs.close()
        log.info("broker %d stopped cleanly", self.node_id)

    def register_stop_waiter(self, fut: asyncio.Future) -> None:
        self._stop_waiters.add(fut)

    def unregister_stop_waiter(self, fut: asyncio.Future) -> None:
        self._stop_waiters.discard(fut)

    async def _housekeeping(self) -> None:
        retention_every = self.config.log_retention_check_interval_ms / 1000.0
        next_retention = time.monotonic() + retention_every
        checkpoint_every = self.config.log_flush_offset_checkpoint_interval_ms / 1000.0
        next_checkpoint = time.monotonic() + checkpoint_every
        while True:
            await asyncio.sleep(min(1.0, retention_every, checkpoint_every))
            now = time.monotonic()
            self.quotas.expire(now * 1000.0)
            if now >= next_retention:
                next_retention = now + retention_every
                deleted = self.logs.apply_retention(int(time.time() * 1000))
                if deleted:
                    log.info("retention deleted %d segments", deleted)
            if now >= next_checkpoint:
                next_checkpoint = now + checkpoint_every
                # fsyncs and checkpoint writes run on the flusher thread, never here.
                await self.logs.flush()

    async def _log_cleaner(self) -> None:
        """Kafka's log cleaner: compact one partition at a time, the heavy part on a worker
        thread, and rest ``log_cleaner_backoff_ms`` whenever none needs cleaning."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-cleaner")
        try:
            while True:
                backoff = int(self.dynamic_config("log.cleaner.backoff.ms", self.config.log_cleaner_backoff_ms)) / 1000.0
                try:
                    cleaned = await self.logs.clean_next(executor)
                except KafkaError as exc:
                    log.warning("log cleaner: %s", exc)
                    cleaned = False
                if not cleaned:
                    await asyncio.sleep(backoff)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    async def _log_scrubber(self) -> None:
        """The opt-in background scrubber (``log_scrub_interval_ms``): a pass over the
        closed segments not yet checked, on a worker thread at most
        ``log_scrub_max_mb_per_s``, then a rest of the interval."""
        interval = self.config.log_scrub_interval_ms / 1000.0
        rate = self.config.log_scrub_max_mb_per_s * 1e6
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-scrubber")
        try:
            while True:
                await asyncio.sleep(interval)
                started = time.monotonic()
                try:
                    checked, found = await self.logs.scrub(executor, rate)
                except KafkaError as exc:
                    log.warning("log scrubber: %s", exc)
                    continue
                if checked:
                    elapsed = time.monotonic() - started
                    log.info("scrubbed %d bytes in %.1f s (%.1f MB/s): %d damaged ranges quarantined",
                             checked, elapsed, checked / max(elapsed, 1e-9) / 1e6, found)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def dynamic_config(self, name: str, static):
        """A runtime-changeable broker setting: this broker's dynamic value, else the
        cluster-wide dynamic default, else ``static`` (Kafka's order of precedence)."""
        for key in ((RESOURCE_BROKER, str(self.node_id)), (RESOURCE_BROKER, "")):
            value = self.image.resource_configs.get(key, {}).get(name)
            if value is not None:
                return value
        return static

    # -- requests ----------------------------------------------------------------------

    async def handle_frame(self, conn: Connection, frame: memoryview):
        """Decode, dispatch, encode. Returns the response chunks, None for no response,
        or False to close the connection."""
        try:
            request = api.decode_request(frame)
            request.size = len(frame)
            request.peer = conn.peer
            request.principal = conn.principal
            request.listener = conn.listener_name
            if not self.serving.is_set() and request.api_key != api.API_VERSIONS:
                await self.serving.wait()
        except api.UnsupportedVersionRequest as exc:
            if exc.api_key == api.API_VERSIONS:
                return [api.encode_api_versions_fallback(exc.correlation_id)]
            _refused_frame_log("closing %s: unsupported %s v%d", conn.peer,
                               api.API_NAMES.get(exc.api_key, exc.api_key), exc.api_version)
            return False
        except api.MalformedFrame as exc:
            _refused_frame_log("closing %s: malformed request: %s", conn.peer, exc)
            return False
        entry = self._handlers.get(request.api_key)
        if entry is None:
            _refused_frame_log("closing %s: no handler for api key %d", conn.peer, request.api_key)
            return False
        handler, is_async = entry
        timed = self.quotas.request.enabled and _request_quota_applies(request)
        started = time.perf_counter()
        try:
            if timed:
                body, busy_s = await _timed_call(handler, self, request, is_async)
            else:
                body = await handler(self, request) if is_async else handler(self, request)
        finally:
            self.stats.on_request(_request_name(request), (time.perf_counter() - started) * 1000.0)
        if timed and body is not None:
            self._throttle_for_request_time(request, body, busy_s)
        if request.throttle_ms:
            # KIP-219: answered now, with throttle_time_ms; the connection then reads
            # nothing more from this client for that long.
            conn.throttle(request.throttle_ms)
        if body is None:
            return None
        try:
            return api.encode_response(request.api_key, request.api_version, request.correlation_id, body)
        except Exception:
            release_regions(_regions_in(body))
            raise


    def _throttle_for_request_time(self, request, body: dict, busy_s: float) -> None:
        """request_percentage (KIP-124): the time this request held the event loop, as a
        percentage of one thread's second; over the quota, the response carries the
        larger of this and any byte-rate throttle."""
        throttle = self.quotas.request.record(request.principal, request.client_id,
                                              busy_s * PERCENT_PER_SECOND, time.monotonic() * 1000.0)
        if throttle > request.throttle_ms:
            request.throttle_ms = throttle
            if api.has_throttle_time(request.api_key, request.api_version):
                body["throttle_time_ms"] = throttle
            if request.api_key == api.FETCH and body.get("responses"):
                empty_for_throttle(self, request, body)


# Kafka's requests exempt from request_percentage: ApiVersions (a client needs it to talk
# at all), and the cluster's own traffic (markers, replication).
_REQUEST_QUOTA_EXEMPT = frozenset({api.API_VERSIONS, api.WRITE_TXN_MARKERS})


def _request_quota_applies(request) -> bool:
    if request.api_key in _REQUEST_QUOTA_EXEMPT or request.principal == INTER_BROKER_PRINCIPAL:
        return False
    if request.api_key == api.FETCH:
        return request.body.get("replica_id", -1) < 0
    if request.api_key == api.PRODUCE:
        return request.body.get("acks") != 0
    return True


class _TimedAwait:
    """Drives a handler's coroutine and adds up the time each of its steps holds the
    event loop, leaving out the time it waits (a long poll, replication): Kafka counts
    a request handler thread's time, not the request's latency."""

    __slots__ = ("coro", "busy_s")

    def __init__(self, coro):
        self.coro = coro
        self.busy_s = 0.0

    def __await__(self):
        steps = self.coro.__await__()
        value, error = None, None
        while True:
            began = time.perf_counter()
            try:
                yielded = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as done:
                self.busy_s += time.perf_counter() - began
                return done.value
            self.busy_s += time.perf_counter() - began
            value, error = None, None
            try:
                value = yield yielded
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # noqa: BLE001  (cancellation too goes into the handler)
                error = exc


async def _timed_call(handler, broker, request, is_async: bool) -> tuple:
    """(the handler's body, seconds it held the event loop)."""
    if not is_async:
        began = time.perf_counter()
        body = handler(broker, request)
        return body, time.perf_counter() - began
    timed = _TimedAwait(handler(broker, request))
    body = await timed
    return body, timed.busy_s


def _request_name(request) -> str:
    """The ``request`` label of Kafka's RequestMetrics: Fetch is split into FetchConsumer
    and FetchFollower (a follower's long polls would drown a consumer's latency)."""
    if request.api_key == api.FETCH:
        return "FetchFollower" if request.body.get("replica_id", -1) >= 0 else "FetchConsumer"
    return api.API_NAMES[request.api_key]


def _regions_in(body) -> list:
    found = []
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif getattr(item, "is_file_region", False):
            found.append(item)
    return found
