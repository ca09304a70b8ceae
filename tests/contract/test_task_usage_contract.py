"""Runtime.task_usage, for every runtime: running tasks' CPU seconds and memory, stopped tasks gone.

On Docker the busy container really spins (its CPU seconds grow at the
instance's share of a core); the in-memory runtime's tasks idle at a small
rate until its `set_usage` knob says otherwise (tested in
tests/unit/test_metrics_fake_usage.py), so growth is all this suite asks.
"""

from __future__ import annotations

import pytest

from emulator.runtime.base import ContainerSpec, InstanceNotFound

from .conftest import IMAGE, eventually, new_instance_id

# Spins; exits on SIGTERM at once (as PID 1 a process ignores signals it has no handler for).
SPIN = ("python3", "-c", "import signal, sys\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\nwhile True: pass")


def busy_container(name: str = "busy") -> ContainerSpec:
    return ContainerSpec(name=name, image=IMAGE, cpu_shares=128, memory_mib=128, command=SPIN, stop_timeout_s=2)


async def usage_by_task(runtime, ec2_instance_id: str) -> dict:
    return {u.task_id: u for u in await runtime.task_usage(ec2_instance_id)}


async def test_a_busy_tasks_cpu_seconds_grow_and_its_memory_is_counted(runtime, launch, task_spec):
    instance = await launch()
    spec = task_spec(instance.ec2_instance_id, containers=(busy_container(),))
    await runtime.run_task(spec)

    async def first_reading():
        return (await usage_by_task(runtime, instance.ec2_instance_id)).get(spec.task_id)

    first = await eventually(first_reading)
    assert first is not None and first.memory_bytes > 0 and first.cpu_seconds_total >= 0

    async def grown():
        now = (await usage_by_task(runtime, instance.ec2_instance_id)).get(spec.task_id)
        return now if now and now.cpu_seconds_total > first.cpu_seconds_total else None

    later = await eventually(grown)
    assert later is not None
    assert later.sampled_at_monotonic > first.sampled_at_monotonic
    assert later.memory_bytes > 0


async def test_a_stopped_task_disappears_and_the_others_stay(runtime, launch, task_spec):
    instance = await launch()
    stopping = task_spec(instance.ec2_instance_id, containers=(busy_container(),))
    staying = task_spec(instance.ec2_instance_id, containers=(busy_container(),))
    await runtime.run_task(stopping)
    await runtime.run_task(staying)

    async def both_listed():
        listed = await usage_by_task(runtime, instance.ec2_instance_id)
        return listed if {stopping.task_id, staying.task_id} <= set(listed) else None

    before = await eventually(both_listed)
    assert before is not None

    await runtime.stop_task(instance.ec2_instance_id, stopping.task_id)

    async def only_staying():
        listed = await usage_by_task(runtime, instance.ec2_instance_id)
        return listed if stopping.task_id not in listed and staying.task_id in listed else None

    after = await eventually(only_staying)
    assert after is not None
    assert after[staying.task_id].cpu_seconds_total >= before[staying.task_id].cpu_seconds_total


async def test_an_instance_without_tasks_reports_none(runtime, launch):
    instance = await launch()

    assert await runtime.task_usage(instance.ec2_instance_id) == []


async def test_task_usage_of_an_unknown_instance_is_instance_not_found(runtime):
    with pytest.raises(InstanceNotFound):
        await runtime.task_usage(new_instance_id())
