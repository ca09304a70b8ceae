"""The agent on the in-memory runtime: instances register, tasks follow their containers, restarts lose nothing."""

from __future__ import annotations

import random

import pytest

from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.recovery import recover
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.errors import AwsError, InvalidParameterException, ValidationError
from emulator.model.state import StateStore
from emulator.model.task import (ESSENTIAL_CONTAINER_EXITED, PENDING, RUNNING, STOPPED, TASK_FAILED_TO_START,
                                 TERMINATION_NOTICE, USER_INITIATED)
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"


def web_app(image: str = "web-app:v1", cpu: int = 1024, memory: int = 1024, health: bool = False) -> dict:
    container = {"name": "web-app", "image": image, "cpu": cpu, "memory": memory, "essential": True,
                 "portMappings": [{"containerPort": 8080, "hostPort": 0}],
                 "environment": [{"name": "APP_VERSION", "value": "v1"}],
                 "logConfiguration": {"logDriver": "awslogs", "options": {
                     "awslogs-group": "/ecs/web-app", "awslogs-stream-prefix": "ecs"}}}
    if health:
        container["healthCheck"] = {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 2}
    return {"family": "web-app", "containerDefinitions": [container]}


@pytest.fixture
def world():
    store = StateStore(None, clock=FakeClock())
    runtime = FakeRuntime(rng=random.Random(1))
    clock = FakeClock()
    agent = ClusterAgent(store, runtime, clock, rng=random.Random(2))
    ensure_cluster(store, CLUSTER)
    return store, runtime, clock, agent


async def pump(agent: ClusterAgent, runtime: FakeRuntime) -> None:
    """Let starts finish and apply every event the runtime emitted, until quiet."""
    for _ in range(20):
        await agent.settle()
        events = runtime.drain_events()
        if not events and not agent._background:
            return
        for event in events:
            await agent.handle_event(event)


async def cluster_with_tasks(world, count: int = 2, **td_kw):
    store, runtime, clock, agent = world
    ci = await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
    td = register_task_definition(store, parse_task_definition(web_app(**td_kw)), clock.now())
    tasks, failures = await agent.run_task(CLUSTER, "web-app", count)
    await pump(agent, runtime)
    return ci, td, [store.get("task", t.task_arn) for t in tasks], failures


async def test_launched_instance_registers_with_its_type_less_the_os_share(world):
    store, _, _, agent = world
    ci = await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1b")

    stored = store.get("container_instance", ci.container_instance_arn)
    assert stored.status == "ACTIVE"
    assert (stored.registered_resources.cpu, stored.registered_resources.memory) == (2048, 3584)
    assert stored.attributes["ecs.availability-zone"] == "us-east-1b"
    assert stored.attributes["ecs.instance-type"] == "t3.medium"


async def test_run_task_goes_pending_then_running_with_a_dynamic_host_port(world):
    store, _, _, _ = world
    ci, _, tasks, failures = await cluster_with_tasks(world, 2)

    assert failures == []
    assert [t.last_status for t in tasks] == [RUNNING, RUNNING]
    assert all(t.containers[0].network_bindings[0].host_port > 0 for t in tasks)
    stored = store.get("container_instance", ci.container_instance_arn)
    assert (stored.remaining_resources.cpu, stored.remaining_resources.memory) == (0, 3584 - 2048)
    assert (stored.running_tasks_count, stored.pending_tasks_count) == (2, 0)


async def test_tasks_that_do_not_fit_report_ecs_reasons(world):
    _, _, _, agent = world
    ci, _, tasks, failures = await cluster_with_tasks(world, 3)

    assert len(tasks) == 2
    assert [(f.arn, f.reason) for f in failures] == [(ci.container_instance_arn, "RESOURCE:CPU")]


async def test_a_container_killed_from_outside_stops_the_task_with_ecs_reason(world):
    store, runtime, _, agent = world
    ci, _, (task, other), _ = await cluster_with_tasks(world, 2)

    runtime.kill_container(ci.ec2_instance_id, task.task_id, "web-app", exit_code=137)
    await pump(agent, runtime)

    stopped = store.get("task", task.task_arn)
    assert stopped.last_status == STOPPED
    assert (stopped.stopped_reason, stopped.stop_code) == ("Essential container in task exited",
                                                           ESSENTIAL_CONTAINER_EXITED)
    assert stopped.containers[0].exit_code == 137
    assert store.get("task", other.task_arn).last_status == RUNNING
    assert store.get("container_instance", ci.container_instance_arn).remaining_resources.cpu == 1024


