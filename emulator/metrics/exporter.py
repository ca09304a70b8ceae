"""Prometheus exposition at GET /metrics: CloudWatch's figures under Prometheus names.

`MetricsExporter` is a prometheus_client custom collector. At each scrape it
reads:
- from the MetricsStore, the latest sample of each gauge CloudWatch would
  show (utilization, reservation, CapacityProviderReservation, the last
  complete minute of RequestCountPerTarget), skipping samples older than
  `max_age` AWS seconds (a service with no RUNNING task has no utilization,
  as in CloudWatch), and the failed-task counters;
- from the state store, live counts (running / pending / desired tasks,
  container instances, services, Auto Scaling groups) and the seed
  article's slot gauge;
- from the AlbService, if given, the ALB's counters and response-time
  histogram, as they stand at the scrape.

Every metric's help text starts with the CloudWatch namespace, metric and
dimensions it mirrors. Labels: cluster, service, capacity_provider,
target_group (its name), target, auto_scaling_group.

Several processes: each runs its own exporter on its own port with
`process=<name>`; every counter and histogram then carries a `process`
label, so series never collide and `sum without (process) (rate(...))` adds
them up. Gauges read from the state store belong to the process that owns
it; ALB-only worker processes pass `state=None` and export only their own
counters. (Alternatively the parent merges its workers' TargetGroupStats
snapshots with `TargetGroupStats.merge` and exports alone.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from ..model.container_instance import ACTIVE, INACTIVE
from ..model.service import SERVICE_INACTIVE
from ..model.state import StateStore
from ..model.task import PENDING, PROVISIONING, RUNNING, STOPPED
from ..scaling.capacity import slot_utilization
from . import names as n
from .collector import (asg_tag, cluster_of_instance, cluster_of_task, in_service, list_kind, target_group_name)
from .store import MetricKey, MetricsStore

DEFAULT_MAX_AGE = 120.0   # AWS seconds: a gauge not sampled for two minutes is gone, not stale
MIB = 1 << 20

# (Prometheus name, namespace, metric, labels from dimensions, help, multiply by)
_LATEST_GAUGES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], str, float], ...] = (
    ("ecs_service_cpu_utilization_percent", n.ECS, n.CPU_UTILIZATION,
     (("cluster", n.CLUSTER_NAME), ("service", n.SERVICE_NAME)),
     "CPU units used by the service's RUNNING tasks / CPU units they reserve x 100 (latest sampling; "
     "can exceed 100 when tasks use idle CPU).", 1.0),
    ("ecs_service_memory_utilization_percent", n.ECS, n.MEMORY_UTILIZATION,
     (("cluster", n.CLUSTER_NAME), ("service", n.SERVICE_NAME)),
     "memory used by the service's RUNNING tasks / memory they reserve (memoryReservation, else memory) x 100.",
     1.0),
    ("ecs_cluster_cpu_utilization_percent", n.ECS, n.CPU_UTILIZATION, (("cluster", n.CLUSTER_NAME),),
     "CPU units used by tasks / CPU units registered by ACTIVE and DRAINING container instances x 100.", 1.0),
    ("ecs_cluster_memory_utilization_percent", n.ECS, n.MEMORY_UTILIZATION, (("cluster", n.CLUSTER_NAME),),
     "memory used by tasks / memory registered by ACTIVE and DRAINING container instances x 100.", 1.0),
    ("ecs_cluster_cpu_reservation_percent", n.ECS, n.CPU_RESERVATION, (("cluster", n.CLUSTER_NAME),),
     "CPU units reserved by tasks / CPU units registered by ACTIVE and DRAINING container instances x 100.", 1.0),
    ("ecs_cluster_memory_reservation_percent", n.ECS, n.MEMORY_RESERVATION, (("cluster", n.CLUSTER_NAME),),
     "memory reserved by tasks / memory registered by ACTIVE and DRAINING container instances x 100.", 1.0),
    ("ecs_service_cpu_utilized_units", n.CONTAINER_INSIGHTS, n.CPU_UTILIZED,
     (("cluster", n.CLUSTER_NAME), ("service", n.SERVICE_NAME)),
     "CPU units (1 vCPU = 1024) the service's RUNNING tasks use.", 1.0),
    ("ecs_service_cpu_reserved_units", n.CONTAINER_INSIGHTS, n.CPU_RESERVED,
     (("cluster", n.CLUSTER_NAME), ("service", n.SERVICE_NAME)),
     "CPU units the service's RUNNING tasks reserve.", 1.0),
    ("ecs_service_memory_utilized_bytes", n.CONTAINER_INSIGHTS, n.MEMORY_UTILIZED,
     (("cluster", n.CLUSTER_NAME), ("service", n.SERVICE_NAME)),
     "memory the service's RUNNING tasks use (CloudWatch: MiB; here bytes).", MIB),
    ("ecs_service_memory_reserved_bytes", n.CONTAINER_INSIGHTS, n.MEMORY_RESERVED,
     (("cluster", n.CLUSTER_NAME), ("service", n.SERVICE_NAME)),
     "memory the service's RUNNING tasks reserve (CloudWatch: MiB; here bytes).", MIB),
    ("ecs_cluster_cpu_utilized_units", n.CONTAINER_INSIGHTS, n.CPU_UTILIZED, (("cluster", n.CLUSTER_NAME),),
     "CPU units (1 vCPU = 1024) the cluster's RUNNING tasks use.", 1.0),
    ("ecs_cluster_cpu_reserved_units", n.CONTAINER_INSIGHTS, n.CPU_RESERVED, (("cluster", n.CLUSTER_NAME),),
     "CPU units the cluster's RUNNING tasks reserve.", 1.0),
    ("ecs_cluster_memory_utilized_bytes", n.CONTAINER_INSIGHTS, n.MEMORY_UTILIZED, (("cluster", n.CLUSTER_NAME),),
     "memory the cluster's RUNNING tasks use (CloudWatch: MiB; here bytes).", MIB),
    ("ecs_cluster_memory_reserved_bytes", n.CONTAINER_INSIGHTS, n.MEMORY_RESERVED, (("cluster", n.CLUSTER_NAME),),
     "memory the cluster's RUNNING tasks reserve (CloudWatch: MiB; here bytes).", MIB),
    ("ecs_capacity_provider_reservation_percent", n.MANAGED_SCALING, n.CAPACITY_PROVIDER_RESERVATION,
     (("cluster", n.CLUSTER_NAME), ("capacity_provider", n.CAPACITY_PROVIDER_NAME)),
     "instances the capacity provider needs (M) / instances it has (N) x 100, what ECS managed scaling "
     "tracks against targetCapacity; above 100 while tasks wait in PROVISIONING.", 1.0),
)

SLOT_HELP = ("Not a CloudWatch metric: the seed article's gauge. RUNNING tasks of the service / task slots x 100, "
             "where task slots = how many tasks of the service's size (CPU, memory, static ports) fit on each ACTIVE "
             "container instance when it is empty, summed. It differs from CapacityProviderReservation "
             "(AWS/ECS/ManagedScaling), which ECS scales on: that one is instances needed / instances running x 100, "
             "so an instance running any task counts as fully used, it ignores how full instances are, and tasks "
             "waiting in PROVISIONING push it above 100; this one can read 50% while every instance is needed.")


def _help(namespace: str, metric: str, dimensions: tuple[str, ...], text: str) -> str:
    return f"{namespace} {metric} ({', '.join(dimensions)}): {text}"


class MetricsExporter(Collector):
    """A prometheus_client collector over the MetricsStore, the state store and the ALB; see the module docstring."""

    def __init__(self, metrics: MetricsStore, state: StateStore | None = None, alb=None, *, clock=None,
                 max_age: float = DEFAULT_MAX_AGE, process: str | None = None) -> None:
        self.metrics, self.state, self.alb, self.clock = metrics, state, alb, clock
        self.max_age = max_age
        self.process = process

    def describe(self) -> list[Metric]:
        return []   # names depend on the store's contents: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._latest_gauges()
        yield self._request_count_per_target()
        yield from self._failed_tasks()
        if self.state is not None:
            yield from self._live_counts()
        if self.alb is not None:
            yield from self._alb()

    # --- from the MetricsStore ---------------------------------------------------

    def _now(self) -> float:
        if self.clock is not None:
            return self.clock.now()
        newest = self.metrics.newest_timestamp
        return newest if newest is not None else 0.0

    def _latest_gauges(self) -> Iterator[Metric]:
        oldest = self._now() - self.max_age
        for name, namespace, metric, label_dims, text, factor in _LATEST_GAUGES:
            dims = tuple(d for _, d in label_dims)
            family = GaugeMetricFamily(name, _help(namespace, metric, dims, text), labels=[label for label, _ in label_dims])
            for key, sample, _ in self.metrics.find(namespace, metric):
                if _dimension_names(key) != set(dims) or sample.timestamp < oldest:
                    continue
                family.add_metric([key.dimension(d) for d in dims], sample.value * factor, timestamp=None)
            yield family

    def _request_count_per_target(self) -> Metric:
        family = GaugeMetricFamily(
            "alb_target_group_request_count_per_target",
            _help(n.APPLICATION_ELB, n.REQUEST_COUNT_PER_TARGET, (n.TARGET_GROUP,),
                  "Sum over the last complete minute: requests per healthy target (all targets when none is "
                  "healthy), what ALBRequestCountPerTarget target tracking reads."),
            labels=["target_group"])
        period = self.metrics.period
        end = math.floor(self._now() / period) * period
        for key, _, _ in self.metrics.find(n.APPLICATION_ELB, n.REQUEST_COUNT_PER_TARGET):
            if _dimension_names(key) != {n.TARGET_GROUP}:
                continue
            points = self.metrics.datapoints(key.namespace, key.name, key.dimensions, end - period, end)
            family.add_metric([key.dimension(n.TARGET_GROUP).split("/")[1]], points[-1].sum if points else 0.0)
        return family

    def _failed_tasks(self) -> Iterator[Metric]:
        service = CounterMetricFamily(
            "ecs_service_failed_tasks",
            _help(n.EMULATOR, n.FAILED_TASK_COUNT, (n.CLUSTER_NAME, n.SERVICE_NAME),
                  "not a CloudWatch metric: the service's tasks that STOPPED having failed to start or with an "
                  "essential container exiting non-zero (OOM kills included), since the emulator started."),
            labels=self._labels(["cluster", "service"]))
        cluster = CounterMetricFamily(
            "ecs_cluster_failed_tasks",
            _help(n.EMULATOR, n.FAILED_TASK_COUNT, (n.CLUSTER_NAME,),
                  "not a CloudWatch metric: the cluster's tasks (services' and standalone) that STOPPED having "
                  "failed to start or with an essential container exiting non-zero, since the emulator started."),
            labels=self._labels(["cluster"]))
        for key, _, total in self.metrics.find(n.EMULATOR, n.FAILED_TASK_COUNT):
            names = _dimension_names(key)
            if names == {n.CLUSTER_NAME, n.SERVICE_NAME}:
                labels = [key.dimension(n.CLUSTER_NAME), key.dimension(n.SERVICE_NAME)]
                service.add_metric(self._values(labels), total)
            elif names == {n.CLUSTER_NAME}:
                cluster.add_metric(self._values([key.dimension(n.CLUSTER_NAME)]), total)
        yield service
        yield cluster

    # --- live, from the state store --------------------------------------------------

    def _live_counts(self) -> Iterator[Metric]:
        state = self.state
        services = [s for s in state.list("service") if s.status != SERVICE_INACTIVE]
        instances = [ci for ci in state.list("container_instance") if ci.status != INACTIVE]
        running: dict[tuple[str, str], int] = defaultdict(int)
        pending: dict[tuple[str, str], int] = defaultdict(int)
        cluster_running: dict[str, int] = defaultdict(int)
        for task in state.list("task"):
            if task.last_status == STOPPED:
                continue
            key = (task.cluster_arn, task.group)
            if task.last_status == RUNNING:
                running[key] += 1
                cluster_running[cluster_of_task(task)] += 1
            elif task.last_status in (PROVISIONING, PENDING):
                pending[key] += 1

        service_labels = ["cluster", "service"]
        families = {
            "running": GaugeMetricFamily("ecs_service_running_tasks", _help(
                n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, (n.CLUSTER_NAME, n.SERVICE_NAME),
                "the service's tasks in RUNNING (live, at the scrape)."), labels=service_labels),
            "pending": GaugeMetricFamily("ecs_service_pending_tasks", _help(
                n.CONTAINER_INSIGHTS, n.PENDING_TASK_COUNT, (n.CLUSTER_NAME, n.SERVICE_NAME),
                "the service's tasks in PENDING or PROVISIONING (waiting for capacity) (live)."),
                labels=service_labels),
            "desired": GaugeMetricFamily("ecs_service_desired_tasks", _help(
                n.CONTAINER_INSIGHTS, n.DESIRED_TASK_COUNT, (n.CLUSTER_NAME, n.SERVICE_NAME),
                "the service's desiredCount (live)."), labels=service_labels),
            "slots": GaugeMetricFamily("ecs_cluster_task_slot_utilization_percent", SLOT_HELP,
                                       labels=service_labels),
        }
        active_by_cluster: dict[str, list] = defaultdict(list)
        for ci in instances:
            if ci.status == ACTIVE:
                active_by_cluster[cluster_of_instance(ci)].append(ci)
        for service in services:
            cluster = service.cluster_arn.rsplit("/", 1)[-1]
            key = (service.cluster_arn, service.task_group)
            labels = [cluster, service.service_name]
            families["running"].add_metric(labels, running[key])
            families["pending"].add_metric(labels, pending[key])
            families["desired"].add_metric(labels, service.desired_count)
            slots = _task_slots(state, service.task_definition, active_by_cluster.get(cluster, []))
            if slots is not None and (slots > 0 or running[key] == 0):
                families["slots"].add_metric(labels, slot_utilization(running[key], slots))
        yield from families.values()

        clusters = {c.cluster_name for c in state.list("cluster") if c.status != "INACTIVE"}
        counted: dict[str, int] = defaultdict(int)
        for ci in instances:
            clusters.add(cluster_of_instance(ci))
            counted[cluster_of_instance(ci)] += in_service(ci)
        service_count: dict[str, int] = defaultdict(int)
        for service in services:
            service_count[service.cluster_arn.rsplit("/", 1)[-1]] += 1
        for name, metric, text, values in (
                ("ecs_cluster_container_instances", n.CONTAINER_INSTANCE_COUNT,
                 "container instances ACTIVE or DRAINING (live).", counted),
                ("ecs_cluster_services", n.SERVICE_COUNT, "services not INACTIVE (live).", service_count),
                ("ecs_cluster_tasks", n.TASK_COUNT, "tasks in RUNNING (live).", cluster_running)):
            family = GaugeMetricFamily(name, _help(n.CONTAINER_INSIGHTS, metric, (n.CLUSTER_NAME,), text),
                                       labels=["cluster"])
            for cluster in sorted(clusters):
                family.add_metric([cluster], values.get(cluster, 0))
            yield family
        yield from self._auto_scaling_groups(instances)

    def _auto_scaling_groups(self, instances: list) -> Iterator[Metric]:
        in_service_count: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        for ci in instances:
            group = asg_tag(ci)
            if group is not None:
                total[group] += 1
                in_service_count[group] += ci.status == ACTIVE
        dims = (n.AUTO_SCALING_GROUP_NAME,)
        families = [
            (GaugeMetricFamily("autoscaling_group_desired_capacity", _help(
                n.AUTO_SCALING, n.GROUP_DESIRED_CAPACITY, dims, "the group's DesiredCapacity (live)."),
                labels=["auto_scaling_group"]), lambda g: g.desired_capacity if g.desired_capacity is not None
             else g.min_size),
            (GaugeMetricFamily("autoscaling_group_in_service_instances", _help(
                n.AUTO_SCALING, n.GROUP_IN_SERVICE_INSTANCES, dims,
                "the group's instances registered ACTIVE with the cluster (live)."),
                labels=["auto_scaling_group"]), lambda g: in_service_count[g.auto_scaling_group_name]),
            (GaugeMetricFamily("autoscaling_group_total_instances", _help(
                n.AUTO_SCALING, n.GROUP_TOTAL_INSTANCES, dims,
                "the group's instances, in service or not (live)."),
                labels=["auto_scaling_group"]), lambda g: total[g.auto_scaling_group_name]),
            (GaugeMetricFamily("autoscaling_group_min_size", _help(
                n.AUTO_SCALING, n.GROUP_MIN_SIZE, dims, "the group's MinSize."),
                labels=["auto_scaling_group"]), lambda g: g.min_size),
            (GaugeMetricFamily("autoscaling_group_max_size", _help(
                n.AUTO_SCALING, n.GROUP_MAX_SIZE, dims, "the group's MaxSize."),
                labels=["auto_scaling_group"]), lambda g: g.max_size),
        ]
        groups = list_kind(self.state, "auto_scaling_group")
        for family, value in families:
            for group in groups:
                family.add_metric([group.auto_scaling_group_name], value(group))
            yield family

    # --- live, from the ALB --------------------------------------------------------------

    def _alb(self) -> Iterator[Metric]:
        stats = self.alb.stats()
        dims = (n.TARGET_GROUP,)
        tg_labels = self._labels(["target_group"])
        requests = CounterMetricFamily("alb_target_group_requests", _help(
            n.APPLICATION_ELB, n.REQUEST_COUNT, dims, "requests for which a target was chosen."), labels=tg_labels)
        per_target = CounterMetricFamily("alb_target_requests", _help(
            n.APPLICATION_ELB, n.REQUEST_COUNT, (n.TARGET_GROUP, "target"),
            "requests sent to each target (CloudWatch has no per-target series; RequestCountPerTarget averages "
            "these)."), labels=self._labels(["target_group", "target"]))
        target_codes = CounterMetricFamily("alb_target_group_target_responses", _help(
            n.APPLICATION_ELB, "HTTPCode_Target_2XX_Count .. HTTPCode_Target_5XX_Count", dims,
            "responses the targets gave, by status class."), labels=self._labels(["target_group", "code_class"]))
        elb_codes = CounterMetricFamily("alb_target_group_elb_responses", _help(
            n.APPLICATION_ELB, "HTTPCode_ELB_4XX_Count / HTTPCode_ELB_5XX_Count (502, 503, 504)", dims,
            "responses the load balancer made itself, by status code."), labels=self._labels(["target_group", "code"]))
        response_time = HistogramMetricFamily("alb_target_group_target_response_time_seconds", _help(
            n.APPLICATION_ELB, n.TARGET_RESPONSE_TIME, dims,
            "seconds from sending the request to the target until its response headers arrived."),
            labels=tg_labels)
        healthy = GaugeMetricFamily("alb_target_group_healthy_hosts", _help(
            n.APPLICATION_ELB, n.HEALTHY_HOST_COUNT, dims, "targets healthy (live)."), labels=["target_group"])
        unhealthy = GaugeMetricFamily("alb_target_group_unhealthy_hosts", _help(
            n.APPLICATION_ELB, n.UNHEALTHY_HOST_COUNT, dims, "targets unhealthy (live)."), labels=["target_group"])
        for arn, snap in sorted(stats.items()):
            tg = target_group_name(arn)
            requests.add_metric(self._values([tg]), snap.get(n.REQUEST_COUNT, 0))
            for target, count in sorted(snap.get("RequestCountPerTarget", {}).items()):
                per_target.add_metric(self._values([tg, target]), count)
            for klass in n.TARGET_CODE_CLASSES:
                target_codes.add_metric(self._values([tg, klass]), snap.get(n.target_code_count(klass), 0))
            for code, count in sorted(snap.get("elb_codes", {}).items()):
                elb_codes.add_metric(self._values([tg, str(code)]), count)
            rt = snap.get(n.TARGET_RESPONSE_TIME) or {}
            buckets, cumulative = [], 0
            for bound, count in rt.get("buckets", []):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else _bound(bound), cumulative))
            if buckets:
                response_time.add_metric(self._values([tg]), buckets, rt.get("sum", 0.0))
            healthy.add_metric([tg], snap.get(n.HEALTHY_HOST_COUNT, 0))
            unhealthy.add_metric([tg], snap.get(n.UNHEALTHY_HOST_COUNT, 0))
        yield from (requests, per_target, target_codes, elb_codes, response_time, healthy, unhealthy)

    # --- labels -----------------------------------------------------------------------------

    def _labels(self, labels: list[str]) -> list[str]:
        """Counter labels: plus `process` when several processes export."""
        return labels + ["process"] if self.process else labels

    def _values(self, values: list[str]) -> list[str]:
        return values + [self.process] if self.process else values


def _dimension_names(key: MetricKey) -> set[str]:
    return {name for name, _ in key.dimensions}


def _bound(value: float) -> str:
    return repr(float(value))


def _task_slots(state: StateStore, task_definition_arn: str, instances: list) -> int | None:
    """How many tasks of the definition's size fit on these instances when each is empty; None if unknown."""
    td = state.get("task_definition", task_definition_arn)
    if td is None:
        return None
    cpu, memory = td.required_cpu, td.required_memory
    static_ports = bool(td.static_host_ports())
    if cpu <= 0 and memory <= 0 and not static_ports:
        return None
    slots = 0
    for ci in instances:
        fits = [ci.registered_resources.cpu // cpu if cpu > 0 else math.inf,
                ci.registered_resources.memory // memory if memory > 0 else math.inf,
                1 if static_ports else math.inf]
        slots += int(min(fits))
    return slots


def add_metrics_route(app: web.Application, exporter: MetricsExporter, path: str = "/metrics") -> None:
    """GET /metrics on `app`: the exporter's metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        # The classic text format (what generate_latest writes with its default escaping), announced
        # as version 0.0.4 so older Prometheus servers (Debian's 2.42) read it without question.
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    app.router.add_get(path, metrics)


def scrape_text(exporter: MetricsExporter) -> str:
    """The exposition text once, without a server (tests, `ecsemu` commands)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    return generate_latest(registry).decode()


__all__ = ["MetricsExporter", "add_metrics_route", "scrape_text", "SLOT_HELP"]
