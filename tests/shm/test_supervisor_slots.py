"""The supervisor's side of the offsets table: an adopted region loses the rows of
topics that no longer exist, and a table without room never fails topic creation."""
from __future__ import annotations

from pybroker import shm
from pybroker.cluster.metadata import BrokerInfo
from pybroker.supervisor.arbiter import Supervisor
from shm_processes import TOPIC_ID


def test_adopted_region_drops_rows_of_topics_deleted_meanwhile(tmp_path):
    supervisor = Supervisor(str(tmp_path), brokers=1)
    name = shm.region_name(supervisor.data_dir)
    old = shm.SharedRegion.create(name, brokers=2, slots=64, ring_bytes=8192, ring_count=1)
    try:
        old.offsets.allocate("gone", 0, TOPIC_ID)  # the dead supervisor never released it
        supervisor._open_region(adopting=True)
        assert supervisor.region is not None
        assert supervisor.region.offsets.find("gone", 0) is None
    finally:
        if supervisor.region is not None:
            supervisor.region.close()
        old.close()
        old.unlink()


def test_create_topics_beyond_the_table_succeeds_and_the_rows_it_had_go_to_waiting_partitions(tmp_path):
    supervisor = Supervisor(str(tmp_path), brokers=1, shm_slots=16)  # 12 usable rows
    supervisor.metadata.load_into(supervisor.controller)
    supervisor._open_region(adopting=False)
    region = supervisor.region
    try:
        service, controller = supervisor.service, supervisor.controller
        service.apply(controller.register_broker, BrokerInfo(0, "127.0.0.1", 9092, 1))
        for name in ("first", "second"):
            (result,) = service.create_topics([{"name": name, "num_partitions": 10, "replication_factor": 1}])
            assert result["error_code"] == 0, result
        assert len(controller.partitions) == 20
        assert sum(region.offsets.find("first", i) is not None for i in range(10)) == 10
        assert sum(region.offsets.find("second", i) is not None for i in range(10)) == 2
        assert service.delete_topics(["first"])[0]["error_code"] == 0
        assert sum(region.offsets.find("second", i) is not None for i in range(10)) == 10
    finally:
        supervisor.metadata.close()
        region.close()
        region.unlink()