async def test_stop_task_is_user_initiated_and_frees_the_room(world):
    store, runtime, _, agent = world
    ci, _, (task, _), _ = await cluster_with_tasks(world, 2)

    await agent.stop_task(task.task_arn)
    await pump(agent, runtime)

    stopped = store.get("task", task.task_arn)
    assert (stopped.last_status, stopped.stop_code, stopped.stopped_reason) == (
        STOPPED, USER_INITIATED, "Task stopped by user")
    more, failures = await agent.run_task(CLUSTER, "web-app", 1)
    assert len(more) == 1 and failures == []


async def test_missing_image_stops_the_task_with_cannot_pull_and_nothing_held(world):
    store, runtime, clock, agent = world
    ci = await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
    register_task_definition(store, parse_task_definition(web_app(image="does-not-exist:v9")), clock.now())

    (task,), _ = await agent.run_task(CLUSTER, "web-app", 1)
    await pump(agent, runtime)

    stopped = store.get("task", task.task_arn)
    assert stopped.last_status == STOPPED and stopped.stop_code == TASK_FAILED_TO_START
    assert stopped.stopped_reason.startswith("CannotPullContainerError:")
    remaining = store.get("container_instance", ci.container_instance_arn).remaining_resources
    assert (remaining.cpu, remaining.memory) == (2048, 3584)
    assert await runtime.list_tasks(ci.ec2_instance_id) == []


async def test_health_check_results_reach_the_task(world):
    store, runtime, _, agent = world
    ci, _, (task,), _ = await cluster_with_tasks(world, 1, health=True)
    assert store.get("task", task.task_arn).health_status == "UNKNOWN"

    runtime.set_health(ci.ec2_instance_id, task.task_id, "web-app", "healthy")
    await pump(agent, runtime)

    assert store.get("task", task.task_arn).health_status == "HEALTHY"


async def test_terminating_an_instance_stops_its_tasks_and_deregisters_it(world):
    store, runtime, _, agent = world
    ci, _, tasks, _ = await cluster_with_tasks(world, 2)

    await agent.terminate_instance(ci.container_instance_arn)
    await pump(agent, runtime)

    assert store.get("container_instance", ci.container_instance_arn).status == "INACTIVE"
    for t in tasks:
        stopped = store.get("task", t.task_arn)
        assert stopped.last_status == STOPPED and stopped.stop_code == TERMINATION_NOTICE
        assert stopped.stopped_reason == f"Host EC2 (instance {ci.ec2_instance_id}) stopped/terminated"
    assert await runtime.list_instances(CLUSTER) == []
    with pytest.raises(InvalidParameterException, match="No Container Instances"):
        await agent.run_task(CLUSTER, "web-app", 1)


async def test_an_instance_dying_from_outside_is_deregistered(world):
    store, runtime, _, agent = world
    ci, _, (task, _), _ = await cluster_with_tasks(world, 2)

    runtime.kill_instance(ci.ec2_instance_id)
    await pump(agent, runtime)

    assert store.get("container_instance", ci.container_instance_arn).status == "INACTIVE"
    assert store.get("task", task.task_arn).last_status == STOPPED


async def test_stopping_a_task_before_it_started_releases_it(world):
    store, runtime, clock, agent = world
    ci = await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
    register_task_definition(store, parse_task_definition(web_app()), clock.now())
    (task,), _ = await agent.run_task(CLUSTER, "web-app", 1)
    await agent.stop_task(task.task_arn)  # before the start coroutine ran
    await pump(agent, runtime)

    assert store.get("task", task.task_arn).last_status == STOPPED
    assert store.get("container_instance", ci.container_instance_arn).remaining_resources.cpu == 2048
    assert await runtime.list_tasks(ci.ec2_instance_id) == []


