"""Step scaling: which step a breach picks, the three adjustment types, clamps and the policy cooldown."""

from __future__ import annotations

import pytest

from emulator.model.scaling import (ScalableTarget, ScalingPolicy, StepAdjustment, StepScalingPolicyConfiguration,
                                    SuspendedState)
from emulator.scaling.alarms import ALARM, GREATER_THAN, LESS_THAN, OK, MetricAlarm
from emulator.scaling.step_scaling import (adjusted_capacity, aggregate, find_step, percent_change,
                                           plan_step_scaling)
from emulator.scaling.target_tracking import IN, OUT, ScalingHistory

RESOURCE = "service/production-cluster/web-app-service"
NOW = 1_795_684_440.0
HIGH = MetricAlarm("web-app-cpu-gt-75", 75.0, GREATER_THAN, 1)
LOW = MetricAlarm("web-app-cpu-lt-25", 25.0, LESS_THAN, 1)
OUT_STEPS = [StepAdjustment(1, 0.0, 10.0), StepAdjustment(2, 10.0, 20.0), StepAdjustment(3, 20.0, None)]
IN_STEPS = [StepAdjustment(-2, None, -20.0), StepAdjustment(-1, -20.0, 0.0)]


def config(steps=OUT_STEPS, kind="ChangeInCapacity", magnitude=None, cooldown=300):
    return StepScalingPolicyConfiguration(kind, steps, magnitude, cooldown)


def policy(**kwargs) -> ScalingPolicy:
    return ScalingPolicy("web-app-step", RESOURCE, "StepScaling", step_scaling_policy_configuration=config(**kwargs))


def scalable(min_capacity=1, max_capacity=20, **suspended) -> ScalableTarget:
    return ScalableTarget(RESOURCE, min_capacity, max_capacity, suspended_state=SuspendedState(**suspended))


@pytest.mark.parametrize("metric, expected", [
    (75.0, 1), (84.9, 1), (85.0, 2), (94.99, 2), (95.0, 3), (400.0, 3),   # above: lower bound inclusive
], ids=lambda v: str(v))
def test_steps_above_the_threshold(metric, expected):
    assert find_step(OUT_STEPS, metric, 75.0).scaling_adjustment == expected


@pytest.mark.parametrize("metric, expected", [
    (24.0, -1), (5.0, -2), (5.01, -1), (0.0, -2),   # below: upper bound inclusive, so -20 belongs to (-inf, -20]
], ids=lambda v: str(v))
def test_steps_below_the_threshold(metric, expected):
    assert find_step(IN_STEPS, metric, 25.0).scaling_adjustment == expected


def test_no_step_covers_the_value():
    assert find_step(OUT_STEPS, 70.0, 75.0) is None


@pytest.mark.parametrize("kind, adjustment, current, magnitude, expected", [
    ("ChangeInCapacity", 2, 4, None, 6),
    ("ChangeInCapacity", -3, 4, None, 1),
    ("ExactCapacity", 10, 4, None, 10),
    ("PercentChangeInCapacity", 50, 4, None, 6),
    ("PercentChangeInCapacity", 33, 10, None, 13),    # 3.3 rounds down
    ("PercentChangeInCapacity", 10, 4, None, 5),      # 0.4 becomes 1
    ("PercentChangeInCapacity", -10, 4, None, 3),     # -0.4 becomes -1
    ("PercentChangeInCapacity", -33, 10, None, 7),    # -3.3 rounds toward zero
    ("PercentChangeInCapacity", 10, 4, 2, 6),         # MinAdjustmentMagnitude lifts 1 to 2
    ("PercentChangeInCapacity", -10, 4, 2, 2),
    ("PercentChangeInCapacity", 100, 10, 2, 20),      # magnitude only raises small changes
], ids=lambda v: str(v))
def test_adjustment_types(kind, adjustment, current, magnitude, expected):
    assert adjusted_capacity(config(kind=kind, magnitude=magnitude), adjustment, current) == expected


@pytest.mark.parametrize("current, percent, change", [
    (10, 15, 1), (10, 25, 2), (3, 10, 1), (3, -10, -1), (10, -15, -1), (10, -25, -2), (10, 0, 0),
], ids=lambda v: str(v))
def test_percent_rounding(current, percent, change):
    assert percent_change(current, percent) == change


