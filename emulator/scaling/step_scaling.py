"""Step scaling as Application Auto Scaling runs it: an alarm's breach size picks a step, the step sets the count.

The user owns the alarm; the policy owns a list of steps whose bounds are
relative to the alarm's threshold. When the alarm is in ALARM, the
aggregated metric (MetricAggregationType over the alarm's datapoints) minus
the threshold picks one step, and its ScalingAdjustment is applied as
ChangeInCapacity (+/- tasks), ExactCapacity (the new count) or
PercentChangeInCapacity (of the current count, rounded as AWS rounds, at
least MinAdjustmentMagnitude). The result is clamped to [MinCapacity,
MaxCapacity].

Cooldown (one per policy, default 300 s for ECS): during a scale-out's
cooldown the capacity it added counts toward the next scale-out, so from 4
a +2 and then a +3 end at 7, not 9; a scale-in's cooldown blocks scale-in,
and a scale-out ends it.

Sources: "Step scaling policies for Application Auto Scaling",
StepScalingPolicyConfiguration and StepAdjustment (API).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..model.scaling import ScalableTarget, ScalingPolicy, StepAdjustment, StepScalingPolicyConfiguration
from .alarms import ALARM, MetricAlarm
from .target_tracking import IN, OUT, ScalingDecision, ScalingHistory, activity_cause, clamp

CHANGE_IN_CAPACITY, EXACT_CAPACITY, PERCENT_CHANGE = "ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"


def aggregate(values: Sequence[float], aggregation: str) -> float:
    """MetricAggregationType over the alarm's datapoints: Average, Minimum or Maximum."""
    if not values:
        raise ValueError("no datapoints to aggregate")
    if aggregation == "Average":
        return sum(values) / len(values)
    if aggregation == "Minimum":
        return min(values)
    if aggregation == "Maximum":
        return max(values)
    raise ValueError(f"Unknown MetricAggregationType {aggregation!r}")


def find_step(steps: Sequence[StepAdjustment], metric: float, threshold: float) -> StepAdjustment | None:
    """The step whose interval holds metric - threshold.

    Above the threshold a step's lower bound is inclusive and its upper bound
    exclusive; below it, the other way round. A missing bound is infinite.
    """
    diff = metric - threshold
    for step in steps:
        low = -math.inf if step.metric_interval_lower_bound is None else step.metric_interval_lower_bound
        high = math.inf if step.metric_interval_upper_bound is None else step.metric_interval_upper_bound
        if diff > 0 and low <= diff < high:
            return step
        if diff < 0 and low < diff <= high:
            return step
        if diff == 0 and low <= diff <= high:
            return step
    return None


def adjusted_capacity(config: StepScalingPolicyConfiguration, adjustment: int, current: int) -> int:
    """The capacity one step asks for, before clamping."""
    if config.adjustment_type == EXACT_CAPACITY:
        return adjustment
    if config.adjustment_type == CHANGE_IN_CAPACITY:
        return current + adjustment
    if config.adjustment_type != PERCENT_CHANGE:
        raise ValueError(f"Unknown AdjustmentType {config.adjustment_type!r}")
    change = percent_change(current, adjustment)
    magnitude = config.min_adjustment_magnitude
    if magnitude is not None and change and abs(change) < magnitude:
        change = magnitude if change > 0 else -magnitude
    return current + change


def percent_change(current: int, percent: float) -> int:
    """PercentChangeInCapacity's rounding: above 1 down, 0..1 to 1, 0..-1 to -1, below -1 toward 0."""
    change = current * percent / 100
    if change > 1:
        return math.floor(change)
    if change > 0:
        return 1
    if change >= -1:
        return -1 if change < 0 else 0
    return math.ceil(change)


def plan_step_scaling(policy: ScalingPolicy, target: ScalableTarget, alarm: MetricAlarm, alarm_state: str,
                      metric: float | None, desired: int, history: ScalingHistory, now: float,
                      in_deployment: bool = False) -> ScalingDecision:
    """One invocation of a step scaling policy by its alarm; `metric` is the aggregated value (see `aggregate`)."""
    config = policy.step_scaling_policy_configuration
    if config is None:
        raise ValueError(f"policy {policy.policy_name} is not a step scaling policy")

    def hold(reason: str) -> ScalingDecision:
        return ScalingDecision(policy.policy_name, None, reason, previous=desired)

    if alarm_state != ALARM:
        return hold(f"alarm {alarm.alarm_name} is {alarm_state}")
    if metric is None:
        return hold("insufficient data: no datapoint to scale on")
    step = find_step(config.step_adjustments, metric, alarm.threshold)
    if step is None:
        return hold(f"no step adjustment covers {metric:g} against the threshold {alarm.threshold:g}")
    wanted = clamp(adjusted_capacity(config, step.scaling_adjustment, desired), target)
    if wanted > desired:
        return _scale_out(policy, config, target, step, desired, wanted, history, now, alarm.alarm_name)
    if wanted < desired:
        return _scale_in(policy, config, target, desired, wanted, history, now, alarm.alarm_name, in_deployment)
    return hold(f"the step leaves the desired count at {desired}")


def _scale_out(policy: ScalingPolicy, config: StepScalingPolicyConfiguration, target: ScalableTarget,
               step: StepAdjustment, desired: int, wanted: int, history: ScalingHistory, now: float,
               alarm_name: str) -> ScalingDecision:
    if target.suspended_state.dynamic_scaling_out_suspended:
        return ScalingDecision(policy.policy_name, None, "scale-out is suspended (DynamicScalingOutSuspended)",
                               previous=desired)
    if history.in_scale_out_cooldown(config.cooldown, now) and history.last_scale_out_from is not None:
        # What the last scale-out added is part of this one: start from where that one started.
        wanted = clamp(adjusted_capacity(config, step.scaling_adjustment, history.last_scale_out_from), target)
        if wanted <= desired:
            return ScalingDecision(policy.policy_name, None,
                                   f"cooldown: the step's {wanted} tasks are already covered by the last scale-out",
                                   previous=desired)
    reason = f"{config.adjustment_type} {step.scaling_adjustment} -> {wanted}"
    return ScalingDecision(policy.policy_name, wanted, reason, OUT, desired,
                           activity_cause(alarm_name, policy.policy_name))


def _scale_in(policy: ScalingPolicy, config: StepScalingPolicyConfiguration, target: ScalableTarget, desired: int,
              wanted: int, history: ScalingHistory, now: float, alarm_name: str,
              in_deployment: bool) -> ScalingDecision:
    def hold(reason: str) -> ScalingDecision:
        return ScalingDecision(policy.policy_name, None, reason, previous=desired)

    if target.suspended_state.dynamic_scaling_in_suspended:
        return hold("scale-in is suspended (DynamicScalingInSuspended)")
    if in_deployment:
        return hold("scale-in is off while the service has a deployment in progress")
    if history.in_scale_in_cooldown(config.cooldown, now):
        return hold(f"scale-in cooldown ({config.cooldown} s) since the last scale-in")
    return ScalingDecision(policy.policy_name, wanted, f"{config.adjustment_type} step -> {wanted}", IN, desired,
                           activity_cause(alarm_name, policy.policy_name))
