"""Service Auto Scaling: Application Auto Scaling's target tracking and step scaling move desiredCount, once a minute.

Every minute of AWS time, for each registered scalable target
(`ecs:service:DesiredCount`), each of its target tracking policies reads
its metric's one-minute datapoints (the service's CPUUtilization or
MemoryUtilization, the target group's RequestCountPerTarget, or a custom
metric), evaluates the two alarms AWS creates for it (3 of 3 above the
target; 15 of 15 below 90% of it) and proposes a capacity; the largest
scale-out wins, a scale-in only if every policy agrees. The cooldowns,
min/max capacity, suspended states and "no scale-in during a deployment"
are the pure functions' (`emulator.scaling.target_tracking`); this loop
feeds them, sets the service's desiredCount and writes the scaling activity.

Step scaling: every minute, first, every stored CloudWatch metric alarm
(`metric_alarms`, PutMetricAlarm) is evaluated on the metrics store and its
state changes are recorded on the alarm and journaled. While an alarm is in
ALARM it invokes, once a minute as AWS re-invokes it, each StepScaling
policy its AlarmActions name (`emulator.scaling.step_scaling`, with the
policy's own Cooldown, and the metric aggregated over the alarm's newest
EvaluationPeriods datapoints by the policy's MetricAggregationType). Target
tracking's policies are combined first (scale in only if all agree); the
step policies that want to act then join them, and the largest scale-out,
else the largest scale-in, wins. The activity's cause is AWS's: "monitor
alarm <alarm> in state ALARM triggered policy <policy>".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from ..clock import Clock
from ..model.scaling import ScalableTarget, ScalingPolicy
from ..model.service import SERVICE_ACTIVE, Service
from ..model.state import StateStore
from ..scaling.alarms import ALARM, INSUFFICIENT_DATA, MetricAlarm, evaluate_series
from ..scaling.datapoints import MetricSeries
from ..scaling.step_scaling import aggregate, plan_step_scaling
from ..scaling.target_tracking import (
    OUT,
    ScalingDecision,
    ScalingHistory,
    ServiceCounts,
    combine_decisions,
    managed_alarms,
    metric_spec,
    plan_target_tracking,
)
from . import metric_alarms, scaling_state

log = logging.getLogger(__name__)

EVALUATE_EVERY_S = 60
TARGET_TRACKING = "TargetTrackingScaling"
STEP_SCALING = "StepScaling"


@dataclass
class TargetState:
    """What the loop remembers between minutes for one scalable target."""

    history: ScalingHistory = field(default_factory=ScalingHistory)
    alarm_states: dict[str, str] = field(default_factory=dict)   # alarm name -> state
    last_decisions: list[ScalingDecision] = field(default_factory=list)
    step_histories: dict[str, ScalingHistory] = field(default_factory=dict)  # step policy ARN -> its own


class ServiceAutoScaler:
    def __init__(self, store: StateStore, clock: Clock, metrics, *, region: str, rng,
                 sample_period: float = 20.0) -> None:
        self.store, self.clock, self.metrics = store, clock, metrics
        self.region, self.rng = region, rng
        self.sample_period = sample_period   # the metrics collector's: each task gives 60 / it samples a minute
        self.states: dict[str, TargetState] = {}
        # alarm name -> the values of its newest EvaluationPeriods real datapoints, at the last evaluation
        self.alarm_values: dict[str, list[float]] = {}

    async def run(self) -> None:
        while True:  # just after each minute ends, when its datapoint is complete (as CloudWatch evaluates)
            await self.clock.sleep(EVALUATE_EVERY_S - self.clock.now() % EVALUATE_EVERY_S + 0.5)
            self.evaluate_all()

    def evaluate_all(self) -> None:
        try:
            self.evaluate_metric_alarms()
        except Exception:
            log.exception("evaluating metric alarms failed")
        for target in self.store.list("scalable_target"):
            if target.service_namespace != "ecs":
                continue
            try:
                self.evaluate(target)
            except Exception:
                log.exception("evaluating scaling policies of %s failed", target.resource_id)

    def evaluate(self, target: ScalableTarget) -> ScalingDecision | None:
        service = self._service(target)
        if service is None or service.status != SERVICE_ACTIVE:
            return None
        now = self.clock.now()
        state = self.states.setdefault(target.resource_id, TargetState())
        mine = [p for p in self.store.list("scaling_policy") if p.resource_id == target.resource_id]
        policies = [p for p in mine if p.policy_type == TARGET_TRACKING]
        decisions = [self._plan(p, target, service, state, now) for p in policies]
        steps = [(p, d) for p in mine if p.policy_type == STEP_SCALING
                 for d in self._plan_steps(p, target, service, state, now)]
        state.last_decisions = decisions + [d for _, d in steps]
        decision = combine_decisions([d for d in decisions if d is not None])
        acting = [d for _, d in steps if d.capacity is not None]
        if acting:
            decision = combine_decisions(([decision] if decision is not None and decision.capacity is not None
                                          else []) + acting)
        if decision is None or decision.capacity is None or decision.capacity == service.desired_count:
            return decision
        self._apply(target, service, decision, now)
        state.history = state.history.after(decision, now)
        for policy, d in steps:
            if d is decision:
                state.step_histories[_policy_key(policy)] = _after_step(self._step_history(state, policy), policy,
                                                                        decision, now)
        return decision

    # --- step scaling: CloudWatch alarms invoke the policies ---------------------------------

    def evaluate_metric_alarms(self) -> None:
        """Every stored metric alarm on the metrics store; a change of state is recorded on the alarm."""
        now = self.clock.now()
        for stored in self.store.list(metric_alarms.KIND):
            try:
                self._evaluate_metric_alarm(stored, now)
            except Exception:
                log.exception("evaluating alarm %s failed", stored.alarm_name)

    def _evaluate_metric_alarm(self, stored: metric_alarms.StoredMetricAlarm, now: float) -> None:
        alarm = stored.to_metric_alarm()
        series = self.metrics.series(alarm.namespace, alarm.metric_name, alarm.dimensions) if self.metrics else None
        series = series or MetricSeries(period=60)
        result = evaluate_series(alarm, series, now, stored.state_value)
        start, end = alarm.window(now)
        real = [v for _, v in series.values(start, end, alarm.statistic, alarm.period) if v is not None]
        self.alarm_values[alarm.alarm_name] = real[-alarm.evaluation_periods:]
        old = stored.state_value
        if result.state != old:
            recent = list(reversed(self.alarm_values[alarm.alarm_name]))
            metric_alarms.set_alarm_state(self.store, self.clock, stored.alarm_name, result.state, result.reason,
                                          state_reason_data=metric_alarms.reason_data(stored, now, recent, start))
            log.info("alarm %s: %s -> %s (%s)", stored.alarm_name, old, result.state, result.reason)

    def _plan_steps(self, policy: ScalingPolicy, target: ScalableTarget, service: Service, state: TargetState,
                    now: float) -> list[ScalingDecision]:
        """One invocation of the step policy by each of its alarms that is in ALARM."""
        config = policy.step_scaling_policy_configuration
        if config is None:
            return []
        out = []
        for stored in metric_alarms.alarms_acting_on(self.store, policy.policy_arn):
            state.alarm_states[stored.alarm_name] = stored.state_value
            if stored.state_value != ALARM:
                continue
            alarm: MetricAlarm = stored.to_metric_alarm()
            values = self.alarm_values.get(stored.alarm_name) or []
            metric = aggregate(values, config.metric_aggregation_type) if values else None
            out.append(plan_step_scaling(policy, target, alarm, ALARM, metric, service.desired_count,
                                         self._step_history(state, policy), now,
                                         in_deployment=len(service.deployments) > 1))
        return out

    def _step_history(self, state: TargetState, policy: ScalingPolicy) -> ScalingHistory:
        return state.step_histories.get(_policy_key(policy), ScalingHistory())

    def _plan(self, policy: ScalingPolicy, target: ScalableTarget, service: Service, state: TargetState,
              now: float) -> ScalingDecision | None:
        spec = metric_spec(policy.target_tracking_scaling_policy_configuration, policy.resource_id)
        series = self.metrics.series(spec.namespace, spec.metric_name, spec.dimensions) if self.metrics else None
        alarms = managed_alarms(policy)
        high = self._alarm(alarms.high, series, now, state)
        low = self._alarm(alarms.low, series, now, state) if alarms.low is not None else None
        counts = ServiceCounts(running=service.running_count, desired=service.desired_count,
                               metric=high.latest, high_state=high.state,
                               low_state=low.state if low is not None else "OK",
                               in_deployment=len(service.deployments) > 1,
                               measured=self._measured_tasks(spec, series, alarms.high, now))
        return plan_target_tracking(policy, target, counts, state.history, now)

    def _measured_tasks(self, spec, series: MetricSeries | None, alarm, now: float) -> float | None:
        """For a service utilization metric: how many tasks its newest datapoint averaged over."""
        if series is None or spec.namespace != "AWS/ECS":
            return None
        start, end = alarm.window(now)
        points = series.datapoints(start, end)
        if not points:
            return None
        per_task = max(1.0, alarm.period / self.sample_period)
        return points[-1].sample_count / per_task

    def _alarm(self, alarm, series: MetricSeries | None, now: float, state: TargetState):
        current = state.alarm_states.get(alarm.alarm_name, INSUFFICIENT_DATA)
        result = evaluate_series(alarm, series or MetricSeries(period=alarm.period), now, current)
        state.alarm_states[alarm.alarm_name] = result.state
        return result

    def _service(self, target: ScalableTarget) -> Service | None:
        _, cluster, name = target.resource_id.split("/", 2)
        return next((s for s in self.store.list("service")
                     if s.service_name == name and s.cluster_arn.endswith(f":cluster/{cluster}")), None)

    def _apply(self, target: ScalableTarget, service: Service, decision: ScalingDecision, now: float) -> None:
        scaling_state.set_desired_count(self.store, self.clock, target.resource_id, decision.capacity,
                                        cause=decision.cause, region=self.region)
        log.info("%s: %s (%s)", target.resource_id, decision.description, decision.cause)


def _policy_key(policy: ScalingPolicy) -> str:
    return policy.policy_arn or f"{policy.resource_id}/{policy.policy_name}"


def _after_step(history: ScalingHistory, policy: ScalingPolicy, decision: ScalingDecision,
                now: float) -> ScalingHistory:
    """A step policy's history once its decision is applied. A scale-out during the policy's cooldown keeps the
    initiating scale-out's start and base: AWS counts what *that* one added toward the next ones."""
    config = policy.step_scaling_policy_configuration
    if decision.direction == OUT and config is not None and history.in_scale_out_cooldown(config.cooldown, now):
        return replace(history, last_scale_out_to=decision.capacity)
    return history.after(decision, now)