async def test_stopped_task_output_is_kept_in_its_log_stream(world):
    store, runtime, _, agent = world
    ci, _, (task,), _ = await cluster_with_tasks(world, 1)
    runtime.write_log(ci.ec2_instance_id, task.task_id, "web-app", "hello from the task")

    await agent.stop_task(task.task_arn)
    await pump(agent, runtime)

    assert "hello from the task" in agent.logs.read("/ecs/web-app", f"ecs/web-app/{task.task_id}")


async def test_restart_adopts_live_tasks_removes_orphans_and_stops_vanished(world):
    store, runtime, clock, agent = world
    ci, _, (kept, gone), _ = await cluster_with_tasks(world, 2)
    await runtime.stop_task(ci.ec2_instance_id, gone.task_id)  # vanished while the emulator was down...
    await runtime.remove_task(ci.ec2_instance_id, gone.task_id)
    runtime.drain_events()  # ...so nobody saw its events
    orphan = await agent.launch_instance(CLUSTER, "t3.small", "us-east-1c")
    with store.transaction() as tx:  # the store no longer wants it
        tx.delete("container_instance", orphan.container_instance_arn)

    restarted = ClusterAgent(store, runtime, clock, rng=random.Random(3))
    counts = await recover(restarted)
    await pump(restarted, runtime)

    assert counts["instances_adopted"] == 1 and counts["instances_removed"] == 1
    assert counts["tasks_adopted"] == 1
    assert store.get("task", kept.task_arn).last_status == RUNNING
    assert store.get("task", gone.task_arn).last_status == STOPPED
    assert [i.ec2_instance_id for i in await runtime.list_instances(CLUSTER)] == [ci.ec2_instance_id]
    assert {t.task_id for t in await runtime.list_tasks(ci.ec2_instance_id)} == {kept.task_id}
    remaining = store.get("container_instance", ci.container_instance_arn).remaining_resources
    assert remaining.cpu == 1024  # the vanished task gave its room back


async def test_restart_starts_a_task_that_was_placed_but_never_started(world):
    store, runtime, clock, agent = world
    await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
    register_task_definition(store, parse_task_definition(web_app()), clock.now())
    (task,), _ = await agent.run_task(CLUSTER, "web-app", 1)
    for pending in list(agent._background):  # the emulator dies before the start ran
        pending.cancel()
    assert store.get("task", task.task_arn).last_status == PENDING

    restarted = ClusterAgent(store, runtime, clock)
    counts = await recover(restarted)
    await pump(restarted, runtime)

    assert counts["tasks_restarted"] == 1
    assert store.get("task", task.task_arn).last_status == RUNNING


async def test_an_instance_type_that_does_not_exist_is_refused_and_nothing_launches(world):
    _, runtime, _, agent = world
    with pytest.raises(ValidationError, match="'t3.gigantic' is not supported"):
        await agent.launch_instance(CLUSTER, "t3.gigantic", "us-east-1a")
    assert await runtime.list_instances() == []


async def test_a_task_bigger_than_every_instance_is_not_placed_and_creates_nothing(world):
    store, runtime, clock, agent = world
    ci = await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
    register_task_definition(store, parse_task_definition(web_app(cpu=1024, memory=100_000)), clock.now())

    tasks, failures = await agent.run_task(CLUSTER, "web-app", 1)

    assert tasks == []
    assert [(f.arn, f.reason) for f in failures] == [(ci.container_instance_arn, "RESOURCE:MEMORY")]
    assert store.list("task") == [] and await runtime.list_tasks(ci.ec2_instance_id) == []


@pytest.mark.parametrize("cluster, definition, count, error", [
    ("nope", "web-app", 1, "Cluster not found."),
    (CLUSTER, "no-such-family", 1, "Unable to describe task definition."),
    (CLUSTER, "web-app", 11, "count must be between 1 and 10."),
], ids=["unknown-cluster", "unknown-task-definition", "count-over-10"])
async def test_run_task_bad_input_is_refused_in_ecs_terms(world, cluster, definition, count, error):
    store, runtime, clock, agent = world
    await agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a")
    register_task_definition(store, parse_task_definition(web_app()), clock.now())

    with pytest.raises(AwsError) as info:
        await agent.run_task(cluster, definition, count)

    assert info.value.message == error
    assert store.list("task") == []
