"""`pybroker share-groups` against real broker processes: --list, --describe (start
offset and lag from DescribeShareGroupOffsets, members, state) and --delete; and
DescribeShareGroupOffsets itself as confluent-kafka's admin client sends it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from groups_helpers import create_topic, unique, wait_until
from pybroker.client import ShareConsumer
from test_groups_share import cluster, group_configs, produce  # noqa: F401

pytestmark = pytest.mark.interop


def share_groups_tool(bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybroker.cli.main", "share-groups", "--bootstrap-server",
                           bootstrap, *argv], capture_output=True, text=True, timeout=60)


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.strip().splitlines()[1:]]


def test_list_describe_and_delete(cluster):
    bootstrap = cluster.bootstrap
    topic, group = create_topic(bootstrap, 2), unique("cli")
    group_configs(bootstrap, group, share_auto_offset_reset="earliest")
    produce(bootstrap, topic, [b"p0-%d" % i for i in range(10)], partition=0)
    produce(bootstrap, topic, [b"p1-%d" % i for i in range(4)], partition=1)
    c = ShareConsumer(bootstrap, group_id=group, client_id="cli-worker", share_acknowledgement_mode="explicit",
                      max_poll_records=6)
    try:
        c.subscribe([topic])
        got: list = []
        wait_until(lambda: got.extend(c.poll(200)) or {r.partition for r in got} == {0, 1}, 30, "both partitions")
        for r in got:
            if r.partition == 0:
                c.acknowledge(r, "accept")
        c.commit_sync()
        accepted = sum(1 for r in got if r.partition == 0)

        listed = share_groups_tool(bootstrap, "--list")
        assert listed.returncode == 0, listed.stderr
        assert group in listed.stdout.split()
        state = share_groups_tool(bootstrap, "--list", "--state")
        assert [group, "Stable"] in rows(state.stdout)

        described = share_groups_tool(bootstrap, "--describe", "--group", group)
        assert described.returncode == 0, described.stderr
        assert rows(described.stdout) == [
            [group, topic, "0", str(accepted), str(10 - accepted)],
            [group, topic, "1", "0", "4"],           # held, not acknowledged: still lag
        ]
        members = share_groups_tool(bootstrap, "--describe", "--group", group, "--members", "--verbose")
        (row,) = rows(members.stdout)
        assert row[0] == group and row[1] == c.member.member_id and row[3] == "cli-worker"
        assert row[4] == "2" and row[5] == f"{topic}(0,1)"
        states = share_groups_tool(bootstrap, "--describe", "--group", group, "--state")
        assert rows(states.stdout)[0][-2:] == ["Stable", "1"]

        refused = share_groups_tool(bootstrap, "--delete", "--group", group)
        assert refused.returncode == 1 and "NonEmptyGroup" in refused.stderr
    finally:
        c.close()
    wait_until(lambda: [group, "Empty"] in rows(share_groups_tool(bootstrap, "--list", "--state").stdout), 30,
               "the group to empty")
    after = share_groups_tool(bootstrap, "--describe", "--group", group)
    assert "has no active members" in after.stderr
    assert [group, topic, "1", "0", "4"] in rows(after.stdout)       # released at close: still to do
    deleted = share_groups_tool(bootstrap, "--delete", "--group", group)
    assert deleted.returncode == 0, deleted.stderr
    assert group not in share_groups_tool(bootstrap, "--list").stdout.split()
    missing = share_groups_tool(bootstrap, "--describe", "--group", group)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_describe_needs_a_group():
    result = share_groups_tool("127.0.0.1:1", "--describe")
    assert result.returncode == 1 and "--describe needs --group" in result.stderr
