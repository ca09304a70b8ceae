"""The in-memory runtime's usage knob: what task_usage reports, on the clock it is given."""

from __future__ import annotations

import random

import pytest

from emulator.model.instance_types import get_instance_type
from emulator.runtime.base import ContainerSpec, InstanceSpec, TaskSpec
from emulator.runtime.fake import IDLE_MEMORY_MIB, IDLE_VCPUS, FakeRuntime

MIB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def spec(task_id: str = "t1", *, cpu: int = 512, containers: int = 1, task_cpu: int | None = None,
         scale: float = 0.25) -> TaskSpec:
    cs = tuple(ContainerSpec(f"c{i}", "web-app:v1", cpu_shares=cpu, memory_mib=512) for i in range(containers))
    return TaskSpec("c", task_id, f"arn:aws:ecs:us-east-1:1:task/c/{task_id}", "i-1", cs,
                    cpu_scale=scale, memory_scale=scale, cpu_units=task_cpu)


@pytest.fixture
async def world():
    clock = Clock()
    runtime = FakeRuntime(rng=random.Random(1), clock=clock)
    await runtime.launch_instance(InstanceSpec("c", "i-1", get_instance_type("t3.medium"), "us-east-1a"))
    return runtime, clock


async def usage(runtime, task_id="t1"):
    return {u.task_id: u for u in await runtime.task_usage("i-1")}[task_id]


async def test_a_new_task_idles_until_told_otherwise(world):
    runtime, clock = world
    await runtime.run_task(spec())
    clock.t += 10

    u = await usage(runtime)
    assert u.cpu_seconds_total == pytest.approx(10 * IDLE_VCPUS * 0.25)
    assert u.memory_bytes == int(IDLE_MEMORY_MIB * MIB * 0.25)
    assert u.sampled_at_monotonic == clock.t


async def test_cpu_fraction_of_reserved_is_scaled_like_a_real_reading(world):
    runtime, clock = world
    await runtime.run_task(spec(cpu=512, containers=2))          # 1,024 units: one vCPU, 0.25 real
    runtime.set_usage("i-1", "t1", cpu_fraction_of_reserved=0.5, memory_mib=300)
    before = await usage(runtime)
    clock.t += 20

    after = await usage(runtime)
    assert after.cpu_seconds_total - before.cpu_seconds_total == pytest.approx(20 * 0.5 * 1.0 * 0.25)
    assert after.memory_bytes == int(300 * MIB * 0.25)


async def test_task_level_cpu_is_what_the_fraction_is_of(world):
    runtime, clock = world
    await runtime.run_task(spec(cpu=0, task_cpu=2048, scale=0.5))
    runtime.set_usage("i-1", "t1", cpu_fraction_of_reserved=1.0)
    before = await usage(runtime)
    clock.t += 1

    assert (await usage(runtime)).cpu_seconds_total - before.cpu_seconds_total == pytest.approx(2 * 0.5)


async def test_vcpus_busy_are_absolute_and_changes_keep_what_was_used(world):
    runtime, clock = world
    await runtime.run_task(spec())
    runtime.set_usage("i-1", "t1", cpu_seconds_per_second=2.0)
    start = (await usage(runtime)).cpu_seconds_total
    clock.t += 10
    runtime.set_usage("i-1", "t1", cpu_seconds_per_second=0.0)
    clock.t += 10

    assert (await usage(runtime)).cpu_seconds_total - start == pytest.approx(10 * 2.0 * 0.25)


async def test_a_stopped_task_disappears_and_its_cpu_stops(world):
    runtime, clock = world
    await runtime.run_task(spec("t1"))
    await runtime.run_task(spec("t2"))
    runtime.set_usage("i-1", "t1", cpu_seconds_per_second=1.0)

    await runtime.stop_task("i-1", "t1")
    runtime.set_usage("i-1", "t1", cpu_seconds_per_second=4.0)   # a stopped task: nothing changes
    clock.t += 10

    assert [u.task_id for u in await runtime.task_usage("i-1")] == ["t2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"cpu_fraction_of_reserved": 0.5, "cpu_seconds_per_second": 1.0}, "not both"),
    ({"memory_mib": -1}, "memory_mib"),
    ({"cpu_fraction_of_reserved": float("nan")}, "cpu_fraction_of_reserved"),
])
async def test_bad_usage_is_refused(world, kwargs, message):
    runtime, _ = world
    await runtime.run_task(spec())

    with pytest.raises(ValueError, match=message):
        runtime.set_usage("i-1", "t1", **kwargs)


async def test_an_unknown_task_or_a_task_without_cpu_units_is_refused(world):
    runtime, _ = world
    await runtime.run_task(spec(cpu=0))

    with pytest.raises(ValueError, match="no task"):
        runtime.set_usage("i-1", "nope", memory_mib=1)
    with pytest.raises(ValueError, match="reserves no CPU"):
        runtime.set_usage("i-1", "t1", cpu_fraction_of_reserved=0.5)


async def test_a_repeated_round_reads_exactly_as_the_same_set_usage_calls_would():
    """repeat_usage_round stands for the round's set_usage calls made again: counters equal to the last bit."""
    async def world_of(repeat: bool):
        clock = Clock()
        runtime = FakeRuntime(rng=random.Random(1), clock=clock)
        await runtime.launch_instance(InstanceSpec("c", "i-1", get_instance_type("t3.medium"), "us-east-1a"))
        for task_id in ("busy", "idle", "dies", "late", "left"):
            await runtime.run_task(spec(task_id))
        calls: list[tuple[str, dict]] = []   # the current round's set_usage calls

        def call(task_id, **kwargs):
            calls.append((task_id, kwargs))
            runtime.set_usage("i-1", task_id, **kwargs)

        readings = []
        for step in range(40):
            if step in (0, 20):   # a new round: what each task is told changes
                calls.clear()
                runtime.begin_usage_round()
                call("busy", cpu_fraction_of_reserved=0.731 if step == 0 else 0.5, memory_mib=300)
                call("idle", cpu_fraction_of_reserved=0.02)
                call("dies", cpu_fraction_of_reserved=0.333)
                if step == 0:
                    call("left", cpu_seconds_per_second=0.9)   # not told anything in the second round
            elif repeat:
                runtime.repeat_usage_round()
            else:
                for task_id, kwargs in calls:
                    runtime.set_usage("i-1", task_id, **kwargs)
            if step == 3:
                call("late", cpu_seconds_per_second=0.17)   # joins the round: repeated from now on
            if step == 9:
                await runtime.stop_task("i-1", "dies")     # set_usage leaves a stopped task alone
            clock.t += 5.0 if step % 7 else 3.7
            if step % 4 == 0:
                readings.append(sorted((u.task_id, u.cpu_seconds_total, u.memory_bytes)
                                       for u in await runtime.task_usage("i-1")))
                readings.append(sorted(runtime.task_usage_values("i-1")))
        return readings

    assert await world_of(repeat=True) == await world_of(repeat=False)


async def test_task_usage_values_are_task_usage_as_tuples(world):
    runtime, clock = world
    await runtime.run_task(spec("t1"))
    await runtime.run_task(spec("t2"))
    runtime.set_usage("i-1", "t2", cpu_fraction_of_reserved=0.4)
    clock.t += 7
    await runtime.stop_task("i-1", "t1")

    assert runtime.task_usage_values("i-1") == [(u.task_id, u.cpu_seconds_total, u.memory_bytes,
                                                 u.sampled_at_monotonic) for u in await runtime.task_usage("i-1")]
    assert [v[0] for v in runtime.task_usage_values("i-1")] == ["t2"]
