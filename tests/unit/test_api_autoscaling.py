"""Application Auto Scaling (`AnyScaleFrontendService`) through a real boto3 client against the in-process endpoint.

Scalable targets, scaling policies and scaling activities of ECS services:
AWS's shapes and words, and every refused call changes nothing (the
snapshot covers the scaling kinds, the services and the journal).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
import botocore.config
import pytest
from aiohttp import ClientSession
from botocore.exceptions import ClientError

from emulator.control import scaling_state
from emulator.model.state import StateStore, codec_for
from test_api_harness import CLUSTER, REGION, Endpoint, endpoint, web_app  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"
DIMENSION = "ecs:service:DesiredCount"
RESOURCE = f"service/{CLUSTER}/web"
SCALING_KINDS = ("cluster", "service", "task", "scalable_target", "scaling_policy", "scaling_activity",
                 "capacity_provider", "auto_scaling_group")
CPU_TRACKING = {"TargetValue": 75.0, "PredefinedMetricSpecification": {
    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}, "ScaleOutCooldown": 60, "ScaleInCooldown": 60}
SERVICE_LINKED_ROLE = (f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
                       "AWSServiceRoleForApplicationAutoScaling_ECSService")


# --- helpers the other scaling API tests share ------------------------------------------


def snapshot(store: StateStore) -> dict[str, Any]:
    """Every object of the scaling kinds (and the services they scale), and the journal position."""
    return {"last_seq": store.last_seq,
            **{kind: {key: json.dumps(codec_for(kind).dump(store.get(kind, key)), sort_keys=True)
                      for key in store.keys(kind)} for kind in SCALING_KINDS}}


def aas_client(ep: Endpoint):
    if getattr(ep, "_aas", None) is None:
        ep._aas = boto3.client(
            "application-autoscaling", endpoint_url=ep.url, region_name=REGION, aws_access_key_id="x",
            aws_secret_access_key="x",
            config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=30))
    return ep._aas


async def aas(ep: Endpoint, operation: str, **params: Any) -> dict[str, Any]:
    """One Application Auto Scaling call (snake_case name), in a thread so the endpoint keeps serving."""
    response = await asyncio.to_thread(getattr(aas_client(ep), operation), **params)
    response.pop("ResponseMetadata", None)
    return response


async def aas_error(ep: Endpoint, operation: str, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        await aas(ep, operation, **params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


async def add_service(ep: Endpoint, name: str = "web", desired: int = 2, **extra: Any) -> None:
    if not ep.store.list("task_definition"):
        await ep.call("register_task_definition", **web_app())
    await ep.call("create_service", cluster=CLUSTER, serviceName=name, taskDefinition="web-app",
                  desiredCount=desired, **extra)


def target(resource_id: str = RESOURCE, **extra: Any) -> dict[str, Any]:
    return {"ServiceNamespace": "ecs", "ResourceId": resource_id, "ScalableDimension": DIMENSION, **extra}


def desired_count(ep: Endpoint, name: str = "web") -> int:
    return next(s.desired_count for s in ep.store.list("service") if s.service_name == name)


@pytest.fixture
async def web(endpoint):
    await add_service(endpoint)
    return endpoint


# --- RegisterScalableTarget / DescribeScalableTargets -----------------------------------


async def test_register_then_describe_a_scalable_target(web):
    registered = await aas(web, "register_scalable_target", **target(MinCapacity=2, MaxCapacity=10))
    arn = registered["ScalableTargetARN"]
    assert arn.startswith(f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/")

    (shown,) = (await aas(web, "describe_scalable_targets", ServiceNamespace="ecs"))["ScalableTargets"]
    assert shown["ScalableTargetARN"] == arn
    assert (shown["ServiceNamespace"], shown["ResourceId"], shown["ScalableDimension"]) == ("ecs", RESOURCE, DIMENSION)
    assert (shown["MinCapacity"], shown["MaxCapacity"]) == (2, 10)
    assert shown["RoleARN"] == SERVICE_LINKED_ROLE
    assert shown["SuspendedState"] == {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                       "ScheduledScalingSuspended": False}
    assert shown["CreationTime"].timestamp() == web.clock.now()
    assert "Tags" not in shown
    (event,) = web.store.events(kinds=scaling_state.SCALABLE_TARGET_REGISTERED)
    assert event.resource == arn and "MinCapacity 2, MaxCapacity 10" in event.message


async def test_registering_again_updates_only_what_is_given(web):
    first = await aas(web, "register_scalable_target", **target(MinCapacity=2, MaxCapacity=10,
                                                                  Tags={"team": "web"}))
    created = web.clock.now()
    await web.clock.advance(60)
    again = await aas(web, "register_scalable_target", **target(
        MaxCapacity=6, SuspendedState={"DynamicScalingInSuspended": True}))
    assert again == first  # same ARN

    (shown,) = (await aas(web, "describe_scalable_targets", ServiceNamespace="ecs"))["ScalableTargets"]
    assert (shown["MinCapacity"], shown["MaxCapacity"]) == (2, 6)
    assert shown["SuspendedState"] == {"DynamicScalingInSuspended": True, "DynamicScalingOutSuspended": False,
                                       "ScheduledScalingSuspended": False}
    assert shown["CreationTime"].timestamp() == created
    stored = scaling_state.get_scalable_target(web.store, RESOURCE)
    assert stored.tags == {"team": "web"} and stored.suspended_state.dynamic_scaling_in_suspended


async def test_registering_moves_the_desired_count_into_the_range(web):
    assert desired_count(web) == 2
    await aas(web, "register_scalable_target", **target(MinCapacity=3, MaxCapacity=8))
    assert desired_count(web) == 3
    await aas(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=2))
    assert desired_count(web) == 2

    activities = (await aas(web, "describe_scaling_activities", ServiceNamespace="ecs",
                            ResourceId=RESOURCE))["ScalingActivities"]
    assert [(a["Description"], a["Cause"], a["StatusCode"]) for a in activities] == [
        ("Setting desired count to 2.", "maximum capacity was set to 2", "Successful"),
        ("Setting desired count to 3.", "minimum capacity was set to 3", "Successful"),
    ]
    assert activities[0]["StatusMessage"] == ("Successfully set desired count to 2. Change successfully fulfilled "
                                              "by ecs.")
    (service,) = (await web.call("describe_services", cluster=CLUSTER, services=["web"]))["services"]
    assert service["desiredCount"] == 2
    assert [e.resource for e in web.store.events(kinds=scaling_state.SCALING_ACTIVITY)] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/web"] * 2


@pytest.mark.parametrize("params, code, message", [
    (target(f"service/{CLUSTER}/ghost", MinCapacity=1, MaxCapacity=2), "ValidationException",
     f"ECS service doesn't exist: service/{CLUSTER}/ghost"),
    (target("service/nowhere/web", MinCapacity=1, MaxCapacity=2), "ValidationException",
     "ECS service doesn't exist: service/nowhere/web"),
    (target(MinCapacity=1), "ValidationException",
     "MinCapacity and MaxCapacity are required when registering a new scalable target."),
    (target(MinCapacity=5, MaxCapacity=2), "ValidationException",
     "Minimum capacity cannot be greater than maximum capacity"),
    (target(MinCapacity=-1, MaxCapacity=2), "ValidationException",
     "1 validation error detected: Value '-1' at 'minCapacity' failed to satisfy constraint: Member must have "
     "value greater than or equal to 0"),
    ({**target(MinCapacity=1, MaxCapacity=2), "ServiceNamespace": "dynamodb"}, "ValidationException",
     "Unsupported service namespace 'dynamodb': this emulator scales ECS services (ecs)."),
    ({**target(MinCapacity=1, MaxCapacity=2), "ScalableDimension": "dynamodb:table:ReadCapacityUnits"},
     "ValidationException", "Unsupported scalable dimension 'dynamodb:table:ReadCapacityUnits' for namespace ecs; "
                            "use ecs:service:DesiredCount."),
    (target("table/web", MinCapacity=1, MaxCapacity=2), "ValidationException",
     "Unsupported resource ID 'table/web': use service/<cluster-name>/<service-name>."),
], ids=["no-service", "no-cluster", "new-without-max", "min-above-max", "negative", "namespace", "dimension",
        "resource-id"])
async def test_refused_registrations_change_nothing(web, params, code, message):
    before = snapshot(web.store)
    assert await aas_error(web, "register_scalable_target", **params) == (code, message)
    assert snapshot(web.store) == before


async def test_an_update_that_would_invert_the_range_changes_nothing(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=2, MaxCapacity=4))
    before = snapshot(web.store)
    code, message = await aas_error(web, "register_scalable_target", **target(MinCapacity=5))
    assert (code, message) == ("ValidationException", "Minimum capacity cannot be greater than maximum capacity")
    assert snapshot(web.store) == before


async def test_a_draining_service_cannot_be_registered(web):
    await web.call("delete_service", cluster=CLUSTER, service="web", force=True)
    before = snapshot(web.store)
    assert await aas_error(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=2)) == (
        "ValidationException", f"ECS service doesn't exist: {RESOURCE}")
    assert snapshot(web.store) == before


async def test_describe_scalable_targets_filters_and_pages(web):
    for name in ("api", "worker"):
        await add_service(web, name, desired=1)
    for name in ("web", "api", "worker"):
        await aas(web, "register_scalable_target", **target(f"service/{CLUSTER}/{name}", MinCapacity=1,
                                                             MaxCapacity=4))

    first = await aas(web, "describe_scalable_targets", ServiceNamespace="ecs", MaxResults=2)
    second = await aas(web, "describe_scalable_targets", ServiceNamespace="ecs", MaxResults=2,
                       NextToken=first["NextToken"])
    assert [t["ResourceId"] for t in first["ScalableTargets"] + second["ScalableTargets"]] == [
        f"service/{CLUSTER}/{n}" for n in ("web", "api", "worker")]
    assert "NextToken" not in second

    paginator = aas_client(web).get_paginator("describe_scalable_targets")
    pages = await asyncio.to_thread(lambda: [t["ResourceId"] for p in paginator.paginate(
        ServiceNamespace="ecs", PaginationConfig={"PageSize": 1}) for t in p["ScalableTargets"]])
    assert len(pages) == 3

    chosen = await aas(web, "describe_scalable_targets", ServiceNamespace="ecs", ScalableDimension=DIMENSION,
                       ResourceIds=[f"service/{CLUSTER}/api", f"service/{CLUSTER}/ghost"])
    assert [t["ResourceId"] for t in chosen["ScalableTargets"]] == [f"service/{CLUSTER}/api"]

    before = snapshot(web.store)
    assert (await aas_error(web, "describe_scalable_targets", ServiceNamespace="ecs", NextToken="garbage"))[0] == (
        "InvalidNextTokenException")
    assert await aas_error(web, "describe_scalable_targets", ServiceNamespace="ecs", MaxResults=51) == (
        "ValidationException", "1 validation error detected: Value '51' at 'maxResults' failed to satisfy "
                               "constraint: Member must have value less than or equal to 50")
    assert (await aas_error(web, "describe_scalable_targets", ServiceNamespace="rds"))[0] == "ValidationException"
    assert snapshot(web.store) == before


# --- DeregisterScalableTarget -----------------------------------------------------------


async def test_deregistering_removes_the_target_and_its_policies(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=3, MaxCapacity=4))
    await aas(web, "put_scaling_policy", PolicyName="cpu75", PolicyType="TargetTrackingScaling",
              TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target())

    assert await aas(web, "deregister_scalable_target", **target()) == {}
    assert (await aas(web, "describe_scalable_targets", ServiceNamespace="ecs"))["ScalableTargets"] == []
    assert (await aas(web, "describe_scaling_policies", ServiceNamespace="ecs"))["ScalingPolicies"] == []
    activities = await aas(web, "describe_scaling_activities", ServiceNamespace="ecs", ResourceId=RESOURCE)
    assert len(activities["ScalingActivities"]) == 1  # the history outlives the target
    assert [e.kind for e in web.store.events(kinds=(scaling_state.SCALING_POLICY_DELETED,
                                                    scaling_state.SCALABLE_TARGET_DEREGISTERED))] == [
        scaling_state.SCALING_POLICY_DELETED, scaling_state.SCALABLE_TARGET_DEREGISTERED]

    before = snapshot(web.store)
    assert await aas_error(web, "deregister_scalable_target", **target()) == (
        "ObjectNotFoundException", f"No scalable target found for service namespace: ecs, resource ID: {RESOURCE}, "
                                   f"scalable dimension: {DIMENSION}")
    assert (await aas_error(web, "deregister_scalable_target", **{**target(), "ServiceNamespace": "emr"}))[0] == (
        "ValidationException")
    assert snapshot(web.store) == before


# --- PutScalingPolicy / DescribeScalingPolicies / DeleteScalingPolicy --------------------


async def test_a_target_tracking_policy_creates_its_two_alarms(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=2, MaxCapacity=10))
    put = await aas(web, "put_scaling_policy", PolicyName="cpu75", PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target())
    assert put["PolicyARN"].startswith(f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:")
    assert put["PolicyARN"].endswith(f":resource/ecs/{RESOURCE}:policyName/cpu75")
    high, low = put["Alarms"]
    assert high["AlarmName"].startswith(f"TargetTracking-{RESOURCE}-AlarmHigh-")
    assert low["AlarmName"].startswith(f"TargetTracking-{RESOURCE}-AlarmLow-")
    for alarm in (high, low):
        assert alarm["AlarmARN"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm['AlarmName']}"

    (policy,) = (await aas(web, "describe_scaling_policies", ServiceNamespace="ecs"))["ScalingPolicies"]
    assert (policy["PolicyARN"], policy["PolicyName"], policy["PolicyType"]) == (
        put["PolicyARN"], "cpu75", "TargetTrackingScaling")
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (config["TargetValue"], config["ScaleOutCooldown"], config["ScaleInCooldown"]) == (75.0, 60, 60)
    assert config["PredefinedMetricSpecification"] == {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    assert policy["Alarms"] == put["Alarms"]
    assert policy["CreationTime"].timestamp() == web.clock.now()


async def test_putting_a_policy_again_replaces_it_in_place(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=2, MaxCapacity=10))
    first = await aas(web, "put_scaling_policy", PolicyName="cpu75", PolicyType="TargetTrackingScaling",
                      TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target())
    created = web.clock.now()
    await web.clock.advance(120)
    second = await aas(web, "put_scaling_policy", PolicyName="cpu75", PolicyType="TargetTrackingScaling",
                       TargetTrackingScalingPolicyConfiguration={**CPU_TRACKING, "TargetValue": 50.0,
                                                                 "DisableScaleIn": True}, **target())
    assert second["PolicyARN"] == first["PolicyARN"]
    assert [a["AlarmName"] for a in second["Alarms"]] == [first["Alarms"][0]["AlarmName"]]  # scale-in disabled

    (policy,) = (await aas(web, "describe_scaling_policies", ServiceNamespace="ecs"))["ScalingPolicies"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 50.0
    assert policy["CreationTime"].timestamp() == created
    assert [e.message for e in web.store.events(kinds=scaling_state.SCALING_POLICY_PUT)] == [
        f"Created TargetTrackingScaling policy cpu75 on {RESOURCE}.",
        f"Updated TargetTrackingScaling policy cpu75 on {RESOURCE}."]


async def test_a_step_scaling_policy_has_no_alarms_of_its_own(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=10))
    put = await aas(web, "put_scaling_policy", PolicyName="step-out", **target(), StepScalingPolicyConfiguration={
        "AdjustmentType": "ChangeInCapacity", "Cooldown": 120, "MetricAggregationType": "Average",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 15, "ScalingAdjustment": 1},
                            {"MetricIntervalLowerBound": 15, "ScalingAdjustment": 3}]})
    assert "Alarms" not in put
    (policy,) = (await aas(web, "describe_scaling_policies", ServiceNamespace="ecs",
                           PolicyNames=["step-out", "ghost"]))["ScalingPolicies"]
    assert policy["PolicyType"] == "StepScaling"  # PutScalingPolicy's default type
    assert policy["StepScalingPolicyConfiguration"]["StepAdjustments"][1] == {
        "MetricIntervalLowerBound": 15.0, "ScalingAdjustment": 3}
    assert policy["Alarms"] == []


@pytest.mark.parametrize("params, code, message", [
    ({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling",
      "TargetTrackingScalingPolicyConfiguration": CPU_TRACKING, **target(f"service/{CLUSTER}/api")},
     "ObjectNotFoundException", f"No scalable target registered for service namespace: ecs, resource ID: "
                                f"service/{CLUSTER}/api, scalable dimension: {DIMENSION}"),
    ({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", **target()}, "ValidationException",
     "TargetTrackingScalingPolicyConfiguration is required for PolicyType TargetTrackingScaling."),
    ({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", **target(),
      "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 70.0, "PredefinedMetricSpecification": {
          "PredefinedMetricType": "DynamoDBReadCapacityUtilization"}}}, "ValidationException",
     "Unsupported predefined metric type 'DynamoDBReadCapacityUtilization' for namespace ecs; valid: "
     "ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization, ALBRequestCountPerTarget."),
    ({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", **target(),
      "TargetTrackingScalingPolicyConfiguration": {**CPU_TRACKING, "ScaleInCooldown": -5}}, "ValidationException",
     "1 validation error detected: Value '-5' at 'targetTrackingScalingPolicyConfiguration.ScaleInCooldown' "
     "failed to satisfy constraint: Member must have value greater than or equal to 0"),
    ({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", **target(), "ServiceNamespace": "dynamodb",
      "TargetTrackingScalingPolicyConfiguration": CPU_TRACKING}, "ValidationException",
     "Unsupported service namespace 'dynamodb': this emulator scales ECS services (ecs)."),
], ids=["no-target", "no-configuration", "foreign-metric", "negative-cooldown", "namespace"])
async def test_refused_policies_change_nothing(web, params, code, message):
    await aas(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=3))
    before = snapshot(web.store)
    assert await aas_error(web, "put_scaling_policy", **params) == (code, message)
    assert snapshot(web.store) == before


async def test_too_many_policies_on_one_target_is_a_limit(web, monkeypatch):
    monkeypatch.setattr(scaling_state, "MAX_POLICIES_PER_TARGET", 2)
    await aas(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=3))
    for name in ("a", "b"):
        await aas(web, "put_scaling_policy", PolicyName=name, PolicyType="TargetTrackingScaling",
                  TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target())
    before = snapshot(web.store)
    code, message = await aas_error(web, "put_scaling_policy", PolicyName="c", PolicyType="TargetTrackingScaling",
                                    TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target())
    assert code == "LimitExceededException" and "maximum number of scaling policies (2)" in message
    assert snapshot(web.store) == before
    # Replacing an existing policy is not a new one.
    await aas(web, "put_scaling_policy", PolicyName="a", PolicyType="TargetTrackingScaling",
              TargetTrackingScalingPolicyConfiguration={**CPU_TRACKING, "TargetValue": 60.0}, **target())


async def test_delete_scaling_policy(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=3))
    for name in ("cpu", "memory"):
        await aas(web, "put_scaling_policy", PolicyName=name, PolicyType="TargetTrackingScaling",
                  TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target())
    assert await aas(web, "delete_scaling_policy", PolicyName="cpu", **target()) == {}
    listed = (await aas(web, "describe_scaling_policies", ServiceNamespace="ecs", ResourceId=RESOURCE))
    assert [p["PolicyName"] for p in listed["ScalingPolicies"]] == ["memory"]

    before = snapshot(web.store)
    assert await aas_error(web, "delete_scaling_policy", PolicyName="cpu", **target()) == (
        "ObjectNotFoundException", f"No scaling policy found for service namespace: ecs, resource ID: {RESOURCE}, "
                                   f"scalable dimension: {DIMENSION}, policy name: cpu")
    assert snapshot(web.store) == before


async def test_describe_scaling_policies_filters_and_pages(web):
    await add_service(web, "api", desired=1)
    for resource in (RESOURCE, f"service/{CLUSTER}/api"):
        await aas(web, "register_scalable_target", **target(resource, MinCapacity=1, MaxCapacity=5))
        for name in ("cpu", "memory"):
            await aas(web, "put_scaling_policy", PolicyName=name, PolicyType="TargetTrackingScaling",
                      TargetTrackingScalingPolicyConfiguration=CPU_TRACKING, **target(resource))
    on_api = await aas(web, "describe_scaling_policies", ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/api",
                       ScalableDimension=DIMENSION)
    assert [(p["ResourceId"], p["PolicyName"]) for p in on_api["ScalingPolicies"]] == [
        (f"service/{CLUSTER}/api", "cpu"), (f"service/{CLUSTER}/api", "memory")]
    by_name = await aas(web, "describe_scaling_policies", ServiceNamespace="ecs", PolicyNames=["memory"])
    assert len(by_name["ScalingPolicies"]) == 2

    first = await aas(web, "describe_scaling_policies", ServiceNamespace="ecs", MaxResults=3)
    rest = await aas(web, "describe_scaling_policies", ServiceNamespace="ecs", NextToken=first["NextToken"])
    assert len(first["ScalingPolicies"]) == 3 and len(rest["ScalingPolicies"]) == 1 and "NextToken" not in rest

    before = snapshot(web.store)
    assert (await aas_error(web, "describe_scaling_policies", ServiceNamespace="ecs", MaxResults=11))[0] == (
        "ValidationException")
    assert (await aas_error(web, "describe_scaling_policies", ServiceNamespace="ecs", NextToken="x"))[0] == (
        "InvalidNextTokenException")
    assert snapshot(web.store) == before


# --- DescribeScalingActivities (written by the control loops through scaling_state) ------


async def test_activities_are_shown_newest_first_with_aws_fields(web):
    await aas(web, "register_scalable_target", **target(MinCapacity=1, MaxCapacity=8))
    cause = f"monitor alarm TargetTracking-{RESOURCE}-AlarmHigh-x in state ALARM triggered policy cpu"
    started = scaling_state.record_scaling_activity(web.store, web.clock, RESOURCE, "Setting desired count to 4.",
                                                    cause, status_code=scaling_state.IN_PROGRESS)
    await web.clock.advance(30)
    scaling_state.update_scaling_activity(
        web.store, web.clock, started.activity_id, scaling_state.SUCCESSFUL,
        status_message="Successfully set desired count to 4. Change successfully fulfilled by ecs.")
    await web.clock.advance(30)
    scaling_state.record_scaling_activity(
        web.store, web.clock, RESOURCE, "Setting desired count to 3.", "cooldown", status_code=scaling_state.FAILED,
        not_scaled_reasons=[scaling_state.NotScaledReason("AlreadyAtMinCapacity", min_capacity=1,
                                                          current_capacity=1)])
    await web.clock.advance(30)
    latest = scaling_state.record_scaling_activity(web.store, web.clock, RESOURCE, "Setting desired count to 5.",
                                                   cause, status_code=scaling_state.PENDING)

    shown = (await aas(web, "describe_scaling_activities", ServiceNamespace="ecs",
                       ResourceId=RESOURCE))["ScalingActivities"]
    assert [a["ActivityId"] for a in shown] == [latest.activity_id, started.activity_id]  # not-scaled left out
    done = shown[1]
    assert (done["StatusCode"], done["Cause"], done["Description"]) == ("Successful", cause,
                                                                         "Setting desired count to 4.")
    assert done["EndTime"].timestamp() - done["StartTime"].timestamp() == 30
    assert "EndTime" not in shown[0] and shown[0]["StatusCode"] == "Pending"

    everything = (await aas(web, "describe_scaling_activities", ServiceNamespace="ecs", ResourceId=RESOURCE,
                            ScalableDimension=DIMENSION, IncludeNotScaledActivities=True))["ScalingActivities"]
    assert len(everything) == 3
    assert everything[1]["NotScaledReasons"] == [{"Code": "AlreadyAtMinCapacity", "MinCapacity": 1,
                                                  "CurrentCapacity": 1}]
    statuses = [e.detail["StatusCode"] for e in web.store.events(kinds=scaling_state.SCALING_ACTIVITY)]
    assert statuses == ["InProgress", "Successful", "Failed", "Pending"]


async def test_activities_page_and_keep_only_the_newest(web, monkeypatch):
    monkeypatch.setattr(scaling_state, "MAX_ACTIVITIES_PER_TARGET", 5)
    ids = []
    for n in range(7):
        await web.clock.advance(1)
        ids.append(scaling_state.record_scaling_activity(
            web.store, web.clock, RESOURCE, f"Setting desired count to {n}.", "test",
            status_code=scaling_state.SUCCESSFUL).activity_id)
    first = await aas(web, "describe_scaling_activities", ServiceNamespace="ecs", MaxResults=3)
    rest = await aas(web, "describe_scaling_activities", ServiceNamespace="ecs", NextToken=first["NextToken"])
    shown = [a["ActivityId"] for a in first["ScalingActivities"] + rest["ScalingActivities"]]
    assert shown == ids[::-1][:5]
    assert web.store.count("scaling_activity") == 5

    before = snapshot(web.store)
    assert (await aas_error(web, "describe_scaling_activities", ServiceNamespace="ecs", MaxResults=0))[0] == (
        "ValidationException")
    assert (await aas_error(web, "describe_scaling_activities", ServiceNamespace="ecs", NextToken="%%"))[0] == (
        "InvalidNextTokenException")
    assert (await aas_error(web, "describe_scaling_activities", ServiceNamespace="ecs",
                            ScalableDimension="ec2:spot-fleet-request:TargetCapacity"))[0] == "ValidationException"
    assert snapshot(web.store) == before


async def test_activities_survive_a_restart_of_the_store(tmp_path):
    ep = Endpoint()
    ep.store.close()
    ep.store = StateStore(str(tmp_path / "state.db"), clock=ep.clock)
    first = scaling_state.record_scaling_activity(ep.store, ep.clock, RESOURCE, "Setting desired count to 2.", "x")
    ep.store.close()
    reopened = StateStore(str(tmp_path / "state.db"), clock=ep.clock)
    try:
        assert reopened.get("scaling_activity", first.activity_id) == first
    finally:
        reopened.close()
        await ep.runtime.close()


# --- the wire ----------------------------------------------------------------------------


async def test_raw_requests_get_application_auto_scaling_errors(web):
    before = snapshot(web.store)
    async with ClientSession() as session:
        async def post(operation: str, body: dict) -> tuple[int, dict]:
            async with session.post(web.url + "/", data=json.dumps(body), headers={
                    "X-Amz-Target": f"AnyScaleFrontendService.{operation}",
                    "Content-Type": "application/x-amz-json-1.1"}) as response:
                return response.status, json.loads(await response.read())

        status, body = await post("RegisterScalableTarget", {"ServiceNamespace": "ecs", "ResourceId": RESOURCE})
        assert status == 400 and body == {
            "__type": "ValidationException", "message": "1 validation error detected: Value null at "
                                                        "'ScalableDimension' failed to satisfy constraint: Member "
                                                        "must not be null"}
        status, body = await post("PutScheduledAction", {})
        assert status == 400 and body["__type"] == "UnknownOperationException"
        status, body = await post("DescribeScalableTargets", {"ServiceNamespace": 7})
        assert status == 400 and body["__type"] == "SerializationException"
    assert snapshot(web.store) == before
