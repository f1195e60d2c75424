"""The broker: a Kafka listener in front of this process's partitions.

One asyncio event loop thread owns everything here (connections, partitions, logs); there
is no locking because nothing is shared across threads. Requests are decoded, dispatched
to one handler per API (``pybroker.broker.apis``), and answered in order per connection.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time

from pybroker.broker.apis import HANDLERS
from pybroker.broker.apis.fetch import release_regions
from pybroker.broker.connection import Connection
from pybroker.broker.group_host import GroupHost
from pybroker.broker.log_manager import LogManager
from pybroker.config import BrokerConfig
from pybroker.errors import KafkaError
from pybroker.protocol import api

log = logging.getLogger("pybroker.broker")

# How often partitions write their recovery point (Kafka's
# log.flush.offset.checkpoint.interval.ms): after a crash, recovery validates only what
# was appended since.
CHECKPOINT_INTERVAL_S = 60.0


class Broker:
    def __init__(self, config: BrokerConfig):
        self.config = config
        self.node_id = config.broker_id
        self.logs = LogManager(config)
        self.groups = GroupHost(self.logs.data_dir)
        self.port = config.port
        self.connections: set[Connection] = set()
        self.stopping = False
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._stop_waiters: set[asyncio.Future] = set()
        self.api_versions = {k: v for k, v in api.SUPPORTED_VERSIONS.items() if k in HANDLERS}
        self._handlers = {k: (h, inspect.iscoroutinefunction(h)) for k, h in HANDLERS.items()}

    # -- cluster view (a single broker until the supervisor joins) ------------------------

    @property
    def live_broker_count(self) -> int:
        return 1

    @property
    def live_broker_ids(self) -> list[int]:
        return [self.node_id]

    def ensure_topic(self, name: str) -> KafkaError | None:
        """Auto-create a topic on first produce, as ``auto.create.topics.enable`` allows.
        Returns the error to report for every partition, or None."""
        if name in self.logs.topics:
            return None
        if not self.config.auto_create_topics_enable:
            from pybroker.errors import UnknownTopicOrPartition

            return UnknownTopicOrPartition(f"Topic {name} not present in metadata")
        try:
            self.logs.create_topic(name, live_brokers=self.live_broker_count)
        except KafkaError as exc:
            return exc
        return None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), self.config.host, self.config.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(loop.create_task(self._housekeeping()))
        self.groups.start()
        log.info("broker %d listening on %s:%d", self.node_id, self.config.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, answer waiting fetches, close connections, flush and mark the
        shutdown clean."""
        self.stopping = True
        for fut in list(self._stop_waiters):
            if not fut.done():
                fut.set_result(None)
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.sleep(0)
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except asyncio.TimeoutError:
                log.warning("listener did not close within 5 s")
        self.groups.close()
        self.logs.close()
        log.info("broker %d stopped cleanly", self.node_id)

    def register_stop_waiter(self, fut: asyncio.Future) -> None:
        self._stop_waiters.add(fut)

    def unregister_stop_waiter(self, fut: asyncio.Future) -> None:
        self._stop_waiters.discard(fut)

    async def _housekeeping(self) -> None:
        retention_every = self.config.log_retention_check_interval_ms / 1000.0
        next_retention = time.monotonic() + retention_every
        next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
        while True:
            await asyncio.sleep(min(1.0, retention_every))
            now = time.monotonic()
            if now >= next_retention:
                next_retention = now + retention_every
                deleted = self.logs.apply_retention(int(time.time() * 1000))
                if deleted:
                    log.info("retention deleted %d segments", deleted)
            if now >= next_checkpoint:
                next_checkpoint = now + CHECKPOINT_INTERVAL_S
                self.logs.flush()

    # -- requests ----------------------------------------------------------------------

    async def handle_frame(self, conn: Connection, frame: memoryview):
        """Decode, dispatch, encode. Returns the response chunks, None for no response,
        or False to close the connection."""
        try:
            request = api.decode_request(frame)
            request.peer = conn.peer
        except api.UnsupportedVersionRequest as exc:
            if exc.api_key == api.API_VERSIONS:
                return [api.encode_api_versions_fallback(exc.correlation_id)]
            log.info("closing %s: unsupported %s v%d", conn.peer, api.API_NAMES.get(exc.api_key, exc.api_key), exc.api_version)
            return False
        except api.MalformedFrame as exc:
            log.info("closing %s: malformed request: %s", conn.peer, exc)
            return False
        entry = self._handlers.get(request.api_key)
        if entry is None:
            log.info("closing %s: no handler for api key %d", conn.peer, request.api_key)
            return False
        handler, is_async = entry
        body = await handler(self, request) if is_async else handler(self, request)
        if body is None:
            return None
        try:
            return api.encode_response(request.api_key, request.api_version, request.correlation_id, body)
        except Exception:
            release_regions(_regions_in(body))
            raise


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
