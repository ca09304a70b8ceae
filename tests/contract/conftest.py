"""Fixtures for the runtime contract suite: one `runtime` per implementation, and spec builders.

Adding an implementation is one entry in RUNTIME_FACTORIES (and, if it needs
something only some machines have, one in RUNTIME_MARKS):

    RUNTIME_FACTORIES["docker"] = make_docker   # may share one runtime per session
    RUNTIME_MARKS["docker"] = (pytest.mark.docker,)

A factory takes pytest's `request` and returns an async context manager that
yields a ready runtime and cleans up after it. Sharing a runtime (and its
instances) between tests is the factory's business; the tests never assume a
fresh runtime: each uses its own cluster name and ids, filters events by them,
and terminates what it launched in a finalizer (the `launch` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from emulator.model.instance_types import get_instance_type
from emulator.runtime.base import (
    ContainerSpec,
    HealthCheckSpec,
    InstanceNotFound,
    InstanceSpec,
    InstanceStatus,
    PortMappingSpec,
    Runtime,
    RuntimeEvent,
    TaskSpec,
)
from emulator.runtime.fake import FakeRuntime

# The sample app image: present in every runtime (the Docker runtime builds it from sample_app/).
IMAGE = "web-app:v1"
MISSING_IMAGE = "does-not-exist:latest"
APP_PORT = 8080
AZ = "us-east-1a"
ACCOUNT_ARN = "arn:aws:ecs:us-east-1:123456789012"
# Generous: for Docker every wait is real; the fake answers at once.
EVENT_TIMEOUT_S = 20.0
HEALTH_CHECK = HealthCheckSpec(
    command=("CMD-SHELL", f"python -c \"import urllib.request; urllib.request.urlopen("
                          f"'http://127.0.0.1:{APP_PORT}/health', timeout=2)\" || exit 1"),
    interval_s=5, timeout_s=3, retries=3)

RuntimeFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Runtime]]


@contextlib.asynccontextmanager
async def make_fake(request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    runtime = FakeRuntime()
    try:
        yield runtime
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def make_docker(request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    """The Docker runtime, owned by this test session (the suite's leak check covers it)."""
    async with request.getfixturevalue("make_docker_runtime")() as runtime:
        yield runtime


RUNTIME_FACTORIES: dict[str, RuntimeFactory] = {"fake": make_fake, "docker": make_docker}
# Marks per implementation: a docker param needs the real daemon (`-m "not docker"` skips it).
RUNTIME_MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {"docker": (pytest.mark.docker,)}


def runtime_params() -> list:
    return [pytest.param(name, marks=RUNTIME_MARKS.get(name, ()), id=name) for name in RUNTIME_FACTORIES]


@pytest.fixture(params=runtime_params())
async def runtime(request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    async with RUNTIME_FACTORIES[request.param](request) as runtime:
        yield runtime


# --- ids and spec builders ---------------------------------------------------


def new_instance_id() -> str:
    return f"i-{uuid.uuid4().hex[:17]}"


def new_task_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def cluster() -> str:
    """A cluster name of this test's own, so a shared runtime's other instances never show up."""
    return f"contract-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def instance_spec(cluster: str) -> Callable[..., InstanceSpec]:
    """Builds an InstanceSpec: a small real instance type, a fresh id, this test's cluster."""

    def build(*, instance_type: str = "t3.small", availability_zone: str = AZ,
              ec2_instance_id: str | None = None, cluster_name: str | None = None) -> InstanceSpec:
        return InstanceSpec(cluster=cluster_name or cluster, ec2_instance_id=ec2_instance_id or new_instance_id(),
                            instance_type=get_instance_type(instance_type), availability_zone=availability_zone)

    return build


def a_container(name: str = "web", *, image: str = IMAGE, host_port: int | None = 0,
                health_check: bool = False, memory_mib: int = 128) -> ContainerSpec:
    """The sample app: one port mapping (dynamic host port by default; None: no mapping)."""
    ports = () if host_port is None else (PortMappingSpec(APP_PORT, host_port),)
    return ContainerSpec(name=name, image=image, cpu_shares=128, memory_mib=memory_mib, port_mappings=ports,
                         health_check=HEALTH_CHECK if health_check else None, stop_timeout_s=5)


@pytest.fixture
def task_spec(cluster: str) -> Callable[..., TaskSpec]:
    """Builds a TaskSpec for an instance: one sample-app container unless `containers` says otherwise."""

    def build(ec2_instance_id: str, *, containers: tuple[ContainerSpec, ...] | None = None,
              image: str = IMAGE, host_port: int | None = 0, health_check: bool = False,
              task_id: str | None = None) -> TaskSpec:
        task_id = task_id or new_task_id()
        if containers is None:
            containers = (a_container(image=image, host_port=host_port, health_check=health_check),)
        return TaskSpec(cluster=cluster, task_id=task_id, task_arn=f"{ACCOUNT_ARN}:task/{cluster}/{task_id}",
                        ec2_instance_id=ec2_instance_id, containers=containers)

    return build


# --- launching with clean-up, and waiting for events -------------------------


@pytest.fixture
async def launch(runtime: Runtime, instance_spec) -> AsyncIterator[Callable[..., object]]:
    """`await launch(**instance_spec_args)`: launches an instance and terminates it after the test."""
    launched: list[str] = []

    async def launch_one(**kwargs) -> InstanceStatus:
        spec = instance_spec(**kwargs)
        launched.append(spec.ec2_instance_id)
        return await runtime.launch_instance(spec)

    yield launch_one
    for ec2_instance_id in launched:
        with contextlib.suppress(InstanceNotFound):
            await runtime.terminate_instance(ec2_instance_id, stop_timeout_s=5)


@pytest.fixture
def events(runtime: Runtime):
    """This test's reader of the runtime's event stream (one consumer at a time)."""
    return runtime.events()


async def wait_for_events(events, wanted: Callable[[RuntimeEvent], bool], count: int = 1,
                          timeout: float = EVENT_TIMEOUT_S) -> list[RuntimeEvent]:
    """The first `count` events that match `wanted`, skipping others; fails after `timeout` seconds."""

    async def collect() -> list[RuntimeEvent]:
        matched = []
        async for event in events:
            if wanted(event):
                matched.append(event)
                if len(matched) == count:
                    return matched
        raise AssertionError(f"the event stream ended after {len(matched)} of {count} matching events")

    try:
        return await asyncio.wait_for(collect(), timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"no {count} matching events within {timeout:g}s") from None


async def wait_for_containers(events, ec2_instance_id: str, task_id: str, names, state: str,
                              timeout: float = EVENT_TIMEOUT_S) -> dict[str, RuntimeEvent]:
    """Waits until every named container of the task has reported `state`; returns the first such event of each."""
    first: dict[str, RuntimeEvent] = {}

    def wanted(event: RuntimeEvent) -> bool:
        if (event.ec2_instance_id, event.task_id) != (ec2_instance_id, task_id) or event.container is None:
            return False
        name = event.container.name
        if event.container.state != state or name not in names or name in first:
            return False
        first[name] = event
        return True

    await wait_for_events(events, wanted, count=len(set(names)), timeout=timeout)
    return first


async def eventually(check: Callable[[], object], timeout: float = EVENT_TIMEOUT_S, interval: float = 0.2):
    """Awaits `check()` until it returns something truthy; checks first, so a fake never sleeps."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() >= deadline:
            return result
        await asyncio.sleep(interval)

