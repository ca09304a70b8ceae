"""Capacity providers with managed scaling: the ASG follows CapacityProviderReservation, once a minute.

For each capacity provider with managed scaling, every minute of AWS time,
ECS publishes CapacityProviderReservation (M/N x 100, with the instances the
PROVISIONING tasks need counted into M) and the target tracking policy it
made on the Auto Scaling group acts on it through two alarms: above
targetCapacity for one datapoint, scale out (by the step the tasks need,
clamped to the step sizes, not while instances are still warming up); below
it for 15, scale in. With managed termination protection ECS keeps every
instance that runs tasks protected from scale-in and lifts protection from
empty ones, so the group's own scale-in only ever takes empty instances.

The decisions are the pure functions of `emulator.scaling.capacity`; this
loop builds their inputs from the store, keeps the alarms' states, moves the
group's desired capacity and writes the activity in Auto Scaling's words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..clock import Clock
from ..model.container_instance import ACTIVE, DRAINING
from ..model.events import SCALING_ACTIVITY, Event
from ..model.scaling import AutoScalingGroup, CapacityProvider
from ..model.state import StateStore
from ..model.task import PROVISIONING, STOPPED
from ..placement import TaskNeeds
from ..scaling.alarms import INSUFFICIENT_DATA, evaluate_series
from ..scaling.capacity import (
    InstanceShape,
    InstanceView,
    Reservation,
    TaskNeed,
    capacity_provider_reservation,
    managed_scaling_alarms,
    plan_managed_scaling,
)
from ..scaling.datapoints import MetricSeries
from .asg import GROUP_TAG, PROTECTED_TAG, AutoScalingGroups, tag
from .task_index import tasks_on_instance

log = logging.getLogger(__name__)

NAMESPACE, METRIC = "AWS/ECS/ManagedScaling", "CapacityProviderReservation"
EVALUATE_EVERY_S = 60


@dataclass
class ProviderState:
    """What the loop remembers between minutes for one capacity provider."""

    high_state: str = INSUFFICIENT_DATA
    low_state: str = INSUFFICIENT_DATA
    last: Reservation | None = None


class CapacityScaler:
    def __init__(self, store: StateStore, asgs: AutoScalingGroups, clock: Clock, metrics=None) -> None:
        self.store, self.asgs, self.clock = store, asgs, clock
        self.metrics = metrics                   # MetricsStore, when the process exports metrics
        self.series: dict[tuple[str, str], MetricSeries] = {}
        self.states: dict[tuple[str, str], ProviderState] = {}
        self._unsubscribe = store.subscribe(self._on_commit)

    def close(self) -> None:
        self._unsubscribe()

    def _on_commit(self, notice) -> None:
        """A task placed on an unprotected instance protects it at once, not at the next minute: the group's
        scale-in must never pick an instance that has just been given a task."""
        placed = {c.obj.container_instance_arn for c in notice.changes
                  if c.kind == "task" and c.op == "put" and c.obj.container_instance_arn
                  and c.obj.last_status != STOPPED}
        for arn in placed:
            ci = self.store.get("container_instance", arn)
            if ci is None or tag(ci, PROTECTED_TAG) == "true" or not self._managed_protection(tag(ci, GROUP_TAG)):
                continue
            ci.tags = [*ci.tags, {"key": PROTECTED_TAG, "value": "true"}]
            with self.store.transaction() as tx:
                tx.put("container_instance", arn, ci)

    def _managed_protection(self, group: str | None) -> bool:
        if group is None:
            return False
        return any(p.auto_scaling_group_provider.managed_termination_protection == "ENABLED"
                   and self._group(p) is not None and self._group(p).auto_scaling_group_name == group
                   for p in self.store.list("capacity_provider"))

    async def run(self) -> None:
        while True:  # just after each minute ends, when its datapoint is complete (as CloudWatch evaluates)
            await self.clock.sleep(EVALUATE_EVERY_S - self.clock.now() % EVALUATE_EVERY_S + 0.5)
            self.evaluate_all()

    def evaluate_all(self) -> None:
        for cluster in self.store.list("cluster"):
            if cluster.status != "ACTIVE":
                continue
            for name in cluster.capacity_providers:
                provider = self.store.get("capacity_provider", name)
                if provider is None:
                    continue
                try:
                    self.evaluate(provider, cluster.cluster_name)
                except Exception:
                    log.exception("managed scaling of capacity provider %s failed", name)

    # --- one minute of one provider ----------------------------------------------------------

    def evaluate(self, provider: CapacityProvider, cluster: str) -> Reservation | None:
        asg = self._group(provider)
        if asg is None:
            return None
        now = self.clock.now()
        instances = self.instance_views(asg)
        if provider.auto_scaling_group_provider.managed_termination_protection == "ENABLED":
            self._protect_busy_instances(asg)
        reservation = capacity_provider_reservation(instances, self._provisioning(provider.name, cluster),
                                                    [InstanceShape.of_group(asg)],
                                                    provider.auto_scaling_group_provider.managed_scaling)
        key = (cluster, provider.name)
        state = self.states.setdefault(key, ProviderState())
        state.last = reservation
        series = self.series.setdefault(key, MetricSeries(period=60, retention=3 * 3600))
        # The datapoint of the minute that just ended, so the alarms see it now.
        series.add(now - 1, reservation.value)  # stamped in the minute that just ended
        if self.metrics is not None:
            self.metrics.put(NAMESPACE, METRIC, (("CapacityProviderName", provider.name), ("ClusterName", cluster)),
                             now - 1, reservation.value)
        alarms = managed_scaling_alarms(provider, cluster, asg.auto_scaling_group_name)
        state.high_state = evaluate_series(alarms.high, series, now, state.high_state).state
        state.low_state = evaluate_series(alarms.low, series, now, state.low_state).state
        decision = plan_managed_scaling(provider, asg, reservation, instances, state.high_state, state.low_state,
                                        now, cluster)
        if decision.capacity is not None and decision.capacity != asg.desired_capacity:
            self._set_desired(asg, decision.capacity, decision.cause, decision.reason)
        return reservation

    def _group(self, provider: CapacityProvider) -> AutoScalingGroup | None:
        ref = provider.auto_scaling_group_provider.auto_scaling_group_arn
        name = ref.rsplit("autoScalingGroupName/", 1)[-1]
        return self.store.get("auto_scaling_group", name)

    def instance_views(self, asg: AutoScalingGroup) -> list[InstanceView]:
        """The group's in-service instances as the capacity math sees them."""
        instances = self.asgs.instances(asg.auto_scaling_group_name)
        busy = self._tasks_per_instance(instances)
        views = []
        for ci in instances:
            if ci.status not in (ACTIVE, DRAINING):
                continue
            registered, remaining = ci.registered_resources, ci.remaining_resources
            views.append(InstanceView(ci.ec2_instance_id, registered.cpu, registered.memory, remaining.cpu,
                                      remaining.memory, busy.get(ci.container_instance_arn, 0),
                                      ci.registered_at or 0.0, protected=False,
                                      availability_zone=ci.availability_zone or ""))
        return views

    def _tasks_per_instance(self, instances: list) -> dict[str, int]:
        """Container instance ARN -> how many of its tasks have not STOPPED (instances with none are left out)."""
        counts: dict[str, int] = {}
        for ci in instances:
            arn = ci.container_instance_arn
            n = sum(1 for t in tasks_on_instance(self.store, arn) if t.last_status != STOPPED)
            if n:
                counts[arn] = n
        return counts

    def _provisioning(self, provider_name: str, cluster: str) -> list[TaskNeed]:
        needs = []
        for t in self.store.list("task"):
            if t.last_status != PROVISIONING or t.capacity_provider_name != provider_name \
                    or not t.cluster_arn.endswith(f"/{cluster}"):
                continue
            td = self.store.get("task_definition", t.task_definition_arn)
            n = TaskNeeds.of(td)
            needs.append(TaskNeed(n.cpu, n.memory, frozenset(n.ports), t.group or ""))
        return needs

    def _protect_busy_instances(self, asg: AutoScalingGroup) -> None:
        """Managed termination protection: instances with tasks are protected, empty ones are not."""
        instances = self.asgs.instances(asg.auto_scaling_group_name)
        busy = self._tasks_per_instance(instances)
        with self.store.transaction() as tx:
            for ci in instances:
                want = busy.get(ci.container_instance_arn, 0) > 0
                if (tag(ci, PROTECTED_TAG) == "true") != want:
                    ci.tags = [t for t in ci.tags if t.get("key") != PROTECTED_TAG]
                    if want:
                        ci.tags.append({"key": PROTECTED_TAG, "value": "true"})
                    tx.put("container_instance", ci.container_instance_arn, ci)

    def _set_desired(self, asg: AutoScalingGroup, capacity: int, cause: str, reason: str) -> None:
        before = asg.desired_capacity
        asg.desired_capacity = capacity
        with self.store.transaction() as tx:
            tx.put("auto_scaling_group", asg.auto_scaling_group_name, asg)
            tx.record(Event(SCALING_ACTIVITY, asg.auto_scaling_group_arn or asg.auto_scaling_group_name,
                            f"Auto Scaling group {asg.auto_scaling_group_name}: desired capacity {before} -> "
                            f"{capacity} ({reason})",
                            detail={"autoScalingGroupName": asg.auto_scaling_group_name, "cause": cause,
                                    "from": before, "to": capacity}))
        log.info("ASG %s desired %s -> %s: %s", asg.auto_scaling_group_name, before, capacity, reason)

    def latest_reservations(self) -> dict[tuple[str, str], float]:
        """(cluster, capacity provider) -> the last CapacityProviderReservation published."""
        return {key: state.last.value for key, state in self.states.items() if state.last is not None}

    def reservation(self, cluster: str, provider: str) -> Reservation | None:
        state = self.states.get((cluster, provider))
        return state.last if state else None


__all__ = ["CapacityScaler", "GROUP_TAG", "NAMESPACE", "METRIC"]
