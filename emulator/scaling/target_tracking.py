"""Target tracking as Application Auto Scaling runs it for an ECS service: alarms in, a new desired count out.

A target tracking policy is two CloudWatch alarms plus arithmetic. AlarmHigh
fires on 3 of 3 one-minute datapoints above the target and scales out
"proportionally to the metric, as fast as it can"; AlarmLow fires on 15 of
15 datapoints below 90% of the target and scales in, so a service between
90% and 100% of target is left alone (the dead band). Either way the new
capacity is `ceil(running x metric / target)`: the RUNNING tasks are the
starting point, and rounding up is the conservative choice in both
directions (add at least enough, never remove so many that the metric
would go over the target). Cooldowns, DisableScaleIn, suspended scaling and
"no scale-in during a deployment" decide whether the proposal is applied:
during ScaleOutCooldown what the last scale-out added counts toward the
next, so only a larger one goes ahead; ScaleInCooldown blocks scale-in
until it ends or a scale-out ends it.

Sources: "Target tracking scaling policies for Application Auto Scaling",
TargetTrackingScalingPolicyConfiguration (API), "Service auto scaling"
(ECS). The alarm shapes are OBSERVED, not documented: copilot-cli#4233 and
moto show 3 and 15 periods; an AlarmLow of 63 for a target of 70 shows the
90% (ecs-semantics.md says only "usually more than 10% lower").

Everything here is pure: the caller evaluates the alarms (alarms.py) on
its metric store and passes their states, the latest metric value, the
service's counts, what happened before (ScalingHistory) and `now`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..model.scaling import ScalableTarget, ScalingPolicy, TargetTrackingScalingPolicyConfiguration
from .alarms import ALARM, GREATER_THAN, LESS_THAN, MISSING, MetricAlarm
from .datapoints import AVERAGE, SUM

CPU, MEMORY, ALB_REQUESTS = ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                             "ALBRequestCountPerTarget")
HIGH_EVALUATION_PERIODS = 3   # OBSERVED: AlarmHigh is 3 of 3 one-minute datapoints
LOW_EVALUATION_PERIODS = 15   # OBSERVED: AlarmLow is 15 of 15
LOW_THRESHOLD_RATIO = 0.9     # OBSERVED (AlarmLow 63 for target 70); UNCONFIRMED by AWS docs
ALARM_PERIOD = 60
OUT, IN = "out", "in"
_EPSILON = 1e-9  # 4 x 150 / 75 must be 8, not ceil(8.000000000000002) = 9


# --- what the policy watches ------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """The CloudWatch metric a policy tracks."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str


def metric_spec(config: TargetTrackingScalingPolicyConfiguration, resource_id: str) -> MetricSpec:
    """The metric behind a predefined or customized metric specification.

    ECSServiceAverage{CPU,Memory}Utilization are AWS/ECS's service metrics
    (Average); ALBRequestCountPerTarget is AWS/ApplicationELB's
    RequestCountPerTarget for the target group, whose one-minute Sum is
    requests per target per minute.
    """
    predefined, custom = config.predefined_metric_specification, config.customized_metric_specification
    if custom is not None:
        return MetricSpec(custom.namespace, custom.metric_name,
                          tuple((d.name, d.value) for d in custom.dimensions), custom.statistic)
    if predefined is None:
        raise ValueError("the policy names no metric")
    kind = predefined.predefined_metric_type
    if kind == ALB_REQUESTS:
        label = predefined.resource_label or ""
        target_group = label[label.index("targetgroup/"):] if "targetgroup/" in label else label
        return MetricSpec("AWS/ApplicationELB", "RequestCountPerTarget", (("TargetGroup", target_group),), SUM)
    _, cluster, service = resource_id.split("/", 2)
    name = {CPU: "CPUUtilization", MEMORY: "MemoryUtilization"}.get(kind)
    if name is None:
        raise ValueError(f"Unsupported predefined metric type {kind!r}")
    return MetricSpec("AWS/ECS", name, (("ClusterName", cluster), ("ServiceName", service)), AVERAGE)


@dataclass(frozen=True)
class TargetTrackingAlarms:
    high: MetricAlarm
    low: MetricAlarm | None  # None with DisableScaleIn (UNCONFIRMED: AWS may still create it)


