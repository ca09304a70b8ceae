"""Target health checks: one loop per target group, GETting each target's health path on the clock.

Each registered target (initial, healthy or unhealthy) is checked every
`health_check_interval_seconds` of AWS time, the first time as soon as it
is registered; a check is a GET of `health_check_path` on the traffic port
(or the configured one) that must answer within
`health_check_timeout_seconds` with a code the matcher accepts. Results go
to the pure state machine (balancer.compute_health) through the target
group's runtime, which tells its subscribers. The interval is AWS
seconds, so at `time_scale` 10 a 30 s interval is 3 s of wall time; the
timeout is not scaled: it bounds a real HTTP request to a real (and, under
load, really busy) app, as a container health check's timeout does.

Checks share one pooled aiohttp session. The probe is injectable, so unit
tests run the loop on a FakeClock with scripted results and no sockets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import aiohttp

from ..clock import Clock
from .balancer import CheckResult, TargetState
from .targets import REGISTERED, TargetChange, TargetGroupRuntime

log = logging.getLogger(__name__)

USER_AGENT = "ELB-HealthChecker/2.0"
# A check's timeout is wall seconds, never scaled: at time_scale 20 AWS's 5 s
# would be 0.25 s, and a busy but healthy target would look dead. The
# interval still scales; checks of one target never overlap.
MIN_WALL_TIMEOUT = 0.25  # and never below this, whatever the group says

# probe(host, port, path, timeout_wall_seconds) -> status code; raises TimeoutError or OSError-like errors.
Probe = Callable[[str, int, str, float], Awaitable[int]]


class HttpProbe:
    """GETs over one pooled aiohttp session (created on first use, inside the running loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, host: str, port: int, path: str, timeout: float) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                headers={"User-Agent": USER_AGENT}, auto_decompress=False)
        url = f"http://{_host_for_url(host)}:{port}{path}"
        async with self._session.get(url, allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            await response.read()  # a bounded body: the timeout covers it
            return response.status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def check_target(probe: Probe, host: str, port: int, path: str, timeout: float,
                       matches: Callable[[int], bool]) -> CheckResult:
    """One check, classified as ELBv2 reports it."""
    try:
        status = await probe(host, port, path, timeout)
    except (asyncio.TimeoutError, TimeoutError):
        return CheckResult.timed_out()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # refused, reset, malformed: no HTTP answer
        return CheckResult.failed(type(exc).__name__)
    return CheckResult.passed(status) if matches(status) else CheckResult.code_mismatch(status)


class HealthChecker:
    """The check loop of one target group."""

    def __init__(self, runtime: TargetGroupRuntime, clock: Clock, probe: Probe | None = None) -> None:
        self.runtime = runtime
        self.clock = clock
        self._own_probe = probe is None
        self.probe: Probe = probe or HttpProbe()
        self._next_due: dict[str, float] = {}
        self._running: dict[str, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.checks_done = 0

    def start(self) -> None:
        if self._task is None:
            self._unsubscribe = self.runtime.subscribe(self._on_change)
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"alb-health-{self.runtime.target_group.target_group_name}")

    def _on_change(self, change: TargetChange) -> None:
        if change.kind == REGISTERED:  # a new target is checked at once, not at the next beat
            self._next_due[change.target.target_id] = self.clock.now()
            self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._start_due_checks()
            now = self.clock.now()
            due = [t for tid, t in self._next_due.items() if tid not in self._running]
            wait = max(0.0, min(due) - now) if due else self.runtime.target_group.health_check_interval_seconds
            await self._sleep_or_wake(wait)

    def _start_due_checks(self) -> None:
        now = self.clock.now()
        interval = self.runtime.target_group.health_check_interval_seconds
        current = {t.target_id: t for t in self.runtime.checkable_targets()}
        for tid in list(self._next_due):
            if tid not in current:
                del self._next_due[tid]
        for tid, ts in current.items():
            due = self._next_due.setdefault(tid, now)
            if due <= now and tid not in self._running:
                self._next_due[tid] = now + interval
                self._running[tid] = asyncio.get_running_loop().create_task(self._check(ts))

    async def _check(self, ts: TargetState) -> None:
        tg = self.runtime.target_group
        try:
            self.runtime.begin_check(ts)
            timeout = max(MIN_WALL_TIMEOUT, float(tg.health_check_timeout_seconds))
            result = await check_target(self.probe, ts.host, self.runtime.health_check_port(ts),
                                        tg.health_check_path, timeout, tg.matches)
            self.checks_done += 1
            self.runtime.record_health(ts.target_id, result)
        finally:
            self._running.pop(ts.target_id, None)
            self._wake.set()

    async def _sleep_or_wake(self, aws_seconds: float) -> None:
        self._wake.clear()
        sleeper = asyncio.ensure_future(self.clock.sleep(aws_seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [t for t in [self._task, *self._running.values()] if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        if self._own_probe and isinstance(self.probe, HttpProbe):
            await self.probe.close()
