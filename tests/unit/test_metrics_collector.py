"""The metrics collector on the in-memory runtime and a fake clock: ECS's metric definitions, exactly."""

from __future__ import annotations

import asyncio
import random

import pytest

from emulator.alb.balancer import CheckResult, Target
from emulator.alb.service import AlbService
from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.asg import AutoScalingGroups
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.control.service_scheduler import ServiceScheduler
from emulator.metrics import MetricsCollector, MetricsStore
from emulator.metrics import names as n
from emulator.model.arn import service_arn, task_arn
from emulator.model.elb import parse_target_group
from emulator.model.scaling import parse_auto_scaling_group
from emulator.model.service import PRIMARY, Deployment, Service
from emulator.model.state import StateStore
from emulator.model.task import PROVISIONING, RUNNING, Task
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"
SERVICE = "web-app-service"
SVC_DIMS = {n.CLUSTER_NAME: CLUSTER, n.SERVICE_NAME: SERVICE}
CLUSTER_DIMS = {n.CLUSTER_NAME: CLUSTER}
MINUTE = 60


def task_definition(cpu: int = 512, memory: int = 512, image: str = "web-app:v1") -> dict:
    return {"family": "web-app", "containerDefinitions": [
        {"name": "web-app", "image": image, "cpu": cpu, "memory": memory,
         "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}


class World:
    """Two t3.medium instances (2,048 units, 3,584 MiB each), a service, and the collector at scale 0.25."""

    def __init__(self, *, alb=None, clock: FakeClock | None = None, cpu_scale: float = 0.25,
                 memory_scale: float = 0.25):
        self.clock = clock or FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.runtime = FakeRuntime(rng=random.Random(1), clock=self.clock.now)
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, rng=random.Random(2),
                                  cpu_scale=cpu_scale, memory_scale=memory_scale)
        self.scheduler = ServiceScheduler(self.store, self.agent, self.clock, rng=random.Random(3))
        self.cluster = ensure_cluster(self.store, CLUSTER)
        self.metrics = MetricsStore()
        self.collector = MetricsCollector(self.store, self.runtime, self.clock, self.metrics, alb,
                                          cpu_scale=cpu_scale, memory_scale=memory_scale)

    async def start(self, instances: int = 2):
        for i in range(instances):
            await self.agent.launch_instance(CLUSTER, "t3.medium", ["us-east-1a", "us-east-1b"][i % 2])
        return self

    def service(self, desired: int, *, cpu: int = 512, memory: int = 512, image: str = "web-app:v1") -> Service:
        td = register_task_definition(self.store, parse_task_definition(task_definition(cpu, memory, image)),
                                      self.clock.now())
        arn = service_arn(CLUSTER, SERVICE)
        service = Service(arn, SERVICE, self.cluster.cluster_arn, td.task_definition_arn, desired_count=desired,
                          deployments=[Deployment("ecs-svc/1000000000000000001", PRIMARY, td.task_definition_arn,
                                                  desired_count=desired)])
        with self.store.transaction() as tx:
            tx.put("service", arn, service)
        return service

    async def settle(self, passes: int = 2) -> None:
        for _ in range(passes):
            self.scheduler.reconcile_all()
            for _ in range(10):
                await self.agent.settle()
                events = self.runtime.drain_events()
                if not events and not self.agent._background:
                    break
                for event in events:
                    await self.agent.handle_event(event)

    def running(self) -> list[Task]:
        return sorted((t for t in self.store.list("task") if t.last_status == RUNNING), key=lambda t: t.task_id)

    def instance_of(self, task: Task) -> str:
        return self.store.get("container_instance", task.container_instance_arn).ec2_instance_id

    def use(self, task: Task, **usage) -> None:
        self.runtime.set_usage(self.instance_of(task), task.task_id, **usage)

    def to_minute_start(self, lead: float = 0) -> float:
        """Move the clock to `lead` seconds before the start of a coming minute (periods start on the minute)."""
        start = (int(self.clock.now() + lead) // MINUTE + 1) * MINUTE
        self.clock.set(start - lead)
        return start

    def point(self, namespace: str, metric: str, dims, start: float):
        [point] = self.metrics.datapoints(namespace, metric, dims, start, start + MINUTE)
        return point


@pytest.fixture
async def world():
    return await World().start()


async def test_service_cpu_utilization_is_used_over_reserved_with_one_sample_per_task(world):
    world.service(2)
    await world.settle()
    low, high = world.running()
    world.use(low, cpu_fraction_of_reserved=0.5)
    world.use(high, cpu_fraction_of_reserved=1.0)
    start = world.to_minute_start()

    await world.collector.collect_once()      # the first reading of a task gives no CPU yet
    world.clock.tick(20)
    await world.collector.collect_once()

    point = world.point(n.ECS, n.CPU_UTILIZATION, SVC_DIMS, start)
    assert point.average == pytest.approx(75.0)
    assert (point.sample_count, point.minimum, point.maximum) == (2, pytest.approx(50.0), pytest.approx(100.0))


async def test_the_minutes_sample_count_is_running_tasks_times_samplings(world):
    world.service(2)
    await world.settle()
    for task in world.running():
        world.use(task, cpu_fraction_of_reserved=0.25, memory_mib=128)
    start = world.to_minute_start(lead=20)
    await world.collector.collect_once()      # the previous minute: gives every task its first reading

    for offset in (0, 20, 40):
        world.clock.set(start + offset)
        await world.collector.collect_once()

    cpu = world.point(n.ECS, n.CPU_UTILIZATION, SVC_DIMS, start)
    memory = world.point(n.ECS, n.MEMORY_UTILIZATION, SVC_DIMS, start)
    assert (cpu.sample_count, cpu.average) == (6, pytest.approx(25.0))
    assert (memory.sample_count, memory.average) == (6, pytest.approx(25.0))    # 128 of 512 MiB


async def test_service_memory_utilization_is_used_over_reserved_from_the_first_sampling(world):
    world.service(2, memory=512)
    await world.settle()
    first, second = world.running()
    world.use(first, memory_mib=256)
    world.use(second, memory_mib=512)
    start = world.to_minute_start()

    await world.collector.collect_once()

    point = world.point(n.ECS, n.MEMORY_UTILIZATION, SVC_DIMS, start)
    assert (point.sample_count, point.average, point.minimum, point.maximum) == (
        2, pytest.approx(75.0), pytest.approx(50.0), pytest.approx(100.0))
    assert world.metrics.datapoints(n.ECS, n.CPU_UTILIZATION, SVC_DIMS, start, start + MINUTE) == []


async def test_a_task_using_idle_cpu_beyond_its_reservation_reads_above_100(world):
    world.service(1, cpu=256)
    await world.settle()
    [task] = world.running()
    world.use(task, cpu_seconds_per_second=0.5)     # half a vCPU: 512 units, twice its 256
    start = world.to_minute_start()

    await world.collector.collect_once()
    world.clock.tick(20)
    await world.collector.collect_once()

    assert world.point(n.ECS, n.CPU_UTILIZATION, SVC_DIMS, start).average == pytest.approx(200.0)


@pytest.mark.parametrize("cpu_scale", [0.25, 0.5, 1.0])
async def test_utilization_does_not_depend_on_the_resource_scale(cpu_scale):
    world = await World(cpu_scale=cpu_scale, memory_scale=cpu_scale).start()
    world.service(1)
    await world.settle()
    [task] = world.running()
    world.use(task, cpu_fraction_of_reserved=0.6, memory_mib=384)
    start = world.to_minute_start()

    await world.collector.collect_once()
    world.clock.tick(20)
    await world.collector.collect_once()

    assert world.point(n.ECS, n.CPU_UTILIZATION, SVC_DIMS, start).average == pytest.approx(60.0)
    assert world.point(n.ECS, n.MEMORY_UTILIZATION, SVC_DIMS, start).average == pytest.approx(75.0)


async def test_cluster_reservation_and_utilization_divide_by_what_instances_registered(world):
    world.service(2)
    await world.settle()
    low, high = world.running()
    world.use(low, cpu_fraction_of_reserved=0.5, memory_mib=256)
    world.use(high, cpu_fraction_of_reserved=1.0, memory_mib=512)
    start = world.to_minute_start()

    await world.collector.collect_once()
    world.clock.tick(20)
    await world.collector.collect_once()

    registered_cpu, registered_memory = 2 * 2048, 2 * 3584
    assert world.metrics.latest(n.ECS, n.CPU_RESERVATION, CLUSTER_DIMS).value == pytest.approx(
        1024 * 100 / registered_cpu)                                       # 25%
    assert world.metrics.latest(n.ECS, n.MEMORY_RESERVATION, CLUSTER_DIMS).value == pytest.approx(
        1024 * 100 / registered_memory)
    assert world.metrics.latest(n.ECS, n.CPU_UTILIZATION, CLUSTER_DIMS).value == pytest.approx(
        (256 + 512) * 100 / registered_cpu)                                # 18.75%
    assert world.metrics.latest(n.ECS, n.MEMORY_UTILIZATION, CLUSTER_DIMS).value == pytest.approx(
        (256 + 512) * 100 / registered_memory)
    # Reservation is sampled every time: two samples this minute.
    assert world.point(n.ECS, n.CPU_RESERVATION, CLUSTER_DIMS, start).sample_count == 2


async def test_a_terminated_instance_no_longer_counts_in_the_cluster(world):
    world.service(1)
    await world.settle()
    empty = next(ci for ci in world.store.list("container_instance") if ci.running_tasks_count == 0)
    await world.agent.terminate_instance(empty.container_instance_arn)

    await world.collector.collect_once()

    assert world.metrics.latest(n.ECS, n.CPU_RESERVATION, CLUSTER_DIMS).value == pytest.approx(512 * 100 / 2048)
    assert world.metrics.latest(n.CONTAINER_INSIGHTS, n.CONTAINER_INSTANCE_COUNT, CLUSTER_DIMS).value == 1


async def test_container_insights_counts_tasks_services_and_instances(world):
    world.service(3)
    await world.settle()

    await world.collector.collect_once()

    latest = world.metrics.latest
    assert latest(n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, SVC_DIMS).value == 3
    assert latest(n.CONTAINER_INSIGHTS, n.PENDING_TASK_COUNT, SVC_DIMS).value == 0
    assert latest(n.CONTAINER_INSIGHTS, n.DESIRED_TASK_COUNT, SVC_DIMS).value == 3
    assert latest(n.CONTAINER_INSIGHTS, n.CPU_RESERVED, SVC_DIMS).value == 3 * 512
    assert latest(n.CONTAINER_INSIGHTS, n.MEMORY_RESERVED, SVC_DIMS).value == 3 * 512
    assert latest(n.CONTAINER_INSIGHTS, n.CONTAINER_INSTANCE_COUNT, CLUSTER_DIMS).value == 2
    assert latest(n.CONTAINER_INSIGHTS, n.SERVICE_COUNT, CLUSTER_DIMS).value == 1
    assert latest(n.CONTAINER_INSIGHTS, n.TASK_COUNT, CLUSTER_DIMS).value == 3


async def test_pending_task_count_holds_pending_and_provisioning_tasks(world):
    service = world.service(2)
    world.scheduler.reconcile_all()            # placed and created PENDING; their containers not started yet
    waiting = task_arn(CLUSTER, "0" * 32)
    with world.store.transaction() as tx:      # what a capacity provider holds while the ASG grows
        tx.put("task", waiting, Task(waiting, world.cluster.cluster_arn, service.task_definition,
                                     service.task_group, last_status=PROVISIONING, cpu="512", memory="512"))

    await world.collector.collect_once()

    assert world.metrics.latest(n.CONTAINER_INSIGHTS, n.PENDING_TASK_COUNT, SVC_DIMS).value == 3
    assert world.metrics.latest(n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, SVC_DIMS).value == 0
    # No RUNNING task: no utilization, as in CloudWatch.
    assert world.metrics.latest(n.ECS, n.CPU_UTILIZATION, SVC_DIMS) is None
    assert world.metrics.latest(n.ECS, n.MEMORY_UTILIZATION, SVC_DIMS) is None
    await world.agent.settle()


async def test_failed_tasks_are_counted_once_per_service_and_cluster(world):
    world.service(2)
    await world.settle()
    crashed, stopped = world.running()

    world.runtime.kill_container(world.instance_of(crashed), crashed.task_id, "web-app", exit_code=137)
    await world.agent.stop_task(stopped.task_arn)           # a user's stop is no failure
    await world.settle()
    await world.collector.collect_once()
    await world.settle()

    assert world.metrics.total(n.EMULATOR, n.FAILED_TASK_COUNT, SVC_DIMS) == 1
    assert world.metrics.total(n.EMULATOR, n.FAILED_TASK_COUNT, CLUSTER_DIMS) == 1


async def test_a_task_that_fails_to_start_is_a_failed_task(world):
    world.runtime.remove_image("web-app:v9")
    world.service(1, image="web-app:v9")

    await world.settle(passes=1)

    assert world.metrics.total(n.EMULATOR, n.FAILED_TASK_COUNT, SVC_DIMS) == 1
    assert world.metrics.total(n.EMULATOR, n.FAILED_TASK_COUNT, CLUSTER_DIMS) == 1


async def test_a_stopped_task_leaves_the_next_sampling(world):
    world.service(2)
    await world.settle()
    first, second = world.running()
    world.use(first, cpu_fraction_of_reserved=1.0)
    world.use(second, cpu_fraction_of_reserved=0.2)
    await world.collector.collect_once()
    world.scheduler.reconcile_all()
    service = world.store.get("service", service_arn(CLUSTER, SERVICE))
    service.desired_count = 1
    with world.store.transaction() as tx:
        tx.put("service", service.service_arn, service)
    await world.agent.stop_task(first.task_arn)
    await world.settle(passes=1)
    world.clock.tick(20)

    collection = await world.collector.collect_once()

    assert list(collection.readings) == [second.task_arn]
    assert collection.readings[second.task_arn].cpu_percent == pytest.approx(20.0)


async def test_auto_scaling_group_capacity_and_in_service_instances(world):
    groups = AutoScalingGroups(world.store, world.agent, world.clock, rng=random.Random(4))
    asg = parse_auto_scaling_group({"AutoScalingGroupName": "ecs-asg", "MinSize": 1, "MaxSize": 5,
                                    "DesiredCapacity": 3, "AvailabilityZones": ["us-east-1a", "us-east-1b"],
                                    "LaunchTemplate": {"InstanceType": "t3.medium"}})
    groups.put(asg, CLUSTER)
    await groups.reconcile_all()
    draining = next(ci for ci in groups.instances("ecs-asg"))
    draining.status = "DRAINING"
    with world.store.transaction() as tx:
        tx.put("container_instance", draining.container_instance_arn, draining)

    await world.collector.collect_once()

    dims = {n.AUTO_SCALING_GROUP_NAME: "ecs-asg"}
    latest = world.metrics.latest
    assert latest(n.AUTO_SCALING, n.GROUP_DESIRED_CAPACITY, dims).value == 3
    assert latest(n.AUTO_SCALING, n.GROUP_IN_SERVICE_INSTANCES, dims).value == 2
    assert latest(n.AUTO_SCALING, n.GROUP_TOTAL_INSTANCES, dims).value == 3
    assert (latest(n.AUTO_SCALING, n.GROUP_MIN_SIZE, dims).value,
            latest(n.AUTO_SCALING, n.GROUP_MAX_SIZE, dims).value) == (1, 5)


async def test_alb_metrics_per_target_group_from_the_albs_counters():
    clock = FakeClock()
    alb = AlbService(clock, health_checks=False)
    tg = parse_target_group({"Name": "web-app-tg", "Protocol": "HTTP", "Port": 8080})
    runtime = alb.ensure_target_group(tg)
    targets = [Target("10.99.0.1", 49153), Target("10.99.0.2", 49153)]
    runtime.register(targets)
    for t in targets:
        runtime.record_health(t.target_id, CheckResult.passed())
    world = World(alb=alb, clock=clock)
    stats = runtime.stats
    start = (int(clock.now()) // MINUTE + 1) * MINUTE
    clock.set(start)
    for i in range(10):
        stats.record_request(targets[i % 2].target_id)
        stats.record_target_response(500 if i == 0 else 200, 0.004 if i % 2 else 0.02)
    stats.record_elb_response(502)

    await world.collector.collect_once()
    clock.tick(20)
    for _ in range(4):
        stats.record_request(targets[0].target_id)
        stats.record_target_response(200, 0.01)
    await world.collector.collect_once()

    dims = {n.TARGET_GROUP: tg.target_group_arn.split(":")[-1]}
    assert dims[n.TARGET_GROUP].startswith("targetgroup/web-app-tg/")
    point = world.point
    assert point(n.APPLICATION_ELB, n.REQUEST_COUNT, dims, start).sum == 14
    assert point(n.APPLICATION_ELB, n.REQUEST_COUNT_PER_TARGET, dims, start).sum == pytest.approx(7.0)
    assert point(n.APPLICATION_ELB, n.target_code_count("5XX"), dims, start).sum == 1
    assert point(n.APPLICATION_ELB, n.elb_code_count("5XX"), dims, start).sum == 1
    assert point(n.APPLICATION_ELB, n.elb_code_count("502"), dims, start).sum == 1
    rt = point(n.APPLICATION_ELB, n.TARGET_RESPONSE_TIME, dims, start)
    assert rt.sample_count == 14
    assert rt.average == pytest.approx((5 * 0.02 + 5 * 0.004 + 4 * 0.01) / 14)
    assert rt.minimum <= 0.004 and rt.maximum >= 0.02
    healthy = point(n.APPLICATION_ELB, n.HEALTHY_HOST_COUNT, dims, start)
    assert (healthy.sample_count, healthy.average) == (2, 2)
    assert point(n.APPLICATION_ELB, n.UNHEALTHY_HOST_COUNT, dims, start).maximum == 0
    assert world.metrics.total(n.APPLICATION_ELB, n.REQUEST_COUNT, dims) == 14
    await alb.close()


async def test_the_loop_samples_every_period_and_never_faster_than_the_wall_floor(world):
    world.service(1)
    await world.settle()
    assert world.collector.interval == 20
    world.clock.set_time_scale(100)
    assert world.collector.interval == 50         # 0.5 s of wall time at 100x
    world.clock.set_time_scale(1)
    start = world.to_minute_start()
    loop = asyncio.get_running_loop().create_task(world.collector.run())
    try:
        await world.clock.advance(59)
    finally:
        loop.cancel()
    assert world.point(n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, SVC_DIMS, start).sample_count == 3


class SlowRuntime:
    """The in-memory runtime as a runtime that may wait looks: no `answers_at_once`, no plain values."""

    def __init__(self, runtime: FakeRuntime) -> None:
        self._runtime = runtime

    async def task_usage(self, ec2_instance_id: str):
        await asyncio.sleep(0)
        return await self._runtime.task_usage(ec2_instance_id)


def every_datapoint(metrics: MetricsStore, now: float) -> dict:
    return {(k.namespace, k.name, k.dimensions): [(p.timestamp, p.sample_count, p.sum, p.minimum, p.maximum)
                                                  for p in metrics.datapoints(k.namespace, k.name, k.dimensions,
                                                                              now - 3600, now + 60, 60)]
            for k in metrics.metrics()}


async def test_a_runtime_that_answers_at_once_gives_the_same_metrics_as_one_asked_with_gather():
    async def run(slow: bool):
        w = await World().start()
        if slow:
            w.collector.runtime = SlowRuntime(w.runtime)
        w.service(3)
        await w.settle()
        first, second, third = [t for t in w.store.list("task") if t.last_status == RUNNING]  # the store's order
        w.use(first, cpu_fraction_of_reserved=0.9, memory_mib=200)
        w.use(second, cpu_fraction_of_reserved=0.25)
        readings = []
        for step in range(6):
            w.clock.tick(20)
            if step == 3:   # one stops: it leaves the samplings, its instance's totals change
                await w.agent.stop_task(third.task_arn)
                await w.settle(passes=1)
            collection = await w.collector.collect_once()
            order = {t.task_arn: i for i, t in enumerate(w.store.list("task"))}   # ids are random: compare places
            readings.append([(order[arn], r.memory_used_mib, r.cpu_used_units, r.cpu_percent, r.memory_percent)
                             for arn, r in collection.readings.items()])
        return readings, every_datapoint(w.metrics, w.clock.now())

    assert await run(slow=False) == await run(slow=True)


async def test_a_sampling_reads_tasks_that_change_between_samplings(world):
    world.service(2)
    await world.settle()
    await world.collector.collect_once()
    world.clock.tick(20)
    assert len((await world.collector.collect_once()).readings) == 2

    service = world.store.get("service", service_arn(CLUSTER, SERVICE))
    service.desired_count = 3
    with world.store.transaction() as tx:
        tx.put("service", service.service_arn, service)
    await world.settle()
    world.clock.tick(20)
    collection = await world.collector.collect_once()
    assert sorted(collection.readings) == sorted(t.task_arn for t in world.running()) and len(world.running()) == 3
    assert world.metrics.latest(n.CONTAINER_INSIGHTS, n.RUNNING_TASK_COUNT, SVC_DIMS).value == 3
    assert world.metrics.latest(n.CONTAINER_INSIGHTS, n.CPU_RESERVED, CLUSTER_DIMS).value == 3 * 512
