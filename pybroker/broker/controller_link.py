"""How a broker reaches the controller and the group coordinator.

Two implementations of one interface:
- ``RemoteController``: the supervisor process, over the control channel (Unix socket).
  It registers the broker, receives ``update`` pushes, answers ``describe``, and
  reconnects when the supervisor restarts; the broker keeps serving meanwhile with the
  image it has.
- ``LocalController``: a controller and group coordinator in this very process (one
  event loop, possibly several in-process brokers) — for tests and embedding.

Interface (all coroutines): ``create_topics(topics, validate_only)``,
``delete_topics(names)``, ``create_partitions(topics, validate_only)``,
``alter_configs(resources, incremental, validate_only)``, ``elect_leaders(unclean, partitions)``,
``alter_reassignments(partitions, allow_replication_factor_change)``,
``create_acls(creations)``, ``delete_acls(filters)``, ``alter_client_quotas(entries, validate_only)``,
``alter_partition(topic, partition, leader, leader_epoch, partition_epoch, isr) ->
PartitionState``, ``group(method, group_id, args)``, ``txn(method, args)``.
"""
from __future__ import annotations

import asyncio
import logging
import os

from pybroker import errors
from pybroker.cluster.controller import Controller, ControllerService, delta_to_json, image_to_json
from pybroker.cluster.metadata import BrokerInfo, PartitionState
from pybroker.broker.txn_markers import write_txn_markers
from pybroker.control.channel import Channel

log = logging.getLogger("pybroker.broker")

# How long a control request may wait for the supervisor's answer; a group request may
# wait longer, as long as the group protocol lets it (``group_wait_s``).
CONTROL_TIMEOUT_S = 30.0
# A JoinGroup is answered once every member has rejoined or the rebalance timeout has
# passed; the answer then needs a moment more to come back.
GROUP_WAIT_MARGIN_S = 5.0
# Kafka's default rebalance timeout (max.poll.interval.ms): how long a SyncGroup may wait
# for its group's leader, whose own timeout the broker does not know.
DEFAULT_REBALANCE_TIMEOUT_MS = 300_000


def group_wait_s(method: str, args: dict) -> float:
    """How long a forwarded group request may wait for the coordinator."""
    if method == "join":
        timeout_ms = args.get("rebalance_timeout_ms", -1)
        if timeout_ms is None or timeout_ms < 0:
            timeout_ms = args.get("session_timeout_ms", 0)
        return max(CONTROL_TIMEOUT_S, timeout_ms / 1000.0 + GROUP_WAIT_MARGIN_S)
    if method == "sync":
        return DEFAULT_REBALANCE_TIMEOUT_MS / 1000.0 + GROUP_WAIT_MARGIN_S
    return CONTROL_TIMEOUT_S

# Counters and led partitions go to the supervisor with every second heartbeat (2 s): the
# resolution of /metrics and of the console's throughput charts.
REPORT_EVERY_BEATS = 2


