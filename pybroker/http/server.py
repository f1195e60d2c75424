"""The supervisor's HTTP server (aiohttp): ``/metrics`` and the web console.

Routes::

    GET  /                         the console (static page + script shipped in the package)
    GET  /static/{file}
    GET  /metrics                  Prometheus text (prometheus.py)
    GET  /api/cluster              brokers, topics, groups, latest rates (view.py)
    GET  /api/throughput           per-topic rates over the last minutes
    GET  /api/messages?topic=&partition=&offset=|timestamp=&limit=
    POST /api/topics               {name, partitions, replication_factor, configs}
    POST /api/topics/{name}/delete
    POST /api/produce              {topic, value, key?, partition?, headers?: [[k, v]]}
    POST /api/groups/{group}/reset {scenario, topic?, value?}

Actions (the POSTs) are refused with 403 when the server listens beyond loopback unless
``allow_writes``; they take JSON only and refuse a cross-origin ``Origin``, so a web page
elsewhere cannot drive them through a browser. Errors come back as ``{"error": text}``.

``HttpServer`` is a supervisor extension: ``start(supervisor)`` serves on the socket
bound beforehand (``bind``: a taken port fails ``pybroker up`` before any broker starts)
and subscribes to the brokers' reports; ``stop()`` closes it. Runs on the supervisor's
event loop; blocking client work (messages, produce, resets) goes to worker threads.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pybroker.http import actions, view
from pybroker.http.aggregate import ClusterMetrics
from pybroker.http.prometheus import registry

log = logging.getLogger("pybroker.http")

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
SAMPLE_INTERVAL_S = 2.0
MAX_BODY_BYTES = 1024 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so a taken port is reported before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class HttpServer:
    def __init__(self, sock: socket.socket, allow_writes: bool | None = None):
        self.sock = sock
        host = sock.getsockname()[0]
        self.allow_writes = is_loopback(host) if allow_writes is None else allow_writes
        self.url = url_of(sock)
        self.metrics = ClusterMetrics()
        self.supervisor = None
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task | None = None

    # -- life cycle (supervisor extension) ------------------------------------------------

    async def start(self, supervisor) -> None:
        self.supervisor = supervisor
        supervisor.report_listeners.append(self.metrics.ingest)
        self._registry = registry(supervisor, self.metrics)
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        self._sampler = asyncio.get_running_loop().create_task(self._sample())
        log.info("console and /metrics on %s%s", self.url, "" if self.allow_writes else " (read-only)")

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        self.sock.close()

    async def _sample(self) -> None:
        while True:
            self.metrics.retain_topics(self.supervisor.controller.topics)
            self.metrics.sample(time.time())
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    # -- routes ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors])
        app.add_routes([
            web.get("/", self.index),
            web.get("/metrics", self.prometheus),
            web.get("/api/cluster", self.cluster),
            web.get("/api/throughput", self.throughput),
            web.get("/api/messages", self.messages),
            web.post("/api/topics", self.create_topic),
            web.post("/api/topics/{name}/delete", self.delete_topic),
            web.post("/api/produce", self.produce),
            web.post("/api/groups/{group}/reset", self.reset_offsets),
            web.static("/static", STATIC_DIR),
        ])
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        if request.method == "POST":
            refusal = self._refuse_write(request)
            if refusal is not None:
                return refusal
        try:
            return await handler(request)
        except actions.ActionError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)

    def _refuse_write(self, request: web.Request) -> web.Response | None:
        if not self.allow_writes:
            return web.json_response({"error": "the console is read-only: it listens beyond loopback "
                                      "(start pybroker up with --console-actions to allow actions)"}, status=403)
        if request.content_type != "application/json":
            return web.json_response({"error": "actions take a JSON body (Content-Type: application/json)"},
                                     status=415)
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return web.json_response({"error": f"cross-origin action from {origin} refused"}, status=403)
        return None

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def prometheus(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def cluster(self, request: web.Request) -> web.Response:
        doc = view.cluster(self.supervisor, self.metrics)
        doc["read_only"] = not self.allow_writes
        return web.json_response(doc)

    async def throughput(self, request: web.Request) -> web.Response:
        return web.json_response({"points": self.metrics.throughput()})

    def _bootstrap(self) -> str:
        if not self.supervisor.bootstrap() or any(p.port == 0 for p in self.supervisor.brokers.values()):
            raise actions.ActionError("the brokers are not listening yet")
        # On a secured cluster, the brokers' private sockets: the console is the cluster's own.
        return self.supervisor.local_bootstrap()

    async def messages(self, request: web.Request) -> web.Response:
        q = request.query
        offset = q.get("offset") or None
        timestamp = q.get("timestamp") or None
        result = await asyncio.to_thread(
            actions.browse, self._bootstrap(), q["topic"], int(q.get("partition", 0)),
            None if offset is None else int(offset), None if timestamp is None else int(timestamp),
            int(q.get("limit", 20)))
        return web.json_response(result)

    async def create_topic(self, request: web.Request) -> web.Response:
        doc = await request.json()
        spec = {"name": str(doc["name"]), "num_partitions": int(doc.get("partitions") or -1),
                "replication_factor": int(doc.get("replication_factor") or -1),
                "configs": {str(k): str(v) for k, v in (doc.get("configs") or {}).items()}}
        (result,) = self.supervisor.service.create_topics([spec])
        return _controller_answer(result, f"created topic {spec['name']}")

    async def delete_topic(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        (result,) = self.supervisor.service.delete_topics([name])
        return _controller_answer(result, f"deleted topic {name}")

    async def produce(self, request: web.Request) -> web.Response:
        doc = await request.json()
        partition = doc.get("partition")
        headers = [(str(k), str(v)) for k, v in doc.get("headers") or []]
        result = await asyncio.to_thread(
            actions.produce, self._bootstrap(), str(doc["topic"]), str(doc.get("value", "")),
            doc.get("key") or None, None if partition in (None, "") else int(partition), headers)
        return web.json_response(result)

    async def reset_offsets(self, request: web.Request) -> web.Response:
        doc = await request.json()
        value = doc.get("value")
        result = await asyncio.to_thread(
            actions.reset_offsets, self._bootstrap(), request.match_info["group"], doc.get("topic") or None,
            str(doc["scenario"]), None if value in (None, "") else str(value))
        return web.json_response(result)


def _controller_answer(result: dict, done: str) -> web.Response:
    if result.get("error_code"):
        from pybroker import errors

        name = errors.name_of(result["error_code"])
        detail = result.get("error_message") or ""
        return web.json_response({"error": f"{name}: {detail}".rstrip(": ")}, status=400)
    return web.json_response({"result": done})
