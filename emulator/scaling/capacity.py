"""Cluster auto scaling as ECS computes it: CapacityProviderReservation, the ASG's new size, and who may go.

ECS publishes one number a minute per capacity provider,
`CapacityProviderReservation = M / N x 100` (namespace
AWS/ECS/ManagedScaling): N is the instances running, M the instances
needed. Without PROVISIONING tasks M is the instances running a non-daemon
task, so empty instances pull the metric under 100. With PROVISIONING
tasks M = N + step, where step is a binpack estimate of the new instances
they need, clamped by minimumScalingStepSize / maximumScalingStepSize.
Special cases: M = 0 and N = 0 -> 100; M > 0 and N = 0 -> 200.

ECS puts a target tracking policy on the ASG (target = targetCapacity):
AlarmHigh (1 of 1 datapoints above the target) raises DesiredCapacity to
ceil(M x 100 / targetCapacity), but not while any instance is inside its
instanceWarmupPeriod; AlarmLow (15 of 15 below) lowers it, at least one
instance and less than half a minute. With managed termination protection
only empty instances are given up.

Sources: "Amazon ECS cluster Auto Scaling" (archived guide), "Amazon ECS
managed scaling behavior", ManagedScaling (API), "Deep dive on Amazon ECS
cluster auto scaling" (AWS blog). The seed article's simpler gauge,
running tasks / task slots, is `slot_utilization`, kept apart on purpose.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..model.instance_types import InstanceType
from ..model.scaling import ENABLED, AutoScalingGroup, CapacityProvider, ManagedScaling
from .alarms import ALARM, GREATER_THAN, LESS_THAN, MISSING, MetricAlarm

NAMESPACE, METRIC = "AWS/ECS/ManagedScaling", "CapacityProviderReservation"
HIGH_EVALUATION_PERIODS, LOW_EVALUATION_PERIODS = 1, 15  # OBSERVED on real ECS-managed alarms


# --- inputs: plain views the control loop builds from the store ------------------------


@dataclass(frozen=True)
class InstanceView:
    """One in-service instance of the capacity provider's Auto Scaling group."""

    instance_id: str
    registered_cpu: int = 0
    registered_memory: int = 0
    remaining_cpu: int = 0
    remaining_memory: int = 0
    running_tasks: int = 0        # non-daemon tasks: an instance with only daemons counts as empty
    launched_at: float = 0.0
    protected: bool = False       # scale-in protection ECS does not manage (e.g. set by hand)
    availability_zone: str = ""

    @property
    def empty(self) -> bool:
        return self.running_tasks == 0


@dataclass(frozen=True)
class TaskNeed:
    """What one PROVISIONING task needs from an instance; equal needs are binpacked as one group."""

    cpu: int
    memory: int
    ports: frozenset[int] = frozenset()  # static host ports: one task per port per instance
    group: str = ""                      # task group, for distinctInstance
    distinct_instance: bool = False


@dataclass(frozen=True)
class InstanceShape:
    """What one instance of an ASG instance type registers with ECS."""

    cpu: int
    memory: int

    @classmethod
    def of(cls, instance_type: InstanceType, reserved_memory_mib: int | None = None) -> InstanceShape:
        return cls(instance_type.cpu_units, instance_type.registered_memory_mib(reserved_memory_mib))

    @classmethod
    def of_group(cls, asg: AutoScalingGroup) -> InstanceShape:
        return cls(asg.instance_type.cpu_units, asg.registered_memory_mib())


# --- the metric ------------------------------------------------------------------------


def reservation_percent(m: int, n: int) -> float:
    """M / N x 100, with ECS's cases for N = 0: 100 when nothing is needed, else 200."""
    if n == 0:
        return 100.0 if m == 0 else 200.0
    return m * 100.0 / n


@dataclass(frozen=True)
class NeededInstances:
    count: int      # new instances of the largest type the compatible tasks need
    excluded: int   # tasks that don't fit the smallest type: they never scale the group


def instances_needed(tasks: Iterable[TaskNeed], shapes: Sequence[InstanceShape]) -> NeededInstances:
    """ECS's estimate of the new instances PROVISIONING tasks need.

    Tasks are grouped by identical needs. A group that doesn't fit the
    smallest instance type (per parameter) is excluded; the rest are
    binpacked onto empty instances of the largest type, biggest tasks first.
    Ports and distinctInstance keep two tasks apart as placement would.
    """
    if not shapes:
        raise ValueError("the Auto Scaling group has no instance type")
    smallest = InstanceShape(min(s.cpu for s in shapes), min(s.memory for s in shapes))
    largest = InstanceShape(max(s.cpu for s in shapes), max(s.memory for s in shapes))
    groups = Counter(tasks)
    excluded = sum(count for need, count in groups.items() if not _fits(need, smallest))
    compatible = sorted(((need, count) for need, count in groups.items() if _fits(need, smallest)),
                        key=lambda item: (item[0].cpu, item[0].memory), reverse=True)
    bins: list[_Bin] = []
    for need, count in compatible:
        count = _fill(bins, need, count)
        while count:
            bins.append(_Bin(largest.cpu, largest.memory))
            count = _fill(bins[-1:], need, count)
    return NeededInstances(len(bins), excluded)


