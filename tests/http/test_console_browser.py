"""The web console in a real headless Chromium: the page shows a topic and a consumer
group with its lag, and actions clicked in the page round-trip through the cluster
(checked with the Kafka protocol, not with the page). Skipped where Debian's chromium is
not installed (.ci/run installs it).

Set PYBROKER_CONSOLE_SCREENSHOT=/path.png to keep a screenshot of the final page."""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from chromium_driver import Chromium, find_chromium
from pybroker.client.admin import Admin

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.timeout(180), pytest.mark.interop,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; "
                                                ".ci/run installs it)"),
]


def _text(selector: str) -> str:
    """JavaScript for the text of the first element ``selector`` matches (undefined if none)."""
    return f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent"


def _exists(selector: str) -> str:
    return f"!!document.querySelector({json.dumps(selector)})"


def test_console_shows_topic_and_group_lag_and_actions_round_trip(pybroker_cluster_factory, http, topic, tmp_path):
    cluster = pybroker_cluster_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"])
    http.produce(cluster.bootstrap, topic, 30)
    http.consume(cluster.bootstrap, topic, "web-group", 10).close()
    created = topic + "-made-in-browser"
    lag_cell = f'[data-group="web-group"] [data-lag="{topic}-0"] .lag'
    topic_row = f'[data-topic="{topic}"]'

    async def drive() -> None:
        browser = await Chromium(CHROMIUM, str(tmp_path / "chromium-profile")).start()
        try:
            await browser.navigate(cluster.console_url)
            # What the page shows: the broker, the topic with its 30 messages, the group's lag.
            await browser.wait_for(_text('[data-broker="0"] .state-up') + " === 'up'", what="broker 0 up")
            await browser.wait_for(_exists(topic_row), what="the topic row")
            row = await browser.evaluate(f"document.querySelector({json.dumps(topic_row)}).innerText")
            assert topic in row and "30" in row
            await browser.wait_for(_text(lag_cell) + " === '20'", what="the group's lag of 20 on partition 0")
            assert await browser.evaluate(_text('[data-group="web-group"] .group-state')) == "Empty"
            assert await browser.evaluate(_text("#mode")) == "actions enabled"

            # Create a topic through the form.
            await browser.fill("#create-topic", {"name": created, "partitions": "3"})
            await browser.click("#create-topic button")
            await browser.wait_for(_exists(f'[data-topic="{created}"]'), what="the created topic in the page")
            with Admin(cluster.bootstrap) as admin:
                (info,) = admin.describe_topics([created])
                assert len(info.partitions) == 3

            # Produce a test message to it, then read it back in the message browser.
            await browser.fill("#produce", {"topic": created, "partition": "2", "key": "k-1",
                                            "value": '{"hello": "browser"}', "headers": "trace=abc"})
            await browser.click("#produce button")
            await browser.wait_for(f"document.getElementById('notice').innerText.includes('stored at {created}-2 offset 0')",
                                   what="the produce confirmation")
            with Admin(cluster.bootstrap) as admin:
                assert admin.list_offsets({(created, 2): -1})[(created, 2)][0] == 1
            await browser.fill("#browse", {"topic": created, "partition": "2", "from": "offset", "position": "0"})
            await browser.click("#browse button")
            value = await browser.wait_for(_text('#message-rows [data-offset="0"] .value pre'),
                                           what="the message in the browser")
            assert '"hello": "browser"' in value
            assert "trace:" in await browser.evaluate("document.getElementById('message-rows').innerText")

            # Reset the group's offsets to the log end: its lag goes to 0.
            await browser.fill('[data-reset="web-group"]', {"topic": topic, "scenario": "latest"})
            await browser.click('[data-reset="web-group"] button')
            await browser.wait_for(_text(lag_cell) + " === '0'", what="the lag after the reset")
            with Admin(cluster.bootstrap) as admin:
                assert admin.list_group_offsets("web-group")[(topic, 0)] == 30

            await browser.screenshot(os.environ.get("PYBROKER_CONSOLE_SCREENSHOT") or str(tmp_path / "console.png"))
        finally:
            await browser.close()

    asyncio.run(drive())
