"""The health check loop on a fake clock with a scripted probe: cadence, thresholds, reasons, stopping."""

from __future__ import annotations

import asyncio

import pytest

from emulator.alb import balancer as b
from emulator.alb.balancer import Target
from emulator.alb.health import HealthChecker, check_target
from emulator.alb.targets import TargetGroupRuntime
from emulator.clock import FakeClock
from emulator.model.elb import Matcher, TargetGroup

A = Target("10.0.0.1", 32768)
B = Target("10.0.0.2", 32769)


class ScriptedProbe:
    """Answers per target from a script (status codes, or exceptions to raise); records each call."""

    def __init__(self, clock: FakeClock, script: dict[str, list]) -> None:
        self.clock = clock
        self.script = script
        self.calls: list[tuple[float, str, int, str, float]] = []

    async def __call__(self, host: str, port: int, path: str, timeout: float) -> int:
        self.calls.append((self.clock.now(), host, port, path, timeout))
        answers = self.script.get(host, [200])
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def setup(script: dict[str, list], **tg_kw) -> tuple[TargetGroupRuntime, FakeClock, ScriptedProbe, HealthChecker]:
    clock = FakeClock(time_scale=10)
    tg = TargetGroup("web", port=80, health_check_path="/health", **tg_kw)
    runtime = TargetGroupRuntime(tg, clock)
    probe = ScriptedProbe(clock, script)
    return runtime, clock, probe, HealthChecker(runtime, clock, probe)


def status(runtime: TargetGroupRuntime, target: Target = A) -> str:
    return runtime.targets.get(target.target_id).state


async def test_new_target_is_checked_at_once_and_then_every_interval():
    runtime, clock, probe, checker = setup({}, health_check_interval_seconds=30)
    checker.start()
    start = clock.now()
    runtime.register([A])
    await clock.advance(0)
    assert status(runtime) == b.HEALTHY  # one pass is enough for a new target
    await clock.advance(95)
    assert [t - start for t, *_ in probe.calls] == [0, 30, 60, 90]
    assert probe.calls[0][1:4] == ("10.0.0.1", 32768, "/health")
    assert probe.calls[0][4] == pytest.approx(5.0)  # 5 s of wall time, whatever the time scale
    await checker.stop()


async def test_failing_target_goes_unhealthy_after_threshold_and_recovers_after_healthy_threshold():
    script = {"10.0.0.1": [200, 500, 500, 200, 200, 200]}
    runtime, clock, probe, checker = setup(script, health_check_interval_seconds=10,
                                           unhealthy_threshold_count=2, healthy_threshold_count=3)
    checker.start()
    runtime.register([A])
    seen = []
    for _ in range(6):
        await clock.advance(0)
        seen.append(status(runtime))
        await clock.advance(10)
    assert seen == [b.HEALTHY, b.HEALTHY, b.UNHEALTHY, b.UNHEALTHY, b.UNHEALTHY, b.HEALTHY]
    await checker.stop()


@pytest.mark.parametrize("answer, reason", [
    (500, b.RESPONSE_CODE_MISMATCH),
    (asyncio.TimeoutError(), b.TIMEOUT),
    (ConnectionRefusedError(), b.FAILED_HEALTH_CHECKS),
], ids=["code", "timeout", "refused"])
async def test_new_target_that_never_passes_is_unhealthy_with_the_reason(answer, reason):
    runtime, clock, _, checker = setup({"10.0.0.1": [answer]}, health_check_interval_seconds=5)
    checker.start()
    runtime.register([A])
    await clock.advance(0)
    assert runtime.targets.get(A.target_id).reason == b.INITIAL_HEALTH_CHECKING
    await clock.advance(5)
    ts = runtime.targets.get(A.target_id)
    assert (ts.state, ts.reason) == (b.UNHEALTHY, reason)
    await checker.stop()


async def test_draining_targets_are_not_checked():
    runtime, clock, probe, checker = setup({}, health_check_interval_seconds=10)
    checker.start()
    runtime.register([A, B])
    await clock.advance(0)
    runtime.deregister([A])
    before = len(probe.calls)
    await clock.advance(30)
    assert {host for _, host, *_ in probe.calls[before:]} == {"10.0.0.2"}
    await checker.stop()
    await runtime.close()


