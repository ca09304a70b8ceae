"""The metrics collector: samples every task's CPU and memory and publishes what CloudWatch would show.

Every `sample_period` AWS seconds (20, like the ECS agent; never more often
than every `min_wall_interval` wall seconds) it reads each instance's task
counters from the runtime and the state store, and puts into the
MetricsStore, with ECS's definitions (ecs-semantics.md section 7):

- AWS/ECS per service (ClusterName, ServiceName): CPUUtilization = CPU used
  by the service's RUNNING tasks / CPU they reserve x 100, MemoryUtilization
  likewise with memory (`memoryReservation`, else `memory`). One sampling
  adds one sample per task (SampleCount = running tasks x samplings) whose
  Sum makes the Average exactly sum(used) / sum(reserved); Minimum and
  Maximum are the least and most loaded task's. Above 100 is possible: a
  task may use idle CPU beyond its reservation.
- AWS/ECS per cluster (ClusterName): CPUReservation / MemoryReservation =
  what tasks reserve on ACTIVE and DRAINING instances (registered minus
  remaining, as DescribeContainerInstances shows) / what those instances
  registered x 100; CPUUtilization / MemoryUtilization = what the tasks use
  / what the instances registered x 100.
- ECS/ContainerInsights: per service RunningTaskCount, PendingTaskCount
  (PROVISIONING + PENDING: tasks waiting for capacity count as pending),
  DesiredTaskCount, CpuUtilized / CpuReserved (units), MemoryUtilized /
  MemoryReserved (MiB); per cluster ContainerInstanceCount (ACTIVE and
  DRAINING), ServiceCount (not INACTIVE), TaskCount (RUNNING) and the same
  four resource figures.
- ECSEmulator FailedTaskCount (cluster; cluster + service), a counter: tasks
  that STOPPED having failed to start (stopCode TaskFailedToStart) or with an
  essential container exiting non-zero (EssentialContainerExited and an exit
  code other than 0, OOM kills included). Counted as the state store
  commits them, not at sampling.
- AWS/ApplicationELB per target group (TargetGroup; and LoadBalancer +
  TargetGroup), from AlbService.stats(): RequestCount, RequestCountPerTarget
  (requests / healthy targets, or all targets when none is healthy; its Sum
  per period is the per-target average, as CloudWatch's), TargetResponseTime
  (exact Average; Minimum/Maximum estimated from the histogram's buckets),
  HTTPCode_Target_{2,3,4,5}XX_Count, HTTPCode_ELB_{4XX,5XX,502,503,504}_Count
  (only when non-zero, as the ALB reports), Healthy/UnHealthyHostCount.
- AWS/AutoScaling per group (AutoScalingGroupName): GroupDesiredCapacity,
  GroupInServiceInstances (ACTIVE container instances tagged with the
  group), GroupTotalInstances (not INACTIVE), GroupMinSize, GroupMaxSize.

How real readings become ECS's figures: a task container's real CPU is a
share of its instance's scaled CPU (cpu shares inside a CFS quota of the
type's vCPUs x cpu_scale), so a task reserving U units owns U / 1024 x
cpu_scale real CPUs, and real memory is the nominal MiB x memory_scale.
CPU used (units) = real CPU seconds per wall second / cpu_scale x 1024;
memory used (MiB) = real bytes / 2^20 / memory_scale. CPU needs two
readings of a task, so a task's first sampling gives memory only.

At scale (10,000 tasks every 20 s) a sampling does per task only what the
readings need: what it works out from the store (which tasks run where,
their groups, what instances register) is kept while the store's versions
of tasks, instances and services stay the same; a runtime that never waits
is asked instance by instance without a task each (and for plain tuples when
it has `task_usage_values`); `Collection.readings` makes each TaskReading
when it is looked up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from ..clock import Clock
from ..model.container_instance import ACTIVE, DRAINING, INACTIVE, ContainerInstance
from ..model.service import SERVICE_INACTIVE, Service
from ..model.state import CommitNotice, StateStore
from ..model.task import (ESSENTIAL_CONTAINER_EXITED, PENDING, PROVISIONING, RUNNING, STOPPED,
                          TASK_FAILED_TO_START, Task)
from ..runtime.base import Runtime, TaskUsage
from . import names as n
from .store import MetricsStore

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_PERIOD = 20.0       # AWS seconds: the ECS agent's sampling
MIN_WALL_INTERVAL = 0.5            # wall seconds: however fast AWS time runs
MIB = 1 << 20
GROUP_TAG = "aws:autoscaling:groupName"   # the EC2 tag Auto Scaling puts on its instances
_REMEMBERED_STOPPED = 100_000      # stopped task ARNs kept to count each failure once


def cluster_of_instance(ci: ContainerInstance) -> str:
    """The cluster name in a container-instance ARN (…:container-instance/<cluster>/<id>)."""
    return ci.container_instance_arn.split("/")[1]


def cluster_of_task(task: Task) -> str:
    return task.cluster_arn.rsplit("/", 1)[-1]


def service_name_of(task: Task) -> str | None:
    """The service a task belongs to: its task group is `service:<name>`."""
    return task.group[len("service:"):] if task.group.startswith("service:") else None


def in_service(ci: ContainerInstance) -> bool:
    """What ECS's cluster metrics count: ACTIVE and DRAINING instances."""
    return ci.status in (ACTIVE, DRAINING)


