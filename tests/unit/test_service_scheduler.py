"""The service scheduler on the in-memory runtime and a fake clock: counts, events, deployments, the breaker."""

from __future__ import annotations

import random

import pytest

from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.control.service_scheduler import ServiceScheduler
from emulator.model.arn import service_arn
from emulator.model.service import (COMPLETED, FAILED, PRIMARY, DeploymentCircuitBreaker, DeploymentConfiguration,
                                    Deployment, Service)
from emulator.model.state import StateStore
from emulator.model.task import RUNNING, STOPPED
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"


def task_definition(image: str = "web-app:v1") -> dict:
    return {"family": "web-app", "containerDefinitions": [
        {"name": "web-app", "image": image, "cpu": 1024, "memory": 1024,
         "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}


class World:
    def __init__(self, instances: int = 2):
        self.clock = FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.runtime = FakeRuntime(rng=random.Random(1))
        self.agent = ClusterAgent(self.store, self.runtime, self.clock, rng=random.Random(2))
        self.scheduler = ServiceScheduler(self.store, self.agent, self.clock, rng=random.Random(3))
        self.cluster = ensure_cluster(self.store, CLUSTER)
        self.instances = instances

    async def start(self):
        for i in range(self.instances):
            await self.agent.launch_instance(CLUSTER, "t3.medium", ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3])
        return self

    def register(self, image: str = "web-app:v1"):
        return register_task_definition(self.store, parse_task_definition(task_definition(image)), self.clock.now())

    def service(self, desired: int, td, *, maximum: int = 200, minimum: int = 100, breaker: bool = False) -> Service:
        arn = service_arn(CLUSTER, "web-app-service")
        config = DeploymentConfiguration(maximum, minimum, DeploymentCircuitBreaker(breaker, breaker))
        service = Service(arn, "web-app-service", self.cluster.cluster_arn, td.task_definition_arn,
                          desired_count=desired, deployment_configuration=config,
                          deployments=[Deployment("ecs-svc/1000000000000000001", PRIMARY, td.task_definition_arn,
                                                  desired_count=desired)])
        with self.store.transaction() as tx:
            tx.put("service", arn, service)
        return service

    def deploy(self, td) -> None:
        """UpdateService with a new task definition: a new PRIMARY, the old one ACTIVE."""
        service = self.svc
        for d in service.deployments:
            d.status = "ACTIVE"
        n = len(service.deployments) + 1
        service.deployments.insert(0, Deployment(f"ecs-svc/100000000000000000{n}", PRIMARY, td.task_definition_arn,
                                                 desired_count=service.desired_count))
        service.task_definition = td.task_definition_arn
        with self.store.transaction() as tx:
            tx.put("service", service.service_arn, service)

    @property
    def svc(self) -> Service:
        return self.store.get("service", service_arn(CLUSTER, "web-app-service"))

    async def settle(self, passes: int = 1, advance: float = 0) -> None:
        """`passes` scheduler passes, each followed by the runtime's events and `advance` AWS seconds."""
        for _ in range(passes):
            self.scheduler.reconcile_all()
            for _ in range(10):
                await self.agent.settle()
                events = self.runtime.drain_events()
                if not events and not self.agent._background:
                    break
                for event in events:
                    await self.agent.handle_event(event)
            self.clock.tick(advance)

    def live(self, image: str | None = None) -> list:
        tasks = [t for t in self.store.list("task") if t.last_status != STOPPED]
        if image:
            tasks = [t for t in tasks if t.containers[0].image == image]
        return tasks

    def messages(self) -> list[str]:
        return [e.message for e in reversed(self.svc.events)]


@pytest.fixture
async def world():
    return await World().start()


async def test_a_new_service_runs_its_tasks_and_reaches_steady_state(world):
    world.service(4, world.register())
    await world.settle(passes=1, advance=45)
    await world.settle(passes=1)

    svc = world.svc
    assert (svc.running_count, svc.pending_count) == (4, 0)
    assert svc.primary.rollout_state == COMPLETED
    assert any("has started 4 tasks" in m for m in world.messages())
    assert world.messages()[-1] == "(service web-app-service) has reached a steady state."


async def test_more_tasks_than_fit_get_ecs_event_and_the_rest_run(world):
    world.service(8, world.register())
    await world.settle(passes=2)

    assert world.svc.running_count == 4
    assert any(m.startswith("service web-app-service was unable to place a task because no container instance "
                            "met all of its requirements. The closest matching container-instance")
               and m.endswith("has insufficient CPU units available.") for m in world.messages())


async def test_a_task_that_dies_is_replaced(world):
    world.service(2, world.register())
    await world.settle(passes=1, advance=45)
    victim = world.live()[0]
    ci = world.store.get("container_instance", victim.container_instance_arn)

    world.runtime.kill_container(ci.ec2_instance_id, victim.task_id, "web-app")
    await world.settle(passes=3)

    assert world.store.get("task", victim.task_arn).last_status == STOPPED
    assert len(world.live()) == 2 and world.svc.running_count == 2


async def test_scale_in_stops_the_extra_tasks(world):
    world.service(4, world.register())
    await world.settle(passes=1, advance=45)
    svc = world.svc
    svc.desired_count = 1
    await world.settle(passes=2)

    assert len(world.live()) == 1
    stopped = [t for t in world.store.list("task") if t.last_status == STOPPED]
    assert all(t.stopped_reason.startswith("Scaling activity initiated by (deployment ecs-svc/") for t in stopped)


async def test_blue_green_starts_new_tasks_first_and_stops_old_ones_when_new_are_healthy():
    world = await World(instances=4).start()
    world.service(4, world.register("web-app:v1"))
    await world.settle(passes=1, advance=45)
    world.deploy(world.register("web-app:v2"))

    await world.settle(passes=1)           # 4 new next to 4 old (200%)
    assert (len(world.live("web-app:v1")), len(world.live("web-app:v2"))) == (4, 4)
    await world.settle(passes=1, advance=45)  # the new ones are not healthy yet: old ones stay
    assert len(world.live("web-app:v1")) == 4
    await world.settle(passes=3)

    assert (len(world.live("web-app:v1")), len(world.live("web-app:v2"))) == (0, 4)
    assert [d.status for d in world.svc.deployments] == [PRIMARY]
    assert world.svc.primary.rollout_state == COMPLETED


async def test_rolling_on_a_full_cluster_stops_half_first(world):
    world.service(4, world.register("web-app:v1"), maximum=100, minimum=50)
    await world.settle(passes=1, advance=45)
    world.deploy(world.register("web-app:v2"))

    await world.settle(passes=1)
    assert len(world.live("web-app:v1")) == 2  # made room first
    for _ in range(6):
        await world.settle(passes=1, advance=45)

    assert (len(world.live("web-app:v1")), len(world.live("web-app:v2"))) == (0, 4)
    assert world.svc.primary.rollout_state == COMPLETED


async def test_blocked_bounds_say_so(world):
    world.service(2, world.register("web-app:v1"), maximum=100, minimum=100)
    await world.settle(passes=1, advance=45)
    world.deploy(world.register("web-app:v2"))
    await world.settle(passes=1)

    assert any("was unable to stop or start tasks during a deployment because of the service deployment "
               "configuration" in m for m in world.messages())


async def test_the_circuit_breaker_fails_a_broken_deployment_and_rolls_back(world):
    world.service(2, world.register("web-app:v1"), breaker=True)
    await world.settle(passes=2, advance=45)
    assert world.svc.primary.rollout_state == COMPLETED
    world.deploy(world.register("does-not-exist:v2"))

    for _ in range(8):
        await world.settle(passes=1, advance=10)

    svc = world.svc
    failed = [d for d in svc.deployments if d.rollout_state == FAILED]
    assert failed == [] or failed[0].status != PRIMARY
    assert any("deployment failed" in m for m in world.messages())
    assert svc.primary.task_definition.endswith("web-app:1")  # rolled back to the last completed revision
    assert [t.containers[0].image for t in world.live()] == ["web-app:v1", "web-app:v1"]
    assert all(t.last_status == RUNNING for t in world.live())


async def test_describe_services_counts_are_true_between_scheduler_passes(world):
    from emulator.control.services import describe_services
    world.service(2, world.register())
    await world.settle(passes=1, advance=45)
    victim = world.live()[0]
    ci = world.store.get("container_instance", victim.container_instance_arn)

    world.runtime.kill_container(ci.ec2_instance_id, victim.task_id, "web-app")
    for event in world.runtime.drain_events():  # the task stops; no scheduler pass has run since
        await world.agent.handle_event(event)
    (svc,), _ = describe_services(world.store, CLUSTER, ["web-app-service"])

    assert (svc.running_count, svc.pending_count) == (1, 0)
    assert svc.primary.running_count == 1


def scanned(world: World, *, live: bool = False) -> list:
    """The service's tasks as a scan of every task finds them (what the scheduler's view must match)."""
    svc = world.svc
    tasks = [t for t in world.store.list("task") if t.group == svc.task_group and t.cluster_arn == svc.cluster_arn]
    return [t for t in tasks if t.last_status != STOPPED and t.desired_status != STOPPED] if live else tasks


async def test_the_schedulers_view_of_a_service_matches_the_store_after_kills_and_replacements(world):
    world.service(4, world.register())
    await world.settle(passes=1, advance=45)
    assert world.scheduler._tasks(world.svc) == scanned(world)

    for victim in world.live()[:2]:
        ci = world.store.get("container_instance", victim.container_instance_arn)
        world.runtime.kill_container(ci.ec2_instance_id, victim.task_id, "web-app")
    for event in world.runtime.drain_events():
        await world.agent.handle_event(event)
    group = world.scheduler._group_tasks(world.svc)
    assert group.tasks == scanned(world) and group.live == scanned(world, live=True)
    assert all(a is b for a, b in zip(group.tasks, world.store.list("task")))

    await world.settle(passes=2, advance=45)
    group = world.scheduler._group_tasks(world.svc)
    assert group.tasks == scanned(world) and len(group.tasks) == 6
    assert group.live == scanned(world, live=True) and len(group.live) == 4
    assert (world.svc.running_count, world.svc.pending_count) == (4, 0)


async def test_a_rolled_back_transaction_leaves_no_stale_task_in_the_schedulers_view(world):
    world.service(2, world.register())
    await world.settle(passes=1, advance=45)
    await world.settle(passes=1)
    task = world.live()[0]
    with pytest.raises(RuntimeError):
        with world.store.transaction() as tx:
            task.desired_status = STOPPED
            tx.put("task", task.task_arn, task)
            raise RuntimeError("boom")

    world.scheduler.reconcile_all()
    live = world.scheduler._group_tasks(world.svc).live
    assert [t.task_arn for t in live] == [t.task_arn for t in scanned(world, live=True)]
    assert all(t is world.store.get("task", t.task_arn) for t in live)   # the restored objects, not the old
    assert len(world.live()) == 2


async def test_healthy_after_40_seconds_is_still_read_from_the_clock_each_pass(world):
    world.service(2, world.register())
    await world.settle(passes=1)           # RUNNING now, healthy only 40 s after it started
    for _ in range(3):
        await world.settle(passes=1, advance=13)
        assert world.svc.primary.rollout_state != COMPLETED
    world.clock.tick(2)                     # 41 s
    await world.settle(passes=1)
    assert world.svc.primary.rollout_state == COMPLETED