class RemoteController:
    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.channel: Channel | None = None
        self.broker = None
        self._task: asyncio.Task | None = None
        self._applying: set[asyncio.Task] = set()

    def start(self, broker) -> None:
        self.broker = broker
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for task in list(self._applying):
            task.cancel()
        if self.channel is not None:
            self.channel.close()

    async def _run(self) -> None:
        broker = self.broker
        delay = 0.05
        while True:
            try:
                channel = await Channel.connect(self.socket_path, name="supervisor")
            except (FileNotFoundError, ConnectionError, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            self.channel = channel
            serving = asyncio.get_running_loop().create_task(channel.serve(self._handle))
            try:
                # The image is applied as the answer is read: updates the supervisor
                # pushes right after it (another broker registering) are newer.
                await channel.request({
                    "type": "register", "node_id": broker.node_id, "host": broker.config.advertised,
                    "port": broker.port, "pid": os.getpid(), "listeners": broker.listener_ports(),
                    "internal_socket": broker.internal_socket or "", "rack": broker.config.broker_rack or None,
                }, on_reply=lambda reply: self._apply(reply["image"], full=True))
                log.info("broker %d registered with the supervisor", broker.node_id)
                beats = 0
                while not channel.closed.is_set():
                    try:
                        await asyncio.wait_for(channel.closed.wait(), 1.0)
                    except asyncio.TimeoutError:
                        channel.send({"type": "heartbeat", "node_id": broker.node_id})
                        beats += 1
                        if beats % REPORT_EVERY_BEATS == 0:
                            channel.send({"type": "report", "node_id": broker.node_id, **broker.report()})
            except (ConnectionError, asyncio.TimeoutError, errors.KafkaError) as exc:
                log.info("control channel lost (%s); reconnecting", exc)
            finally:
                channel.close()
                serving.cancel()
            await asyncio.sleep(0.2)

    def _apply(self, doc: dict, full: bool = False) -> None:
        """Queue a push behind the ones before it (they apply in arrival order, a few
        hundred partitions per event-loop turn, so heartbeats keep flowing meanwhile)."""
        task = asyncio.get_running_loop().create_task(self.broker.apply_update_in_steps(doc, full))
        self._applying.add(task)
        task.add_done_callback(self._applied)

    def _applied(self, task: asyncio.Task) -> None:
        self._applying.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("applying the controller's update failed", exc_info=task.exception())

    def _handle(self, doc: dict):
        kind = doc["type"]
        if kind == "update":
            self._apply(doc)
            return None
        if kind == "describe":
            return {"partitions": self.broker.describe_partitions()}
        if kind == "shutdown":
            self.broker.request_stop()
            return {}
        if kind == "write_txn_markers":
            return write_txn_markers(self.broker, doc["markers"])
        raise errors.InvalidRequest(f"a broker does not handle {kind}")

    async def _request(self, doc: dict, timeout: float = CONTROL_TIMEOUT_S) -> dict:
        """The supervisor's answer, or a Kafka error: NOT_CONTROLLER when it cannot be
        reached, REQUEST_TIMED_OUT when it does not answer within ``timeout``."""
        if self.channel is None or self.channel.closed.is_set():
            raise errors.NotController("the supervisor is not reachable")
        try:
            return await self.channel.request(doc, timeout=timeout)
        except ConnectionError:
            raise errors.NotController("the supervisor went away") from None
        except asyncio.TimeoutError:
            raise errors.RequestTimedOut(f"the supervisor did not answer {doc['type']} within {timeout:.0f} s") from None

    async def _change(self, doc: dict) -> dict:
        """An admin change's answer, once this broker has applied every push that came
        before it (the supervisor pushes a change before it answers, on the same
        channel): what the client was told was done, this broker's Metadata shows."""
        reply = await self._request(doc)
        pending = list(self._applying)
        if pending:
            await asyncio.wait(pending)
        return reply

    async def create_topics(self, topics: list[dict], validate_only: bool = False) -> list[dict]:
        return (await self._change({"type": "create_topics", "topics": topics, "validate_only": validate_only}))["results"]

    async def delete_topics(self, names: list[str]) -> list[dict]:
        return (await self._change({"type": "delete_topics", "names": names}))["results"]

    async def create_partitions(self, topics: list[dict], validate_only: bool = False) -> list[dict]:
        return (await self._change({"type": "create_partitions", "topics": topics, "validate_only": validate_only}))["results"]

    async def alter_configs(self, resources: list[dict], incremental: bool,
                            validate_only: bool = False) -> list[dict]:
        return (await self._change({"type": "alter_configs", "resources": resources, "incremental": incremental,
                                     "validate_only": validate_only}))["results"]

    async def alter_scram_credentials(self, deletions: list[dict], upsertions: list[dict]) -> list[dict]:
        return (await self._change({"type": "alter_scram_credentials", "deletions": deletions,
                                     "upsertions": upsertions}))["results"]

    async def alter_client_quotas(self, entries: list[dict], validate_only: bool = False) -> list[dict]:
        return (await self._change({"type": "alter_client_quotas", "entries": entries,
                                     "validate_only": validate_only}))["results"]

    async def elect_leaders(self, unclean: bool, partitions: list[list] | None) -> list[list]:
        return (await self._change({"type": "elect_leaders", "unclean": unclean, "partitions": partitions}))["results"]

    async def alter_reassignments(self, partitions: list[list], allow_replication_factor_change: bool) -> list[list]:
        return (await self._change({"type": "alter_reassignments", "partitions": partitions,
                                     "allow_replication_factor_change": allow_replication_factor_change}))["results"]

    async def create_acls(self, creations: list[list]) -> list[list]:
        return (await self._change({"type": "create_acls", "creations": creations}))["results"]

    async def delete_acls(self, filters: list[list]) -> list[dict]:
        return (await self._change({"type": "delete_acls", "filters": filters}))["results"]

    async def alter_partition(self, topic, partition, leader, leader_epoch, partition_epoch, isr) -> PartitionState:
        reply = await self._request({
            "type": "alter_partition", "topic": topic, "partition": partition, "leader": leader,
            "leader_epoch": leader_epoch, "partition_epoch": partition_epoch, "isr": list(isr),
        })
        return PartitionState.from_json(reply["state"])

    async def group(self, method: str, group_id: str, args: dict):
        """A group request, answered by the coordinator in the supervisor. When the
        supervisor cannot answer, the client hears it in the group protocol's words:
        COORDINATOR_NOT_AVAILABLE (find the coordinator again, retry), or for a
        JoinGroup/SyncGroup that outlived its wait REBALANCE_IN_PROGRESS (rejoin)."""
        try:
            reply = await self._request({"type": "group", "method": method, "group_id": group_id, "args": args},
                                        timeout=group_wait_s(method, args))
        except errors.NotController as exc:
            raise errors.CoordinatorNotAvailable(exc.detail) from None
        except errors.RequestTimedOut as exc:
            if method in ("join", "sync"):
                raise errors.RebalanceInProgress(exc.detail) from None
            raise errors.CoordinatorNotAvailable(exc.detail) from None
        return reply["result"]

    async def txn(self, method: str, args: dict):
        return (await self._request({"type": "txn", "method": method, "args": args}))["result"]


class LocalController:
    """Controller and group coordinator inside this process, shared by in-process brokers."""

    def __init__(self, controller: Controller | None = None, groups=None, default_partitions: int = 1,
                 default_replication_factor: int = 1, txns=None):
        self.controller = controller or Controller()
        self.brokers: dict[int, object] = {}
        self.service = ControllerService(self.controller, persist=lambda records: None, publish=self._publish,
                                         default_partitions=default_partitions,
                                         default_replication_factor=default_replication_factor)
        self.groups = groups
        # A TransactionHost built with ``leader_of`` and ``send_markers`` below.
        self.txns = txns
        if groups is not None:
            groups.watch_topics(self.controller.topics, self.controller.resource_configs)

    def start(self, broker) -> None:
        self.brokers[broker.node_id] = broker
        self.service.apply(self.controller.register_broker,
                           BrokerInfo(broker.node_id, broker.config.advertised, broker.port, os.getpid(),
                                      tuple(broker.listener_ports()), broker.internal_socket or "",
                                      broker.config.broker_rack or None))
        broker.apply_update(image_to_json(self.controller), full=True)

    async def stop(self) -> None:
        return None

    def _publish(self, delta) -> None:
        if self.groups is not None and (delta.topics or delta.deleted_topics):
            self.groups.topics_changed()
        doc = delta_to_json(delta, self.controller)
        for broker in list(self.brokers.values()):
            broker.apply_update(doc)

    async def create_topics(self, topics, validate_only=False):
        return self.service.create_topics(topics, validate_only)

    async def delete_topics(self, names):
        return self.service.delete_topics(names)

    async def create_partitions(self, topics, validate_only=False):
        return self.service.create_partitions(topics, validate_only)

    async def alter_configs(self, resources, incremental, validate_only=False):
        return self.service.alter_configs(resources, incremental, validate_only)

    async def elect_leaders(self, unclean, partitions):
        return self.service.elect_leaders(unclean, partitions)

    async def alter_reassignments(self, partitions, allow_replication_factor_change):
        return self.service.alter_partition_reassignments(partitions, allow_replication_factor_change)

    async def create_acls(self, creations):
        return self.service.create_acls(creations)

    async def delete_acls(self, filters):
        return self.service.delete_acls(filters)

    async def alter_scram_credentials(self, deletions, upsertions):
        return self.service.alter_scram_credentials(deletions, upsertions)

    async def alter_client_quotas(self, entries, validate_only=False):
        return self.service.alter_client_quotas(entries, validate_only)

    async def alter_partition(self, topic, partition, leader, leader_epoch, partition_epoch, isr):
        return self.service.alter_partition(topic, partition, leader, leader_epoch, partition_epoch, isr)

    async def group(self, method: str, group_id: str, args: dict):
        if self.groups is None:
            raise errors.CoordinatorNotAvailable("no group coordinator in this process")
        return await self.groups.handle(method, group_id, args)

    async def txn(self, method: str, args: dict):
        if self.txns is None:
            raise errors.CoordinatorNotAvailable("no transaction coordinator in this process")
        return await self.txns.handle(method, args)

    def leader_of(self, topic: str, partition: int) -> int | None:
        state = self.controller.partitions.get((topic, partition))
        return None if state is None else state.leader

    async def send_markers(self, node_id: int, doc: dict) -> dict:
        broker = self.brokers.get(node_id)
        if broker is None:
            raise ConnectionError(f"broker {node_id} is not in this process")
        return await write_txn_markers(broker, doc["markers"])
