"""GET /ecsemu/v1/scaling: both scaling dimensions of a cluster in one answer, read from the emulator process
(the default stack on the in-memory runtime, a fake clock, the API on an ephemeral port) while the service
outgrows its two instances and the capacity provider grows the Auto Scaling group."""

from __future__ import annotations

import random
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from emulator.api import Backend, make_app
from emulator.api.native import (
    APPLICATION_AUTO_SCALING,
    AUTO_SCALING,
    MAX_SCALING_EVENTS,
    RESERVATION_DEFINITION,
    SCALING_ACTIVITIES,
    SLOT_GAUGE_DEFINITION,
    add_native_routes,
)
from emulator.app import Emulator
from emulator.clock import FakeClock
from emulator.control import scaling_state
from emulator.control.services import update_service
from emulator.model.events import SCALING_ACTIVITY, SERVICE_EVENT
from emulator.runtime.fake import FakeRuntime
from emulator.scenario import load_default_stack

CLUSTER, SERVICE, GROUP, PROVIDER = "production-cluster", "web-app-service", "ecs-instance-asg", "ec2-capacity-provider"
RESOURCE_ID = f"service/{CLUSTER}/{SERVICE}"
BOOT_S = 120  # an instance registers this long after its launch


@pytest.fixture
async def emulator():
    clock = FakeClock(start=1_790_000_000.0)
    runtime = FakeRuntime(rng=random.Random(1), behave_like_sample_app=True,
                          launch_delay=lambda spec: clock.sleep(BOOT_S))
    emu = Emulator(load_default_stack(), state_dir=None, runtime=runtime, clock=clock, rng=random.Random(4),
                   api_port=0, listen=False)
    await emu.start()
    await clock.advance(600)  # two instances up and past their warm-up, four tasks RUNNING and healthy
    try:
        yield emu
    finally:
        await emu.stop(terminate=True)


async def scaling(emu: Emulator, status: int = 200, method: str = "GET", **query):
    """The route over real HTTP on the emulator's own port (aiohttp on this loop: nothing blocks it)."""
    url = f"http://127.0.0.1:{emu.api_port}/ecsemu/v1/scaling"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, params={k: str(v) for k, v in query.items()}) as response:
            assert response.status == status, await response.text()
            assert response.content_type == "application/json"
            return await response.json()


async def outgrow(emu: Emulator) -> None:
    """Eight tasks for two t3.medium (two 1-vCPU tasks each): four wait in PROVISIONING, and a minute later
    CapacityProviderReservation (2 + 2) / 2 = 200% has raised the group's desired capacity to 4."""
    update_service(emu.store, emu.clock, CLUSTER, SERVICE, desired_count=8, rng=random.Random(0))
    await emu.clock.advance(10)
    await emu.clock.advance(60)


