"""The emulator process on the in-memory runtime: the default stack comes up, and a restart changes nothing."""

from __future__ import annotations

import random

from emulator.app import Emulator
from emulator.clock import FakeClock
from emulator.model.task import RUNNING, STOPPED
from emulator.runtime.fake import FakeRuntime
from emulator.scenario import load_default_stack


async def up(state_dir, runtime, clock) -> Emulator:
    emulator = Emulator(load_default_stack(), state_dir=state_dir, runtime=runtime, clock=clock,
                        rng=random.Random(4), api_port=None, listen=False)
    await emulator.start()
    await clock.advance(120)  # AWS seconds: instances launch, the scheduler places, tasks run and turn healthy
    return emulator


def service(emulator: Emulator):
    return next(iter(emulator.store.list("service")))


async def test_default_stack_comes_up_with_two_instances_and_four_running_tasks(tmp_path):
    clock, runtime = FakeClock(), FakeRuntime(rng=random.Random(1), behave_like_sample_app=True)
    emulator = await up(tmp_path, runtime, clock)
    try:
        instances = [ci for ci in emulator.store.list("container_instance") if ci.status == "ACTIVE"]
        tasks = [t for t in emulator.store.list("task") if t.last_status == RUNNING]
        assert sorted(ci.availability_zone for ci in instances) == ["us-east-1a", "us-east-1b"]
        assert len(tasks) == 4 and service(emulator).running_count == 4
        assert service(emulator).primary.rollout_state == "COMPLETED"
    finally:
        await emulator.stop()


async def test_a_restart_adopts_everything_and_starts_nothing_new(tmp_path):
    clock, runtime = FakeClock(), FakeRuntime(rng=random.Random(1), behave_like_sample_app=True)
    first = await up(tmp_path, runtime, clock)
    before = sorted(t.task_arn for t in first.store.list("task") if t.last_status == RUNNING)
    instances_before = sorted(i.ec2_instance_id for i in await runtime.list_instances())
    await first.stop()

    second = await up(tmp_path, runtime, clock)
    try:
        after = sorted(t.task_arn for t in second.store.list("task") if t.last_status == RUNNING)
        assert after == before
        assert sorted(i.ec2_instance_id for i in await runtime.list_instances()) == instances_before
        assert [t for t in second.store.list("task") if t.last_status == STOPPED] == []
        assert len(second.store.list("task_definition")) == 1  # the same stack registers no new revision
    finally:
        await second.stop(terminate=True)
    assert await runtime.list_instances() == []
