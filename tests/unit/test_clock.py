"""The clock: AWS-time arithmetic of RealClock (injected monotonic, no sleeping) and FakeClock's scheduling."""

from __future__ import annotations

import asyncio

import pytest

from emulator.clock import Clock, FakeClock, RealClock


class Monotonic:
    """A hand-driven stand-in for time.monotonic."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def real_clock(time_scale: float = 1.0, start_aws: float = 1_700_000_000.0) -> tuple[RealClock, Monotonic]:
    mono = Monotonic()
    return RealClock(time_scale, start_aws, monotonic=mono, wall=lambda: 42.0), mono


# RealClock


@pytest.mark.parametrize("scale, wall_elapsed, aws_elapsed", [
    (1.0, 10.0, 10.0),
    (10.0, 6.0, 60.0),
    (0.5, 4.0, 2.0),
    (10_000.0, 0.001, 10.0),
], ids=["real-time", "10x", "half-speed", "max-scale"])
def test_real_clock_aws_time_runs_time_scale_times_faster(scale, wall_elapsed, aws_elapsed):
    clock, mono = real_clock(scale)
    mono.t += wall_elapsed
    assert clock.now() == pytest.approx(1_700_000_000.0 + aws_elapsed)
    assert clock.wall() == 42.0


@pytest.mark.parametrize("scale, aws_seconds, wall_seconds", [
    (1.0, 300.0, 300.0),
    (10.0, 300.0, 30.0),
    (60.0, 1260.0, 21.0),
    (10.0, -5.0, 0.0),
], ids=["real-time", "10x", "21-minutes-in-21-seconds", "negative-is-zero"])
def test_wall_duration_divides_by_time_scale(scale, aws_seconds, wall_seconds):
    clock, _ = real_clock(scale)
    assert clock.wall_duration(aws_seconds) == pytest.approx(wall_seconds)


def test_real_clock_starts_at_host_time_by_default():
    clock = RealClock(monotonic=Monotonic(), wall=lambda: 1_234.5)
    assert clock.now() == 1_234.5


def test_set_time_scale_rebases_so_aws_time_never_jumps():
    clock, mono = real_clock(1.0, start_aws=0.0)
    mono.t += 100            # 100 AWS seconds at 1x
    clock.set_time_scale(10.0)
    assert clock.now() == pytest.approx(100.0)
    mono.t += 5              # 50 AWS seconds at 10x
    assert clock.now() == pytest.approx(150.0)
    clock.set_time_scale(0.5)
    assert clock.now() == pytest.approx(150.0)
    mono.t += 10             # 5 AWS seconds at 0.5x
    assert clock.now() == pytest.approx(155.0)
    assert clock.time_scale == 0.5


@pytest.mark.parametrize("bad", [0, -1.0, 10_001, float("inf"), float("nan"), "10"],
                         ids=["zero", "negative", "absurd", "inf", "nan", "string"])
def test_bad_time_scales_are_refused(bad):
    with pytest.raises(ValueError, match="time_scale"):
        RealClock(bad, monotonic=Monotonic())
    clock, _ = real_clock()
    with pytest.raises(ValueError, match="time_scale"):
        clock.set_time_scale(bad)
    assert clock.time_scale == 1.0


async def test_real_clock_sleep_zero_returns():
    clock = RealClock(time_scale=100.0)
    await asyncio.wait_for(clock.sleep(0), timeout=5)


async def test_real_clock_sleeper_rechecks_its_deadline_when_the_scale_changes():
    clock, mono = real_clock(1.0)
    sleeper = asyncio.create_task(clock.sleep(100))   # 100 wall seconds at 1x
    await asyncio.sleep(0)
    mono.t += 100                                     # its AWS deadline has now passed
    clock.set_time_scale(2.0)                         # the rescale wakes it to look again
    await asyncio.wait_for(sleeper, timeout=5)


def test_both_clocks_satisfy_the_protocol():
    clocks: list[Clock] = [RealClock(), FakeClock()]
    for clock in clocks:
        assert clock.now() > 0 and clock.wall() > 0 and clock.time_scale == 1.0


# FakeClock


async def periodic(clock: FakeClock, period: float, seen: list[float]) -> None:
    """A control loop: work, then sleep a period."""
    while True:
        seen.append(clock.now())
        await clock.sleep(period)


async def test_advance_runs_loops_with_different_periods_the_right_number_of_times():
    clock = FakeClock(start=1000.0)
    fast, slow = [], []
    tasks = [asyncio.create_task(periodic(clock, 10, fast)), asyncio.create_task(periodic(clock, 25, slow))]
    try:
        await clock.advance(60)
        assert fast == [1000, 1010, 1020, 1030, 1040, 1050, 1060]
        assert slow == [1000, 1025, 1050]
        assert clock.now() == 1060
        await clock.advance(15)
        assert fast[-1] == 1070 and len(fast) == 8
        assert slow == [1000, 1025, 1050, 1075]
        assert clock.now() == 1075
    finally:
        for t in tasks:
            t.cancel()


async def test_sleepers_wake_in_deadline_order_and_see_their_deadline():
    clock = FakeClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in [("c", 30), ("a", 10), ("b", 20), ("late", 100)]]
    await clock.advance(50)
    assert woke == [("a", 10), ("b", 20), ("c", 30)]
    assert clock.sleepers == 1
    await clock.advance(50)
    assert woke[-1] == ("late", 100)
    await asyncio.gather(*tasks)


async def test_sleep_does_not_return_before_its_deadline():
    clock = FakeClock(start=0.0)
    task = asyncio.create_task(clock.sleep(10))
    await clock.advance(9.5)
    assert not task.done()
    await clock.advance(0.5)
    assert task.done()


@pytest.mark.parametrize("seconds", [0, -3], ids=["zero", "negative"])
async def test_sleep_zero_or_less_returns_after_one_turn_without_time_moving(seconds):
    clock = FakeClock(start=5.0)
    await asyncio.wait_for(clock.sleep(seconds), timeout=5)
    assert clock.now() == 5.0 and clock.sleepers == 0


async def test_a_cancelled_sleeper_is_skipped():
    clock = FakeClock(start=0.0)
    cancelled = asyncio.create_task(clock.sleep(5))
    kept = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    cancelled.cancel()
    await clock.advance(10)
    assert cancelled.cancelled() and kept.done()


async def test_tick_and_set_move_time_without_waking_sleepers():
    clock = FakeClock(start=100.0)
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    clock.tick(10)
    assert clock.now() == 110.0 and clock.wall() == 110.0
    clock.set(200.0)
    assert clock.now() == 200.0
    await asyncio.sleep(0)
    assert not task.done()        # only advance wakes sleepers
    await clock.advance(0)
    assert task.done()            # ... and one whose deadline has passed wakes at once


@pytest.mark.parametrize("move", [
    lambda c: c.set(99.0),
    lambda c: c.tick(-1),
], ids=["set-back", "tick-back"])
def test_fake_time_never_goes_back(move):
    clock = FakeClock(start=100.0)
    with pytest.raises(ValueError, match="never goes back"):
        move(clock)
    assert clock.now() == 100.0


async def test_advance_refuses_negative():
    with pytest.raises(ValueError):
        await FakeClock().advance(-1)


def test_fake_clock_wall_duration_uses_its_scale():
    clock = FakeClock(time_scale=10.0)
    assert clock.wall_duration(300) == 30.0
    clock.set_time_scale(60.0)
    assert clock.wall_duration(1260) == 21.0