def is_failed(task: Task) -> bool:
    """STOPPED having failed to start, or with a container that exited non-zero on its own."""
    if task.stop_code == TASK_FAILED_TO_START:
        return True
    return task.stop_code == ESSENTIAL_CONTAINER_EXITED and any(
        c.exit_code not in (None, 0) for c in task.containers)


def asg_tag(ci: ContainerInstance) -> str | None:
    return next((t.get("value") for t in ci.tags if t.get("key") == GROUP_TAG), None)


def target_group_dimension(arn: str) -> str:
    """CloudWatch's TargetGroup dimension: `targetgroup/<name>/<id>` (from the ARN, or the bare name)."""
    return arn.split(":", 5)[-1] if arn.startswith("arn:") else f"targetgroup/{arn}"


def target_group_name(arn: str) -> str:
    return target_group_dimension(arn).split("/")[1]


def load_balancer_dimension(arn: str) -> str:
    """CloudWatch's LoadBalancer dimension: `app/<name>/<id>`."""
    return arn.split(":loadbalancer/", 1)[-1]


def list_kind(store: StateStore, kind: str) -> list:
    """Objects of a kind registered by a layer above (target groups, ASGs); none if nobody registered it."""
    try:
        return store.list(kind)
    except KeyError:
        return []


def int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@dataclass(slots=True)
class TaskReading:
    """One task's figures from one sampling, in ECS's terms (units, MiB)."""

    task: Task
    memory_used_mib: float
    cpu_used_units: float | None = None   # None on the task's first reading
    # What the task reserves (units, MiB), read once: every metric of a sampling divides by them.
    cpu_reserved: int = field(init=False, repr=False, compare=False)
    memory_reserved: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.cpu_reserved = int_or_zero(self.task.cpu)
        self.memory_reserved = int_or_zero(self.task.memory)

    @property
    def cpu_percent(self) -> float | None:
        if self.cpu_used_units is None or self.cpu_reserved <= 0:
            return None
        return self.cpu_used_units * 100.0 / self.cpu_reserved

    @property
    def memory_percent(self) -> float | None:
        return self.memory_used_mib * 100.0 / self.memory_reserved if self.memory_reserved > 0 else None


# One task's figures as a sampling keeps them: (task, memory used MiB, CPU used units or None,
# CPU units reserved, MiB reserved). TaskReading objects are made from these only when asked for.
Figures = tuple


class Readings(Mapping):
    """Task ARN -> TaskReading of one sampling; each TaskReading is made the first time it is looked up
    (a sampling of 10,000 tasks publishes from the plain figures and seldom needs one)."""

    def __init__(self) -> None:
        self.figures: dict[str, Figures] = {}
        self._made: dict[str, TaskReading] = {}

    def __getitem__(self, arn: str) -> TaskReading:
        reading = self._made.get(arn)
        if reading is None:
            task, memory_used_mib, cpu_used_units = self.figures[arn][:3]
            reading = self._made[arn] = TaskReading(task, memory_used_mib, cpu_used_units)
        return reading

    def __contains__(self, arn: object) -> bool:
        return arn in self.figures

    def __iter__(self) -> Iterator[str]:
        return iter(self.figures)

    def __len__(self) -> int:
        return len(self.figures)


@dataclass
class Collection:
    """What one `collect_once` did (tests and benchmarks read it)."""

    timestamp: float
    instances_sampled: int = 0
    tasks_sampled: int = 0
    readings: Readings = field(default_factory=Readings)   # task ARN -> reading


