"""What every runtime does, seen only through the `Runtime` protocol.

The same tests run against each implementation in conftest.RUNTIME_FACTORIES
(the in-memory fake today, Docker next), so the control loops can be tested
on the fake and trusted on Docker. No fake-only knob appears here: those are
tested in tests/unit/test_fake_runtime.py. Every wait is bounded, and
generous, because for Docker it is real; the fake answers at once.
"""

from __future__ import annotations

import pytest

from emulator.runtime.base import CannotPullContainerError, InstanceNotFound, RuntimeFailure

from .conftest import (
    APP_PORT,
    IMAGE,
    MISSING_IMAGE,
    a_container,
    eventually,
    new_instance_id,
    new_task_id,
    wait_for_containers,
)

STATIC_PORT = 18080   # outside the dynamic range, so only a static mapping can take it


def by_id(tasks):
    return {t.task_id: t for t in tasks}


# --- instances -----------------------------------------------------------------


async def test_a_launched_instance_is_listed_running_with_its_type_az_and_cluster(runtime, launch, cluster):
    status = await launch(instance_type="t3.small", availability_zone="us-east-1b")

    assert status.state == "running"
    listed = {i.ec2_instance_id: i for i in await runtime.list_instances(cluster)}
    assert list(listed) == [status.ec2_instance_id]
    instance = listed[status.ec2_instance_id]
    assert (instance.cluster, instance.instance_type, instance.availability_zone, instance.state) == (
        cluster, "t3.small", "us-east-1b", "running")
    assert status.ec2_instance_id in {i.ec2_instance_id for i in await runtime.list_instances()}
    assert await runtime.list_tasks(status.ec2_instance_id) == []


async def test_list_instances_shows_only_the_asked_cluster(runtime, launch, cluster):
    mine = await launch()
    other_cluster = f"{cluster}-other"
    theirs = await launch(cluster_name=other_cluster)

    assert [i.ec2_instance_id for i in await runtime.list_instances(cluster)] == [mine.ec2_instance_id]
    assert [i.ec2_instance_id for i in await runtime.list_instances(other_cluster)] == [theirs.ec2_instance_id]


async def test_a_terminated_instance_is_gone_with_its_tasks(runtime, launch, task_spec, cluster):
    instance = await launch()
    await runtime.run_task(task_spec(instance.ec2_instance_id))

    await runtime.terminate_instance(instance.ec2_instance_id, stop_timeout_s=5)

    still_running = [i for i in await runtime.list_instances(cluster)
                     if i.ec2_instance_id == instance.ec2_instance_id and i.state != "stopped"]
    assert still_running == []
    try:
        assert await runtime.list_tasks(instance.ec2_instance_id) == []
    except InstanceNotFound:
        pass


# --- running tasks -------------------------------------------------------------


async def test_run_task_starts_every_container_with_network_bindings(runtime, launch, task_spec, events):
    instance = await launch()
    spec = task_spec(instance.ec2_instance_id, containers=(
        a_container("web", host_port=0), a_container("admin", host_port=STATIC_PORT)))

    returned = await runtime.run_task(spec)

    assert returned.task_id == spec.task_id
    [task] = await runtime.list_tasks(instance.ec2_instance_id)
    assert (task.task_id, task.task_arn, task.ec2_instance_id) == (
        spec.task_id, spec.task_arn, instance.ec2_instance_id)
    containers = {c.name: c for c in task.containers}
    assert {name: c.state for name, c in containers.items()} == {"web": "running", "admin": "running"}
    [web] = containers["web"].network_bindings
    assert (web.container_port, web.protocol) == (APP_PORT, "tcp") and web.host_port > 0
    [admin] = containers["admin"].network_bindings
    assert (admin.container_port, admin.host_port, admin.protocol) == (APP_PORT, STATIC_PORT, "tcp")
    assert all(c.health is None for c in containers.values())   # no health check defined
    running = await wait_for_containers(events, instance.ec2_instance_id, spec.task_id, {"web", "admin"}, "running")
    assert set(running) == {"web", "admin"}


async def test_dynamic_host_ports_are_distinct_on_one_instance(runtime, launch, task_spec):
    instance = await launch()
    first = await runtime.run_task(task_spec(instance.ec2_instance_id))
    second = await runtime.run_task(task_spec(instance.ec2_instance_id))

    ports = [c.network_bindings[0].host_port for t in (first, second) for c in t.containers]
    assert len(set(ports)) == 2 and all(p > 0 for p in ports)


async def test_a_container_with_a_health_check_starts_with_a_health_status(runtime, launch, task_spec):
    instance = await launch()
    spec = task_spec(instance.ec2_instance_id, health_check=True)
    await runtime.run_task(spec)

    [task] = await runtime.list_tasks(instance.ec2_instance_id)
    assert task.containers[0].health in ("starting", "healthy")


