"""The broker's listener: accepts client connections within Kafka's connection quotas,
keeps serving at the process's file-descriptor limit, and closes idle and stalled
connections (Kafka's Acceptor, ConnectionQuotas and the Selector's idle expiry).

Limits, by Kafka's names (``BrokerConfig``):
- ``max.connections`` / ``max.connections.per.ip``: a connection beyond either is
  accepted and closed at once (the client sees EOF and retries, as from Kafka's
  per-ip quota).
- File descriptors: client connections may use the process's ``RLIMIT_NOFILE`` minus the
  descriptors the broker holds for itself (segments, indexes, replica fetchers, the
  control channel) and ``FD_HEADROOM`` more, so a flood of sockets never leaves the
  broker unable to open a segment or answer the connections it has. Should accept still
  hit EMFILE, a spare descriptor kept for the purpose is closed to accept and close the
  waiting connection, and one line is logged per interval, not one per attempt.
- ``connections.max.idle.ms`` and ``socket.request.read.timeout.ms``: see
  ``Connection.expired``; checked a few times per timeout, not per read.

After a burst of request memory (``MemoryPool``) is given back, the C allocator is asked
to return free pages to the OS (``malloc_trim``), so RSS falls back near idle.

Owned by the broker's event loop thread.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import resource
import socket
import time
from collections import Counter

from pybroker.broker.connection import Connection
from pybroker.broker.log_limit import RateLimitedLog
from pybroker.broker.memory_pool import MemoryPool

log = logging.getLogger("pybroker.broker")

# Descriptors kept free beyond those the broker holds when it counts: a new segment and
# its indexes, a replica fetcher's socket, a log cleaner's files.
FD_HEADROOM = 64
# How often the broker's own descriptors are counted again (partitions come and go).
FD_RECOUNT_S = 2.0
# Connections accepted per wake-up of the listening socket, so one flood cannot starve
# the event loop.
ACCEPT_BATCH = 64
# Accepting resumes this long after the fd table was full.
FD_FULL_BACKOFF_S = 0.1
# RSS is handed back once a burst of at least this many request bytes has drained.
TRIM_AFTER_BYTES = 16 * 1024 * 1024

_libc = None


def _malloc_trim() -> None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name) if name else False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is not None:
        trim(0)


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def listen_sockets(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to (``localhost``: 127.0.0.1
    and ::1), all on one port: the first bound picks it when ``port`` is 0."""
    sockets: list[socket.socket] = []
    seen = set()
    for family, _, _, _, address in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                       flags=socket.AI_PASSIVE):
        if (family, address[0]) in seen:
            continue
        seen.add((family, address[0]))
        if sockets:
            address = (address[0], sockets[0].getsockname()[1], *address[2:])
        try:
            sock = socket.create_server(address, family=family, backlog=backlog,
                                        dualstack_ipv6=False)
        except OSError:
            if not sockets:
                raise
            log.warning("cannot listen on %s as well; serving on %s", address[0], sockets[0].getsockname()[0])
            continue
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def listen_unix(path: str, backlog: int = 1024) -> list[socket.socket]:
    """The listening socket of the private inter-broker listener (security.listener)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return [sock]


class Acceptor:
    """One listener: its sockets, its security protocol (``listener``, None: PLAINTEXT),
    the TLS context of an SSL listener. The broker's listeners share one memory pool and
    the first one expires idle connections for all."""

    def __init__(self, broker, sockets: list[socket.socket], listener=None, ssl_context=None,
                 memory: MemoryPool | None = None, expires: bool = True):
        self.broker = broker
        self.config = broker.config
        self.sockets = sockets
        self.listener = listener
        self.ssl_context = ssl_context
        self.expires = expires
        self.memory = memory if memory is not None else MemoryPool(self.config.queued_max_request_bytes)
        self.per_ip: Counter[str] = Counter()
        self._spare: int | None = None
        self._own_fds = 0
        self._counted_at = float("-inf")
        self._spike = 0
        self._refused_log = RateLimitedLog(log)
        self._fd_log = RateLimitedLog(log, logging.ERROR)
        self._expired_log = RateLimitedLog(log, logging.INFO)
        self._tasks: set[asyncio.Task] = set()
        self._expiry: asyncio.Task | None = None
        self._accepting = False
        self.closed = False

    @property
    def port(self) -> int:
        return self.sockets[0].getsockname()[1]

    def start(self) -> None:
        self._resume_accepting()
        if self.expires:
            self._expiry = asyncio.get_running_loop().create_task(self._expire_connections())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pause_accepting()
        if self._expiry is not None:
            self._expiry.cancel()
        for sock in self.sockets:
            if sock.family == socket.AF_UNIX:
                try:
                    os.unlink(sock.getsockname())
                except OSError:
                    pass
            sock.close()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None

    # -- accepting --------------------------------------------------------------------

    def _keep_spare(self) -> None:
        if self._spare is None:
            try:
                self._spare = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                pass

    def _resume_accepting(self) -> None:
        self._keep_spare()
        if not self.closed and not self._accepting:
            loop = asyncio.get_running_loop()
            for sock in self.sockets:
                loop.add_reader(sock.fileno(), self._accept_ready, sock)
            self._accepting = True

    def _pause_accepting(self) -> None:
        if self._accepting:
            loop = asyncio.get_running_loop()
            for sock in self.sockets:
                loop.remove_reader(sock.fileno())
            self._accepting = False

    def _accept_ready(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._fd_table_full(sock, exc)
                    return
                raise
            self._admit(conn, address)

    def _fd_table_full(self, sock: socket.socket, exc: OSError) -> None:
        """No descriptor for the next connection: shed it with the spare descriptor, so it
        is closed instead of left hanging in the backlog, and back off briefly."""
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self._fd_log("cannot accept connections: %s (RLIMIT_NOFILE %d, %d client connections); "
                     "refusing new ones, serving the open ones", exc.strerror, soft, len(self.broker.connections))
        self._counted_at = float("-inf")
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                pass
            self._keep_spare()
        self._pause_accepting()
        asyncio.get_running_loop().call_later(FD_FULL_BACKOFF_S, self._resume_accepting)

    def connection_limit(self) -> int:
        """Client connections allowed now: ``max.connections`` or what the fd limit
        leaves after the broker's own descriptors and FD_HEADROOM, whichever is lower."""
        now = time.monotonic()
        if now - self._counted_at > FD_RECOUNT_S:
            self._counted_at = now
            total = _open_fds()
            self._own_fds = 0 if total is None else max(0, total - len(self.broker.connections))
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = self.config.max_connections
        if soft != resource.RLIM_INFINITY and self._own_fds:
            limit = min(limit, soft - self._own_fds - FD_HEADROOM)
        return limit

    def _refusal(self, ip: str) -> str | None:
        if self.per_ip[ip] >= self.config.max_connections_per_ip:
            return f"{self.per_ip[ip]} connections from {ip} (max.connections.per.ip {self.config.max_connections_per_ip})"
        open_now = len(self.broker.connections) + len(self._tasks)
        limit = self.connection_limit()
        if open_now >= limit:
            reason = "max.connections" if limit == self.config.max_connections else "the file-descriptor limit"
            return f"{open_now} connections open ({reason} allows {limit})"
        return None

    def _admit(self, conn: socket.socket, address) -> None:
        ip = address[0] if isinstance(address, tuple) else "unix"
        reason = self._refusal(ip)
        if reason is not None:
            self._refused_log("refused a connection from %s: %s", ip, reason)
            conn.close()
            return
        conn.setblocking(False)
        self.per_ip[ip] += 1
        task = asyncio.get_running_loop().create_task(self._attach(conn, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attach(self, conn: socket.socket, ip: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: Connection(self.broker, self.memory, on_lost=lambda: self._forget(ip), listener=self.listener),
                conn, ssl=self.ssl_context)
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("connection from %s failed before it was served: %s", ip, exc)
            conn.close()
            self._forget(ip)

    def _forget(self, ip: str) -> None:
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]

    # -- expiry -----------------------------------------------------------------------

    async def _expire_connections(self) -> None:
        idle_s = self.config.connections_max_idle_ms / 1000.0
        read_s = self.config.socket_request_read_timeout_ms / 1000.0
        tick = min(1.0, max(0.05, min(idle_s, read_s) / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for conn in list(self.broker.connections):
                reason = conn.expired(now, idle_s, read_s)
                if reason is not None:
                    self._expired_log("closing connection from %s: %s", conn.peer, reason)
                    conn.close()
            self._spike = max(self._spike, self.memory.take_peak())
            if self._spike >= TRIM_AFTER_BYTES and self.memory.used < TRIM_AFTER_BYTES // 4:
                self._spike = 0
                _malloc_trim()