class MetricsCollector:
    """Samples the runtime and the state store into a MetricsStore; see the module docstring."""

    def __init__(self, store: StateStore, runtime: Runtime, clock: Clock, metrics: MetricsStore, alb=None, *,
                 cpu_scale: float = 0.25, memory_scale: float = 0.25,
                 sample_period: float = DEFAULT_SAMPLE_PERIOD, min_wall_interval: float = MIN_WALL_INTERVAL) -> None:
        if cpu_scale <= 0 or memory_scale <= 0:
            raise ValueError("cpu_scale and memory_scale must be above 0")
        self.store, self.runtime, self.clock, self.metrics, self.alb = store, runtime, clock, metrics, alb
        self.cpu_scale, self.memory_scale = cpu_scale, memory_scale
        self.sample_period, self.min_wall_interval = sample_period, min_wall_interval
        self._last: dict[str, tuple[float, float]] = {}     # task ARN -> its previous (CPU seconds, sampled at)
        # What the store holds changes seldom; the lists each sampling works from are kept until it does.
        self._view_key: tuple | None = None
        self._view: _StoreView | None = None
        self._sums: dict[int, tuple[list[Task], _Sums]] = {}
        self._alb_last: dict[str, dict[str, Any]] = {}       # target group ARN -> previous stats snapshot
        self._stopped: OrderedDict[str, None] = OrderedDict()
        self._unsubscribe = store.subscribe(self._on_commit)
        self.last_collection: Collection | None = None   # per-task readings of the latest sampling

    # --- the loop ----------------------------------------------------------------

    @property
    def interval(self) -> float:
        """AWS seconds between samplings: the period, or longer where the wall-time floor says so."""
        return max(self.sample_period, self.min_wall_interval * self.clock.time_scale)

    async def run(self) -> None:
        while True:
            try:
                await self.collect_once()
            except Exception:
                log.exception("collecting metrics failed; trying again next period")
            await self.clock.sleep(self.interval)

    def close(self) -> None:
        """Stop counting failed tasks (the loop itself is cancelled by whoever runs it)."""
        self._unsubscribe()

    async def collect_once(self) -> Collection:
        """One sampling: task usage, then every metric, stamped with the clock's AWS time."""
        now = self.clock.now()
        view = self._store_view()
        instances, tasks, services = view.instances, view.tasks, view.services
        result = Collection(now)
        await self._sample_tasks(instances, tasks, result, view)
        figures = result.readings.figures
        # Metrics are worked out from the objects as they are now, after the wait for usage: what the view
        # derived from them is thrown away if anything was committed meanwhile.
        view.as_of(self._versions())
        self._sums = {}   # what each list of RUNNING tasks adds up to in this sampling
        self._publish_services(now, services, tasks, figures, view)
        self._publish_clusters(now, instances, services, tasks, figures, view)
        self._publish_auto_scaling_groups(now, instances)
        if self.alb is not None:
            self._publish_alb(now)
        self.last_collection = result
        return result

    # --- tasks -------------------------------------------------------------------

    def _versions(self) -> tuple[int, int, int]:
        store = self.store
        return store.version("container_instance"), store.version("task"), store.version("service")

    def _store_view(self) -> _StoreView:
        """The instances, tasks and services a sampling works from, as the store holds them now (kept
        while the store's versions of them say nothing changed)."""
        store, key = self.store, self._versions()
        if key != self._view_key or self._view is None:
            self._view = _StoreView(
                [ci for ci in store.list("container_instance") if ci.status != INACTIVE],
                [t for t in store.list("task") if t.last_status != STOPPED],
                [s for s in store.list("service") if s.status != SERVICE_INACTIVE])
            self._view_key = key
        return self._view

    async def _sample_tasks(self, instances: list[ContainerInstance], tasks: list[Task], result: Collection,
                            view: _StoreView | None = None) -> None:
        view = view if view is not None and view.tasks is tasks else _StoreView(instances, tasks, [])
        running = view.running_by_instance()
        sampled = view.sampled_instances()
        answers = await self._task_usage(sampled)
        figures, last = result.readings.figures, self._last
        memory_scale, cpu_scale = self.memory_scale, self.cpu_scale
        for ci, answer in zip(sampled, answers):
            if isinstance(answer, BaseException):
                log.debug("no usage from instance %s: %s", ci.ec2_instance_id, answer)
                continue
            result.instances_sampled += 1
            on_instance = running[ci.container_instance_arn]
            for task_id, cpu_seconds, memory_bytes, sampled_at in answer:
                known = on_instance.get(task_id)
                if known is None:
                    continue
                task, arn, cpu_reserved, memory_reserved = known
                previous = last.get(arn)
                last[arn] = (cpu_seconds, sampled_at)
                cpu_used_units = None
                if previous is not None:
                    elapsed = sampled_at - previous[1]
                    used = cpu_seconds - previous[0]
                    if elapsed > 0 and used >= 0:   # a counter that went back (a restarted container): wait a reading
                        cpu_used_units = used / elapsed / cpu_scale * 1024
                figures[arn] = (task, memory_bytes / MIB / memory_scale, cpu_used_units, cpu_reserved,
                                memory_reserved)
        result.tasks_sampled = len(figures)
        if len(last) != len(figures):  # every task read is in _last: only tasks no longer read are more
            for arn in [a for a in last if a not in figures]:
                del last[arn]

    async def _task_usage(self, instances: list[ContainerInstance]) -> list:
        """Each instance's task usage as (task id, CPU seconds, memory bytes, sampled at) tuples, or the
        exception it raised; asked of all instances at once."""
        task_usage = self.runtime.task_usage
        if not getattr(task_usage, "answers_at_once", False) or not instances:
            answers = await asyncio.gather(*(task_usage(ci.ec2_instance_id) for ci in instances),
                                           return_exceptions=True)
            return [a if isinstance(a, BaseException) else [_usage_values(u) for u in a] for a in answers]
        # A runtime that never waits (the in-memory one) is asked in turn, without a task per instance
        # (and for plain values, when it has them); the answers come back as many event-loop turns later
        # as gather's would (tasks, their done callbacks, then gather's own), so everything else runs in
        # the same order as it would.
        values = getattr(self.runtime, "task_usage_values", None)
        answers: list = []
        for ci in instances:
            try:
                if values is not None:
                    answers.append(values(ci.ec2_instance_id))
                else:
                    answers.append([_usage_values(u) for u in await task_usage(ci.ec2_instance_id)])
            except Exception as exc:
                answers.append(exc)
        for _ in range(3):
            await asyncio.sleep(0)
        return answers

    # --- AWS/ECS and Container Insights --------------------------------------------

    def _publish_services(self, now: float, services: list[Service], tasks: list[Task],
                          figures: dict[str, Figures], view: _StoreView | None = None) -> None:
        view = view if view is not None and view.tasks is tasks else _StoreView([], tasks, services)
        put = self.metrics.put
        for service in services:
            cluster = service.cluster_arn.rsplit("/", 1)[-1]
            dims = {n.CLUSTER_NAME: cluster, n.SERVICE_NAME: service.service_name}
            running, pending = view.group_counts(service.cluster_arn, service.task_group)
            put(n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, dims, now, len(running))
            put(n.CONTAINER_INSIGHTS, n.PENDING_TASK_COUNT, dims, now, pending)
            put(n.CONTAINER_INSIGHTS, n.DESIRED_TASK_COUNT, dims, now, service.desired_count)
            sums = self._sums_of(running, figures)
            self._publish_utilization(now, dims, sums.sampled)
            self._publish_resources(now, dims, running, sums, view)

    def _publish_utilization(self, now: float, dims: dict[str, str], sampled: list[Figures]) -> None:
        """Service CPU/MemoryUtilization: one sample per task, averaging to sum(used) / sum(reserved)."""
        cpu = [f for f in sampled if f[2] is not None and f[3] > 0]   # the readings with a cpu_percent
        memory = [f for f in sampled if f[4] > 0]                     # the readings with a memory_percent
        for metric, readings, used_of, reserved_of in ((n.CPU_UTILIZATION, cpu, _CPU_USED, _CPU_RESERVED),
                                                       (n.MEMORY_UTILIZATION, memory, _MEMORY_USED, _MEMORY_RESERVED)):
            if not readings:
                continue
            used_each, reserved_each = list(map(used_of, readings)), list(map(reserved_of, readings))
            # each task's cpu_percent / memory_percent, as those properties compute it
            percents = [used * 100.0 / reserved for used, reserved in zip(used_each, reserved_each)]
            used, reserved = sum(used_each), sum(reserved_each)
            count = len(readings)
            self.metrics.put_statistics(n.ECS, metric, dims, now, sample_count=count,
                                        total=count * used * 100.0 / reserved,
                                        minimum=min(percents), maximum=max(percents))

    def _publish_resources(self, now: float, dims: dict[str, str], running: list[Task], sums: _Sums,
                           view: _StoreView) -> None:
        """Container Insights' CpuReserved / MemoryReserved (running tasks) and *Utilized (sampled ones)."""
        put = self.metrics.put
        cpu_reserved, memory_reserved = view.reserved(running)
        put(n.CONTAINER_INSIGHTS, n.CPU_RESERVED, dims, now, cpu_reserved)
        put(n.CONTAINER_INSIGHTS, n.MEMORY_RESERVED, dims, now, memory_reserved)
        if sums.with_cpu or not running:
            put(n.CONTAINER_INSIGHTS, n.CPU_UTILIZED, dims, now, sums.cpu_used)
        if sums.sampled or not running:
            put(n.CONTAINER_INSIGHTS, n.MEMORY_UTILIZED, dims, now, sums.memory_used)

    def _sums_of(self, running: list[Task], figures: dict[str, Figures]) -> _Sums:
        """What the figures of these RUNNING tasks add up to (worked out once per list per sampling)."""
        kept = self._sums.get(id(running))
        if kept is not None and kept[0] is running:
            return kept[1]
        sums = _Sums(_figures_of(running, figures))
        self._sums[id(running)] = (running, sums)
        return sums

    def _publish_clusters(self, now: float, instances: list[ContainerInstance], services: list[Service],
                          tasks: list[Task], figures: dict[str, Figures], view: _StoreView | None = None) -> None:
        view = view if view is not None and view.tasks is tasks else _StoreView(instances, tasks, services)
        clusters = {c.cluster_name for c in self.store.list("cluster") if c.status != "INACTIVE"}
        clusters.update(view.instance_clusters())
        registered_cpu, registered_memory, reserved_cpu, reserved_memory, counted = view.instance_totals()
        running = view.running_per_cluster()
        service_count: dict[str, int] = defaultdict(int)
        for service in services:
            service_count[service.cluster_arn.rsplit("/", 1)[-1]] += 1
        put = self.metrics.put
        for cluster in sorted(clusters):
            dims = {n.CLUSTER_NAME: cluster}
            cluster_running = running.get(cluster, [])
            put(n.CONTAINER_INSIGHTS, n.CONTAINER_INSTANCE_COUNT, dims, now, counted[cluster])
            put(n.CONTAINER_INSIGHTS, n.SERVICE_COUNT, dims, now, service_count[cluster])
            put(n.CONTAINER_INSIGHTS, n.TASK_COUNT, dims, now, len(cluster_running))
            self._publish_resources(now, dims, cluster_running, self._sums_of(cluster_running, figures), view)
            if not registered_cpu[cluster] or not registered_memory[cluster]:
                continue   # no ACTIVE or DRAINING instance: ECS has nothing to divide by
            put(n.ECS, n.CPU_RESERVATION, dims, now, reserved_cpu[cluster] * 100.0 / registered_cpu[cluster])
            put(n.ECS, n.MEMORY_RESERVATION, dims, now,
                reserved_memory[cluster] * 100.0 / registered_memory[cluster])
            # the figures of the tasks on ACTIVE and DRAINING instances
            on_counted = self._sums_of(view.on_counted_instances(cluster_running), figures)
            if on_counted.with_cpu or not cluster_running:
                put(n.ECS, n.CPU_UTILIZATION, dims, now, on_counted.cpu_used * 100.0 / registered_cpu[cluster])
            if on_counted.sampled or not cluster_running:
                put(n.ECS, n.MEMORY_UTILIZATION, dims, now,
                    on_counted.memory_used * 100.0 / registered_memory[cluster])

    # --- failed tasks (as they commit) -----------------------------------------------

    def _on_commit(self, notice: CommitNotice) -> None:
        for change in notice.changes:
            if change.kind != "task":
                continue
            if change.op == "delete":
                self._stopped.pop(change.key, None)
                continue
            task = change.obj
            if task.last_status != STOPPED or change.key in self._stopped:
                continue
            self._stopped[change.key] = None
            if len(self._stopped) > _REMEMBERED_STOPPED:
                self._stopped.popitem(last=False)
            if is_failed(task):
                self._count_failure(task)

    def _count_failure(self, task: Task) -> None:
        now = task.stopped_at if task.stopped_at is not None else self.clock.now()
        cluster = cluster_of_task(task)
        self.metrics.increment(n.EMULATOR, n.FAILED_TASK_COUNT, {n.CLUSTER_NAME: cluster}, now)
        service = service_name_of(task)
        if service is not None:
            self.metrics.increment(n.EMULATOR, n.FAILED_TASK_COUNT,
                                   {n.CLUSTER_NAME: cluster, n.SERVICE_NAME: service}, now)

    # --- Auto Scaling groups ---------------------------------------------------------

    def _publish_auto_scaling_groups(self, now: float, instances: list[ContainerInstance]) -> None:
        groups = list_kind(self.store, "auto_scaling_group")
        if not groups:
            return
        in_service_count: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        for ci in instances:
            name = asg_tag(ci)
            if name is not None:
                total[name] += 1
                in_service_count[name] += ci.status == ACTIVE
        put = self.metrics.put
        for asg in groups:
            name = asg.auto_scaling_group_name
            dims = {n.AUTO_SCALING_GROUP_NAME: name}
            desired = asg.desired_capacity if asg.desired_capacity is not None else asg.min_size
            put(n.AUTO_SCALING, n.GROUP_DESIRED_CAPACITY, dims, now, desired)
            put(n.AUTO_SCALING, n.GROUP_IN_SERVICE_INSTANCES, dims, now, in_service_count[name])
            put(n.AUTO_SCALING, n.GROUP_TOTAL_INSTANCES, dims, now, total[name])
            put(n.AUTO_SCALING, n.GROUP_MIN_SIZE, dims, now, asg.min_size)
            put(n.AUTO_SCALING, n.GROUP_MAX_SIZE, dims, now, asg.max_size)

    # --- the ALB ---------------------------------------------------------------------

    def load_balancers_of(self) -> dict[str, str]:
        """Target group ARN -> the ARN of a load balancer forwarding to it (the first found)."""
        found: dict[str, str] = {}
        for lb in list_kind(self.store, "load_balancer"):
            for listener in lb.listeners:
                if listener.target_group_arn and lb.load_balancer_arn:
                    found.setdefault(listener.target_group_arn, lb.load_balancer_arn)
        for tg in list_kind(self.store, "target_group"):
            if tg.target_group_arn and tg.load_balancer_arns:
                found.setdefault(tg.target_group_arn, tg.load_balancer_arns[0])
        return found

    def _publish_alb(self, now: float) -> None:
        stats = self.alb.stats()
        lbs = self.load_balancers_of()
        for arn, snap in stats.items():
            previous = self._alb_last.get(arn, {})
            self._alb_last[arn] = snap
            tg = target_group_dimension(arn)
            dim_sets = [{n.TARGET_GROUP: tg}]
            if arn in lbs:
                dim_sets.append({n.TARGET_GROUP: tg, n.LOAD_BALANCER: load_balancer_dimension(lbs[arn])})
            deltas = _alb_deltas(snap, previous)
            healthy, unhealthy = snap.get("HealthyHostCount", 0), snap.get("UnHealthyHostCount", 0)
            targets = healthy or unhealthy or len(snap.get("RequestCountPerTarget", {})) or 1
            for dims in dim_sets:
                for metric, delta in deltas["counts"].items():
                    if delta > 0:
                        self.metrics.increment(n.APPLICATION_ELB, metric, dims, now, delta)
                requests = deltas["counts"].get(n.REQUEST_COUNT, 0)
                if requests > 0:
                    self.metrics.put(n.APPLICATION_ELB, n.REQUEST_COUNT_PER_TARGET, dims, now, requests / targets)
                rt = deltas["response_time"]
                if rt is not None:
                    self.metrics.put_statistics(n.APPLICATION_ELB, n.TARGET_RESPONSE_TIME, dims, now, **rt)
                self.metrics.put(n.APPLICATION_ELB, n.HEALTHY_HOST_COUNT, dims, now, healthy)
                self.metrics.put(n.APPLICATION_ELB, n.UNHEALTHY_HOST_COUNT, dims, now, unhealthy)
        for arn in [a for a in self._alb_last if a not in stats]:
            del self._alb_last[arn]


