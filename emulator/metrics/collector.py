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
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
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


@dataclass
class TaskReading:
    """One task's figures from one sampling, in ECS's terms (units, MiB)."""

    task: Task
    memory_used_mib: float
    cpu_used_units: float | None = None   # None on the task's first reading

    @property
    def cpu_reserved(self) -> int:
        return int_or_zero(self.task.cpu)

    @property
    def memory_reserved(self) -> int:
        return int_or_zero(self.task.memory)

    @property
    def cpu_percent(self) -> float | None:
        if self.cpu_used_units is None or self.cpu_reserved <= 0:
            return None
        return self.cpu_used_units * 100.0 / self.cpu_reserved

    @property
    def memory_percent(self) -> float | None:
        return self.memory_used_mib * 100.0 / self.memory_reserved if self.memory_reserved > 0 else None


@dataclass
class Collection:
    """What one `collect_once` did (tests and benchmarks read it)."""

    timestamp: float
    instances_sampled: int = 0
    tasks_sampled: int = 0
    readings: dict[str, TaskReading] = field(default_factory=dict)   # task ARN -> reading


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
        self._last: dict[str, TaskUsage] = {}                # task ARN -> its previous reading
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
        instances = [ci for ci in self.store.list("container_instance") if ci.status != INACTIVE]
        tasks = [t for t in self.store.list("task") if t.last_status != STOPPED]
        services = [s for s in self.store.list("service") if s.status != SERVICE_INACTIVE]
        result = Collection(now)
        await self._sample_tasks(instances, tasks, result)
        self._publish_services(now, services, tasks, result.readings)
        self._publish_clusters(now, instances, services, tasks, result.readings)
        self._publish_auto_scaling_groups(now, instances)
        if self.alb is not None:
            self._publish_alb(now)
        self.last_collection = result
        return result

    # --- tasks -------------------------------------------------------------------

    async def _sample_tasks(self, instances: list[ContainerInstance], tasks: list[Task], result: Collection) -> None:
        running: dict[str, dict[str, Task]] = defaultdict(dict)   # container instance ARN -> task id -> task
        for task in tasks:
            if task.last_status == RUNNING and task.container_instance_arn:
                running[task.container_instance_arn][task.task_id] = task
        sampled = [ci for ci in instances if ci.container_instance_arn in running]
        answers = await asyncio.gather(*(self.runtime.task_usage(ci.ec2_instance_id) for ci in sampled),
                                       return_exceptions=True)
        seen: set[str] = set()
        for ci, answer in zip(sampled, answers):
            if isinstance(answer, BaseException):
                log.debug("no usage from instance %s: %s", ci.ec2_instance_id, answer)
                continue
            result.instances_sampled += 1
            on_instance = running[ci.container_instance_arn]
            for usage in answer:
                task = on_instance.get(usage.task_id)
                if task is None:
                    continue
                seen.add(task.task_arn)
                result.readings[task.task_arn] = self._reading(task, usage)
        result.tasks_sampled = len(result.readings)
        for arn in [a for a in self._last if a not in seen]:
            del self._last[arn]

    def _reading(self, task: Task, usage: TaskUsage) -> TaskReading:
        previous = self._last.get(task.task_arn)
        self._last[task.task_arn] = usage
        reading = TaskReading(task, usage.memory_bytes / MIB / self.memory_scale)
        if previous is not None:
            elapsed = usage.sampled_at_monotonic - previous.sampled_at_monotonic
            used = usage.cpu_seconds_total - previous.cpu_seconds_total
            if elapsed > 0 and used >= 0:   # a counter that went back (a restarted container): wait a reading
                reading.cpu_used_units = used / elapsed / self.cpu_scale * 1024
        return reading

    # --- AWS/ECS and Container Insights --------------------------------------------

    def _publish_services(self, now: float, services: list[Service], tasks: list[Task],
                          readings: dict[str, TaskReading]) -> None:
        by_group: dict[tuple[str, str], list[Task]] = defaultdict(list)
        for task in tasks:
            by_group[(task.cluster_arn, task.group)].append(task)
        put = self.metrics.put
        for service in services:
            cluster = service.cluster_arn.rsplit("/", 1)[-1]
            dims = {n.CLUSTER_NAME: cluster, n.SERVICE_NAME: service.service_name}
            members = by_group.get((service.cluster_arn, service.task_group), [])
            running = [t for t in members if t.last_status == RUNNING]
            pending = sum(1 for t in members if t.last_status in (PROVISIONING, PENDING))
            put(n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, dims, now, len(running))
            put(n.CONTAINER_INSIGHTS, n.PENDING_TASK_COUNT, dims, now, pending)
            put(n.CONTAINER_INSIGHTS, n.DESIRED_TASK_COUNT, dims, now, service.desired_count)
            sampled = [readings[t.task_arn] for t in running if t.task_arn in readings]
            self._publish_utilization(now, dims, sampled)
            self._publish_resources(now, dims, running, sampled)

    def _publish_utilization(self, now: float, dims: dict[str, str], sampled: list[TaskReading]) -> None:
        """Service CPU/MemoryUtilization: one sample per task, averaging to sum(used) / sum(reserved)."""
        for metric, pairs in (
                (n.CPU_UTILIZATION, [(r.cpu_used_units, r.cpu_reserved, r.cpu_percent) for r in sampled
                                     if r.cpu_percent is not None]),
                (n.MEMORY_UTILIZATION, [(r.memory_used_mib, r.memory_reserved, r.memory_percent) for r in sampled
                                        if r.memory_percent is not None])):
            if not pairs:
                continue
            used, reserved = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
            count = len(pairs)
            self.metrics.put_statistics(n.ECS, metric, dims, now, sample_count=count,
                                        total=count * used * 100.0 / reserved,
                                        minimum=min(p[2] for p in pairs), maximum=max(p[2] for p in pairs))

    def _publish_resources(self, now: float, dims: dict[str, str], running: list[Task],
                           sampled: list[TaskReading]) -> None:
        """Container Insights' CpuReserved / MemoryReserved (running tasks) and *Utilized (sampled ones)."""
        put = self.metrics.put
        put(n.CONTAINER_INSIGHTS, n.CPU_RESERVED, dims, now, sum(int_or_zero(t.cpu) for t in running))
        put(n.CONTAINER_INSIGHTS, n.MEMORY_RESERVED, dims, now, sum(int_or_zero(t.memory) for t in running))
        with_cpu = [r.cpu_used_units for r in sampled if r.cpu_used_units is not None]
        if with_cpu or not running:
            put(n.CONTAINER_INSIGHTS, n.CPU_UTILIZED, dims, now, sum(with_cpu))
        if sampled or not running:
            put(n.CONTAINER_INSIGHTS, n.MEMORY_UTILIZED, dims, now, sum(r.memory_used_mib for r in sampled))

    def _publish_clusters(self, now: float, instances: list[ContainerInstance], services: list[Service],
                          tasks: list[Task], readings: dict[str, TaskReading]) -> None:
        clusters = {c.cluster_name for c in self.store.list("cluster") if c.status != "INACTIVE"}
        clusters.update(cluster_of_instance(ci) for ci in instances)
        registered_cpu: dict[str, int] = defaultdict(int)
        registered_memory: dict[str, int] = defaultdict(int)
        reserved_cpu: dict[str, int] = defaultdict(int)
        reserved_memory: dict[str, int] = defaultdict(int)
        counted: dict[str, int] = defaultdict(int)
        counted_arns: set[str] = set()
        for ci in instances:
            if not in_service(ci):
                continue
            cluster = cluster_of_instance(ci)
            counted[cluster] += 1
            counted_arns.add(ci.container_instance_arn)
            registered_cpu[cluster] += ci.registered_resources.cpu
            registered_memory[cluster] += ci.registered_resources.memory
            reserved_cpu[cluster] += ci.registered_resources.cpu - ci.remaining_resources.cpu
            reserved_memory[cluster] += ci.registered_resources.memory - ci.remaining_resources.memory
        running: dict[str, list[Task]] = defaultdict(list)
        for task in tasks:
            if task.last_status == RUNNING:
                running[cluster_of_task(task)].append(task)
        service_count: dict[str, int] = defaultdict(int)
        for service in services:
            service_count[service.cluster_arn.rsplit("/", 1)[-1]] += 1
        put = self.metrics.put
        for cluster in sorted(clusters):
            dims = {n.CLUSTER_NAME: cluster}
            cluster_running = running.get(cluster, [])
            sampled = [readings[t.task_arn] for t in cluster_running if t.task_arn in readings]
            put(n.CONTAINER_INSIGHTS, n.CONTAINER_INSTANCE_COUNT, dims, now, counted[cluster])
            put(n.CONTAINER_INSIGHTS, n.SERVICE_COUNT, dims, now, service_count[cluster])
            put(n.CONTAINER_INSIGHTS, n.TASK_COUNT, dims, now, len(cluster_running))
            self._publish_resources(now, dims, cluster_running, sampled)
            if not registered_cpu[cluster] or not registered_memory[cluster]:
                continue   # no ACTIVE or DRAINING instance: ECS has nothing to divide by
            put(n.ECS, n.CPU_RESERVATION, dims, now, reserved_cpu[cluster] * 100.0 / registered_cpu[cluster])
            put(n.ECS, n.MEMORY_RESERVATION, dims, now,
                reserved_memory[cluster] * 100.0 / registered_memory[cluster])
            on_counted = [r for r in sampled if r.task.container_instance_arn in counted_arns]
            with_cpu = [r.cpu_used_units for r in on_counted if r.cpu_used_units is not None]
            if with_cpu or not cluster_running:
                put(n.ECS, n.CPU_UTILIZATION, dims, now, sum(with_cpu) * 100.0 / registered_cpu[cluster])
            if on_counted or not cluster_running:
                put(n.ECS, n.MEMORY_UTILIZATION, dims, now,
                    sum(r.memory_used_mib for r in on_counted) * 100.0 / registered_memory[cluster])

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