async def test_configured_health_check_port_is_used():
    runtime, clock, probe, checker = setup({}, health_check_port="9000")
    checker.start()
    runtime.register([A])
    await clock.advance(0)
    assert probe.calls[0][2] == 9000
    await checker.stop()


async def test_stop_ends_every_task():
    runtime, clock, probe, checker = setup({}, health_check_interval_seconds=10)
    checker.start()
    runtime.register([A, B])
    await clock.advance(0)
    await checker.stop()
    calls = len(probe.calls)
    await clock.advance(100)
    assert len(probe.calls) == calls
    runtime.register([Target("10.0.0.3", 1)])  # no longer listening
    await clock.advance(10)
    assert len(probe.calls) == calls


@pytest.mark.parametrize("matcher, code, ok", [("200", 200, True), ("200", 204, False), ("200-399", 302, True)])
async def test_check_target_uses_the_matcher(matcher, code, ok):
    async def probe(host, port, path, timeout):
        return code
    tg = TargetGroup("x", port=80, matcher=Matcher(matcher))
    result = await check_target(probe, "h", 1, "/", 1.0, tg.matches)
    assert result.ok is ok and result.status_code == code


class AtOnceProbe(ScriptedProbe):
    """A probe that never waits (as the in-memory runtime's): the checker runs its checks in one go."""

    answers_at_once = True


async def test_a_probe_that_answers_at_once_gets_the_same_checks_at_the_same_times():
    async def run(probe_class):
        clock = FakeClock(time_scale=10)
        runtime = TargetGroupRuntime(TargetGroup("web", port=80, health_check_path="/health",
                                                 health_check_interval_seconds=10, unhealthy_threshold_count=2),
                                     clock)
        probe = probe_class(clock, {"10.0.0.1": [200, 500, 500, 500, 200], "10.0.0.2": [ConnectionRefusedError()]})
        checker = HealthChecker(runtime, clock, probe)
        changes = []
        runtime.subscribe(lambda c: changes.append((c.aws_time, c.target.host, c.kind, c.state)))
        checker.start()
        runtime.register([A])
        await clock.advance(4)
        runtime.register([B])
        await clock.advance(3)
        runtime.deregister([B])
        await clock.advance(60)
        await checker.stop()
        await runtime.close()
        return probe.calls, changes, checker.checks_done

    assert await run(AtOnceProbe) == await run(ScriptedProbe)
    calls, _, done = await run(AtOnceProbe)
    assert done == len(calls) and [t for t, host, *_ in calls if host == "10.0.0.2"] == [calls[0][0] + 4]


async def test_ten_thousand_targets_are_each_checked_once_an_interval():
    clock = FakeClock(time_scale=10)
    runtime = TargetGroupRuntime(TargetGroup("web", port=80, health_check_interval_seconds=30), clock)
    probe = AtOnceProbe(clock, {})
    checker = HealthChecker(runtime, clock, probe)
    checker.start()
    targets = [Target(f"10.0.{i // 250}.{i % 250}", 8080) for i in range(10_000)]
    runtime.register(targets)
    await clock.advance(95)

    per_target = {}
    for t, host, *_ in probe.calls:
        per_target.setdefault(host, []).append(t - probe.calls[0][0])
    assert len(per_target) == 10_000 and set(map(tuple, per_target.values())) == {(0, 30, 60, 90)}
    assert runtime.counts() == {"HealthyHostCount": 10_000, "UnHealthyHostCount": 0}
    await checker.stop()


async def test_targets_registered_before_the_checker_starts_are_checked_at_once():
    runtime, clock, probe, checker = setup({}, health_check_interval_seconds=30)
    runtime.register([A, B])
    checker.start()
    await clock.advance(0)
    assert {host for _, host, *_ in probe.calls} == {"10.0.0.1", "10.0.0.2"}
    assert status(runtime, A) == status(runtime, B) == b.HEALTHY
    await checker.stop()