_ARN = attrgetter("task_arn")
# a Figures tuple's fields (see Figures)
_MEMORY_USED, _CPU_USED, _CPU_RESERVED, _MEMORY_RESERVED = itemgetter(1), itemgetter(2), itemgetter(3), itemgetter(4)


def _usage_values(usage: TaskUsage) -> tuple[str, float, int, float]:
    return usage.task_id, usage.cpu_seconds_total, usage.memory_bytes, usage.sampled_at_monotonic


class _Sums:
    """The figures of one list of RUNNING tasks in one sampling, and what they add up to."""

    __slots__ = ("sampled", "with_cpu", "cpu_used", "memory_used")

    def __init__(self, sampled: list[Figures]) -> None:
        self.sampled = sampled   # the figures of those tasks that have some, in the tasks' order
        self.with_cpu = [used for used in map(_CPU_USED, sampled) if used is not None]
        self.cpu_used = sum(self.with_cpu)
        self.memory_used = sum(map(_MEMORY_USED, sampled))


def _units(cache: dict[Any, int], value: Any) -> int:
    """int_or_zero(value), each distinct value converted once."""
    units = cache.get(value)
    if units is None:
        units = cache[value] = int_or_zero(value)
    return units


def _figures_of(tasks: list[Task], figures: dict[str, Figures]) -> list[Figures]:
    """The figures of those tasks that have some, in the tasks' order."""
    return [f for f in map(figures.get, map(_ARN, tasks)) if f is not None]