def managed_alarms(policy: ScalingPolicy) -> TargetTrackingAlarms:
    """The two alarms Application Auto Scaling creates for a target tracking policy.

    Names are `TargetTracking-<resource id>-AlarmHigh-<uuid>` (OBSERVED); the
    uuid is derived from the policy, so the same policy always gets the same
    names. Missing data is treated as `missing`, CloudWatch's default.
    """
    config = _config(policy)
    spec = metric_spec(config, policy.resource_id)
    key = policy.policy_arn or f"{policy.resource_id}/{policy.policy_name}"

    def alarm(kind: str, threshold: float, operator: str, periods: int) -> MetricAlarm:
        alarm_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{kind}")
        return MetricAlarm(f"TargetTracking-{policy.resource_id}-{kind}-{alarm_id}", threshold, operator, periods,
                           period=ALARM_PERIOD, statistic=spec.statistic, treat_missing_data=MISSING,
                           namespace=spec.namespace, metric_name=spec.metric_name, dimensions=spec.dimensions)

    high = alarm("AlarmHigh", config.target_value, GREATER_THAN, HIGH_EVALUATION_PERIODS)
    low = None if config.disable_scale_in else alarm(
        "AlarmLow", config.target_value * LOW_THRESHOLD_RATIO, LESS_THAN, LOW_EVALUATION_PERIODS)
    return TargetTrackingAlarms(high, low)


# --- decisions and the memory of past ones ---------------------------------------------


@dataclass(frozen=True)
class ScalingDecision:
    """What a policy wants: a new desired count (None = leave it), and why, in AWS's words when it acts."""

    policy_name: str
    capacity: int | None
    reason: str
    direction: str | None = None  # OUT | IN
    previous: int | None = None
    cause: str = ""               # DescribeScalingActivities' Cause

    @property
    def description(self) -> str:
        return f"Setting desired count to {self.capacity}."

    @property
    def status_message(self) -> str:
        return f"Successfully set desired count to {self.capacity}. Change successfully fulfilled by ecs."


def activity_cause(alarm_name: str, policy_name: str) -> str:
    return f"monitor alarm {alarm_name} in state ALARM triggered policy {policy_name}"


@dataclass(frozen=True)
class ScalingHistory:
    """The scalable target's last scale-out and scale-in: all the cooldowns need to remember."""

    last_scale_out_at: float | None = None
    last_scale_out_from: int | None = None
    last_scale_out_to: int | None = None
    last_scale_in_at: float | None = None

    def after(self, decision: ScalingDecision, now: float) -> ScalingHistory:
        """The history once `decision` has been applied at `now`."""
        if decision.capacity is None:
            return self
        if decision.direction == OUT:
            return replace(self, last_scale_out_at=now, last_scale_out_from=decision.previous,
                           last_scale_out_to=decision.capacity)
        return replace(self, last_scale_in_at=now)

    def in_scale_out_cooldown(self, cooldown: float, now: float) -> bool:
        return self.last_scale_out_at is not None and now < self.last_scale_out_at + cooldown

    def in_scale_in_cooldown(self, cooldown: float, now: float) -> bool:
        """A scale-in cooldown blocks scale-in; a scale-out since then ended it."""
        if self.last_scale_in_at is None or now >= self.last_scale_in_at + cooldown:
            return False
        return self.last_scale_out_at is None or self.last_scale_out_at < self.last_scale_in_at


@dataclass(frozen=True)
class ServiceCounts:
    """What the policy reads from the service and its alarms this minute."""

    running: int                 # RUNNING tasks: target tracking's starting point
    desired: int                 # the current desiredCount (the scalable dimension)
    metric: float | None         # newest datapoint of the tracked metric; None = no data
    high_state: str              # AlarmHigh's state
    low_state: str = "OK"        # AlarmLow's state
    in_deployment: bool = False  # ECS turns scale-in off while a deployment is in progress
    # How many tasks the datapoint was measured on (its SampleCount over the samples a task gives per
    # period); None: `running`. A minute in which new tasks joined averages fewer tasks than run now,
    # and multiplying today's count by yesterday's average would overshoot.
    measured: float | None = None

    @property
    def base(self) -> float:
        return self.running if self.measured is None else self.measured


# --- the policy ---------------------------------------------------------------------


def proposed_capacity(running: float, metric: float, target_value: float) -> int:
    """ceil(running x metric / target): the fewest tasks that bring the metric to the target (UNCONFIRMED formula)."""
    return max(0, math.ceil(running * metric / target_value - _EPSILON))


def clamp(capacity: int, target: ScalableTarget) -> int:
    return max(target.min_capacity, min(target.max_capacity, capacity))


