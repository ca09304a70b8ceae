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

Due times are kept per target in time-ordered buckets, so a wake-up costs what
is due, not a scan of every target (10,000 targets are 10,000 checks per
interval, not 10,000 scans). A probe that answers without waiting (marked
`answers_at_once`, as the in-memory runtime's is) is run inline, one check
after another in the loop's own turn, instead of as one asyncio task per
check: the same checks at the same AWS times, with the same results.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from typing import Awaitable, Callable

import aiohttp

from ..clock import Clock
from .balancer import CHECKED_STATES, CheckResult, TargetState
from .targets import DRAINING, REGISTERED, REMOVED, TargetChange, TargetGroupRuntime

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
    return _passed(status) if matches(status) else CheckResult.code_mismatch(status)


_PASSED: dict[int, CheckResult] = {}


def _passed(status: int) -> CheckResult:
    """CheckResult.passed(status), made once per code (results are frozen; nearly every check passes)."""
    result = _PASSED.get(status)
    if result is None:
        result = _PASSED[status] = CheckResult.passed(status)
    return result


class HealthChecker:
    """The check loop of one target group."""

    def __init__(self, runtime: TargetGroupRuntime, clock: Clock, probe: Probe | None = None) -> None:
        self.runtime = runtime
        self.clock = clock
        self._own_probe = probe is None
        self.probe: Probe = probe or HttpProbe()
        self._inline = bool(getattr(self.probe, "answers_at_once", False))
        self._next_due: dict[str, float] = {}       # target id -> when its next check starts
        self._buckets: dict[float, list[str]] = {}  # due time -> target ids (stale ones skipped when due)
        self._times: list[float] = []               # heap of the buckets' due times
        self._held: set[str] = set()                # due while their previous check still runs
        self._swept_at: float | None = None
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
        tid = change.target.target_id
        if change.kind == REGISTERED:  # a new target is checked at once, not at the next beat
            self._schedule(tid, self.clock.now())
            self._wake.set()
        elif change.kind in (DRAINING, REMOVED):
            self._next_due.pop(tid, None)

    def _schedule(self, tid: str, when: float) -> None:
        self._next_due[tid] = when
        self._bucket(when).append(tid)

    def _bucket(self, when: float) -> list[str]:
        """The target ids due at `when` (a new bucket joins the heap of due times)."""
        bucket = self._buckets.get(when)
        if bucket is None:
            bucket = self._buckets[when] = []
            heapq.heappush(self._times, when)
        return bucket

    async def _loop(self) -> None:
        while True:
            self._start_due_checks()
            await self._sleep_or_wake(self._wait())

    def _wait(self) -> float:
        """AWS seconds until the next check is due (an interval when none is)."""
        times, buckets, next_due = self._times, self._buckets, self._next_due
        while times:
            when = times[0]
            if any(next_due.get(tid) == when for tid in buckets[when]):
                return max(0.0, when - self.clock.now())
            heapq.heappop(times)  # only stale entries left in it
            del buckets[when]
        return self.runtime.target_group.health_check_interval_seconds

    def _sweep(self, now: float) -> None:
        """Level check, at the first wake-up an interval after the last: every checkable target has a due
        time, and nothing else has (notices keep it so; this only makes sure)."""
        self._swept_at = now
        targets, next_due = self.runtime.targets.targets, self._next_due
        current = {tid for tid, ts in targets.items() if ts.state in CHECKED_STATES}
        for tid in next_due.keys() - current:
            del next_due[tid]
        if len(current) != len(next_due):
            for tid in targets:  # in registration order
                if tid in current and tid not in next_due:
                    self._schedule(tid, now)

    def _due(self) -> list[TargetState]:
        """The checkable targets due now, each taken (its next check set an interval from now)."""
        now = self.clock.now()
        interval = self.runtime.target_group.health_check_interval_seconds
        if self._swept_at is None or now >= self._swept_at + interval:
            self._sweep(now)
        due, times, buckets, next_due = [], self._times, self._buckets, self._next_due
        targets, running = self.runtime.targets.targets, self._running
        following, then = now + interval, None   # every target checked now is next due then
        while times and times[0] <= now:
            for tid in buckets.pop(heapq.heappop(times)):
                when = next_due.get(tid)
                if when is None or when > now:
                    continue  # stale: rescheduled, or no longer checked
                ts = targets.get(tid)
                if ts is None or ts.state not in CHECKED_STATES:
                    del next_due[tid]
                    continue
                if tid in running:  # checks of one target never overlap: it goes when this one ends
                    self._held.add(tid)
                    continue
                if then is None:
                    then = self._bucket(following)
                next_due[tid] = following
                then.append(tid)
                due.append(ts)
        return due

    def _start_due_checks(self) -> None:
        due = self._due()
        if not due:
            return
        loop = asyncio.get_running_loop()
        if self._inline:  # one task runs them all, one after another, where one task each would have run
            batch = loop.create_task(self._check_batch(due))
            for ts in due:
                self._running[ts.target_id] = batch
        else:
            for ts in due:
                self._running[ts.target_id] = loop.create_task(self._check(ts))

    async def _check_batch(self, due: list[TargetState]) -> None:
        """The due checks one after another: each as `_check` (and `check_target`) would make it."""
        runtime, probe, running, held = self.runtime, self.probe, self._running, self._held
        tg = path = timeout = port = None
        results: dict[int, CheckResult] = {}   # status code -> its result, for this group's matcher
        try:
            for ts in due:
                tid = ts.target_id
                try:
                    if runtime.target_group is not tg:
                        tg = runtime.target_group
                        path, port, results = tg.health_check_path, tg.health_check_port, {}
                        timeout = max(MIN_WALL_TIMEOUT, float(tg.health_check_timeout_seconds))
                    runtime.begin_check(ts)
                    target = ts.target
                    try:   # runtime.health_check_port(ts), as it reads the group's setting
                        status = await probe(target.host, target.port if port == "traffic-port" else int(port),
                                             path, timeout)
                    except (asyncio.TimeoutError, TimeoutError):
                        result = CheckResult.timed_out()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # refused, reset, malformed: no HTTP answer
                        result = CheckResult.failed(type(exc).__name__)
                    else:
                        result = results.get(status)
                        if result is None:
                            result = results[status] = (_passed(status) if tg.matches(status)
                                                        else CheckResult.code_mismatch(status))
                    self.checks_done += 1
                    runtime.record_health(tid, result)
                except asyncio.CancelledError:
                    raise
                except Exception:  # as a check task's failure would be: the others still run
                    log.exception("health check of %s failed", tid)
                finally:
                    running.pop(tid, None)
                    if held and tid in held:
                        self._checked(tid)
        finally:
            self._wake.set()

    async def _check_once(self, ts: TargetState) -> None:
        tg = self.runtime.target_group
        self.runtime.begin_check(ts)
        timeout = max(MIN_WALL_TIMEOUT, float(tg.health_check_timeout_seconds))
        result = await check_target(self.probe, ts.host, self.runtime.health_check_port(ts),
                                    tg.health_check_path, timeout, tg.matches)
        self.checks_done += 1
        self.runtime.record_health(ts.target_id, result)

    async def _check(self, ts: TargetState) -> None:
        try:
            await self._check_once(ts)
        finally:
            self._checked(ts.target_id)

    def _checked(self, tid: str) -> None:
        """A check of `tid` has ended: it may be checked again (now, if it fell due meanwhile)."""
        self._running.pop(tid, None)
        if self._held and tid in self._held:
            self._held.discard(tid)
            when = self._next_due.get(tid)
            if when is not None:
                self._schedule(tid, when)
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