@pytest.mark.parametrize("metric, desired, bounds, expected, direction", [
    (80.0, 4, (1, 20), 5, OUT),
    (99.0, 4, (1, 20), 7, OUT),
    (99.0, 19, (1, 20), 20, OUT),    # clamped to MaxCapacity
    (99.0, 20, (1, 20), None, None),
], ids=["small", "big", "max", "at-max"])
def test_scale_out_policy(metric, desired, bounds, expected, direction):
    decision = plan_step_scaling(policy(), scalable(*bounds), HIGH, ALARM, metric, desired, ScalingHistory(), NOW)
    assert (decision.capacity, decision.direction) == (expected, direction)


def test_scale_in_policy_clamps_to_min():
    p = policy(steps=IN_STEPS)
    decision = plan_step_scaling(p, scalable(3, 20), LOW, ALARM, 2.0, 4, ScalingHistory(), NOW)
    assert (decision.capacity, decision.direction) == (3, IN)


def test_the_activity_names_the_users_alarm():
    decision = plan_step_scaling(policy(), scalable(), HIGH, ALARM, 80.0, 4, ScalingHistory(), NOW)
    assert decision.cause == "monitor alarm web-app-cpu-gt-75 in state ALARM triggered policy web-app-step"
    assert decision.description == "Setting desired count to 5."


@pytest.mark.parametrize("state, metric, reason", [
    (OK, 99.0, "alarm web-app-cpu-gt-75 is OK"),
    (ALARM, None, "insufficient data: no datapoint to scale on"),
    (ALARM, 70.0, "no step adjustment covers 70 against the threshold 75"),
], ids=["alarm-ok", "no-data", "no-step"])
def test_holds_say_why(state, metric, reason):
    decision = plan_step_scaling(policy(), scalable(), HIGH, state, metric, 4, ScalingHistory(), NOW)
    assert (decision.capacity, decision.reason) == (None, reason)


def test_cooldown_counts_what_the_last_scale_out_added():
    """AWS's example: +2, then during the cooldown a +3 step adds only 1 more."""
    history = ScalingHistory()
    first = plan_step_scaling(policy(), scalable(), HIGH, ALARM, 90.0, 4, history, NOW)
    assert first.capacity == 6
    history = history.after(first, NOW)
    second = plan_step_scaling(policy(), scalable(), HIGH, ALARM, 99.0, 6, history, NOW + 60)
    assert second.capacity == 7
    again = plan_step_scaling(policy(), scalable(), HIGH, ALARM, 90.0, 6, history, NOW + 60)
    assert again.capacity is None and "cooldown" in again.reason
    after = plan_step_scaling(policy(), scalable(), HIGH, ALARM, 99.0, 6, history, NOW + 300)
    assert after.capacity == 9


def test_scale_in_cooldown_blocks_scale_in_not_scale_out():
    history = ScalingHistory(last_scale_in_at=NOW)
    blocked = plan_step_scaling(policy(steps=IN_STEPS), scalable(), LOW, ALARM, 2.0, 6, history, NOW + 60)
    assert blocked.capacity is None and "cooldown" in blocked.reason
    out = plan_step_scaling(policy(), scalable(), HIGH, ALARM, 99.0, 6, history, NOW + 60)
    assert out.capacity == 9


def test_no_scale_in_during_a_deployment_or_when_suspended():
    p = policy(steps=IN_STEPS)
    deploying = plan_step_scaling(p, scalable(), LOW, ALARM, 2.0, 6, ScalingHistory(), NOW, in_deployment=True)
    assert deploying.capacity is None
    suspended = plan_step_scaling(p, scalable(dynamic_scaling_in_suspended=True), LOW, ALARM, 2.0, 6,
                                  ScalingHistory(), NOW)
    assert suspended.capacity is None and "suspended" in suspended.reason


@pytest.mark.parametrize("aggregation, expected", [("Average", 20.0), ("Minimum", 10.0), ("Maximum", 30.0)])
def test_metric_aggregation_type(aggregation, expected):
    assert aggregate([10.0, 20.0, 30.0], aggregation) == expected
