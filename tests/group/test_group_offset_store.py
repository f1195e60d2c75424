import os
import subprocess
import sys

from pybroker.group.offset_store import FILE_NAME, CommittedOffset, OffsetStore


def test_commits_survive_reopen(tmp_path):
    with OffsetStore(tmp_path) as s:
        s.commit("g", {("t", 0): (5, "m", 3), ("t", 1): (7, None, -1)}, 100)
        s.commit("g", {("t", 0): (9, "", 4)}, 200)
        s.commit("h", {("u", 2): (1, None, -1)}, 300)
    with OffsetStore(tmp_path) as s:
        assert s.dropped_bytes == 0
        assert s.fetch("g") == {("t", 0): CommittedOffset(9, "", 4, 200),
                                ("t", 1): CommittedOffset(7, None, -1, 100)}
        assert s.fetch("g", [("t", 1), ("t", 9)]) == {("t", 1): CommittedOffset(7, None, -1, 100)}
        assert s.groups() == ["g", "h"]


def test_torn_tail_is_truncated_and_reported(tmp_path):
    with OffsetStore(tmp_path, fsync=False) as s:
        s.commit("g", {("t", 0): (1, None, -1)}, 1)
        s.commit("g", {("t", 0): (2, None, -1)}, 2)
    path = tmp_path / FILE_NAME
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])
    with OffsetStore(tmp_path) as s:
        assert s.dropped_bytes == len(whole) // 2 - 3
        assert s.fetch("g")[("t", 0)].offset == 1
        s.commit("g", {("t", 0): (3, None, -1)}, 3)  # appends after the cut, not after garbage
    with OffsetStore(tmp_path) as s:
        assert s.dropped_bytes == 0 and s.fetch("g")[("t", 0)].offset == 3


def test_corrupt_record_ends_the_valid_prefix(tmp_path):
    with OffsetStore(tmp_path, fsync=False) as s:
        s.commit("g", {("t", 0): (1, None, -1)}, 1)
        s.commit("g", {("t", 1): (2, None, -1)}, 2)
    path = tmp_path / FILE_NAME
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with OffsetStore(tmp_path) as s:
        assert s.dropped_bytes == len(data) // 2
        assert list(s.fetch("g")) == [("t", 0)]


def test_tombstones_delete_partitions_and_groups_durably(tmp_path):
    with OffsetStore(tmp_path, fsync=False) as s:
        s.commit("g", {("t", 0): (1, None, -1), ("t", 1): (2, None, -1)}, 1)
        s.commit("h", {("t", 0): (1, None, -1)}, 1)
        s.delete("g", [("t", 0)], 2)
        assert s.delete_group("h") and not s.delete_group("nope")
    with OffsetStore(tmp_path) as s:
        assert list(s.fetch("g")) == [("t", 1)] and s.groups() == ["g"]


def test_compaction_keeps_live_offsets_and_shrinks_file(tmp_path):
    with OffsetStore(tmp_path, fsync=False) as s:
        for i in range(3000):
            s.commit("g", {("t", i % 3): (i, "meta", 0)}, i)
        s.commit("dead", {("x", 0): (1, None, -1)}, 1)
        s.delete_group("dead")
        before = os.path.getsize(tmp_path / FILE_NAME)
        assert s.compact()
        after = os.path.getsize(tmp_path / FILE_NAME)
        assert after < before / 100 and after == s.live_bytes()
        assert not s.compact()  # nothing left to gain
        s.commit("g", {("t", 0): (99999, None, -1)}, 5)
    with OffsetStore(tmp_path) as s:
        assert {tp: c.offset for tp, c in s.fetch("g").items()} == \
            {("t", 0): 99999, ("t", 1): 2998, ("t", 2): 2999}
        assert s.groups() == ["g"] and s.dropped_bytes == 0
    assert not (tmp_path / (FILE_NAME + ".compacting")).exists()


def test_commit_survives_sigkill_of_the_writer(tmp_path):
    code = (
        "import os, signal, sys\n"
        "from pybroker.group.offset_store import OffsetStore\n"
        "s = OffsetStore(sys.argv[1])\n"
        "s.commit('g', {('t', 0): (42, 'ok', 1)}, 7)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=30,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert proc.returncode == -9
    with OffsetStore(tmp_path) as s:
        assert s.fetch("g") == {("t", 0): CommittedOffset(42, "ok", 1, 7)}
