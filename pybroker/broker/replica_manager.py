"""The broker's replication duties (Kafka's ReplicaManager, data-plane half).

- Follower partitions are fetched by one ``ReplicaFetcher`` per leader broker; when the
  controller's states move a partition to another leader (or make it leader here), it
  moves between fetchers (``on_states_applied``).
- Leader partitions propose ISR changes to the controller through
  ``broker.alter_partition``: a shrink when a follower has not been caught up for
  ``replica.lag.time.max.ms`` (checked every half of it), an expand when an out-of-sync
  follower's fetch shows it caught up (checked on each follower fetch). One proposal per
  partition is in flight at a time; the controller's answer is applied as a new state.
- With a shared-memory region (``broker.shm``), a partition that becomes led here, or
  whose high watermark moves with a new state, has its offsets row republished.

Owned by the broker's event loop thread (not thread-safe).
"""
from __future__ import annotations

import asyncio
import logging

from pybroker.broker.replica_fetcher import ReplicaFetcher
from pybroker.errors import KafkaError

log = logging.getLogger("pybroker.replication")


class ReplicaManager:
    def __init__(self, broker):
        self.broker = broker
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._isr_task: asyncio.Task | None = None
        self._proposals: set[asyncio.Task] = set()

    @property
    def node_id(self) -> int:
        return self.broker.node_id

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._isr_task is None:
            self._isr_task = asyncio.get_running_loop().create_task(self._check_isr_periodically())

    async def stop(self) -> None:
        tasks = list(self._proposals)
        if self._isr_task is not None:
            tasks.append(self._isr_task)
            self._isr_task = None
        for task in tasks:
            task.cancel()
        fetchers, self.fetchers = list(self.fetchers.values()), {}
        await asyncio.gather(*(f.stop() for f in fetchers), *tasks, return_exceptions=True)

    # -- followers ---------------------------------------------------------------------

    def on_states_applied(self, changed: list) -> None:
        """Partitions whose state changed: follow their new leader, or stop following."""
        shm = getattr(self.broker, "shm", None)
        for partition in changed:
            key = (partition.topic, partition.index)
            if shm is not None and partition.is_leader:
                shm.mark_dirty(partition)
            target = None
            if not partition.is_leader and partition.leader >= 0 and partition.node_id in partition.replicas:
                target = partition.leader
            for leader_id, fetcher in list(self.fetchers.items()):
                if leader_id != target:
                    fetcher.remove_partition(key)
            if target is not None:
                fetcher = self.fetchers.get(target)
                if fetcher is None:
                    fetcher = self.fetchers[target] = ReplicaFetcher(self.broker, target)
                    fetcher.start()
                fetcher.add_partition(partition)
        for leader_id, fetcher in list(self.fetchers.items()):
            if not fetcher.partitions:
                del self.fetchers[leader_id]
                self._spawn(fetcher.stop())

    def remove_partition(self, partition) -> None:
        """The partition is going away (topic deleted, replica moved): stop fetching it."""
        for fetcher in self.fetchers.values():
            fetcher.remove_partition((partition.topic, partition.index))
        shm = getattr(self.broker, "shm", None)
        if shm is not None:
            shm.forget(partition.topic, partition.index)

    # -- leaders: ISR ------------------------------------------------------------------

    def on_follower_fetch(self, partition) -> None:
        new_isr = partition.isr_to_expand()
        if new_isr is not None:
            self.propose_isr(partition, new_isr)

    def check_isr(self) -> None:
        lag = self.broker.config.replica_lag_time_max_ms
        for partition in list(self.broker.logs.partitions.values()):
            new_isr = partition.isr_to_shrink(lag)
            if new_isr is not None:
                self.propose_isr(partition, new_isr)

    async def _check_isr_periodically(self) -> None:
        interval = max(0.01, self.broker.config.replica_lag_time_max_ms / 2000.0)
        while self._isr_task is not None:
            await asyncio.sleep(interval)
            try:
                self.check_isr()
            except KafkaError as exc:
                log.warning("ISR check failed: %s", exc)

    def propose_isr(self, partition, new_isr: list[int]) -> None:
        partition.isr_change_pending = True
        self._spawn(self._alter_partition(partition, list(new_isr)))

    async def _alter_partition(self, partition, new_isr: list[int]) -> None:
        log.info("%s-%d: proposing ISR %s (was %s) at leader epoch %d, partition epoch %d",
                 partition.topic, partition.index, new_isr, partition.isr,
                 partition.leader_epoch, partition.partition_epoch)
        before = list(partition.isr)
        try:
            state = await self.broker.alter_partition(
                partition.topic, partition.index, partition.leader_epoch, partition.partition_epoch, new_isr)
        except KafkaError as exc:
            log.info("%s-%d: ISR change to %s refused: %s", partition.topic, partition.index, new_isr, exc)
            return
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("%s-%d: ISR change to %s failed: %s", partition.topic, partition.index, new_isr, exc)
            return
        finally:
            partition.isr_change_pending = False
        if state is not None:
            # Against the ISR at proposal time: the controller's push of the new state may
            # have reached this broker before its answer did.
            self.broker.stats.on_isr_change(before, list(state.isr))
        if state is not None and partition.apply_state(state):
            shm = getattr(self.broker, "shm", None)
            if shm is not None and partition.is_leader:
                shm.mark_dirty(partition)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._proposals.add(task)
        task.add_done_callback(self._proposals.discard)
