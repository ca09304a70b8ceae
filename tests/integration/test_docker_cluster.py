"""A real cluster on the real daemon: DinD instances, tasks as containers, state that follows them.

The instances are shared by the module's tests (launching one takes
seconds). Everything is labelled with the test session's owner; the suite
fails if any of it survives (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request

import pytest
import pytest_asyncio

from emulator.clock import RealClock
from emulator.control.agent import ClusterAgent
from emulator.control.recovery import recover
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.model.placement_spec import PlacementConstraint
from emulator.model.state import StateStore
from emulator.model.task import RUNNING, STOPPED
from emulator.model.task_definition_validation import parse_task_definition
from emulator.runtime.base import LABEL_INSTANCE, LABEL_OWNER
from tests.conftest import TEST_OWNER

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

CLUSTER = "it-cluster"
WAIT_S = 30


def task_definition(family: str, image: str = "web-app:v1", **container) -> dict:
    base = {"name": "web", "image": image, "cpu": 256, "memory": 256, "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}], "stopTimeout": 5,
            "environment": [{"name": "APP_VERSION", "value": "v1"}]}
    base.update(container)
    return {"family": family, "containerDefinitions": [base]}


class Cluster:
    def __init__(self, store, runtime, agent, medium, small):
        self.store, self.runtime, self.agent, self.medium, self.small = store, runtime, agent, medium, small

    async def wait_status(self, task_arn: str, status: str) -> object:
        """The task's lastStatus as the event stream moves it (bounded wait)."""
        for _ in range(WAIT_S * 20):
            task = self.store.get("task", task_arn)
            if task.last_status == status:
                return task
            await asyncio.sleep(0.05)
        raise AssertionError(f"task stayed {self.store.get('task', task_arn).last_status}, never {status}")

    async def run(self, family: str, instance_type: str = "t3.medium"):
        tasks, failures = await self.agent.run_task(
            CLUSTER, family, 1,
            constraints=[PlacementConstraint("memberOf", f"attribute:ecs.instance-type == {instance_type}")])
        assert failures == [], failures
        return tasks[0]

    def address(self, task) -> tuple[str, int]:
        ci = self.store.get("container_instance", task.container_instance_arn)
        status = self.runtime.instances[ci.ec2_instance_id]
        return status.address, task.containers[0].network_bindings[0].host_port


