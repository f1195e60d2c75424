"""A headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, with
aiohttp's websocket client: navigate, evaluate, wait for a condition, click with real
mouse events, take a screenshot. Enough to test the console as a person uses it, with no
driver package.

The browser runs in a session of its own with a fresh profile directory and is ended by
its pid (SIGTERM, then SIGKILL of its process group)."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1800", "--remote-debugging-port=0"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    def __init__(self, binary: str, profile_dir: str):
        self.binary = binary
        self.profile_dir = profile_dir
        self.proc: subprocess.Popen | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._events: list[dict] = []
        self._reader: asyncio.Task | None = None

    async def start(self, timeout: float = 30.0) -> "Chromium":
        os.makedirs(self.profile_dir, exist_ok=True)
        log = open(os.path.join(self.profile_dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen([self.binary, *FLAGS, f"--user-data-dir={self.profile_dir}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        port_file = os.path.join(self.profile_dir, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not open its DevTools port; log:\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        self._session = aiohttp.ClientSession()
        while True:
            try:
                async with self._session.get(f"http://127.0.0.1:{port}/json/list") as res:
                    targets = await res.json(content_type=None)
                page = next(t for t in targets if t["type"] == "page")
                break
            except (aiohttp.ClientError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    def log_tail(self, max_chars: int = 4000) -> str:
        try:
            with open(os.path.join(self.profile_dir, "chromium.log"), errors="replace") as f:
                return f.read()[-max_chars:]
        except FileNotFoundError:
            return ""

    async def _read(self) -> None:
        async for msg in self._ws:
            doc = json.loads(msg.data)
            if "id" in doc:
                fut = self._pending.pop(doc["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(doc)
            else:
                self._events.append(doc)

    async def send(self, method: str, timeout: float = 30.0, **params) -> dict:
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        doc = await asyncio.wait_for(fut, timeout)
        if "error" in doc:
            raise RuntimeError(f"{method}: {doc['error']}")
        return doc["result"]

    async def navigate(self, url: str, timeout: float = 30.0) -> None:
        self._events.clear()
        await self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not load within {timeout:g}s")
            await asyncio.sleep(0.05)

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0, what: str | None = None):
        """Poll ``expression`` in the page until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what or expression}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        if box is None:
            raise AssertionError(f"no element matches {selector}")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def fill(self, selector: str, values: dict[str, str]) -> None:
        """Set the form's fields by name, as typing would (input and change events fire)."""
        await self.evaluate(
            f"(() => {{ const f = document.querySelector({json.dumps(selector)});"
            f" for (const [k, v] of Object.entries({json.dumps(values)})) {{ const e = f.elements[k];"
            " e.value = v; e.dispatchEvent(new Event('input', {bubbles: true}));"
            " e.dispatchEvent(new Event('change', {bubbles: true})); } })()")

    async def screenshot(self, path: str) -> None:
        result = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(result["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # helper processes left in its group
            except ProcessLookupError:
                pass
