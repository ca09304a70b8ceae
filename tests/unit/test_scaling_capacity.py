"""Cluster auto scaling: CapacityProviderReservation, the ASG's new size, warm-up and who may be terminated."""

from __future__ import annotations

import pytest

from emulator.model.instance_types import get_instance_type
from emulator.model.scaling import (DISABLED, ENABLED, AutoScalingGroup, AutoScalingGroupProvider, CapacityProvider,
                                    LaunchTemplateSpecification, ManagedScaling)
from emulator.scaling.alarms import ALARM, GREATER_THAN, LESS_THAN, OK
from emulator.scaling.capacity import (InstanceShape, InstanceView, Reservation, TaskNeed,
                                       capacity_provider_reservation, desired_capacity, instances_needed,
                                       managed_scaling_alarms, plan_managed_scaling, reservation_percent,
                                       scaling_step, slot_utilization, terminable_instances)

NOW = 1_795_684_620.0  # 2026-11-26 09:17:00 UTC
MEDIUM = InstanceShape.of(get_instance_type("t3.medium"))   # 2048 CPU, 3584 MiB registered
SMALL = InstanceShape.of(get_instance_type("t3.small"))     # 2048 CPU, 1792 MiB
XLARGE = InstanceShape.of(get_instance_type("t3.xlarge"))   # 4096 CPU, 15872 MiB
WEB = TaskNeed(1024, 1024)  # the seed's task: 1 vCPU, 1 GiB


def managed(target=100, min_step=1, max_step=10000, warmup=300) -> ManagedScaling:
    return ManagedScaling(ENABLED, target, min_step, max_step, warmup)


def provider(target=100, warmup=180, protection=ENABLED, status=ENABLED, max_step=10) -> CapacityProvider:
    scaling = ManagedScaling(status, target, 1, max_step, warmup)
    return CapacityProvider("ecs-ec2-capacity-provider",
                            AutoScalingGroupProvider("arn:aws:autoscaling:...", scaling, protection))


def asg(desired=2, min_size=2, max_size=10) -> AutoScalingGroup:
    return AutoScalingGroup("ecs-instance-asg", LaunchTemplateSpecification(instance_type="t3.medium"),
                            min_size, max_size, desired, availability_zones=["us-east-1a", "us-east-1b"])


def instance(name, tasks=1, launched=NOW - 3600, protected=False, az="us-east-1a") -> InstanceView:
    return InstanceView(name, 2048, 3584, 2048 - 1024 * tasks, 3584 - 1024 * tasks, tasks, launched, protected, az)


def busy(count, tasks=2) -> list[InstanceView]:
    return [instance(f"i-{n}", tasks) for n in range(count)]


# --- the metric ----------------------------------------------------------------------

@pytest.mark.parametrize("m, n, value", [
    (3, 4, 75.0),    # one of four instances is empty
    (1, 0, 200.0),   # demand and no instance at all
    (0, 0, 100.0),   # nothing needed, nothing running
    (4, 4, 100.0),
    (4, 2, 200.0),
], ids=["3of4", "M>0,N=0", "M=0,N=0", "full", "double"])
def test_capacity_provider_reservation_formula(m, n, value):
    assert reservation_percent(m, n) == value


@pytest.mark.parametrize("running, slots, percent", [
    (12, 16, 75.0), (14, 16, 87.5), (8, 16, 50.0), (4, 8, 50.0), (0, 0, 0.0),
], ids=["seed-75", "seed-87.5", "seed-09:21", "seed-09:00", "empty"])
def test_seed_slot_utilization(running, slots, percent):
    assert slot_utilization(running, slots) == percent


@pytest.mark.parametrize("tasks, shapes, count, excluded", [
    ([WEB] * 4, [MEDIUM], 2, 0),                                  # two 1-vCPU tasks per t3.medium
    ([WEB] * 5, [MEDIUM], 3, 0),
    ([WEB] * 8, [MEDIUM, XLARGE], 2, 0),                          # counted on the largest type
    ([TaskNeed(1024, 2048)] * 2, [SMALL, MEDIUM], 0, 2),          # doesn't fit the smallest: excluded
    ([TaskNeed(4096, 1024)], [MEDIUM], 0, 1),
    ([TaskNeed(1024, 1024, frozenset({5000}))] * 4, [MEDIUM], 4, 0),      # the seed's hostPort 5000
    ([TaskNeed(256, 256, group="service:web", distinct_instance=True)] * 3, [MEDIUM], 3, 0),
    ([TaskNeed(1536, 512)] * 2 + [TaskNeed(512, 512)] * 2, [MEDIUM], 2, 0),  # big first, small fill the gaps
    ([TaskNeed(0, 0)] * 3, [MEDIUM], 1, 0),
], ids=["seed", "odd", "largest-type", "smallest-guard", "too-big", "ports", "distinct", "mixed", "zero-size"])
def test_instances_needed_binpacks_provisioning_tasks(tasks, shapes, count, excluded):
    needed = instances_needed(tasks, shapes)
    assert (needed.count, needed.excluded) == (count, excluded)


