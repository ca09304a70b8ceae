"""Both scaling dimensions through the `aws` CLI (awscli v1, a subprocess with --endpoint-url): the commands the
article's readers type, and what the CLI prints when AWS would refuse them."""

from __future__ import annotations

import pytest

from test_api_autoscaling import CPU_TRACKING, DIMENSION, RESOURCE, add_service, snapshot
from test_api_capacity_providers import put_group
from test_api_cli import _have_cli
from test_api_harness import CLUSTER, endpoint, write_json  # noqa: F401  (endpoint is a fixture)

pytestmark = pytest.mark.skipif(not _have_cli(), reason="the aws CLI (awscli) is not installed")

TARGET_ARGS = ("--service-namespace", "ecs", "--scalable-dimension", DIMENSION, "--resource-id", RESOURCE)


async def test_the_aws_cli_sets_up_both_scaling_dimensions(endpoint, tmp_path):
    asg_arn = put_group(endpoint, "ecs-instance-asg")
    await add_service(endpoint, "web", desired=2)

    _, created, _ = await endpoint.aws(
        "ecs", "create-capacity-provider", "--name", "web-cp", "--auto-scaling-group-provider",
        f"autoScalingGroupArn={asg_arn},managedScaling={{status=ENABLED,targetCapacity=90}},"
        "managedTerminationProtection=ENABLED")
    provider = created["capacityProvider"]
    assert (provider["name"], provider["status"]) == ("web-cp", "ACTIVE")
    assert provider["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 90

    _, put, _ = await endpoint.aws(
        "ecs", "put-cluster-capacity-providers", "--cluster", CLUSTER, "--capacity-providers", "web-cp",
        "--default-capacity-provider-strategy", "capacityProvider=web-cp,weight=1,base=1")
    assert put["cluster"]["capacityProviders"] == ["web-cp"]
    assert put["cluster"]["defaultCapacityProviderStrategy"] == [{"capacityProvider": "web-cp", "weight": 1,
                                                                  "base": 1}]

    _, registered, _ = await endpoint.aws("application-autoscaling", "register-scalable-target", *TARGET_ARGS,
                                          "--min-capacity", "3", "--max-capacity", "10")
    assert registered["ScalableTargetARN"].startswith("arn:aws:application-autoscaling:us-east-1:")

    _, policy, _ = await endpoint.aws(
        "application-autoscaling", "put-scaling-policy", *TARGET_ARGS, "--policy-name", "cpu75-target-tracking",
        "--policy-type", "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
        write_json(tmp_path / "config.json", CPU_TRACKING))
    assert policy["PolicyARN"].endswith(":policyName/cpu75-target-tracking")
    high, low = (a["AlarmName"] for a in policy["Alarms"])
    assert high.startswith(f"TargetTracking-{RESOURCE}-AlarmHigh-")
    assert low.startswith(f"TargetTracking-{RESOURCE}-AlarmLow-")

    # Registering with MinCapacity 3 raised the desired count from 2: a scaling activity says so.
    _, activities, _ = await endpoint.aws("application-autoscaling", "describe-scaling-activities",
                                          "--service-namespace", "ecs", "--resource-id", RESOURCE)
    (activity,) = activities["ScalingActivities"]
    assert (activity["Description"], activity["Cause"], activity["StatusCode"]) == (
        "Setting desired count to 3.", "minimum capacity was set to 3", "Successful")
    assert activity["StartTime"] == activity["EndTime"] == endpoint.clock.now()

    _, services, _ = await endpoint.aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", "web")
    assert services["services"][0]["desiredCount"] == 3


async def test_the_aws_cli_reports_scaling_errors_and_nothing_changes(endpoint, tmp_path):
    put_group(endpoint, "ecs-instance-asg")
    await add_service(endpoint, "web", desired=2)
    await endpoint.aws("ecs", "create-capacity-provider", "--name", "web-cp", "--auto-scaling-group-provider",
                       "autoScalingGroupArn=ecs-instance-asg")
    before = snapshot(endpoint.store)

    code, out, err = await endpoint.aws(
        "application-autoscaling", "register-scalable-target", "--service-namespace", "ecs", "--scalable-dimension",
        DIMENSION, "--resource-id", f"service/{CLUSTER}/ghost", "--min-capacity", "1", "--max-capacity", "2",
        expect_ok=False)
    assert code != 0 and out is None
    assert "(ValidationException)" in err and f"ECS service doesn't exist: service/{CLUSTER}/ghost" in err

    code, _, err = await endpoint.aws(
        "application-autoscaling", "put-scaling-policy", *TARGET_ARGS, "--policy-name", "cpu75",
        "--policy-type", "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
        write_json(tmp_path / "config.json", CPU_TRACKING), expect_ok=False)
    assert code != 0 and "(ObjectNotFoundException)" in err
    assert f"No scalable target registered for service namespace: ecs, resource ID: {RESOURCE}" in err

    code, _, err = await endpoint.aws("application-autoscaling", "describe-scaling-activities",
                                      "--service-namespace", "dynamodb", expect_ok=False)
    assert code != 0 and "(ValidationException)" in err and "Unsupported service namespace 'dynamodb'" in err

    code, _, err = await endpoint.aws("ecs", "create-capacity-provider", "--name", "web-cp",
                                      "--auto-scaling-group-provider", "autoScalingGroupArn=ecs-instance-asg",
                                      expect_ok=False)
    assert code != 0 and "(ClientException)" in err and "The specified capacity provider already exists." in err

    code, _, err = await endpoint.aws("ecs", "put-cluster-capacity-providers", "--cluster", CLUSTER,
                                      "--capacity-providers", "ghost-cp", "--default-capacity-provider-strategy",
                                      "[]", expect_ok=False)
    assert code != 0 and "(InvalidParameterException)" in err
    assert "The specified capacity provider was not found." in err
    assert snapshot(endpoint.store) == before