def _fits(need: TaskNeed, shape: InstanceShape) -> bool:
    return need.cpu <= shape.cpu and need.memory <= shape.memory


class _Bin:
    """A new instance being filled by the estimate."""

    __slots__ = ("cpu", "memory", "ports", "groups")

    def __init__(self, cpu: int, memory: int) -> None:
        self.cpu, self.memory = cpu, memory
        self.ports: set[int] = set()
        self.groups: set[str] = set()


def _fill(bins: list[_Bin], need: TaskNeed, count: int) -> int:
    """Put up to `count` tasks with `need` into `bins`, first fit; returns how many are left."""
    for b in bins:
        room = min(b.cpu // need.cpu if need.cpu else count, b.memory // need.memory if need.memory else count)
        if need.ports and need.ports & b.ports or need.distinct_instance and need.group in b.groups:
            room = 0
        elif need.ports or need.distinct_instance:
            room = min(room, 1)
        take = min(room, count)
        if take:
            b.cpu -= take * need.cpu
            b.memory -= take * need.memory
            b.ports |= need.ports
            b.groups.add(need.group)
            count -= take
        if not count:
            break
    return count


def scaling_step(count: int, managed: ManagedScaling) -> int:
    """minimumScalingStepSize if the estimate is below it, else min(maximumScalingStepSize, estimate)."""
    if count < managed.minimum_scaling_step_size:
        return managed.minimum_scaling_step_size
    return min(managed.maximum_scaling_step_size, count)


@dataclass(frozen=True)
class Reservation:
    """One CapacityProviderReservation datapoint and how it was reached."""

    value: float
    m: int
    n: int
    step: int = 0      # new instances asked for (0: no PROVISIONING demand)
    excluded: int = 0  # PROVISIONING tasks no instance type can run


def capacity_provider_reservation(instances: Sequence[InstanceView], provisioning: Iterable[TaskNeed],
                                  shapes: Sequence[InstanceShape], managed: ManagedScaling) -> Reservation:
    """The CapacityProviderReservation ECS would publish for these instances and PROVISIONING tasks."""
    n = len(instances)
    tasks = list(provisioning)
    needed = instances_needed(tasks, shapes) if tasks else NeededInstances(0, 0)
    if tasks and needed.excluded == len(tasks):
        # Nothing the group could ever run: the metric rests at the target, so nothing scales.
        return Reservation(float(managed.target_capacity), n, n, 0, needed.excluded)
    if needed.count:
        step = scaling_step(needed.count, managed)
        return Reservation(reservation_percent(n + step, n), n + step, n, step, needed.excluded)
    m = sum(1 for i in instances if not i.empty)
    return Reservation(reservation_percent(m, n), m, n, 0, needed.excluded)


def desired_capacity(reservation: Reservation, target_capacity: int) -> int:
    """The ASG size that brings the metric to the target: ceil(M x 100 / targetCapacity)."""
    return math.ceil(reservation.m * 100 / target_capacity - 1e-9)


def slot_utilization(running_tasks: int, task_slots: int) -> float:
    """The seed article's gauge: running tasks x 100 / task slots (12 of 16 -> 75.0). Not what ECS scales on."""
    if task_slots <= 0:
        return 0.0 if running_tasks == 0 else math.inf
    return running_tasks * 100.0 / task_slots


# --- the ASG's policy and its alarms -------------------------------------------------


@dataclass(frozen=True)
class ManagedScalingAlarms:
    policy_name: str
    high: MetricAlarm
    low: MetricAlarm


def managed_scaling_alarms(provider: CapacityProvider, cluster: str, asg_name: str) -> ManagedScalingAlarms:
    """ECSManagedAutoScalingPolicy-<uuid> and its two alarms on CapacityProviderReservation (OBSERVED shapes)."""
    target = provider.auto_scaling_group_provider.managed_scaling.target_capacity
    key = provider.capacity_provider_arn or provider.name
    policy_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/policy")
    dimensions = (("CapacityProviderName", provider.name), ("ClusterName", cluster))

    def alarm(kind: str, operator: str, periods: int) -> MetricAlarm:
        alarm_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{kind}")
        return MetricAlarm(f"TargetTracking-{asg_name}-{kind}-{alarm_id}", float(target), operator, periods,
                           treat_missing_data=MISSING, namespace=NAMESPACE, metric_name=METRIC,
                           dimensions=dimensions)

    return ManagedScalingAlarms(f"ECSManagedAutoScalingPolicy-{policy_id}",
                                alarm("AlarmHigh", GREATER_THAN, HIGH_EVALUATION_PERIODS),
                                alarm("AlarmLow", LESS_THAN, LOW_EVALUATION_PERIODS))


@dataclass(frozen=True)
class CapacityDecision:
    """A new DesiredCapacity for the ASG (None = leave it), the instances to give up, and why."""

    capacity: int | None
    reason: str
    previous: int
    cause: str = ""                  # the ASG activity's Cause
    terminate: tuple[str, ...] = ()  # instance ids, in the order the ASG would pick them


def plan_managed_scaling(provider: CapacityProvider, asg: AutoScalingGroup, reservation: Reservation,
                         instances: Sequence[InstanceView], high_state: str, low_state: str, now: float,
                         cluster: str = "") -> CapacityDecision:
    """One minute of the ECS-managed target tracking policy on the capacity provider's ASG."""
    managed = provider.auto_scaling_group_provider.managed_scaling
    desired = asg.desired_capacity if asg.desired_capacity is not None else len(instances)
    if managed.status != ENABLED:
        return CapacityDecision(None, "managed scaling is DISABLED", desired)
    alarms = managed_scaling_alarms(provider, cluster, asg.auto_scaling_group_name)
    if high_state == ALARM:  # a scale-out request also cancels a scale-in in progress
        return _scale_out(asg, reservation, instances, managed, desired, now, alarms)
    if low_state == ALARM:
        protection = provider.auto_scaling_group_provider.managed_termination_protection == ENABLED
        return _scale_in(asg, reservation, instances, managed, desired, now, alarms, protection)
    return CapacityDecision(None, f"CapacityProviderReservation {reservation.value:g} is at target", desired)


def _scale_out(asg: AutoScalingGroup, reservation: Reservation, instances: Sequence[InstanceView],
               managed: ManagedScaling, desired: int, now: float, alarms: ManagedScalingAlarms) -> CapacityDecision:
    warming = warming_instances(instances, managed.instance_warmup_period, now)
    if warming:
        return CapacityDecision(None, f"waiting for {len(warming)} instance(s) to pass the instanceWarmupPeriod "
                                      f"({managed.instance_warmup_period} s)", desired)
    wanted = max(asg.min_size, min(asg.max_size, desired_capacity(reservation, managed.target_capacity)))
    if wanted <= desired:
        reason = "already at MaxSize" if desired >= asg.max_size else f"{wanted} instances are already desired"
        return CapacityDecision(None, reason, desired)
    return CapacityDecision(wanted, f"CapacityProviderReservation {reservation.value:g} > target "
                                    f"{managed.target_capacity}", desired,
                            _cause(now, alarms.high.alarm_name, alarms.policy_name, desired, wanted))


def _scale_in(asg: AutoScalingGroup, reservation: Reservation, instances: Sequence[InstanceView],
              managed: ManagedScaling, desired: int, now: float, alarms: ManagedScalingAlarms,
              protection: bool) -> CapacityDecision:
    wanted = max(asg.min_size, min(asg.max_size, desired_capacity(reservation, managed.target_capacity)))
    # The ASG steps down by at least one instance and less than half the group a minute (archived guide).
    wanted = max(wanted, desired - max(1, math.ceil(desired / 2) - 1))
    candidates = terminable_instances(instances, protection, now)
    wanted = max(wanted, len(instances) - len(candidates))
    if wanted >= desired:
        reason = ("no instance may be terminated (protected or running tasks)" if not candidates
                  else f"{wanted} instances are still needed")
        return CapacityDecision(None, reason, desired)
    doomed = tuple(i.instance_id for i in candidates[:max(0, len(instances) - wanted)])
    return CapacityDecision(wanted, f"CapacityProviderReservation {reservation.value:g} < target "
                                    f"{managed.target_capacity}", desired,
                            _cause(now, alarms.low.alarm_name, alarms.policy_name, desired, wanted), doomed)


def warming_instances(instances: Iterable[InstanceView], warmup: float, now: float) -> list[InstanceView]:
    """Instances launched less than instanceWarmupPeriod ago: while any exists, the ASG scales out no further."""
    return [i for i in instances if now < i.launched_at + warmup]


def terminable_instances(instances: Sequence[InstanceView], managed_termination_protection: bool,
                         now: float) -> list[InstanceView]:
    """The instances a scale-in may terminate, in the order the ASG's default termination policy picks them.

    With managed termination protection ECS keeps every instance that runs a
    non-daemon task protected, so only empty ones may go; without it any
    unprotected instance may, tasks or not. The default policy takes the
    AZ with the most instances first, then the instance closest to its next
    billing hour; the last tie-break (random in AWS) is the instance id.
    """
    per_az = Counter(i.availability_zone for i in instances)
    allowed = [i for i in instances if not i.protected and (i.empty or not managed_termination_protection)]
    return sorted(allowed, key=lambda i: (-per_az[i.availability_zone],
                                          3600 - (now - i.launched_at) % 3600, i.instance_id))


def _cause(now: float, alarm_name: str, policy_name: str, before: int, after: int) -> str:
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"At {stamp} a monitor alarm {alarm_name} in state ALARM triggered policy {policy_name} "
            f"changing the desired capacity from {before} to {after}.")
