"""The replica repairer looks over every partition only after some log was quarantined;
between such events a pass costs nothing per partition (an idle broker of 20,000
partitions must not walk them every few seconds)."""
import asyncio
import types

from pybroker.broker.replica_repair import ReplicaRepairer
from pybroker.log import damage


class CountingPartition:
    """A partition whose ``log`` counts how often the repairer looks at it."""

    def __init__(self, quarantined=()):
        self.looked = 0
        self._log = types.SimpleNamespace(quarantined=list(quarantined), closed=False)
        self.replicas = [0]          # one replica: nothing to repair from, the range stays

    @property
    def log(self):
        self.looked += 1
        return self._log


def test_a_pass_looks_at_every_partition_only_after_a_quarantine():
    healthy = {("t", i): CountingPartition() for i in range(1000)}
    damaged = CountingPartition(quarantined=[object()])
    partitions = {**healthy, ("d", 0): damaged}
    repairer = ReplicaRepairer(types.SimpleNamespace(logs=types.SimpleNamespace(partitions=partitions)))

    def run_pass():
        asyncio.run(repairer.repair_pass(executor=None))

    run_pass()                                   # the first pass: everything
    assert all(p.looked for p in healthy.values()) and damaged.looked
    before = {k: p.looked for k, p in partitions.items()}
    run_pass()                                   # nothing new: only the damaged one again
    assert all(p.looked == before[k] for k, p in healthy.items())
    assert damaged.looked > before[("d", 0)]
    damage.note_quarantined()                    # a log came to hold a range: all again
    run_pass()
    assert all(p.looked > before[k] for k, p in healthy.items())
