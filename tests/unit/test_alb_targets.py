"""A target group at run time, on a fake clock: registration, health, draining with its delay, shapes."""

from __future__ import annotations

import pytest

from emulator.alb import balancer as b
from emulator.alb.balancer import CheckResult, Target
from emulator.alb.targets import DRAINED, DRAINING, HEALTH, REGISTERED, REMOVED, TargetGroupRuntime
from emulator.clock import FakeClock
from emulator.model.elb import Matcher, TargetGroup, TargetGroupAttributes

A = Target("10.0.0.1", 32768, instance_id="i-0a", task_arn="arn:aws:ecs:us-east-1:000000000000:task/c/1")
B = Target("10.0.0.2", 32769, instance_id="i-0b")


def make(delay: int = 300, algorithm: str = "round_robin", **kw) -> tuple[TargetGroupRuntime, FakeClock, list]:
    clock = FakeClock()
    tg = TargetGroup("web", target_group_arn="arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1",
                     port=80, attributes=TargetGroupAttributes(deregistration_delay_timeout_seconds=delay,
                                                               load_balancing_algorithm_type=algorithm), **kw)
    runtime = TargetGroupRuntime(tg, clock)
    changes: list = []
    runtime.subscribe(changes.append)
    return runtime, clock, changes


def state(runtime: TargetGroupRuntime, target: Target = A) -> tuple[str, str | None]:
    (desc,) = runtime.describe_target_health([target])
    return desc["TargetHealth"]["State"], desc["TargetHealth"].get("Reason")


async def test_registered_target_starts_initial_registration_in_progress():
    runtime, _, changes = make()
    runtime.register([A])
    assert state(runtime) == (b.INITIAL, b.REGISTRATION_IN_PROGRESS)
    assert [(c.kind, c.old_state, c.state) for c in changes] == [(REGISTERED, None, b.INITIAL)]
    runtime.register([A])  # twice is a no-op
    assert len(changes) == 1


async def test_check_moves_to_initial_health_checking_then_healthy():
    runtime, _, changes = make()
    runtime.register([A])
    ts = runtime.targets.get(A.target_id)
    runtime.begin_check(ts)
    assert state(runtime) == (b.INITIAL, b.INITIAL_HEALTH_CHECKING)
    runtime.record_health(A.target_id, CheckResult.passed())
    assert state(runtime) == (b.HEALTHY, None)
    assert changes[-1].kind == HEALTH and changes[-1].old_state == b.INITIAL and changes[-1].state == b.HEALTHY


async def test_unhealthy_subscribers_hear_it_once():
    runtime, _, changes = make(unhealthy_threshold_count=3)
    runtime.register([A])
    runtime.record_health(A.target_id, CheckResult.passed())
    for _ in range(5):
        runtime.record_health(A.target_id, CheckResult.code_mismatch(503))
    assert [c.state for c in changes if c.kind == HEALTH] == [b.HEALTHY, b.UNHEALTHY]
    assert state(runtime) == (b.UNHEALTHY, b.RESPONSE_CODE_MISMATCH)
    assert runtime.counts() == {"HealthyHostCount": 0, "UnHealthyHostCount": 1}


async def test_routing_follows_health_and_fails_open():
    runtime, _, _ = make()
    runtime.register([A, B])
    assert {runtime.choose().target for _ in range(4)} == {A, B}  # both initial: fail open
    runtime.record_health(A.target_id, CheckResult.passed())
    assert {runtime.choose().target for _ in range(4)} == {A}
    for _ in range(2):
        runtime.record_health(A.target_id, CheckResult.timed_out())
    assert {runtime.choose().target for _ in range(4)} == {A, B}  # every one unhealthy: fail open again


async def test_deregistration_drains_for_the_delay_then_unused():
    runtime, clock, changes = make(delay=300)
    runtime.register([A, B])
    ts = runtime.targets.get(A.target_id)
    ts.in_flight = 1  # a request still running on it
    runtime.deregister([A])
    assert state(runtime) == (b.DRAINING, b.DEREGISTRATION_IN_PROGRESS)
    assert all(runtime.choose().target == B for _ in range(5))  # no new requests
    await clock.advance(100)
    ts.in_flight = 0
    runtime.request_done(ts)  # in-flight reached 0: done early...
    assert changes[-1].kind == DRAINED
    assert state(runtime) == (b.DRAINING, b.DEREGISTRATION_IN_PROGRESS)  # ...but still shows draining
    await clock.advance(199)
    assert state(runtime)[0] == b.DRAINING
    await clock.advance(1)
    assert state(runtime) == (b.UNUSED, b.NOT_REGISTERED)
    assert A.target_id not in runtime.targets.targets
    removed = changes[-1]
    assert (removed.kind, removed.old_state, removed.state, removed.aws_time) == (
        REMOVED, b.DRAINING, b.UNUSED, clock.now())
    await runtime.close()


async def test_idle_target_is_drained_at_once_but_waits_the_delay():
    runtime, clock, changes = make(delay=30)
    runtime.register([A])
    runtime.deregister([A])
    assert [c.kind for c in changes] == [REGISTERED, DRAINING, DRAINED]
    await clock.advance(29)
    assert state(runtime)[0] == b.DRAINING
    await clock.advance(1)
    assert state(runtime)[0] == b.UNUSED


async def test_zero_delay_removes_at_once():
    runtime, _, changes = make(delay=0)
    runtime.register([A])
    runtime.deregister([A])
    assert [c.kind for c in changes] == [REGISTERED, DRAINING, REMOVED]
    assert runtime.choose() is None


