"""The capacity provider on the in-memory runtime: tasks that don't fit wait in PROVISIONING, the ASG grows,
they land, and once instances are empty the group shrinks without ever terminating one that runs tasks."""

from __future__ import annotations

import random

import pytest

from emulator.app import Emulator
from emulator.clock import FakeClock
from emulator.control.asg import PROTECTED_TAG, tag
from emulator.control.services import update_service
from emulator.model.task import PROVISIONING, RUNNING, STOPPED
from emulator.runtime.fake import FakeRuntime
from emulator.scenario import load_default_stack

CLUSTER, SERVICE = "production-cluster", "web-app-service"


@pytest.fixture
async def emulator(tmp_path):
    clock = FakeClock(start=1_790_000_000.0)
    runtime = FakeRuntime(rng=random.Random(1), behave_like_sample_app=True,
                          launch_delay=lambda spec: clock.sleep(120))
    emu = Emulator(load_default_stack(), state_dir=None, runtime=runtime, clock=clock, rng=random.Random(4),
                   api_port=None, listen=False)
    await emu.start()
    await clock.advance(600)  # two instances up and past their warm-up, four tasks RUNNING and healthy
    yield emu
    await emu.stop(terminate=True)
    assert await runtime.list_instances() == []


def tasks(emu, status=None):
    return [t for t in emu.store.list("task") if t.last_status != STOPPED and (status is None or t.last_status == status)]


def active_instances(emu):
    return [ci for ci in emu.store.list("container_instance") if ci.status == "ACTIVE"]


def asg(emu):
    return emu.store.get("auto_scaling_group", "ecs-instance-asg")


def set_desired(emu, count):
    update_service(emu.store, emu.clock, CLUSTER, SERVICE, desired_count=count, rng=random.Random(0))


async def test_tasks_that_do_not_fit_wait_in_provisioning_and_the_asg_grows_until_they_run(emulator):
    assert len(tasks(emulator, RUNNING)) == 4 and asg(emulator).desired_capacity == 2

    set_desired(emulator, 8)
    await emulator.clock.advance(10)
    assert len(tasks(emulator, PROVISIONING)) == 4  # two t3.medium hold two 1-vCPU tasks each: full
    svc = next(iter(emulator.store.list("service")))
    assert svc.pending_count == 4  # PROVISIONING counts as pending

    await emulator.clock.advance(60)  # one CapacityProviderReservation datapoint: (2 + 2) / 2 = 200%
    assert emulator.capacity_scaler.latest_reservations()[(CLUSTER, "ec2-capacity-provider")] == 200.0
    assert asg(emulator).desired_capacity == 4

    await emulator.clock.advance(240)  # the instances boot, register, the tasks land
    assert len(active_instances(emulator)) == 4
    assert len(tasks(emulator, RUNNING)) == 8 and not tasks(emulator, PROVISIONING)
    await emulator.clock.advance(60)
    assert emulator.capacity_scaler.latest_reservations()[(CLUSTER, "ec2-capacity-provider")] == 100.0
    activities = [e.message for e in emulator.store.events(kinds="scaling-activity")]
    assert any("desired capacity 2 -> 4" in m for m in activities)


async def test_scale_in_takes_only_empty_instances_after_fifteen_low_minutes(emulator):
    set_desired(emulator, 8)
    await emulator.clock.advance(400)
    assert len(active_instances(emulator)) == 4 and len(tasks(emulator, RUNNING)) == 8

    set_desired(emulator, 2)
    await emulator.clock.advance(120)
    busy = {t.container_instance_arn for t in tasks(emulator)}
    assert len(tasks(emulator)) == 2
    for ci in active_instances(emulator):  # managed termination protection follows the tasks
        assert (tag(ci, PROTECTED_TAG) == "true") == (ci.container_instance_arn in busy)

    await emulator.clock.advance(10 * 60)
    assert asg(emulator).desired_capacity == 4  # not yet: scale-in needs 15 low datapoints
    await emulator.clock.advance(25 * 60)

    survivors = {ci.container_instance_arn for ci in active_instances(emulator)}
    assert asg(emulator).desired_capacity < 4 and len(survivors) == asg(emulator).desired_capacity
    assert busy <= survivors  # every instance with a task is still there
    assert len(tasks(emulator, RUNNING)) == 2 and all(t.last_status == RUNNING for t in tasks(emulator))


async def test_stopping_a_provisioning_task_stops_it_at_once(emulator):
    set_desired(emulator, 6)
    await emulator.clock.advance(10)
    (waiting, *_) = tasks(emulator, PROVISIONING)

    set_desired(emulator, 4)
    await emulator.clock.advance(10)

    assert not tasks(emulator, PROVISIONING)
    assert emulator.store.get("task", waiting.task_arn).last_status == STOPPED
    assert len(tasks(emulator, RUNNING)) == 4
