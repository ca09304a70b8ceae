"""Pooled keep-alive connections from the ALB to its targets.

An ALB keeps connections to targets open and reuses them; opening one per
request would cost a TCP handshake and a server-side accept each time (and,
measured, halves throughput). Connections are pooled per target *state*
(one target group's view of a target), so removing a target from one group
never cuts another group's connections to the same address. Idle ones are
taken last-in first-out (warm sockets) and closed after `idle_seconds`,
before the targets' own keep-alive timeouts (aiohttp 75 s, the sample app
75 s) can race a reuse.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable

from .balancer import TargetState

if TYPE_CHECKING:  # pragma: no cover
    from .proxy import ClientConnection


class Upstream(asyncio.Protocol):
    """One connection to a target; leased to at most one client exchange at a time."""

    __slots__ = ("pool", "ts", "transport", "client", "closed", "uses", "idle_since")

    def __init__(self, pool: UpstreamPool, ts: TargetState) -> None:
        self.pool, self.ts = pool, ts
        self.transport: Any = None
        self.client: ClientConnection | None = None
        self.closed = False
        self.uses = 0
        self.idle_since = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # bytes on an idle connection: it can't be trusted any more
            self.transport.abort()
            return
        client.upstream_data(data)

    def eof_received(self) -> bool:
        return False  # close; connection_lost tells the client

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        client = self.client
        if client is not None:
            self.client = None
            client.upstream_lost(self)

    def pause_writing(self) -> None:  # the target reads slower than the client sends
        if self.client is not None:
            self.client.pause_reading_for_upstream(True)

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.pause_reading_for_upstream(False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()


class UpstreamPool:
    """Idle connections per target, plus every open one (so a removed target's can be cut)."""

    def __init__(self, *, connect_timeout: float = 10.0, idle_seconds: float = 50.0,
                 max_idle_per_target: int = 256) -> None:
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self.max_idle_per_target = max_idle_per_target
        self.idle: dict[TargetState, list[Upstream]] = {}
        self.open: dict[TargetState, set[Upstream]] = {}
        self.opened = 0  # connections opened since start: reuse shows as few of them
        self.now = time.monotonic()  # refreshed by the proxy's sweeper: cheaper than a clock read per request

    def acquire(self, ts: TargetState) -> Upstream | None:
        """An idle connection to `ts`, or None (then `connect`)."""
        idle = self.idle.get(ts)
        while idle:
            up = idle.pop()
            if not up.closed:
                return up
        return None

    async def connect(self, ts: TargetState) -> Upstream:
        """A new connection; TimeoutError after `connect_timeout`, OSError when refused."""
        loop = asyncio.get_running_loop()
        factory: Callable[[], Upstream] = lambda: Upstream(self, ts)
        _, up = await asyncio.wait_for(loop.create_connection(factory, ts.host, ts.port),
                                       self.connect_timeout)
        self.opened += 1
        self.open.setdefault(ts, set()).add(up)
        return up

    def release(self, up: Upstream) -> None:
        """The exchange on `up` ended cleanly: keep it for the next request."""
        if up.closed:
            return
        idle = self.idle.setdefault(up.ts, [])
        if len(idle) >= self.max_idle_per_target:
            up.close()
            return
        up.idle_since = self.now
        idle.append(up)

    def forget(self, up: Upstream) -> None:
        """`up` closed: drop it from the books."""
        conns = self.open.get(up.ts)
        if conns is not None:
            conns.discard(up)
            if not conns:
                del self.open[up.ts]
                self.idle.pop(up.ts, None)
        idle = self.idle.get(up.ts)
        if idle and up in idle:
            idle.remove(up)

    def close_idle(self, ts: TargetState) -> None:
        """A draining target gets no new requests: its idle connections can go."""
        for up in self.idle.pop(ts, []):
            up.close()

    def cut(self, ts: TargetState) -> None:
        """A removed target: close everything, in flight too (those clients get a 502)."""
        self.idle.pop(ts, None)
        for up in list(self.open.get(ts, ())):
            up.closed = True
            up.transport.abort()

    def expire_idle(self) -> None:
        """Close connections idle longer than `idle_seconds`."""
        self.now = time.monotonic()
        cutoff = self.now - self.idle_seconds
        for ts, idle in list(self.idle.items()):
            while idle and idle[0].idle_since < cutoff:  # oldest first: appended in release order
                idle.pop(0).close()

    def close_all(self) -> None:
        for conns in list(self.open.values()):
            for up in list(conns):
                up.closed = True
                up.transport.abort()
        self.idle.clear()