def plan_target_tracking(policy: ScalingPolicy, target: ScalableTarget, counts: ServiceCounts,
                         history: ScalingHistory, now: float) -> ScalingDecision:
    """One evaluation of a target tracking policy: scale out, scale in, or hold (with the reason)."""
    alarms = managed_alarms(policy)
    if counts.running == counts.desired == 0 and counts.metric is not None and counts.metric > 0:
        # From zero there is no utilization to multiply: AWS waits for one datapoint, then adds
        # the smallest step (ecs-semantics.md §4; UNCONFIRMED which datapoint counts).
        if not target.suspended_state.dynamic_scaling_out_suspended and clamp(1, target) > 0:
            return ScalingDecision(policy.policy_name, clamp(1, target), "scaling out from zero tasks", OUT, 0,
                                   activity_cause(alarms.high.alarm_name, policy.policy_name))
    if counts.high_state == ALARM:
        return _scale_out(policy, target, counts, history, now, alarms.high.alarm_name)
    if alarms.low is not None and counts.low_state == ALARM:
        return _scale_in(policy, target, counts, history, now, alarms.low.alarm_name)
    return ScalingDecision(policy.policy_name, None, "no alarm of the policy is in ALARM", previous=counts.desired)


def _scale_out(policy: ScalingPolicy, target: ScalableTarget, counts: ServiceCounts, history: ScalingHistory,
               now: float, alarm_name: str) -> ScalingDecision:
    config = _config(policy)

    def hold(reason: str) -> ScalingDecision:
        return ScalingDecision(policy.policy_name, None, reason, previous=counts.desired)

    if target.suspended_state.dynamic_scaling_out_suspended:
        return hold("scale-out is suspended (DynamicScalingOutSuspended)")
    if counts.metric is None:
        return hold("insufficient data: no datapoint to scale on")
    proposed = proposed_capacity(counts.base, counts.metric, config.target_value)
    wanted = clamp(proposed, target)
    if history.in_scale_out_cooldown(config.scale_out_cooldown, now) and history.last_scale_out_from is not None:
        # The capacity the last scale-out added counts toward this one (the rule AWS spells out
        # for step scaling; UNCONFIRMED for target tracking): what this one would add goes on
        # top of where the last one started, so only a larger scale-out changes anything.
        wanted = clamp(history.last_scale_out_from + proposed - counts.running, target)
        if wanted <= counts.desired:
            return hold(f"scale-out cooldown: {proposed - counts.running} more tasks on top of the last "
                        f"scale-out's start ({history.last_scale_out_from}) is not more than {counts.desired}")
    if wanted <= counts.desired:
        reason = ("already at MaxCapacity" if counts.desired >= target.max_capacity
                  else f"{wanted} tasks would not add to the desired count of {counts.desired}")
        return hold(reason)
    return ScalingDecision(policy.policy_name, wanted,
                           f"{counts.running} running tasks at {counts.metric:g} vs target "
                           f"{config.target_value:g} -> {wanted}", OUT, counts.desired,
                           activity_cause(alarm_name, policy.policy_name))


def _scale_in(policy: ScalingPolicy, target: ScalableTarget, counts: ServiceCounts, history: ScalingHistory,
              now: float, alarm_name: str) -> ScalingDecision:
    config = _config(policy)

    def hold(reason: str) -> ScalingDecision:
        return ScalingDecision(policy.policy_name, None, reason, previous=counts.desired)

    if target.suspended_state.dynamic_scaling_in_suspended:
        return hold("scale-in is suspended (DynamicScalingInSuspended)")
    if counts.in_deployment:
        return hold("scale-in is off while the service has a deployment in progress")
    if counts.metric is None:
        return hold("insufficient data: no datapoint to scale on")
    if history.in_scale_in_cooldown(config.scale_in_cooldown, now):
        return hold(f"scale-in cooldown ({config.scale_in_cooldown} s) since the last scale-in")
    wanted = clamp(proposed_capacity(counts.base, counts.metric, config.target_value), target)
    if wanted >= counts.desired:
        reason = ("already at MinCapacity" if counts.desired <= target.min_capacity
                  else f"{wanted} tasks would not remove any of the desired {counts.desired}")
        return hold(reason)
    return ScalingDecision(policy.policy_name, wanted,
                           f"{counts.running} running tasks at {counts.metric:g} vs target "
                           f"{config.target_value:g} -> {wanted}", IN, counts.desired,
                           activity_cause(alarm_name, policy.policy_name))


def combine_decisions(decisions: Sequence[ScalingDecision]) -> ScalingDecision | None:
    """Several policies on one service: scale out if any wants to, scale in only if all do; the largest wins."""
    outs = [d for d in decisions if d.direction == OUT and d.capacity is not None]
    if outs:
        return max(outs, key=lambda d: d.capacity or 0)
    ins = [d for d in decisions if d.direction == IN and d.capacity is not None]
    if ins and len(ins) == len(decisions):
        return max(ins, key=lambda d: d.capacity or 0)
    return None


def _config(policy: ScalingPolicy) -> TargetTrackingScalingPolicyConfiguration:
    config = policy.target_tracking_scaling_policy_configuration
    if config is None:
        raise ValueError(f"policy {policy.policy_name} is not a target tracking policy")
    return config