@pytest.mark.parametrize("count, min_step, max_step, step", [
    (1, 2, 10, 2),      # below the minimum: the minimum
    (5, 1, 10, 5),
    (15, 1, 10, 10),    # above the maximum: the maximum
], ids=["min-step", "estimate", "max-step"])
def test_scaling_step(count, min_step, max_step, step):
    assert scaling_step(count, managed(min_step=min_step, max_step=max_step)) == step


@pytest.mark.parametrize("instances, provisioning, settings, expected", [
    (busy(2), [WEB] * 4, managed(), Reservation(200.0, 4, 2, 2, 0)),
    (busy(3) + [instance("i-empty", 0)], [], managed(), Reservation(75.0, 3, 4, 0, 0)),
    ([], [WEB], managed(), Reservation(200.0, 1, 0, 1, 0)),
    ([], [], managed(), Reservation(100.0, 0, 0, 0, 0)),
    (busy(2), [TaskNeed(8192, 1024)], managed(target=90), Reservation(90.0, 2, 2, 0, 1)),
    (busy(2), [WEB] * 8, managed(max_step=1), Reservation(150.0, 3, 2, 1, 0)),
    (busy(4), [WEB], managed(min_step=2), Reservation(150.0, 6, 4, 2, 0)),
], ids=["seed-09:16", "one-empty", "from-zero", "nothing", "all-excluded", "max-step", "min-step"])
def test_reservation_from_instances_and_provisioning_tasks(instances, provisioning, settings, expected):
    assert capacity_provider_reservation(instances, provisioning, [MEDIUM], settings) == expected


def test_daemon_only_instances_count_as_empty():
    # The caller counts only non-daemon tasks: an instance running only daemons has running_tasks 0.
    cluster = busy(1) + [instance("i-daemons-only", tasks=0)]
    assert capacity_provider_reservation(cluster, [], [MEDIUM], managed()).value == 50.0


@pytest.mark.parametrize("m, target, desired", [(4, 100, 4), (4, 80, 5), (9, 90, 10), (1, 100, 1)])
def test_desired_capacity_keeps_spare_for_target_below_100(m, target, desired):
    assert desired_capacity(Reservation(0.0, m, m), target) == desired


# --- the ASG policy ----------------------------------------------------------------

def test_scale_out_with_the_asg_activity_cause():
    reservation = capacity_provider_reservation(busy(2), [WEB] * 4, [MEDIUM], managed())
    decision = plan_managed_scaling(provider(), asg(), reservation, busy(2), ALARM, OK, NOW, "production-cluster")
    alarms = managed_scaling_alarms(provider(), "production-cluster", "ecs-instance-asg")
    assert (decision.capacity, decision.previous) == (4, 2)
    assert decision.cause == (f"At 2026-11-26T09:17:00Z a monitor alarm {alarms.high.alarm_name} in state ALARM "
                              f"triggered policy {alarms.policy_name} changing the desired capacity from 2 to 4.")
    assert alarms.policy_name.startswith("ECSManagedAutoScalingPolicy-")


def test_scale_out_is_clamped_to_max_size():
    reservation = capacity_provider_reservation(busy(2), [WEB] * 20, [MEDIUM], managed())
    decision = plan_managed_scaling(provider(), asg(max_size=5), reservation, busy(2), ALARM, OK, NOW)
    assert decision.capacity == 5


@pytest.mark.parametrize("age, expected", [(100, None), (179, None), (180, 6)], ids=["young", "almost", "warm"])
def test_no_further_scale_out_while_an_instance_warms_up(age, expected):
    cluster = busy(3) + [instance("i-new", tasks=1, launched=NOW - age)]
    reservation = capacity_provider_reservation(cluster, [WEB] * 4, [MEDIUM], managed())
    decision = plan_managed_scaling(provider(warmup=180), asg(desired=4), reservation, cluster, ALARM, OK, NOW)
    assert decision.capacity == expected
    if expected is None:
        assert decision.reason == "waiting for 1 instance(s) to pass the instanceWarmupPeriod (180 s)"