class _StoreView:
    """What one state of the store gives a sampling to work from, worked out once for that state.

    `instances`, `tasks` and `services` are the lists a sampling starts from; what is derived from
    their objects' fields for publishing is kept for the store versions it was worked out at (`as_of`).
    """

    def __init__(self, instances: list[ContainerInstance], tasks: list[Task], services: list[Service]) -> None:
        self.instances, self.tasks, self.services = instances, tasks, services
        self._running: dict[str, dict[str, Task]] | None = None
        self._sampled: list[ContainerInstance] | None = None
        self._derived_at: tuple | None = None
        self._forget_derived()

    def as_of(self, versions: tuple) -> None:
        """The store's versions now: what was derived at other ones is worked out again when asked for."""
        if versions != self._derived_at:
            self._forget_derived()
            self._derived_at = versions

    def _forget_derived(self) -> None:
        self._groups: dict[tuple[str, str], tuple[list[Task], int]] | None = None
        self._clusters: dict[str, list[Task]] | None = None
        self._reserved: dict[int, tuple[list[Task], tuple[int, int]]] = {}
        self._totals: tuple | None = None
        self._counted: dict[int, tuple[list[Task], list[Task]]] = {}

    def running_by_instance(self) -> dict[str, dict[str, tuple[Task, str, int, int]]]:
        """Container instance ARN -> task id -> (its RUNNING task, task ARN, CPU units and MiB reserved)."""
        if self._running is None:
            units: dict[Any, int] = {}
            running: dict[str, dict[str, tuple[Task, str, int, int]]] = defaultdict(dict)
            for task in self.tasks:
                if task.last_status == RUNNING and task.container_instance_arn:
                    running[task.container_instance_arn][task.task_id] = (
                        task, task.task_arn, _units(units, task.cpu), _units(units, task.memory))
            self._running = running
        return self._running

    def reserved(self, running: list[Task]) -> tuple[int, int]:
        """The CPU units and MiB these tasks reserve."""
        kept = self._reserved.get(id(running))
        if kept is None or kept[0] is not running:
            kept = self._reserved[id(running)] = (running, (_reserved([t.cpu for t in running]),
                                                            _reserved([t.memory for t in running])))
        return kept[1]

    def instance_clusters(self) -> set[str]:
        return {cluster_of_instance(ci) for ci in self.instances}

    def instance_totals(self) -> tuple:
        """Per cluster: registered CPU and memory, reserved CPU and memory, and how many instances count
        (ACTIVE and DRAINING ones)."""
        if self._totals is None:
            registered_cpu: dict[str, int] = defaultdict(int)
            registered_memory: dict[str, int] = defaultdict(int)
            reserved_cpu: dict[str, int] = defaultdict(int)
            reserved_memory: dict[str, int] = defaultdict(int)
            counted: dict[str, int] = defaultdict(int)
            for ci in self.instances:
                if not in_service(ci):
                    continue
                cluster = cluster_of_instance(ci)
                counted[cluster] += 1
                registered_cpu[cluster] += ci.registered_resources.cpu
                registered_memory[cluster] += ci.registered_resources.memory
                reserved_cpu[cluster] += ci.registered_resources.cpu - ci.remaining_resources.cpu
                reserved_memory[cluster] += ci.registered_resources.memory - ci.remaining_resources.memory
            self._totals = (registered_cpu, registered_memory, reserved_cpu, reserved_memory, counted)
        return self._totals

    def on_counted_instances(self, running: list[Task]) -> list[Task]:
        """Those of the tasks on ACTIVE and DRAINING instances (the same list when that is all of them)."""
        kept = self._counted.get(id(running))
        if kept is None or kept[0] is not running:
            counted = {ci.container_instance_arn for ci in self.instances if in_service(ci)}
            on = [t for t in running if t.container_instance_arn in counted]
            kept = self._counted[id(running)] = (running, running if on == running else on)
        return kept[1]

    def sampled_instances(self) -> list[ContainerInstance]:
        """The instances that run tasks, in the store's order."""
        if self._sampled is None:
            running = self.running_by_instance()
            self._sampled = [ci for ci in self.instances if ci.container_instance_arn in running]
        return self._sampled

    def group_counts(self, cluster_arn: str, group: str) -> tuple[list[Task], int]:
        """A task group's RUNNING tasks and how many are PROVISIONING or PENDING."""
        if self._groups is None:
            by_group: dict[tuple[str, str], list[Task]] = defaultdict(list)
            for task in self.tasks:
                by_group[(task.cluster_arn, task.group)].append(task)
            self._groups = {key: ([t for t in members if t.last_status == RUNNING],
                                  sum(1 for t in members if t.last_status in (PROVISIONING, PENDING)))
                            for key, members in by_group.items()}
        return self._groups.get((cluster_arn, group), ([], 0))

    def running_per_cluster(self) -> dict[str, list[Task]]:
        """Cluster name -> its RUNNING tasks (a service's list itself where the two are the same tasks)."""
        if self._clusters is None:
            clusters = _running_per_cluster(self.tasks)
            groups = [running for running, _ in (self._groups or {}).values()]
            for name, running in clusters.items():
                same = next((g for g in groups if len(g) == len(running) and g == running), None)
                if same is not None:
                    clusters[name] = same
            self._clusters = clusters
        return self._clusters


