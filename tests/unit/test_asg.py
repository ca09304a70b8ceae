"""Auto Scaling groups on the in-memory runtime: desired capacity kept, AZs balanced, dead instances replaced."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from emulator.clock import FakeClock
from emulator.control.agent import ClusterAgent
from emulator.control.asg import GROUP_TAG, PROTECTED_TAG, AutoScalingGroups, tag
from emulator.control.registry import ensure_cluster
from emulator.model.scaling import parse_auto_scaling_group
from emulator.model.state import StateStore
from emulator.runtime.fake import FakeRuntime

CLUSTER = "production-cluster"
AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]


def group(desired: int, protected: bool = False):
    return parse_auto_scaling_group({
        "AutoScalingGroupName": "ecs-instance-asg", "MinSize": 0, "MaxSize": 10, "DesiredCapacity": desired,
        "AvailabilityZones": AZS, "NewInstancesProtectedFromScaleIn": protected,
        "LaunchTemplate": {"LaunchTemplateName": "ecs", "InstanceType": "t3.medium"}})


@pytest.fixture
def asgs():
    clock = FakeClock()
    store = StateStore(None, clock=clock)
    runtime = FakeRuntime(rng=random.Random(1))
    agent = ClusterAgent(store, runtime, clock, rng=random.Random(2))
    ensure_cluster(store, CLUSTER)
    return AutoScalingGroups(store, agent, clock, rng=random.Random(3)), runtime


async def test_desired_capacity_is_launched_balanced_over_azs(asgs):
    groups, _ = asgs
    groups.put(group(5), CLUSTER)
    await groups.reconcile_all()

    live = groups.instances("ecs-instance-asg")
    assert len(live) == 5
    assert sorted(Counter(ci.availability_zone for ci in live).values()) == [1, 2, 2]
    assert all(tag(ci, GROUP_TAG) == "ecs-instance-asg" for ci in live)
    assert all(ci.status == "ACTIVE" for ci in live)


async def test_a_dead_instance_is_replaced(asgs):
    groups, runtime = asgs
    groups.put(group(2), CLUSTER)
    await groups.reconcile_all()
    victim = groups.instances("ecs-instance-asg")[0]
    runtime.kill_instance(victim.ec2_instance_id)
    for event in runtime.drain_events():
        await groups.agent.handle_event(event)

    await groups.reconcile_all()

    live = groups.instances("ecs-instance-asg")
    assert len(live) == 2 and victim.container_instance_arn not in {ci.container_instance_arn for ci in live}


async def test_scale_in_takes_from_the_busiest_az_and_spares_protected_instances(asgs):
    groups, _ = asgs
    groups.put(group(4), CLUSTER)
    await groups.reconcile_all()
    asg = groups.store.get("auto_scaling_group", "ecs-instance-asg")
    asg.desired_capacity = 3
    groups.put(asg, CLUSTER)

    await groups.reconcile_all()

    live = groups.instances("ecs-instance-asg")
    assert len(live) == 3 and sorted(Counter(ci.availability_zone for ci in live).values()) == [1, 1, 1]


async def test_protected_instances_are_never_scaled_in(asgs):
    groups, _ = asgs
    groups.put(group(2, protected=True), CLUSTER)
    await groups.reconcile_all()
    asg = groups.store.get("auto_scaling_group", "ecs-instance-asg")
    asg.desired_capacity = 0
    groups.put(asg, CLUSTER)

    await groups.reconcile_all()

    live = groups.instances("ecs-instance-asg")
    assert len(live) == 2 and all(tag(ci, PROTECTED_TAG) == "true" for ci in live)
