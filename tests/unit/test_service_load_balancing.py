"""A service behind a target group, on the in-memory runtime and a fake clock.

Targets are registered when tasks reach RUNNING, the scheduler treats a task
as healthy only once its target is, old tasks are deregistered and drained
before their containers get SIGTERM, a dead task's target leaves at once,
and a task whose target fails its checks is replaced with ECS's reason.
Health results are fed straight to the target group (no sockets).
"""

from __future__ import annotations

import asyncio
import random

import pytest

from emulator.alb import balancer as b
from emulator.alb.balancer import CheckResult
from emulator.alb.service import AlbService
from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.load_balancing import ServiceLoadBalancing
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.control.service_scheduler import ServiceScheduler
from emulator.model.arn import service_arn
from emulator.model.elb import parse_target_group
from emulator.model.service import (COMPLETED, FAILED, PRIMARY, DeploymentCircuitBreaker, DeploymentConfiguration,
                                    Deployment, LoadBalancer, Service)
from emulator.model.state import StateStore
from emulator.model.task import RUNNING, STOPPED
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"


def task_definition(image: str) -> dict:
    return {"family": "web-app", "containerDefinitions": [
        {"name": "web-app", "image": image, "cpu": 512, "memory": 512,
         "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}


class World:
    def __init__(self, instances: int = 2, delay: int = 30):
        self.clock = FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.runtime = FakeRuntime(rng=random.Random(1))
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, rng=random.Random(2))
        self.scheduler = ServiceScheduler(self.store, self.agent, self.clock, rng=random.Random(3))
        self.cluster = ensure_cluster(self.store, CLUSTER)
        self.tg = parse_target_group({"Name": "web-tg", "Protocol": "HTTP", "Port": 8080, "HealthCheckPath": "/health",
                                      "Attributes": [{"Key": "deregistration_delay.timeout_seconds",
                                                      "Value": str(delay)}]})
        self.instances = instances

    async def start(self):
        self.alb = AlbService(self.clock, health_checks=False)
        self.group = self.alb.ensure_target_group(self.tg)
        self.lb = ServiceLoadBalancing(self.store, self.agent, self.alb, self.clock, self.scheduler.service_event)
        self.lb.watch_target_groups()
        self.scheduler.load_balancing = self.lb
        for i in range(self.instances):
            await self.agent.launch_instance(CLUSTER, "t3.medium", ["us-east-1a", "us-east-1b"][i % 2])
        return self

    def register(self, image: str):
        return register_task_definition(self.store, parse_task_definition(task_definition(image)), self.clock.now())

    def service(self, desired: int, td, *, maximum=200, minimum=100, breaker=False, grace=None) -> Service:
        arn = service_arn(CLUSTER, "web-app-service")
        config = DeploymentConfiguration(maximum, minimum, DeploymentCircuitBreaker(breaker, breaker))
        service = Service(arn, "web-app-service", self.cluster.cluster_arn, td.task_definition_arn,
                          desired_count=desired, deployment_configuration=config,
                          load_balancers=[LoadBalancer(self.tg.target_group_arn, None, "web-app", 8080)],
                          health_check_grace_period_seconds=grace,
                          deployments=[Deployment("ecs-svc/1000000000000000001", PRIMARY, td.task_definition_arn,
                                                  desired_count=desired)])
        with self.store.transaction() as tx:
            tx.put("service", arn, service)
        return service

    def deploy(self, td) -> None:
        service = self.svc
        for d in service.deployments:
            d.status = "ACTIVE"
        service.deployments.insert(0, Deployment("ecs-svc/1000000000000000002", PRIMARY, td.task_definition_arn,
                                                 desired_count=service.desired_count))
        service.task_definition = td.task_definition_arn
        with self.store.transaction() as tx:
            tx.put("service", service.service_arn, service)

    @property
    def svc(self) -> Service:
        return self.store.get("service", service_arn(CLUSTER, "web-app-service"))

    async def settle(self, passes: int = 1, advance: float = 0) -> None:
        for _ in range(passes):
            self.scheduler.reconcile_all()
            await self.events()
            self.clock.tick(advance)

    async def events(self) -> None:
        """Let background starts and stops run and apply what they changed (stops may wait on a drain)."""
        for _ in range(20):
            for _ in range(5):
                await asyncio.sleep(0)  # a turn of the loop, not time
            events = self.runtime.drain_events()
            for event in events:
                await self.agent.handle_event(event)

    def live(self, image: str | None = None) -> list:
        return [t for t in self.store.list("task") if t.last_status != STOPPED
                and (image is None or t.containers[0].image == image)]

    def target_of(self, task):
        (binding,) = self.lb.bindings_for(self.svc, task)
        return binding.target

    def state_of(self, task) -> str:
        ts = self.group.targets.get(self.target_of(task).target_id)
        return ts.state if ts else b.UNUSED

    def pass_checks(self, tasks) -> None:
        for task in tasks:
            self.group.record_health(self.target_of(task).target_id, CheckResult.passed(200))

    def fail_checks(self, tasks, times: int = 2) -> None:
        for task in tasks:
            for _ in range(times):
                self.group.record_health(self.target_of(task).target_id, CheckResult.code_mismatch(500))

    def messages(self) -> list[str]:
        return [e.message for e in reversed(self.svc.events)]


@pytest.fixture
async def world():
    w = await World().start()
    yield w
    w.lb.close()
    await w.alb.close()


async def test_running_tasks_become_targets_at_their_instance_address_and_host_port(world):
    world.service(2, world.register("web-app:v1"))
    await world.settle()

    tasks = world.live()
    assert len(tasks) == 2 and all(t.last_status == RUNNING for t in tasks)
    for task in tasks:
        ci = world.store.get("container_instance", task.container_instance_arn)
        target = world.target_of(task)
        (status,) = [s for s in await world.runtime.list_instances() if s.ec2_instance_id == ci.ec2_instance_id]
        assert target.host == status.address
        assert target.port == task.containers[0].network_bindings[0].host_port
        assert target.instance_id == ci.ec2_instance_id
        assert world.state_of(task) == b.INITIAL
    assert sum(f"registered 1 targets in (target-group {world.tg.target_group_arn})" in m
               for m in world.messages()) == 2
    described = world.group.describe_target_health()
    assert {d["Target"]["Id"] for d in described} == {world.target_of(t).instance_id for t in tasks}


async def test_steady_state_waits_for_healthy_targets(world):
    world.service(2, world.register("web-app:v1"))
    await world.settle(passes=2, advance=60)
    assert world.svc.primary.rollout_state != COMPLETED  # RUNNING, but the targets are still initial

    world.pass_checks(world.live())
    await world.settle()

    assert world.svc.primary.rollout_state == COMPLETED
    assert world.messages()[-1] == "(service web-app-service) has reached a steady state."


async def test_blue_green_drains_old_targets_before_stopping_their_tasks():
    world = await World(instances=4).start()
    world.service(2, world.register("web-app:v1"))
    await world.settle()
    world.pass_checks(world.live())
    await world.settle()
    old = world.live("web-app:v1")
    busy = world.group.targets.get(world.target_of(old[0]).target_id)
    busy.in_flight = 1  # a request still running on the first old task

    world.deploy(world.register("web-app:v2"))
    await world.settle()
    new = world.live("web-app:v2")
    assert len(new) == 2 and all(world.state_of(t) == b.INITIAL for t in new)
    assert all(world.state_of(t) == b.HEALTHY for t in old)  # old ones keep serving until new are healthy

    world.pass_checks(new)
    await world.settle()
    assert all(world.state_of(t) == b.DRAINING for t in old)
    assert world.store.get("task", old[1].task_arn).last_status == STOPPED  # nothing in flight: stopped at once
    assert world.store.get("task", old[0].task_arn).last_status == RUNNING  # still finishing its request
    assert world.store.get("task", old[0].task_arn).desired_status == STOPPED

    busy.in_flight = 0
    world.group.request_done(busy)
    await world.settle(passes=2)

    assert world.store.get("task", old[0].task_arn).last_status == STOPPED
    assert {t.containers[0].image for t in world.live()} == {"web-app:v2"}
    assert world.svc.primary.rollout_state == COMPLETED
    assert any("has begun draining connections on 1 tasks." in m for m in world.messages())
    assert any(f"deregistered 1 targets in (target-group {world.tg.target_group_arn})" in m
               for m in world.messages())
    world.lb.close()
    await world.alb.close()


async def test_a_task_that_stays_in_flight_is_stopped_when_the_deregistration_delay_ends(world):
    world.service(1, world.register("web-app:v1"))
    await world.settle()
    (task,) = world.live()
    world.pass_checks([task])
    world.group.targets.get(world.target_of(task).target_id).in_flight = 3

    svc = world.svc
    svc.desired_count = 0
    await world.settle()
    assert world.store.get("task", task.task_arn).last_status == RUNNING

    await world.clock.advance(30)  # the group's deregistration delay
    await world.settle(passes=2)

    assert world.store.get("task", task.task_arn).last_status == STOPPED
    assert world.group.targets.get(world.target_of(task).target_id) is None


async def test_a_dead_task_is_deregistered_in_the_same_commit_and_replaced(world):
    world.service(2, world.register("web-app:v1"))
    await world.settle()
    world.pass_checks(world.live())
    victim = world.live()[0]
    target_id = world.target_of(victim).target_id
    ci = world.store.get("container_instance", victim.container_instance_arn)

    world.runtime.kill_container(ci.ec2_instance_id, victim.task_id, "web-app")
    for event in world.runtime.drain_events():
        await world.agent.handle_event(event)
    ts = world.group.targets.get(target_id)
    assert ts is None or ts.state == b.DRAINING  # before any scheduler pass
    assert world.group.choose().target_id != target_id

    await world.settle(passes=2)
    assert len(world.live()) == 2 and world.svc.running_count == 2


async def test_a_task_failing_elb_checks_after_the_grace_period_is_replaced_with_ecs_reason(world):
    world.service(1, world.register("web-app:v1"), grace=60)
    await world.settle()
    (task,) = world.live()
    world.fail_checks([task])
    await world.settle()
    assert world.store.get("task", task.task_arn).desired_status == "RUNNING"  # inside the grace period

    world.clock.tick(61)
    await world.settle(passes=2)

    stopped = world.store.get("task", task.task_arn)
    assert stopped.last_status == STOPPED
    assert stopped.stopped_reason == f"Task failed ELB health checks in (target-group {world.tg.target_group_arn})"
    assert len(world.live()) == 1 and world.live()[0].task_arn != task.task_arn


async def test_new_tasks_failing_elb_checks_trip_the_breaker_and_roll_back(world):
    world.service(2, world.register("web-app:v1"), breaker=True)
    await world.settle()
    world.pass_checks(world.live())
    await world.settle()
    assert world.svc.primary.rollout_state == COMPLETED
    world.deploy(world.register("web-app:v2"))

    for _ in range(8):
        await world.settle(advance=5)
        world.fail_checks(world.live("web-app:v2"))
        world.pass_checks(world.live("web-app:v1"))

    svc = world.svc
    assert any(d.rollout_state == FAILED for d in svc.deployments) or any(
        "deployment failed" in m for m in world.messages())
    assert svc.primary.task_definition.endswith("web-app:1")
    assert all(world.state_of(t) == b.HEALTHY for t in world.live("web-app:v1"))
    assert len(world.live("web-app:v1")) == 2


async def test_sync_registers_what_is_running_after_a_restart(world):
    world.service(2, world.register("web-app:v1"))
    await world.settle()
    world.lb.close()
    await world.alb.close()

    world.alb = AlbService(world.clock, health_checks=False)  # a new process: empty target groups
    world.group = world.alb.ensure_target_group(world.tg)
    world.lb = ServiceLoadBalancing(world.store, world.agent, world.alb, world.clock, world.scheduler.service_event)
    world.lb.watch_target_groups()
    world.lb.sync()

    assert {world.state_of(t) for t in world.live()} == {b.INITIAL}
    assert len(world.group.targets.targets) == 2


async def test_sync_with_nothing_to_do_changes_nothing_and_still_sees_what_changes_next(world):
    world.service(2, world.register("web-app:v1"))
    await world.settle()
    registered = dict(world.lb._bindings)
    world.lb.sync()
    world.lb.sync()
    assert world.lb._bindings == registered

    # a task that stops without the commit reaching the load balancer's listener (as after a restart):
    # the next sync still finds it and deregisters it
    world.lb.close()
    victim = world.live()[0]
    ci = world.store.get("container_instance", victim.container_instance_arn)
    world.runtime.kill_container(ci.ec2_instance_id, victim.task_id, "web-app")
    await world.events()
    world.lb._unsubscribe = world.store.subscribe(world.lb._on_commit)
    assert victim.task_arn in world.lb._bindings
    world.lb.sync()
    assert victim.task_arn not in world.lb._bindings and world.state_of(victim) == b.DRAINING


async def test_a_service_made_later_has_its_tasks_registered_as_they_run(world):
    world.lb.sync()   # the load balancing side has looked up services before this one existed
    world.service(2, world.register("web-app:v1"))
    await world.settle()
    assert len(world.lb._bindings) == 2 and {world.state_of(t) for t in world.live()} == {b.INITIAL}


async def test_the_schedulers_health_views_follow_target_health(world):
    world.service(2, world.register("web-app:v1"), grace=0)
    await world.settle()
    first, second = world.live()
    world.pass_checks([first, second])
    await world.settle()
    assert world.svc.primary.rollout_state == "COMPLETED"

    world.fail_checks([first])
    await world.settle()
    assert world.store.get("task", first.task_arn).desired_status == STOPPED
    assert world.store.get("task", second.task_arn).desired_status == RUNNING
