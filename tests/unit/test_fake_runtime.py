"""FakeRuntime's own knobs and limits; the behaviour it shares with Docker is in tests/contract/.

Knobs stand in for what happens to real containers from outside (a kill, a
dead instance, a health check turning) so control loops can be tested on
them; the scale test keeps `ecsemu simulate` honest about 1,000 instances.
Nothing here sleeps: the fake answers at once and time is a FakeClock.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from emulator.clock import FakeClock
from emulator.model.container_instance import DEFAULT_RESERVED_PORTS
from emulator.model.instance_types import get_instance_type
from emulator.runtime import fake as fake_module
from emulator.runtime.base import (
    CannotPullContainerError,
    ContainerSpec,
    HealthCheckSpec,
    InstanceNotFound,
    InstanceSpec,
    PortMappingSpec,
    RuntimeEvent,
    RuntimeFailure,
    TaskSpec,
)
from emulator.runtime.fake import FakeRuntime

CLUSTER = "default"
HEALTH = HealthCheckSpec(command=("CMD-SHELL", "true"))


def an_instance(ec2_instance_id: str = "i-1", *, cluster: str = CLUSTER, az: str = "us-east-1a",
                instance_type: str = "t3.medium") -> InstanceSpec:
    return InstanceSpec(cluster, ec2_instance_id, get_instance_type(instance_type), az)


def a_container(name: str = "web", *, image: str = "web-app:v1", ports: tuple[int, ...] = (0,),
                protocol: str = "tcp", health: bool = False) -> ContainerSpec:
    return ContainerSpec(name, image, port_mappings=tuple(PortMappingSpec(8080 + n, p, protocol)
                                                         for n, p in enumerate(ports)),
                         health_check=HEALTH if health else None)


def a_task(ec2_instance_id: str = "i-1", task_id: str | None = None, *containers: ContainerSpec,
           network_mode: str = "bridge") -> TaskSpec:
    task_id = task_id or uuid.uuid4().hex
    return TaskSpec(CLUSTER, task_id, f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/{task_id}",
                    ec2_instance_id, containers or (a_container(),), network_mode=network_mode)


@pytest.fixture
async def runtime():
    runtime = FakeRuntime(rng=random.Random(7))
    await runtime.launch_instance(an_instance("i-1"))
    runtime.drain_events()
    yield runtime
    await runtime.close()


def container_events(events: list[RuntimeEvent]) -> list[tuple[str | None, str, str, int | None, str | None]]:
    return [(e.task_id, e.container.name, e.container.state, e.container.exit_code, e.container.reason)
            for e in events if e.container is not None]


async def containers_of(runtime: FakeRuntime, task_id: str, ec2_instance_id: str = "i-1"):
    tasks = {t.task_id: t for t in await runtime.list_tasks(ec2_instance_id)}
    return {c.name: c for c in tasks[task_id].containers}


# --- instances -------------------------------------------------------------------


async def test_launch_registers_the_instance_at_once_with_a_label_address_and_an_event():
    runtime = FakeRuntime()
    status = await runtime.launch_instance(an_instance("i-9", az="us-east-1c"))

    assert (status.state, status.instance_type, status.availability_zone) == ("running", "t3.medium", "us-east-1c")
    assert status.address.startswith("10.99.") and status.runtime_id
    assert runtime.drain_events() == [RuntimeEvent("i-9", instance_state="running")]


async def test_addresses_are_distinct(runtime):
    for n in range(300):
        await runtime.launch_instance(an_instance(f"i-x{n}"))
    addresses = [i.address for i in await runtime.list_instances()]
    assert len(set(addresses)) == len(addresses) == 301


async def test_launching_an_instance_id_twice_is_a_value_error(runtime):
    with pytest.raises(ValueError, match="i-1 already exists"):
        await runtime.launch_instance(an_instance("i-1"))


async def test_launch_delay_hook_holds_registration_until_the_clock_gets_there():
    clock = FakeClock()
    runtime = FakeRuntime(launch_delay=lambda spec: clock.sleep(90))
    launching = asyncio.create_task(runtime.launch_instance(an_instance("i-slow")))

    await clock.advance(89)
    assert await runtime.list_instances() == [] and not launching.done()
    with pytest.raises(ValueError):   # its id is taken while it boots
        await runtime.launch_instance(an_instance("i-slow"))
    await clock.advance(1)

    assert (await launching).state == "running"
    assert [i.ec2_instance_id for i in await runtime.list_instances(CLUSTER)] == ["i-slow"]


async def test_terminate_stops_running_containers_then_reports_the_instance_stopped(runtime):
    spec = a_task("i-1", "t1", a_container("web"), a_container("log", ports=()))
    await runtime.run_task(spec)
    runtime.kill_container("i-1", "t1", "log", exit_code=1)
    runtime.drain_events()

    await runtime.terminate_instance("i-1")

    events = runtime.drain_events()
    assert container_events(events) == [("t1", "web", "exited", 0, None)]
    assert events[-1] == RuntimeEvent("i-1", instance_state="stopped")
    assert await runtime.list_instances() == []
    with pytest.raises(InstanceNotFound):
        await runtime.list_tasks("i-1")
    assert "started as container web" in await runtime.task_logs("i-1", "t1", "web")   # logs are kept


async def test_kill_instance_exits_its_containers_and_leaves_it_listed_stopped(runtime):
    await runtime.run_task(a_task("i-1", "t1"))
    runtime.drain_events()

    runtime.kill_instance("i-1")

    events = runtime.drain_events()
    assert container_events(events) == [("t1", "web", "exited", 137, None)]
    assert events[-1] == RuntimeEvent("i-1", instance_state="stopped")
    assert [i.state for i in await runtime.list_instances()] == ["stopped"]
    assert (await containers_of(runtime, "t1"))["web"].state == "exited"
    with pytest.raises(RuntimeFailure, match="i-1 is stopped"):
        await runtime.run_task(a_task("i-1"))
    await runtime.terminate_instance("i-1")
    assert runtime.drain_events() == []   # already reported
    assert await runtime.list_instances() == []


async def test_kill_instance_with_remove_makes_it_vanish(runtime):
    runtime.kill_instance("i-1", remove=True)

    assert runtime.drain_events() == [RuntimeEvent("i-1", instance_state="stopped")]
    assert await runtime.list_instances() == []
    with pytest.raises(InstanceNotFound):
        runtime.kill_instance("i-1")


# --- tasks and ports ---------------------------------------------------------------


async def test_run_task_reports_running_and_health_starting_in_container_order(runtime):
    status = await runtime.run_task(a_task("i-1", "t1", a_container("web", health=True), a_container("side")))

    assert [(c.name, c.state, c.health) for c in status.containers] == [
        ("web", "running", "starting"), ("side", "running", None)]
    assert container_events(runtime.drain_events()) == [
        ("t1", "web", "running", None, None), ("t1", "side", "running", None, None)]


async def test_returned_and_listed_statuses_are_copies(runtime):
    status = await runtime.run_task(a_task("i-1", "t1"))
    status.containers[0].state = "mangled"
    (await runtime.list_instances())[0].state = "mangled"

    assert (await containers_of(runtime, "t1"))["web"].state == "running"
    assert (await runtime.list_instances())[0].state == "running"


async def test_dynamic_ports_come_in_order_from_the_ephemeral_range_skipping_reserved_ones(runtime, monkeypatch):
    assert {51678, 51679, 51680} <= DEFAULT_RESERVED_PORTS   # the agent's ports, inside the range
    monkeypatch.setattr(fake_module, "DYNAMIC_PORT_RANGE", (51677, 51681))
    await runtime.launch_instance(an_instance("i-2"))

    status = await runtime.run_task(a_task("i-2", "t1", a_container(ports=(0, 0))))

    assert [b.host_port for b in status.containers[0].network_bindings] == [51677, 51681]
    with pytest.raises(RuntimeFailure, match="all ports are allocated"):
        await runtime.run_task(a_task("i-2", "t2"))
    await runtime.stop_task("i-2", "t1")
    again = await runtime.run_task(a_task("i-2", "t3"))   # the cursor wraps round to the freed port
    assert again.containers[0].network_bindings[0].host_port == 51677


async def test_the_same_port_number_is_free_for_udp_and_tcp(runtime):
    await runtime.run_task(a_task("i-1", "t1", a_container(ports=(5000,), protocol="tcp")))
    udp = await runtime.run_task(a_task("i-1", "t2", a_container(ports=(5000,), protocol="udp")))

    assert udp.containers[0].network_bindings == (PortMappingSpec(8080, 5000, "udp"),)


async def test_two_containers_of_one_task_cannot_take_one_static_port(runtime):
    with pytest.raises(RuntimeFailure, match="0.0.0.0:5000 failed: port is already allocated"):
        await runtime.run_task(a_task("i-1", "t1", a_container("a", ports=(5000,)), a_container("b", ports=(5000,))))
    assert await runtime.list_tasks("i-1") == []
    assert runtime.drain_events() == []


async def test_host_network_mode_binds_the_container_port(runtime):
    status = await runtime.run_task(a_task("i-1", "t1", a_container(ports=(0,)), network_mode="host"))

    assert status.containers[0].network_bindings == (PortMappingSpec(8080, 8080, "tcp"),)


async def test_a_running_task_cannot_be_removed(runtime):
    await runtime.run_task(a_task("i-1", "t1"))

    with pytest.raises(RuntimeFailure, match="stop it first"):
        await runtime.remove_task("i-1", "t1")


@pytest.mark.parametrize("containers", [
    pytest.param((a_container("web"), a_container("web")), id="container-named-twice"),
])
async def test_bad_task_specs_are_value_errors_that_change_nothing(runtime, containers):
    with pytest.raises(ValueError):
        await runtime.run_task(a_task("i-1", "t1", *containers))
    assert await runtime.list_tasks("i-1") == []


async def test_a_task_id_used_twice_on_an_instance_is_a_value_error(runtime):
    await runtime.run_task(a_task("i-1", "t1"))
    with pytest.raises(ValueError, match="t1 already exists"):
        await runtime.run_task(a_task("i-1", "t1"))


# --- images ------------------------------------------------------------------------


@pytest.mark.parametrize("images, image, exists", [
    (None, "web-app:v1", True),
    (None, "anything/else", True),
    (None, "does-not-exist:latest", False),
    (None, "registry.local/does-not-exist-either:v3", False),
    ({"web-app:v1"}, "web-app:v1", True),
    ({"web-app:v1"}, "web-app:v2", False),
    ({"web-app"}, "web-app:latest", True),
    ({"web-app:latest"}, "web-app", True),
], ids=lambda v: str(v))
def test_which_images_exist(images, image, exists):
    assert FakeRuntime(images).image_exists(image) is exists


async def test_add_and_remove_image_change_what_runs(runtime):
    runtime.add_image("does-not-exist:now-it-does")
    await runtime.run_task(a_task("i-1", "t1", a_container(image="does-not-exist:now-it-does")))
    runtime.remove_image("web-app:v1")

    with pytest.raises(CannotPullContainerError) as failure:
        await runtime.run_task(a_task("i-1", "t2"))

    assert failure.value.image == "web-app:v1"
    assert [t.task_id for t in await runtime.list_tasks("i-1")] == ["t1"]


# --- knobs -------------------------------------------------------------------------


async def test_kill_container_reports_its_exit_code_and_reason_and_spares_the_others(runtime):
    await runtime.run_task(a_task("i-1", "t1", a_container("web", ports=(5000,)), a_container("side", ports=())))
    runtime.drain_events()

    runtime.kill_container("i-1", "t1", "web", exit_code=137,
                           reason="OutOfMemoryError: Container killed due to memory usage")

    assert container_events(runtime.drain_events()) == [
        ("t1", "web", "exited", 137, "OutOfMemoryError: Container killed due to memory usage")]
    containers = await containers_of(runtime, "t1")
    assert (containers["web"].state, containers["side"].state) == ("exited", "running")
    await runtime.run_task(a_task("i-1", "t2", a_container(ports=(5000,))))   # its port is free again
    with pytest.raises(ValueError, match="not running"):
        runtime.kill_container("i-1", "t1", "web")


async def test_kill_container_defaults_to_sigkill_and_stop_task_stops_only_the_rest(runtime):
    await runtime.run_task(a_task("i-1", "t1", a_container("web"), a_container("side", ports=())))
    runtime.kill_container("i-1", "t1", "side")
    runtime.drain_events()

    await runtime.stop_task("i-1", "t1")

    assert container_events(runtime.drain_events()) == [("t1", "web", "exited", 0, None)]
    assert (await containers_of(runtime, "t1"))["side"].exit_code == 137


async def test_set_health_reports_a_change_once(runtime):
    await runtime.run_task(a_task("i-1", "t1", a_container(health=True)))
    runtime.drain_events()

    runtime.set_health("i-1", "t1", "web", "healthy")
    runtime.set_health("i-1", "t1", "web", "healthy")
    runtime.set_health("i-1", "t1", "web", "unhealthy")

    assert [e.container.health for e in runtime.drain_events()] == ["healthy", "unhealthy"]
    assert (await containers_of(runtime, "t1"))["web"].health == "unhealthy"


@pytest.mark.parametrize("name, health, message", [
    ("web", "sick", "health must be one of"),
    ("plain", "healthy", "has no health check"),
    ("ghost", "healthy", "no container ghost"),
])
async def test_set_health_refuses_what_cannot_happen(runtime, name, health, message):
    await runtime.run_task(a_task("i-1", "t1", a_container("web", health=True), a_container("plain", ports=())))

    with pytest.raises(ValueError, match=message):
        runtime.set_health("i-1", "t1", name, health)


async def test_logs_start_with_one_line_per_container_and_take_what_the_app_writes(runtime):
    await runtime.run_task(a_task("i-1", "t1", a_container("web"), a_container("side", ports=())))

    runtime.write_log("i-1", "t1", "web", "GET / 200\nGET /health 200")

    web = (await runtime.task_logs("i-1", "t1", "web")).splitlines()
    assert len(web) == 3 and "started as container web of task t1" in web[0] and web[1:] == [
        "GET / 200", "GET /health 200"]
    assert len((await runtime.task_logs("i-1", "t1", "side")).splitlines()) == 1
    assert await runtime.task_logs("i-1", "nope", "web") == ""
    with pytest.raises(InstanceNotFound):
        await runtime.task_logs("i-404", "t1", "web")
    with pytest.raises(ValueError):
        runtime.write_log("i-1", "nope", "web", "x")


# --- the event stream --------------------------------------------------------------


async def test_events_arrive_in_order_and_a_cancelled_wait_loses_none(runtime):
    stream = runtime.events()
    waiting = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)
    waiting.cancel()

    await runtime.run_task(a_task("i-1", "t1", a_container("a"), a_container("b", ports=())))
    await runtime.stop_task("i-1", "t1")

    got = [await anext(stream) for _ in range(4)]
    assert [(e.container.name, e.container.state) for e in got] == [
        ("a", "running"), ("b", "running"), ("a", "exited"), ("b", "exited")]


async def test_close_ends_the_stream_after_what_was_queued_and_refuses_new_work(runtime):
    await runtime.run_task(a_task("i-1", "t1"))
    await runtime.close()

    assert len([e async for e in runtime.events()]) == 1
    assert [e async for e in runtime.events()] == []
    with pytest.raises(RuntimeFailure, match="closed"):
        await runtime.run_task(a_task("i-1", "t2"))


# --- scale -------------------------------------------------------------------------


async def test_a_thousand_instances_and_ten_thousand_tasks():
    runtime = FakeRuntime(rng=random.Random(1))
    azs = ("us-east-1a", "us-east-1b", "us-east-1c")
    for n in range(1000):
        await runtime.launch_instance(an_instance(f"i-{n:05d}", cluster=f"c{n % 4}", az=azs[n % 3]))
    for n in range(10_000):
        await runtime.run_task(a_task(f"i-{n % 1000:05d}", f"t{n}", a_container(ports=(0,), health=n % 2 == 0)))
    for n in range(0, 10_000, 2):
        await runtime.stop_task(f"i-{n % 1000:05d}", f"t{n}")

    assert len(await runtime.list_instances()) == 1000
    assert len(await runtime.list_instances("c1")) == 250
    tasks = [t for n in range(1000) for t in await runtime.list_tasks(f"i-{n:05d}")]
    assert len(tasks) == 10_000
    states = [c.state for t in tasks for c in t.containers]
    assert states.count("running") == states.count("exited") == 5000
    ports = await runtime.list_tasks("i-00000")
    assert len({c.network_bindings[0].host_port for t in ports for c in t.containers}) == 10
    assert len(runtime.drain_events()) == 1000 + 10_000 + 5000


# --- http_probe (what the ALB's health checks ask of the in-memory runtime) --------------


async def probe(runtime: FakeRuntime, ec2_instance_id: str, port: int) -> int | str:
    address = next(i.address for i in await runtime.list_instances() if i.ec2_instance_id == ec2_instance_id)
    try:
        return await runtime.http_probe(address, port, "/health", 5.0)
    except ConnectionRefusedError:
        return "refused"


async def test_http_probe_answers_as_soon_as_a_task_starts_and_refuses_once_it_stops(runtime):
    status = await runtime.run_task(a_task("i-1", "t1"))
    port = status.containers[0].network_bindings[0].host_port
    assert await probe(runtime, "i-1", port) == 200
    assert await probe(runtime, "i-1", port + 1) == "refused"

    await runtime.stop_task("i-1", "t1")
    assert await probe(runtime, "i-1", port) == "refused"


async def test_http_probe_follows_kills_health_and_instances(runtime):
    await runtime.launch_instance(an_instance("i-2"))
    one = await runtime.run_task(a_task("i-1", "t1", a_container(health=True)))
    two = await runtime.run_task(a_task("i-2", "t2"))
    p1, p2 = (s.containers[0].network_bindings[0].host_port for s in (one, two))

    runtime.set_health("i-1", "t1", "web", "unhealthy")
    assert await probe(runtime, "i-1", p1) == 503
    runtime.set_health("i-1", "t1", "web", "healthy")
    assert await probe(runtime, "i-1", p1) == 200
    runtime.kill_container("i-1", "t1", "web")
    assert await probe(runtime, "i-1", p1) == "refused"

    assert await probe(runtime, "i-2", p2) == 200
    address = next(i.address for i in await runtime.list_instances() if i.ec2_instance_id == "i-2")
    runtime.kill_instance("i-2", remove=True)
    with pytest.raises(ConnectionRefusedError):
        await runtime.http_probe(address, p2, "/health", 5.0)


async def test_http_probe_sees_start_unhealthy_like_the_sample_app():
    runtime = FakeRuntime(rng=random.Random(3), behave_like_sample_app=True)
    await runtime.launch_instance(an_instance("i-1"))
    bad = ContainerSpec("web", "web-app:v1", port_mappings=(PortMappingSpec(8080, 0),),
                        environment=(("START_UNHEALTHY", "1"),))
    status = await runtime.run_task(a_task("i-1", "t1", bad))
    good = await runtime.run_task(a_task("i-1", "t2"))

    assert await probe(runtime, "i-1", status.containers[0].network_bindings[0].host_port) == 503
    assert await probe(runtime, "i-1", good.containers[0].network_bindings[0].host_port) == 200
    assert getattr(runtime.http_probe, "answers_at_once", False)
    await runtime.close()


async def test_a_port_freed_by_one_task_answers_for_the_next(runtime, monkeypatch):
    monkeypatch.setattr(fake_module, "DYNAMIC_PORT_RANGE", (49153, 49154))
    monkeypatch.setattr(fake_module, "DEFAULT_RESERVED_PORTS", frozenset())
    first = await runtime.run_task(a_task("i-1", "t1", a_container(ports=(49153,))))
    port = first.containers[0].network_bindings[0].host_port
    await runtime.stop_task("i-1", "t1")
    await runtime.remove_task("i-1", "t1")
    await runtime.run_task(a_task("i-1", "t2", a_container(ports=(port,), health=True)))

    runtime.set_health("i-1", "t2", "web", "unhealthy")
    assert await probe(runtime, "i-1", port) == 503