async def test_an_idle_cluster_shows_its_group_provider_target_and_service_at_rest(emulator):
    answer = await scaling(emulator, cluster=CLUSTER)

    assert set(answer) == {"clusterName", "clusterArn", "awsTime", "timeScale", "autoScalingGroups",
                           "capacityProviders", "scalableTargets", "scalingActivities", "services",
                           "containerInstances", "events"}
    assert (answer["clusterName"], answer["awsTime"], answer["timeScale"]) == (CLUSTER, emulator.clock.now(), 1.0)
    [group] = answer["autoScalingGroups"]
    assert {k: group[k] for k in ("AutoScalingGroupName", "MinSize", "MaxSize", "DesiredCapacity", "InstanceType",
                                  "InServiceInstances", "LaunchingInstances", "ProtectedInstances",
                                  "CapacityProviderName")} == {
        "AutoScalingGroupName": GROUP, "MinSize": 2, "MaxSize": 10, "DesiredCapacity": 2,
        "InstanceType": "t3.medium", "InServiceInstances": 2, "LaunchingInstances": 0, "ProtectedInstances": 2,
        "CapacityProviderName": PROVIDER}
    assert all(i["ProtectedFromScaleIn"] and i["LifecycleState"] == "InService" for i in group["Instances"])

    [provider] = answer["capacityProviders"]
    assert provider["managedScaling"] == {"status": "ENABLED", "targetCapacity": 100, "minimumScalingStepSize": 1,
                                          "maximumScalingStepSize": 10, "instanceWarmupPeriod": 180}
    assert provider["managedTerminationProtection"] == "ENABLED" and provider["autoScalingGroupName"] == GROUP
    reservation = provider["capacityProviderReservation"]
    assert {k: reservation[k] for k in ("value", "m", "n", "step", "targetCapacity")} == {
        "value": 100.0, "m": 2, "n": 2, "step": 0, "targetCapacity": 100}
    # Which gauge is which is said in the answer itself.
    assert reservation["definition"] == RESERVATION_DEFINITION and "M / N" in RESERVATION_DEFINITION
    assert provider["taskSlotGauge"]["definition"] == SLOT_GAUGE_DEFINITION
    assert "seed article" in SLOT_GAUGE_DEFINITION and "not what ECS scales on" in SLOT_GAUGE_DEFINITION
    # Two t3.medium (2,048 CPU, 3,584 MiB) hold two 1 vCPU / 1 GiB tasks each: 4 slots, 4 running.
    assert provider["taskSlotGauge"]["services"] == [
        {"serviceName": SERVICE, "runningTasks": 4, "taskSlots": 4, "percent": 100.0}]

    [target] = answer["scalableTargets"]
    assert {k: target[k] for k in ("ResourceId", "ServiceName", "MinCapacity", "MaxCapacity", "DesiredCount")} == {
        "ResourceId": RESOURCE_ID, "ServiceName": SERVICE, "MinCapacity": 2, "MaxCapacity": 20, "DesiredCount": 4}
    [policy] = target["ScalingPolicies"]
    assert {k: policy[k] for k in ("PolicyName", "PolicyType", "TargetValue", "ScaleOutCooldown",
                                   "ScaleInCooldown", "DisableScaleIn")} == {
        "PolicyName": "cpu-tracking", "PolicyType": "TargetTrackingScaling", "TargetValue": 75.0,
        "ScaleOutCooldown": 60, "ScaleInCooldown": 300, "DisableScaleIn": False}
    assert policy["Metric"]["MetricName"] == "CPUUtilization"
    assert policy["Metric"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    high, low = policy["Alarms"]
    assert ("-AlarmHigh-" in high["AlarmName"], high["Threshold"], high["EvaluationPeriods"]) == (True, 75.0, 3)
    assert ("-AlarmLow-" in low["AlarmName"], low["Threshold"], low["EvaluationPeriods"]) == (True, 67.5, 15)
    states = emulator.autoscaler.states[RESOURCE_ID].alarm_states  # the autoscaler's own memory, as it is
    assert [a["StateValue"] for a in policy["Alarms"]] == [states.get(a["AlarmName"], "INSUFFICIENT_DATA")
                                                           for a in policy["Alarms"]]

    [service] = answer["services"]
    assert {k: service[k] for k in ("serviceName", "desiredCount", "runningCount", "pendingCount",
                                    "provisioningCount")} == {
        "serviceName": SERVICE, "desiredCount": 4, "runningCount": 4, "pendingCount": 0, "provisioningCount": 0}
    assert set(service["metrics"]) == {"CPUUtilization", "MemoryUtilization"}
    assert len(answer["containerInstances"]) == 2
    assert sum(len(i["tasks"]) for i in answer["containerInstances"]) == 4
    assert all(i["autoScalingGroupName"] == GROUP for i in answer["containerInstances"])


async def test_while_tasks_wait_in_provisioning_the_reservation_and_the_group_scale_out(emulator):
    await outgrow(emulator)
    answer = await scaling(emulator)  # no cluster: the only one

    [service] = answer["services"]
    assert (service["desiredCount"], service["runningCount"], service["pendingCount"],
            service["provisioningCount"]) == (8, 4, 4, 4)  # PROVISIONING counts as pending
    [group] = answer["autoScalingGroups"]
    assert (group["DesiredCapacity"], group["InServiceInstances"], group["LaunchingInstances"]) == (4, 2, 2)
    [provider] = answer["capacityProviders"]
    reservation = provider["capacityProviderReservation"]
    assert (reservation["value"], reservation["m"], reservation["n"], reservation["step"]) == (200.0, 4, 2, 2)
    high, low = provider["managedScalingAlarms"]
    assert (high["stateValue"], high["comparisonOperator"], high["threshold"]) == ("ALARM", "GreaterThanThreshold",
                                                                                    100.0)
    assert low["evaluationPeriods"] == 15
    # The article's gauge still reads 100%: every slot of the two instances is taken; only M/N sees the wait.
    assert provider["taskSlotGauge"]["services"][0]["percent"] == 100.0

    activities = answer["scalingActivities"]
    assert [a["StartTime"] for a in activities] == sorted((a["StartTime"] for a in activities), reverse=True)
    launches, change = activities[:2], activities[2]
    assert all(a["Source"] == AUTO_SCALING and a["StatusCode"] == "InProgress" and a["EndTime"] is None
               for a in launches)
    assert all("changing the desired capacity from 2 to 4." in a["Cause"]
               and "an instance was started in response to a difference between desired and actual capacity, "
                   "increasing the capacity from 2 to 4." in a["Cause"] for a in launches)
    assert (change["Description"], change["StatusCode"]) == ("Changing the desired capacity from 2 to 4.",
                                                            "Successful")
    assert change["Cause"].startswith("At ") and "in state ALARM triggered policy ECSManagedAutoScalingPolicy-" \
        in change["Cause"]
    # The two first launches (the stack's) are one Successful activity each, not two journal entries.
    first = [a for a in activities if a["StartTime"] == 1_790_000_000.0]
    assert len(first) == 2 and all(a["StatusCode"] == "Successful" and a["Description"].startswith(
        "Launching a new EC2 instance: i-") and a["EndTime"] == 1_790_000_000.0 + BOOT_S for a in first)

    events = answer["events"]
    assert 0 < len(events) <= 5 and [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert {e["kind"] for e in events} <= {SERVICE_EVENT, SCALING_ACTIVITY}
    assert events[0]["seq"] == max(e.seq for e in emulator.store.events(kinds=(SERVICE_EVENT, SCALING_ACTIVITY)))

    await emulator.clock.advance(BOOT_S + 60)  # the new instances register, the tasks land
    later = await scaling(emulator, cluster=CLUSTER, events=2)
    [group] = later["autoScalingGroups"]
    assert (group["DesiredCapacity"], group["InServiceInstances"], group["LaunchingInstances"]) == (4, 4, 0)
    assert later["services"][0]["runningCount"] == 8 and later["services"][0]["pendingCount"] == 0
    assert later["capacityProviders"][0]["capacityProviderReservation"]["value"] == 100.0
    assert later["capacityProviders"][0]["taskSlotGauge"]["services"][0] == {
        "serviceName": SERVICE, "runningTasks": 8, "taskSlots": 8, "percent": 100.0}
    done = [a for a in later["scalingActivities"] if "increasing the capacity from 2 to 4" in a["Cause"]]
    assert len(done) == 2 and all(a["StatusCode"] == "Successful" and a["EndTime"] is not None for a in done)
    assert len(later["events"]) == 2


async def test_application_auto_scaling_activities_are_merged_newest_first_and_capped(emulator):
    for count in (5, 6):
        scaling_state.set_desired_count(emulator.store, emulator.clock, RESOURCE_ID, count,
                                        cause=f"test cause {count}", region="us-east-1")
        await emulator.clock.advance(30)
    answer = await scaling(emulator)

    ours = [a for a in answer["scalingActivities"] if a["Source"] == APPLICATION_AUTO_SCALING]
    assert [(a["Description"], a["Cause"], a["StatusCode"]) for a in ours] == [
        ("Setting desired count to 6.", "test cause 6", "Successful"),
        ("Setting desired count to 5.", "test cause 5", "Successful")]
    assert ours[0]["ResourceId"] == RESOURCE_ID and ours[0]["StatusMessage"].startswith("Successfully set")
    starts = [a["StartTime"] for a in answer["scalingActivities"]]
    assert starts == sorted(starts, reverse=True)

    for count in range(7, 7 + SCALING_ACTIVITIES):  # more than the route shows
        scaling_state.set_desired_count(emulator.store, emulator.clock, RESOURCE_ID, 2 + count % 3,
                                        cause="churn", region="us-east-1")
        emulator.clock.tick(1)
    capped = await scaling(emulator)
    assert len(capped["scalingActivities"]) == SCALING_ACTIVITIES
    assert all(a["Cause"] == "churn" for a in capped["scalingActivities"])


async def test_bad_requests_answer_as_aws_does(emulator):
    missing = await scaling(emulator, 400, cluster="no-such-cluster")
    assert missing["__type"].endswith("ClusterNotFoundException")
    bad = await scaling(emulator, 400, events=MAX_SCALING_EVENTS + 1)
    assert bad["__type"].endswith("InvalidParameterException") and "events" in bad["message"]
    wrong_method = await scaling(emulator, 405, method="POST")
    assert "GET" in wrong_method["message"]
    none = await scaling(emulator, events=0)
    assert none["events"] == []


@dataclass(frozen=True)
class Sample:
    timestamp: float
    value: float


class OneMetric:
    """A metrics store with one CPUUtilization datapoint for the service, and nothing else."""

    def __init__(self, at: float) -> None:
        self.at, self.asked = at, []

    def latest(self, namespace, name, dims):
        self.asked.append((namespace, name, dict(dims)))
        return Sample(self.at, 81.25) if name == "CPUUtilization" else None


class BrokenMetrics:
    def latest(self, namespace, name, dims):
        raise RuntimeError("being rebuilt")


async def serve(emu: Emulator, extras: dict) -> TestClient:
    """The same store and clock behind a second API app whose Backend has only these extras."""
    backend = Backend(emu.store, emu.clock, emu.agent, "us-east-1", random.Random(0), extras=extras)
    app = make_app(backend)
    add_native_routes(app, backend)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_service_metrics_are_shown_when_there_and_tolerated_when_not(emulator):
    metrics = OneMetric(emulator.clock.now() - 30)
    client = await serve(emulator, {"metrics": metrics})
    try:
        answer = await (await client.get("/ecsemu/v1/scaling")).json()
    finally:
        await client.close()
    assert answer["services"][0]["metrics"] == {
        "CPUUtilization": {"value": 81.25, "timestamp": emulator.clock.now() - 30}, "MemoryUtilization": None}
    assert ("AWS/ECS", "CPUUtilization", {"ClusterName": CLUSTER, "ServiceName": SERVICE}) in metrics.asked

    # No scaling loops and a metrics store that fails: the route still answers, with nothing to report.
    client = await serve(emulator, {"metrics": BrokenMetrics()})
    try:
        response = await client.get("/ecsemu/v1/scaling", params={"cluster": CLUSTER})
        assert response.status == 200, await response.text()
        answer = await response.json()
    finally:
        await client.close()
    assert answer["services"][0]["metrics"] == {"CPUUtilization": None, "MemoryUtilization": None}
    provider = answer["capacityProviders"][0]
    assert provider["capacityProviderReservation"] is None
    assert {a["stateValue"] for a in provider["managedScalingAlarms"]} == {"INSUFFICIENT_DATA"}
    policy = answer["scalableTargets"][0]["ScalingPolicies"][0]
    assert {a["StateValue"] for a in policy["Alarms"]} == {"INSUFFICIENT_DATA"} and policy["LastEvaluation"] is None
    assert answer["autoScalingGroups"][0]["InServiceInstances"] == 2