async def test_stop_task_exits_every_container_and_remove_task_forgets_it(runtime, launch, task_spec, events):
    instance = await launch()
    spec = task_spec(instance.ec2_instance_id)
    await runtime.run_task(spec)

    await runtime.stop_task(instance.ec2_instance_id, spec.task_id)

    [task] = await runtime.list_tasks(instance.ec2_instance_id)
    assert [(c.state, c.exit_code is not None) for c in task.containers] == [("exited", True)]
    exited = await wait_for_containers(events, instance.ec2_instance_id, spec.task_id, {"web"}, "exited")
    assert exited["web"].container.exit_code is not None

    await runtime.remove_task(instance.ec2_instance_id, spec.task_id)

    assert await runtime.list_tasks(instance.ec2_instance_id) == []


async def test_stopping_or_removing_a_task_twice_or_an_unknown_task_changes_nothing(runtime, launch, task_spec):
    instance = await launch()
    spec = task_spec(instance.ec2_instance_id)
    await runtime.run_task(spec)
    await runtime.stop_task(instance.ec2_instance_id, spec.task_id)

    await runtime.stop_task(instance.ec2_instance_id, spec.task_id)
    await runtime.stop_task(instance.ec2_instance_id, new_task_id())
    await runtime.remove_task(instance.ec2_instance_id, new_task_id())

    assert [t.task_id for t in await runtime.list_tasks(instance.ec2_instance_id)] == [spec.task_id]


async def test_task_logs_hold_the_containers_output_and_outlive_the_task(runtime, launch, task_spec):
    instance = await launch()
    spec = task_spec(instance.ec2_instance_id)
    await runtime.run_task(spec)

    logs = await eventually(lambda: runtime.task_logs(instance.ec2_instance_id, spec.task_id, "web"))

    assert isinstance(logs, str) and logs.strip()
    await runtime.stop_task(instance.ec2_instance_id, spec.task_id)
    await runtime.remove_task(instance.ec2_instance_id, spec.task_id)
    assert (await runtime.task_logs(instance.ec2_instance_id, spec.task_id, "web")).startswith(logs)


# --- failures: ECS's words, nothing left behind ----------------------------------


@pytest.mark.parametrize("images", [
    pytest.param((MISSING_IMAGE,), id="the-only-container"),
    pytest.param((IMAGE, MISSING_IMAGE), id="the-second-container"),
])
async def test_a_missing_image_fails_the_task_with_nothing_left_behind(runtime, launch, task_spec, images):
    instance = await launch()
    containers = tuple(a_container(f"c{n}", image=image, host_port=None) for n, image in enumerate(images))

    with pytest.raises(CannotPullContainerError) as failure:
        await runtime.run_task(task_spec(instance.ec2_instance_id, containers=containers))

    assert str(failure.value).startswith("CannotPullContainerError:")
    assert MISSING_IMAGE.split(":")[0] in str(failure.value)
    assert await runtime.list_tasks(instance.ec2_instance_id) == []


async def test_a_static_host_port_taken_fails_the_second_task_and_spares_the_first(runtime, launch, task_spec):
    instance = await launch()
    first = task_spec(instance.ec2_instance_id, host_port=STATIC_PORT)
    await runtime.run_task(first)

    with pytest.raises(RuntimeFailure) as failure:
        await runtime.run_task(task_spec(instance.ec2_instance_id, host_port=STATIC_PORT))

    assert not isinstance(failure.value, CannotPullContainerError)
    assert str(failure.value).startswith("CannotStartContainerError:")
    tasks = await runtime.list_tasks(instance.ec2_instance_id)
    assert list(by_id(tasks)) == [first.task_id]
    assert [c.state for c in tasks[0].containers] == ["running"]


async def test_a_stopped_task_frees_its_static_host_port(runtime, launch, task_spec):
    instance = await launch()
    first = task_spec(instance.ec2_instance_id, host_port=STATIC_PORT)
    await runtime.run_task(first)
    await runtime.stop_task(instance.ec2_instance_id, first.task_id)
    await runtime.remove_task(instance.ec2_instance_id, first.task_id)

    second = await runtime.run_task(task_spec(instance.ec2_instance_id, host_port=STATIC_PORT))

    assert second.containers[0].network_bindings[0].host_port == STATIC_PORT


UNKNOWN_INSTANCE_CALLS = {
    "list_tasks": lambda rt, iid, spec: rt.list_tasks(iid),
    "run_task": lambda rt, iid, spec: rt.run_task(spec),
    "stop_task": lambda rt, iid, spec: rt.stop_task(iid, spec.task_id),
    "remove_task": lambda rt, iid, spec: rt.remove_task(iid, spec.task_id),
    "terminate_instance": lambda rt, iid, spec: rt.terminate_instance(iid),
}


@pytest.mark.parametrize("call", UNKNOWN_INSTANCE_CALLS.values(), ids=UNKNOWN_INSTANCE_CALLS.keys())
async def test_an_unknown_instance_is_instance_not_found(runtime, task_spec, call):
    unknown = new_instance_id()

    with pytest.raises(InstanceNotFound):
        await call(runtime, unknown, task_spec(unknown))