def http_get(address: str, port: int, path: str = "/", timeout: float = 10) -> dict:
    """GET from a task; RUNNING means its container started, so give the app a moment to listen."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(make_docker_runtime, docker_state_dir):
    store = StateStore(str(docker_state_dir / "state.db"))
    async with make_docker_runtime() as runtime:
        agent = ClusterAgent(store, runtime, RealClock(), logs_dir=docker_state_dir / "logs")
        ensure_cluster(store, CLUSTER)
        for family, kw in [("web", {}), ("hog", {"memory": None, "memoryReservation": 64}),
                           ("ghost", {"image": "does-not-exist:v0"})]:
            register_task_definition(store, parse_task_definition(task_definition(family, **kw)), 0.0)
        follower = asyncio.get_running_loop().create_task(agent.follow_events())
        medium, small = await asyncio.gather(agent.launch_instance(CLUSTER, "t3.medium", "us-east-1a"),
                                             agent.launch_instance(CLUSTER, "t3.small", "us-east-1b"))
        try:
            yield Cluster(store, runtime, agent, medium, small)
        finally:
            follower.cancel()
            await agent.settle()
    store.close()


async def test_instances_get_their_types_limits_scaled(cluster):
    outer = cluster.runtime.client
    for ci, cpus, memory_mib in [(cluster.medium, 0.5, 1024), (cluster.small, 0.5, 512)]:
        inst = cluster.runtime.instances[ci.ec2_instance_id]
        host = outer.containers.get(inst.container_id).attrs["HostConfig"]
        assert host["CpuQuota"] / host["CpuPeriod"] == cpus
        assert host["Memory"] == memory_mib * 1024 * 1024
        assert ci.registered_resources.cpu == 2048  # ECS keeps the type's nominal units


async def test_a_task_runs_and_answers_on_its_dynamic_host_port(cluster):
    task = await cluster.run("web")
    task = await cluster.wait_status(task.task_arn, RUNNING)

    address, port = cluster.address(task)
    body = await asyncio.to_thread(http_get, address, port)
    assert body["version"] == "v1" and body["taskId"] == task.task_id
    assert body["availabilityZone"] == "us-east-1a"
    inner = cluster.runtime.instances[cluster.medium.ec2_instance_id].inner
    host_config = inner.containers.get(task.containers[0].runtime_id).attrs["HostConfig"]
    assert host_config["CpuShares"] == 256 and host_config["Memory"] == 64 * 1024 * 1024  # 256 MiB x 0.25


async def test_a_container_killed_from_outside_stops_its_task(cluster):
    task = await cluster.wait_status((await cluster.run("web")).task_arn, RUNNING)
    inner = cluster.runtime.instances[cluster.medium.ec2_instance_id].inner

    await asyncio.to_thread(inner.containers.get(task.containers[0].runtime_id).kill)
    stopped = await cluster.wait_status(task.task_arn, STOPPED)

    assert stopped.stopped_reason == "Essential container in task exited"
    assert stopped.containers[0].exit_code == 137


async def test_a_task_past_its_instances_memory_is_oom_killed_not_the_instance(cluster):
    task = await cluster.wait_status((await cluster.run("hog", "t3.small")).task_arn, RUNNING)
    address, port = cluster.address(task)

    with contextlib.suppress(Exception):  # the connection dies with the process
        await asyncio.to_thread(http_get, address, port, "/mem?mb=700", 30)
    stopped = await cluster.wait_status(task.task_arn, STOPPED)

    assert stopped.containers[0].exit_code == 137
    inst = cluster.runtime.instances[cluster.small.ec2_instance_id]
    assert cluster.runtime.client.containers.get(inst.container_id).status == "running"


async def test_an_image_that_does_not_exist_stops_the_task_with_ecs_reason(cluster):
    task = await cluster.run("ghost")
    stopped = await cluster.wait_status(task.task_arn, STOPPED)

    assert stopped.stopped_reason.startswith("CannotPullContainerError:")
    assert stopped.stop_code == "TaskFailedToStart"


async def test_after_a_restart_the_same_tasks_run_with_no_orphans_or_duplicates(cluster, make_docker_runtime):
    task = await cluster.wait_status((await cluster.run("web")).task_arn, RUNNING)
    before = {t.task_id for t in await cluster.runtime.list_tasks(cluster.medium.ec2_instance_id)}

    # A second runtime and agent over the same store and Docker: what a restarted emulator sees.
    async with make_docker_runtime() as runtime:
        agent = ClusterAgent(cluster.store, runtime, RealClock())
        counts = await recover(agent)
        after = {t.task_id for t in await runtime.list_tasks(cluster.medium.ec2_instance_id)}
        for inst in runtime.instances.values():  # hand the instances back to the module's runtime:
            inst.closing = True                   # stop watching them, don't terminate them
            inst.inner.close()
        runtime.instances.clear()

    assert counts["instances_adopted"] == 2 and counts["instances_removed"] == 0
    assert after == before
    assert cluster.store.get("task", task.task_arn).last_status == RUNNING
    address, port = cluster.address(task)
    assert (await asyncio.to_thread(http_get, address, port))["taskId"] == task.task_id


async def test_terminating_an_instance_leaves_nothing_behind(cluster):
    ci = await cluster.agent.launch_instance(CLUSTER, "t3.micro", "us-east-1c")
    socket_dir = cluster.runtime.instances[ci.ec2_instance_id].socket_dir

    await cluster.agent.terminate_instance(ci.container_instance_arn)

    label = [f"{LABEL_OWNER}={TEST_OWNER}", f"{LABEL_INSTANCE}={ci.ec2_instance_id}"]
    outer = cluster.runtime.client
    assert outer.containers.list(all=True, filters={"label": label}) == []
    assert outer.volumes.list(filters={"label": label}) == []
    assert not socket_dir.exists()
    assert cluster.store.get("container_instance", ci.container_instance_arn).status == "INACTIVE"
