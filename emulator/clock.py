"""The one clock: AWS time for every loop, scaled so a 21-minute AWS story can play in 2 minutes.

Every duration in the emulator is written in AWS seconds (cooldowns, alarm
periods, health-check intervals) and slept through `clock.sleep`, which
divides it by `time_scale`. `RealClock` runs the emulator; `FakeClock` lets
tests move time by hand, so `await clock.sleep(300)` returns at once and the
test asserts on what the loops did at each AWS instant.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from typing import Callable, Protocol

MAX_TIME_SCALE = 10_000.0


class Clock(Protocol):
    time_scale: float

    def now(self) -> float:
        """AWS time: epoch seconds on the emulator's timeline."""

    def wall(self) -> float:
        """The host's epoch seconds."""

    async def sleep(self, aws_seconds: float) -> None:
        """Sleep `aws_seconds` of AWS time (aws_seconds / time_scale of wall time)."""

    def wall_duration(self, aws_seconds: float) -> float:
        """Wall seconds that `aws_seconds` of AWS time take."""


def check_time_scale(time_scale: float) -> float:
    if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale)
            and 0 < time_scale <= MAX_TIME_SCALE):
        raise ValueError(f"time_scale must be a number above 0 and at most {MAX_TIME_SCALE:g}, "
                         f"not {time_scale!r}")
    return float(time_scale)


class RealClock:
    """AWS time = start_aws + (monotonic() - m0) * time_scale, rebased on every scale change."""

    def __init__(self, time_scale: float = 1.0, start_aws: float | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._monotonic, self._wall = monotonic, wall
        start = wall() if start_aws is None else float(start_aws)
        # (aws at rebase, monotonic at rebase, scale): one tuple, so now() never reads a half-update.
        self._base = (start, monotonic(), check_time_scale(time_scale))
        self._wakeups: set[asyncio.Future] = set()

    @property
    def time_scale(self) -> float:
        return self._base[2]

    def now(self) -> float:
        aws0, m0, scale = self._base
        return aws0 + (self._monotonic() - m0) * scale

    def wall(self) -> float:
        return self._wall()

    def wall_duration(self, aws_seconds: float) -> float:
        return max(0.0, aws_seconds) / self.time_scale

    def set_time_scale(self, time_scale: float) -> None:
        """Change speed from now on; AWS time continues from where it is, never jumping back."""
        scale = check_time_scale(time_scale)
        aws0, m0, old = self._base
        m = self._monotonic()
        self._base = (aws0 + (m - m0) * old, m, scale)
        for wake in list(self._wakeups):  # sleepers recompute their wall wait at the new speed
            wake.get_loop().call_soon_threadsafe(_resolve, wake)

    async def sleep(self, aws_seconds: float) -> None:
        deadline = self.now() + max(0.0, aws_seconds)
        loop = asyncio.get_running_loop()
        while True:
            wake = loop.create_future()
            self._wakeups.add(wake)
            timer = loop.call_later(self.wall_duration(deadline - self.now()), _resolve, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._wakeups.discard(wake)
            if self.now() >= deadline:
                return


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class FakeClock:
    """Time that moves only when a test says so; `sleep` parks until `advance` gets there."""

    def __init__(self, start: float = 1_700_000_000.0, time_scale: float = 1.0, *,
                 settle_turns: int = 20) -> None:
        self._now = float(start)
        self.time_scale = check_time_scale(time_scale)
        self.settle_turns = settle_turns
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []  # heap of (deadline, order, future)
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now

    def wall_duration(self, aws_seconds: float) -> float:
        return max(0.0, aws_seconds) / self.time_scale

    def set_time_scale(self, time_scale: float) -> None:
        self.time_scale = check_time_scale(time_scale)

    @property
    def sleepers(self) -> int:
        """How many callers are parked in `sleep`."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def set(self, t: float) -> None:
        """Jump to AWS time `t` without waking anyone (pure-code tests)."""
        if t < self._now:
            raise ValueError(f"the clock never goes back: {t} < {self._now}")
        self._now = float(t)

    def tick(self, seconds: float) -> None:
        """Move forward `seconds` without waking anyone (pure-code tests)."""
        self.set(self._now + seconds)

    async def sleep(self, aws_seconds: float) -> None:
        if aws_seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + aws_seconds, next(self._order), wake))
        await wake

    async def advance(self, seconds: float) -> None:
        """Move forward `seconds`, stopping at each sleeper's deadline in order.

        At each deadline, every sleeper due then wakes with now() == its deadline,
        and the event loop runs a few turns so woken loops can work and sleep
        again before time moves on.
        """
        if seconds < 0:
            raise ValueError(f"the clock never goes back: advance({seconds})")
        target = self._now + seconds
        await self._settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            self._now = max(self._now, self._sleepers[0][0])
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _resolve(heapq.heappop(self._sleepers)[2])
            await self._settle()
        self._now = target
        await self._settle()

    async def _settle(self) -> None:
        for _ in range(self.settle_turns):
            await asyncio.sleep(0)
