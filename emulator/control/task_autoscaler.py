"""Service Auto Scaling: Application Auto Scaling's target tracking moves services' desiredCount, once a minute.

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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..clock import Clock
from ..model.scaling import ScalableTarget, ScalingPolicy
from ..model.service import SERVICE_ACTIVE, Service
from ..model.state import StateStore
from ..scaling.alarms import INSUFFICIENT_DATA, evaluate_series
from ..scaling.datapoints import MetricSeries
from ..scaling.target_tracking import (
    ScalingDecision,
    ScalingHistory,
    ServiceCounts,
    combine_decisions,
    managed_alarms,
    metric_spec,
    plan_target_tracking,
)
from . import scaling_state

log = logging.getLogger(__name__)

EVALUATE_EVERY_S = 60
TARGET_TRACKING = "TargetTrackingScaling"


@dataclass
class TargetState:
    """What the loop remembers between minutes for one scalable target."""

    history: ScalingHistory = field(default_factory=ScalingHistory)
    alarm_states: dict[str, str] = field(default_factory=dict)   # alarm name -> state
    last_decisions: list[ScalingDecision] = field(default_factory=list)


class ServiceAutoScaler:
    def __init__(self, store: StateStore, clock: Clock, metrics, *, region: str, rng,
                 sample_period: float = 20.0) -> None:
        self.store, self.clock, self.metrics = store, clock, metrics
        self.region, self.rng = region, rng
        self.sample_period = sample_period   # the metrics collector's: each task gives 60 / it samples a minute
        self.states: dict[str, TargetState] = {}

    async def run(self) -> None:
        while True:  # just after each minute ends, when its datapoint is complete (as CloudWatch evaluates)
            await self.clock.sleep(EVALUATE_EVERY_S - self.clock.now() % EVALUATE_EVERY_S + 0.5)
            self.evaluate_all()

    def evaluate_all(self) -> None:
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
        policies = [p for p in self.store.list("scaling_policy")
                    if p.resource_id == target.resource_id and p.policy_type == TARGET_TRACKING]
        decisions = [self._plan(p, target, service, state, now) for p in policies]
        state.last_decisions = decisions
        decision = combine_decisions([d for d in decisions if d is not None])
        if decision is None or decision.capacity is None or decision.capacity == service.desired_count:
            return decision
        self._apply(target, service, decision, now)
        state.history = state.history.after(decision, now)
        return decision

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