def _running_per_cluster(tasks: list[Task]) -> dict[str, list[Task]]:
    """Cluster name -> its RUNNING tasks, in the tasks' order."""
    by_arn: dict[str, list[Task]] = {}
    for task in tasks:
        if task.last_status == RUNNING:
            members = by_arn.get(task.cluster_arn)
            if members is None:
                members = by_arn[task.cluster_arn] = []
            members.append(task)
    names = [arn.rsplit("/", 1)[-1] for arn in by_arn]
    if len(set(names)) == len(names):
        return dict(zip(names, by_arn.values()))
    running: dict[str, list[Task]] = defaultdict(list)   # two cluster ARNs, one name: keep the tasks' order
    for task in tasks:
        if task.last_status == RUNNING:
            running[cluster_of_task(task)].append(task)
    return running


def _reserved(values: list) -> int:
    """sum(int_or_zero(v) for v in values), converting each distinct value once (they are few: "256", ...)."""
    return sum(int_or_zero(value) * count for value, count in Counter(values).items())


def _alb_deltas(snap: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """What happened since the previous snapshot (everything, from zero, for the first one or after a reset)."""
    names = [n.REQUEST_COUNT] + [n.target_code_count(k) for k in n.TARGET_CODE_CLASSES] + \
            [n.elb_code_count(c) for c in n.ELB_CODES]
    reset = snap.get(n.REQUEST_COUNT, 0) < previous.get(n.REQUEST_COUNT, 0)
    base = {} if reset else previous
    counts = {name: snap.get(name, 0) - base.get(name, 0) for name in names}
    rt_now, rt_before = snap.get(n.TARGET_RESPONSE_TIME) or {}, base.get(n.TARGET_RESPONSE_TIME) or {}
    count = rt_now.get("count", 0) - rt_before.get("count", 0)
    response_time = None
    if count > 0:
        total = rt_now.get("sum", 0.0) - rt_before.get("sum", 0.0)
        low, high = _bucket_range(rt_now.get("buckets", []), rt_before.get("buckets", []))
        high = min(high, rt_now.get("max", high))   # the largest ever seen bounds the last bucket too
        average = total / count
        response_time = {"sample_count": count, "total": total,
                         "minimum": min(low, average), "maximum": max(high, average)}
    return {"counts": counts, "response_time": response_time}


def _bucket_range(now: list, before: list) -> tuple[float, float]:
    """The lower bound of the lowest bucket and the upper bound of the highest one that grew."""
    bounds = [b for b, _ in now]
    grown = [i for i, (_, c) in enumerate(now) if c - (before[i][1] if i < len(before) else 0) > 0]
    if not grown:
        return 0.0, 0.0
    low = bounds[grown[0] - 1] if grown[0] > 0 else 0.0
    return low, bounds[grown[-1]]
