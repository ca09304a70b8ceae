"""The ALB's listeners: an HTTP/1.1 reverse proxy on 127.0.0.1 that forwards to a target group.

Why a bare asyncio Protocol (exchange.py) and not aiohttp's server and client: profiled
under `hey -c 50` against an aiohttp backend, an aiohttp `ClientSession`
proxy spent its time in aiohttp's per-request machinery (request and
response objects, header multidicts, the client's connector and timers,
two coroutines and a task per request), not in the sockets; it reached
about 38% of nginx. Here a request costs one head parse on bytes
(http1.py), one choice (balancer.py), one write to a pooled keep-alive
connection and one write back; the body is never parsed, only framed, and
streams through in both directions with flow control (a slow reader pauses
the other side), so nothing is buffered whole.

ALB behaviour kept: X-Forwarded-For (appended), -Proto, -Port and
X-Amzn-Trace-Id; 400 for a malformed request; 503 when the group has no
registered target; 502 when the target refuses, resets, closes mid-request
or answers malformed (no retry, as ALB: except a pooled connection that the
target closed while idle, retried once on a fresh one, which ALB never
shows because it owns its connection lifetimes); 504 when the connection
takes over 10 s or the target is silent for the idle timeout (60 s). Error
pages are ALB's (`Server: awselb/2.0`). In-flight counts per target feed
`least_outstanding_requests` and draining. The timeouts are wall seconds:
they guard real sockets, unlike the health check and deregistration
timings, which are AWS seconds on the clock.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from . import balancer as b
from .exchange import ClientConnection
from .targets import DRAINING, REMOVED, TargetChange, TargetGroupRuntime
from .upstream import UpstreamPool

log = logging.getLogger(__name__)


class Listener:
    """One listener port forwarding to one target group."""

    def __init__(self, proxy: AlbProxy, runtime: TargetGroupRuntime, host: str, port: int) -> None:
        self.proxy = proxy
        self.runtime = runtime
        self.host, self.port = host, port
        self.pool = proxy.pool
        self.clients: set[ClientConnection] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket | None = None, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if sock is not None:
            self.server = await loop.create_server(lambda: ClientConnection(self), sock=sock, backlog=1024)
        else:
            self.server = await loop.create_server(lambda: ClientConnection(self), self.host, self.port,
                                                   backlog=1024, reuse_address=True, reuse_port=reuse_port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.abort()
        if self.server is not None:
            await self.server.wait_closed()


class AlbProxy:
    """Every listener of this process, one upstream pool, one sweeper for the timeouts."""

    def __init__(self, *, idle_timeout: float = 60.0, connect_timeout: float = 10.0,
                 upstream_idle_seconds: float = 50.0) -> None:
        self.idle_timeout = idle_timeout
        self.pool = UpstreamPool(connect_timeout=connect_timeout, idle_seconds=upstream_idle_seconds)
        self.listeners: dict[int, Listener] = {}
        self._unsubscribe: dict[int, Any] = {}
        # Coarse ticks instead of a timer per request: a timer per request costs more than the rest.
        self.tick = max(0.01, min(1.0, idle_timeout / 10))
        self._sweeper: asyncio.Task | None = None

    async def add_listener(self, runtime: TargetGroupRuntime, port: int = 0, host: str = "127.0.0.1",
                           sock: socket.socket | None = None, reuse_port: bool = False) -> Listener:
        """Listen on host:port (0: any free port) and forward to `runtime`'s targets.

        `reuse_port` lets several processes listen on the same port (SO_REUSEPORT);
        the kernel spreads connections among them.
        """
        listener = Listener(self, runtime, host, port)
        await listener.start(sock, reuse_port)
        self.listeners[listener.port] = listener
        self._watch(runtime)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="alb-sweeper")
        return listener

    def set_target_group(self, listener: Listener, runtime: TargetGroupRuntime) -> None:
        """Point a listener at another target group (ModifyListener); open connections stay."""
        self._watch(runtime)
        listener.runtime = runtime

    def _watch(self, runtime: TargetGroupRuntime) -> None:
        if id(runtime) not in self._unsubscribe:
            self._unsubscribe[id(runtime)] = runtime.subscribe(self._on_target_change(runtime))

    def _on_target_change(self, runtime: TargetGroupRuntime):
        def on_change(change: TargetChange) -> None:
            ts = runtime.targets.get(change.target.target_id)
            if change.kind == DRAINING and ts is not None:
                self.pool.close_idle(ts)
            elif change.kind == REMOVED:
                for state in list(self.pool.open):  # the removed state object is no longer in the group
                    if state.target == change.target and state.state == b.UNUSED:
                        self.pool.cut(state)
        return on_change

    async def remove_listener(self, port: int) -> None:
        listener = self.listeners.pop(port, None)
        if listener is not None:
            await listener.stop()

    async def _sweep(self) -> None:
        limit = max(1, round(self.idle_timeout / self.tick))
        while True:
            await asyncio.sleep(self.tick)
            for listener in list(self.listeners.values()):
                for client in list(listener.clients):
                    client.on_tick(limit)
            self.pool.expire_idle()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        for port in list(self.listeners):
            await self.remove_listener(port)
        self.pool.close_all()
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()
