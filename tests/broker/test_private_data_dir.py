"""Private by default: after a cluster has run (topics written, a group committed, a clean
stop), every directory under the data dir is 0700 and every file 0600, whatever the
umask of the user who started it and even in a data dir that existed at 0755."""
from __future__ import annotations

import os
import stat

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pybroker.testing import BrokerCluster

pytestmark = pytest.mark.timeout(120)


def _modes(root) -> tuple[dict[str, int], dict[str, int]]:
    dirs, files = {}, {}
    for path, dirnames, filenames in os.walk(root):
        dirs[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
        for name in filenames:
            full = os.path.join(path, name)
            files[os.path.relpath(full, root)] = stat.S_IMODE(os.lstat(full).st_mode)
    return dirs, files


def test_every_file_is_0600_and_every_directory_0700_after_a_cluster_run(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # as an older version, or a user's mkdir, left it
    old_umask = os.umask(0o022)  # the common default: files 0644, directories 0755
    try:
        cluster = BrokerCluster(data_dir=data, brokers=3, start_timeout=60).start()
    finally:
        os.umask(old_umask)
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("private", 2, 3)])["private"].result(20)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                             "enable.idempotence": True})
        for i in range(200):
            producer.produce("private", b"secret-%d" % i, key=b"%d" % i)
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "private-group",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(["private"])
        got = 0
        for _ in range(100):
            got += sum(1 for m in consumer.consume(200, 0.5) if not m.error())
            if got >= 200:
                break
        assert got == 200
        consumer.commit(asynchronous=False)
        consumer.close()
    finally:
        assert cluster.stop() == 0

    dirs, files = _modes(data)
    kinds = {os.path.splitext(name)[1] or os.path.basename(name) for name in files}
    # What the run must have written, so the check covers it.
    for kind in (".log", ".index", ".timeindex", "leader-epoch-checkpoint", "cluster-id"):
        assert kind in kinds, f"no {kind} file under {data}: {sorted(kinds)}"
    assert any(name.startswith("logs" + os.sep) for name in files)
    assert any(name.startswith("meta" + os.sep) for name in files)
    loose_dirs = {name: oct(mode) for name, mode in dirs.items() if mode != 0o700}
    loose_files = {name: oct(mode) for name, mode in files.items() if mode & 0o077}
    assert not loose_dirs, f"directories other users can enter: {loose_dirs}"
    assert not loose_files, f"files other users can read: {loose_files}"