async def test_registering_a_draining_target_takes_it_back():
    runtime, clock, changes = make(delay=300)
    runtime.register([A])
    ts = runtime.targets.get(A.target_id)
    ts.in_flight = 2
    runtime.deregister([A])
    runtime.register([A])
    assert state(runtime) == (b.INITIAL, b.REGISTRATION_IN_PROGRESS)
    assert runtime.targets.get(A.target_id) is ts and ts.in_flight == 2  # in-flight requests still count
    await clock.advance(400)
    assert state(runtime)[0] == b.INITIAL  # the old drain timer was cancelled
    await runtime.close()


async def test_describe_target_health_shape():
    runtime, _, _ = make(health_check_port="8081")
    runtime.register([A])
    assert runtime.describe_target_health() == [{
        "Target": {"Id": "i-0a", "Port": 32768},
        "HealthCheckPort": "8081",
        "TargetHealth": {"State": "initial", "Reason": "Elb.RegistrationInProgress",
                         "Description": "Target registration is in progress"},
    }]
    runtime.record_health(A.target_id, CheckResult.passed())
    assert runtime.describe_target_health()[0]["TargetHealth"] == {"State": "healthy"}


async def test_describe_ip_targets_and_unknown_ones():
    runtime, _, _ = make(target_type="ip")
    runtime.register([A])
    described = runtime.describe_target_health([A, "10.9.9.9:80"])
    assert described[0]["Target"] == {"Id": "10.0.0.1", "Port": 32768}
    assert described[0]["HealthCheckPort"] == "32768"
    assert described[1]["Target"] == {"Id": "10.9.9.9", "Port": 80}
    assert described[1]["TargetHealth"]["State"] == "unused"
    assert described[1]["TargetHealth"]["Reason"] == "Target.NotRegistered"


async def test_health_checks_disabled_targets_are_unavailable_and_routed():
    runtime, _, _ = make(health_check_enabled=False)
    runtime.register([A])
    assert state(runtime) == (b.UNAVAILABLE, b.HEALTH_CHECK_DISABLED)
    assert runtime.checkable_targets() == []
    assert runtime.choose().target == A


async def test_least_outstanding_requests_from_the_group_attribute():
    runtime, _, _ = make(algorithm="least_outstanding_requests")
    runtime.register([A, B])
    runtime.targets.get(A.target_id).in_flight = 4
    assert all(runtime.choose().target == B for _ in range(3))


async def test_minimum_healthy_targets_attribute_widens_fail_open():
    runtime, _, _ = make()
    runtime.target_group.attributes.other[
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count"] = "2"
    runtime.update_target_group(runtime.target_group)
    runtime.register([A, B])
    runtime.record_health(A.target_id, CheckResult.passed())
    assert {runtime.choose().target for _ in range(4)} == {A, B}


async def test_a_failing_subscriber_does_not_stop_the_others():
    runtime, _, changes = make()
    runtime.subscribe(lambda change: 1 / 0)
    seen = []
    unsubscribe = runtime.subscribe(seen.append)
    runtime.register([A])
    assert len(seen) == 1 and len(changes) == 1
    unsubscribe()
    runtime.register([B])
    assert len(seen) == 1


@pytest.mark.parametrize("matcher, code, ok", [("200", 200, True), ("200-299", 204, True),
                                               ("200,302", 301, False)])
async def test_matcher_decides(matcher, code, ok):
    runtime, _, _ = make(matcher=Matcher(matcher))
    assert runtime.target_group.matches(code) is ok


async def test_routing_and_counts_follow_every_change_though_worked_out_only_when_read():
    runtime, _, _ = make()
    assert runtime.choose() is None
    runtime.register([A, B])
    assert {runtime.choose().target for _ in range(2)} == {A, B}   # fail-open: nothing healthy yet
    assert runtime.counts() == {"HealthyHostCount": 0, "UnHealthyHostCount": 0}

    runtime.record_health(A.target_id, CheckResult.passed())
    assert runtime.targets.routable == (runtime.targets.get(A.target_id),)
    assert runtime.counts() == {"HealthyHostCount": 1, "UnHealthyHostCount": 0}
    runtime.record_health(A.target_id, CheckResult.passed())   # healthy and passing again: nothing moves
    assert runtime.targets.get(A.target_id).consecutive_successes == 2
    for _ in range(runtime.target_group.unhealthy_threshold_count):
        runtime.record_health(B.target_id, CheckResult.code_mismatch(500))
    assert runtime.counts() == {"HealthyHostCount": 1, "UnHealthyHostCount": 1}
    assert runtime.choose().target == A

    runtime.deregister([A])
    assert runtime.counts() == {"HealthyHostCount": 0, "UnHealthyHostCount": 1}
    assert runtime.choose().target == B   # fail-open to the unhealthy one; draining ones get nothing
    assert list(b.routable_targets(runtime.targets.targets.values())) == list(runtime.targets.routable)
    await runtime.close()


async def test_a_healthy_target_passing_again_is_recorded_as_the_state_machine_says():
    runtime, _, changes = make()
    runtime.register([A])
    runtime.record_health(A.target_id, CheckResult.passed())
    ts = runtime.targets.get(A.target_id)
    ts.consecutive_failures = 1   # one failure below the threshold, then a pass
    expected = b.compute_health(ts, CheckResult.passed(), 5, 2)
    before = len(changes)

    runtime.record_health(A.target_id, CheckResult.passed())

    assert (ts.state, ts.reason, ts.description, ts.consecutive_successes, ts.consecutive_failures) == \
        (expected.state, expected.reason, expected.description, expected.consecutive_successes,
         expected.consecutive_failures)
    assert len(changes) == before
