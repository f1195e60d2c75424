"""`pybroker verify-log`: every batch's CRC and index entry, the damaged ranges named by
segment, bytes and offsets, exit 1 on damage."""
import json
import os
import subprocess
import sys
import time

from pybroker.config import TopicConfig
from pybroker.log import Log
from pybroker.record import batch as rb

CONFIG = TopicConfig(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=4096, retention_ms=-1)


def write_log(directory, batches=60):
    log = Log.open(str(directory), CONFIG)
    now = int(time.time() * 1000)
    for i in range(batches):
        buf = bytearray(rb.build_batch([(b"k", b"v" * 40, [], now)] * 3))
        log.append(memoryview(buf), rb.parse_batches(buf, 1 << 20))
    bases = [s.base_offset for s in log.segments]
    log.close()
    return bases


def verify(*paths):
    result = subprocess.run([sys.executable, "-m", "pybroker.cli.main", "verify-log", "--json", *map(str, paths)],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout) if result.stdout else None, result.stderr


def segment(directory, base, suffix=".log"):
    return os.path.join(directory, f"{base:020d}{suffix}")


def test_a_whole_data_dir_passes(tmp_path):
    write_log(tmp_path / "broker-0" / "t-0")
    write_log(tmp_path / "broker-0" / "t-1")
    rc, report, err = verify(tmp_path)
    assert rc == 0, err
    assert [os.path.basename(p["directory"]) for p in report["partitions"]] == ["t-0", "t-1"]
    assert all(p["ok"] and p["batches"] == 60 for p in report["partitions"])


def test_a_corrupted_batch_is_reported_by_segment_bytes_and_offsets(tmp_path):
    directory = tmp_path / "t-0"
    bases = write_log(directory)
    path = segment(directory, bases[1])
    with open(path, "rb") as f:
        headers, _, _ = rb.scan_valid_prefix(f.read())
    victim = headers[2]
    with open(path, "r+b") as f:
        f.seek(victim.position + 30)
        f.write(b"\xa5" * 16)
    rc, report, _ = verify(directory)
    assert rc == 1
    [part] = report["partitions"]
    [damage] = part["damage"]
    assert damage["kind"] == "corrupt"
    assert damage["segment"] == os.path.basename(path)
    assert (damage["position"], damage["bytes"]) == (victim.position, victim.size)
    assert (damage["first_offset"], damage["last_offset"]) == (victim.base_offset, victim.last_offset)
    assert part["batches"] == 59


def test_an_index_entry_pointing_nowhere_is_reported(tmp_path):
    directory = tmp_path / "t-0"
    bases = write_log(directory)
    index = segment(directory, bases[0], ".index")
    with open(index, "r+b") as f:
        f.seek(4)
        f.write((7).to_bytes(4, "big"))  # the first entry's position, off a batch start
    rc, report, _ = verify(directory)
    assert rc == 1
    assert [d["kind"] for d in report["partitions"][0]["damage"]] == ["index"]


def test_ranges_quarantined_by_recovery_are_reported(tmp_path):
    directory = tmp_path / "t-0"
    bases = write_log(directory)
    with open(segment(directory, bases[1]), "r+b") as f:
        f.seek(100)
        f.write(b"\xa5" * 16)
    os.unlink(directory / "recovery-point")  # as after a crash before it covered them
    Log.open(str(directory), CONFIG).close()
    rc, report, _ = verify(directory)
    assert rc == 1
    [damage] = report["partitions"][0]["damage"]
    assert damage["kind"] == "quarantined" and damage["file"].endswith(".corrupt")


def test_a_path_without_logs_exits_2(tmp_path):
    rc, _, err = verify(tmp_path)
    assert rc == 2 and "no partition logs" in err