def test_scale_in_only_terminates_empty_instances_with_managed_termination_protection():
    cluster = busy(2) + [instance("i-empty-1", 0), instance("i-empty-2", 0)]
    reservation = capacity_provider_reservation(cluster, [], [MEDIUM], managed())
    assert reservation.value == 50.0
    decision = plan_managed_scaling(provider(), asg(desired=4, min_size=1), reservation, cluster, OK, ALARM, NOW)
    assert decision.capacity == 3                    # one step down this minute (less than half the group)
    assert decision.terminate == ("i-empty-1",)
    second = plan_managed_scaling(provider(), asg(desired=3, min_size=1), reservation, cluster[:2] + cluster[3:],
                                  OK, ALARM, NOW + 60)
    assert (second.capacity, second.terminate) == (2, ("i-empty-2",))


def test_scale_in_respects_min_size_and_protection():
    cluster = busy(2) + [instance("i-empty", 0, protected=True)]
    reservation = capacity_provider_reservation(cluster, [], [MEDIUM], managed())
    decision = plan_managed_scaling(provider(), asg(desired=3, min_size=1), reservation, cluster, OK, ALARM, NOW)
    assert decision.capacity is None
    assert decision.reason == "no instance may be terminated (protected or running tasks)"
    at_min = plan_managed_scaling(provider(), asg(desired=3, min_size=3), reservation, busy(2) +
                                  [instance("i-empty", 0)], OK, ALARM, NOW)
    assert at_min.capacity is None


@pytest.mark.parametrize("protection, expected", [
    (True, ["i-c-empty", "i-a-empty"]),                 # only empty ones, most crowded AZ first
    (False, ["i-c-empty", "i-c-busy", "i-a-empty"]),    # tasks or not: the ASG's default policy
], ids=["managed", "unmanaged"])
def test_terminable_instances(protection, expected):
    cluster = [instance("i-a-empty", 0, az="us-east-1a"), instance("i-a-guarded", 0, protected=True, az="us-east-1a"),
               instance("i-c-empty", 0, launched=NOW - 3500, az="us-east-1c"),
               instance("i-c-busy", 2, launched=NOW - 1000, az="us-east-1c"),
               instance("i-c-guarded", 1, protected=True, az="us-east-1c")]
    assert [i.instance_id for i in terminable_instances(cluster, protection, NOW)] == expected


def test_a_scale_out_request_wins_over_scale_in():
    cluster = busy(2) + [instance("i-empty", 0)]
    reservation = capacity_provider_reservation(cluster, [WEB] * 2, [MEDIUM], managed())
    decision = plan_managed_scaling(provider(), asg(desired=3), reservation, cluster, ALARM, ALARM, NOW)
    assert decision.capacity == 4 and not decision.terminate


def test_managed_scaling_disabled_does_nothing():
    decision = plan_managed_scaling(provider(status=DISABLED, protection=DISABLED), asg(),
                                    Reservation(200.0, 4, 2, 2), busy(2), ALARM, OK, NOW)
    assert decision.capacity is None and decision.reason == "managed scaling is DISABLED"


def test_managed_scaling_alarms_shapes():
    alarms = managed_scaling_alarms(provider(target=80), "production-cluster", "ecs-instance-asg")
    high, low = alarms.high, alarms.low
    assert (high.threshold, high.comparison_operator, high.evaluation_periods) == (80.0, GREATER_THAN, 1)
    assert (low.threshold, low.comparison_operator, low.evaluation_periods) == (80.0, LESS_THAN, 15)
    assert (high.namespace, high.metric_name) == ("AWS/ECS/ManagedScaling", "CapacityProviderReservation")
    assert high.dimensions == (("CapacityProviderName", "ecs-ec2-capacity-provider"),
                               ("ClusterName", "production-cluster"))
    assert high.alarm_name.startswith("TargetTracking-ecs-instance-asg-AlarmHigh-")


def test_seed_timeline_instances_follow_the_tasks():
    """09:16 desired 4 -> 8 leaves 4 tasks PROVISIONING; 09:17 the ASG goes 2 -> 4; 09:21 all placed, 100%."""
    reservation = capacity_provider_reservation(busy(2), [WEB] * 4, [MEDIUM], managed())
    assert reservation.value == 200.0
    decision = plan_managed_scaling(provider(), asg(), reservation, busy(2), ALARM, OK, NOW)
    assert decision.capacity == 4
    joined = busy(2) + [instance("i-new-0", 2, launched=NOW + 60), instance("i-new-1", 2, launched=NOW + 60)]
    settled = capacity_provider_reservation(joined, [], [MEDIUM], managed())
    assert settled.value == 100.0
    assert plan_managed_scaling(provider(), asg(desired=4), settled, joined, OK, OK, NOW + 240).capacity is None
    assert slot_utilization(8, 4 * 4) == 50.0  # the seed's own gauge for the same moment
