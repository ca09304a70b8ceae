"""ALB, Auto Scaling and Application Auto Scaling shapes: AWS's limits, AWS's error words, lossless round trips."""

from __future__ import annotations

import ast
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.errors import ClientException, InvalidParameterException, ValidationError, ValidationException
from emulator.model.elb import (
    Action,
    Listener,
    LoadBalancer,
    TargetGroup,
    TargetGroupAttributes,
    parse_matcher,
    parse_target_group,
    validate_load_balancer,
)
from emulator.model.scaling import (
    AutoScalingGroup,
    CapacityProvider,
    ScalableTarget,
    ScalingPolicy,
    check_provider_group,
    parse_auto_scaling_group,
    parse_capacity_provider,
    parse_scalable_target,
    parse_scaling_policy,
)

# --- matchers ------------------------------------------------------------------


@pytest.mark.parametrize("text, accepted, refused", [
    ("200", {200}, {201, 302}),
    ("200,202", {200, 202}, {201}),
    ("200-299", {200, 250, 299}, {300, 199}),
    (" 200 , 302-304", {200, 302, 304}, {301, 305}),
    ("499", {499}, {200}),
], ids=["one", "list", "range", "mixed-with-spaces", "upper-edge"])
def test_matcher_accepts_exactly_its_codes(text, accepted, refused):
    codes = parse_matcher(text)
    assert accepted <= codes and not refused & codes


@pytest.mark.parametrize("text", ["199", "500", "200-500", "300-200", "200-", "abc", "", "200,,202"])
def test_matcher_outside_200_499_or_malformed_is_a_validation_error(text):
    with pytest.raises(ValidationError) as err:
        parse_matcher(text)
    assert err.value.code == "ValidationError" and err.value.field_path == "Matcher.HttpCode"


@given(st.integers(200, 499), st.integers(200, 499))
def test_a_matcher_range_is_every_code_between_its_ends(a, b):
    low, high = min(a, b), max(a, b)
    assert parse_matcher(f"{low}-{high}") == frozenset(range(low, high + 1))


# --- target groups -------------------------------------------------------------

def tg_request(**overrides):
    return {"Name": "web-tg", "Protocol": "HTTP", "Port": 8080, **overrides}


def test_target_group_defaults_are_aws_defaults():
    tg = parse_target_group(tg_request())
    assert (tg.health_check_protocol, tg.health_check_port, tg.health_check_path) == ("HTTP", "traffic-port", "/")
    assert (tg.health_check_interval_seconds, tg.health_check_timeout_seconds) == (30, 5)
    assert (tg.healthy_threshold_count, tg.unhealthy_threshold_count) == (5, 2)
    assert tg.matcher.http_code == "200" and tg.target_type == "instance"
    attrs = tg.attributes
    assert (attrs.deregistration_delay_timeout_seconds, attrs.load_balancing_algorithm_type,
            attrs.slow_start_duration_seconds) == (300, "round_robin", 0)
    assert tg.target_group_arn.startswith("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/")
    assert tg.matches(200) and not tg.matches(503)


def test_target_group_round_trips_through_its_aws_shape():
    tg = parse_target_group(tg_request(HealthCheckPath="/health", Matcher={"HttpCode": "200-299"}, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
        {"Key": "stickiness.enabled", "Value": False}]))
    described = tg.to_api()
    assert described["TargetGroupName"] == "web-tg" and described["HealthCheckPath"] == "/health"
    assert "Attributes" not in described  # DescribeTargetGroups does not show them
    assert TargetGroup.from_api(tg.to_api(with_attributes=True)) == tg
    assert {"Key": "stickiness.enabled", "Value": "false"} in tg.attributes.to_api()


@pytest.mark.parametrize("overrides, field_path", [
    ({"Name": "web_tg"}, "Name"),
    ({"Name": "-web"}, "Name"),
    ({"Name": "x" * 33}, "Name"),
    ({"Port": 0}, "Port"),
    ({"Port": "8080"}, "Port"),
    ({"Protocol": "HTTPS"}, "Protocol"),
    ({"HealthCheckIntervalSeconds": 4}, "HealthCheckIntervalSeconds"),
    ({"HealthCheckIntervalSeconds": 301}, "HealthCheckIntervalSeconds"),
    ({"HealthCheckTimeoutSeconds": 1}, "HealthCheckTimeoutSeconds"),
    ({"HealthCheckTimeoutSeconds": 121, "HealthCheckIntervalSeconds": 300}, "HealthCheckTimeoutSeconds"),
    ({"HealthCheckTimeoutSeconds": 30, "HealthCheckIntervalSeconds": 30}, "HealthCheckTimeoutSeconds"),
    ({"HealthyThresholdCount": 1}, "HealthyThresholdCount"),
    ({"UnhealthyThresholdCount": 11}, "UnhealthyThresholdCount"),
    ({"HealthCheckPath": "health"}, "HealthCheckPath"),
    ({"HealthCheckPort": "99999"}, "HealthCheckPort"),
    ({"HealthCheckEnabled": "false"}, "HealthCheckEnabled"),
    ({"Matcher": {"HttpCode": "600"}}, "Matcher.HttpCode"),
    ({"Matcher": {"GrpcCode": "0"}}, "Matcher.GrpcCode"),
    ({"TargetType": "lambda"}, "TargetType"),
    ({"VpcID": "vpc-1"}, "VpcID"),
    ({"TargetGroupArn": "arn:x"}, "TargetGroupArn"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_target_group_limits_are_awss(overrides, field_path):
    with pytest.raises(ValidationError) as err:
        parse_target_group(tg_request(**overrides))
    assert err.value.field_path == field_path
    assert str(err.value).startswith("ValidationError: ")


@pytest.mark.parametrize("attributes, ok", [
    ([{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}], True),
    ([{"Key": "deregistration_delay.timeout_seconds", "Value": "3600"}], True),
    ([{"Key": "deregistration_delay.timeout_seconds", "Value": "3601"}], False),
    ([{"Key": "deregistration_delay.timeout_seconds", "Value": "-1"}], False),
    ([{"Key": "deregistration_delay.timeout_seconds", "Value": "soon"}], False),
    ([{"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}], True),
    ([{"Key": "load_balancing.algorithm.type", "Value": "fastest"}], False),
    ([{"Key": "slow_start.duration_seconds", "Value": "30"}], True),
    ([{"Key": "slow_start.duration_seconds", "Value": "10"}], False),
    ([{"Key": "slow_start.duration_seconds", "Value": "60"},
      {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}], False),
    ([{"Key": "no.such.key", "Value": "1"}], False),
    ([{"Key": "stickiness.enabled"}], False),
], ids=["delay-0", "delay-3600", "delay-3601", "delay-negative", "delay-not-int", "lor", "bad-algorithm",
        "slow-start-30", "slow-start-10", "slow-start-with-lor", "unknown-key", "no-value"])
def test_target_group_attribute_limits(attributes, ok):
    if ok:
        parse_target_group(tg_request(Attributes=attributes))
    else:
        with pytest.raises(ValidationError):
            parse_target_group(tg_request(Attributes=attributes))


def test_attributes_round_trip():
    attrs = TargetGroupAttributes(deregistration_delay_timeout_seconds=30, other={"stickiness.enabled": "true"})
    assert TargetGroupAttributes.from_api(attrs.to_api()) == attrs


# --- load balancers and listeners --------------------------------------------

def alb(**overrides) -> LoadBalancer:
    listener = Listener(8080, [Action("forward", "arn:tg")])
    return LoadBalancer(**{"load_balancer_name": "web-alb", "listeners": [listener], **overrides})


@pytest.mark.parametrize("overrides, field_path", [
    ({"load_balancer_name": "internal-web"}, "LoadBalancerName"),
    ({"load_balancer_name": "web.alb"}, "LoadBalancerName"),
    ({"host": "example.com"}, "Host"),
    ({"listeners": [Listener(80, [Action("forward", "a")]), Listener(80, [Action("forward", "b")])]},
     "Listeners[1].Port"),
    ({"listeners": [Listener(70000, [Action("forward", "a")])]}, "Listeners[0].Port"),
    ({"listeners": [Listener(443, [Action("forward", "a")], protocol="HTTPS")]}, "Listeners[0].Protocol"),
    ({"listeners": [Listener(80, [Action("redirect")])]}, "Listeners[0].DefaultActions"),
], ids=["internal-prefix", "bad-char", "hostname", "duplicate-port", "port-range", "https", "no-forward"])
def test_load_balancer_limits(overrides, field_path):
    with pytest.raises(ValidationError) as err:
        validate_load_balancer(alb(**overrides))
    assert err.value.field_path == field_path


def test_load_balancer_defaults_and_round_trip():
    lb = alb()
    validate_load_balancer(lb)
    assert lb.host == "127.0.0.1" and lb.listeners[0].target_group_arn == "arn:tg"
    assert LoadBalancer.from_api(lb.to_api()) == lb
    assert lb.to_api()["Listeners"][0]["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": "arn:tg"}]


# --- Auto Scaling groups -------------------------------------------------------

def asg_request(**overrides):
    return {"AutoScalingGroupName": "asg", "MinSize": 2, "MaxSize": 10, "AvailabilityZones": ["us-east-1a"],
            "LaunchTemplate": {"LaunchTemplateName": "lt", "InstanceType": "t3.medium"}, **overrides}


def test_asg_defaults_and_round_trip():
    asg = parse_auto_scaling_group(asg_request())
    assert asg.desired_capacity == 2  # AWS starts at MinSize
    assert (asg.default_cooldown, asg.health_check_grace_period, asg.new_instances_protected_from_scale_in) == (
        300, 300, False)
    assert asg.auto_scaling_group_arn.endswith(":autoScalingGroupName/asg")
    assert AutoScalingGroup.from_api(asg.to_api()) == asg
    assert asg.instance_type.cpu_units == 2048


@pytest.mark.parametrize("reserved, registered", [(None, 3584), (0, 4096), (1024, 3072)])
def test_asg_reserved_memory_sets_what_instances_register(reserved, registered):
    request = asg_request() if reserved is None else asg_request(ReservedMemoryMiB=reserved)
    asg = parse_auto_scaling_group(request)
    assert asg.registered_memory_mib() == registered
    assert ("ReservedMemoryMiB" in asg.to_api()) == (reserved is not None)


@pytest.mark.parametrize("overrides, field_path", [
    ({"MinSize": 11}, "MaxSize"),
    ({"DesiredCapacity": 11}, "DesiredCapacity"),
    ({"DesiredCapacity": 1}, "DesiredCapacity"),
    ({"MinSize": -1}, "MinSize"),
    ({"MinSize": "2"}, "MinSize"),
    ({"MaxSize": 2.5}, "MaxSize"),
    ({"LaunchTemplate": {"LaunchTemplateName": "lt", "InstanceType": "t9.huge"}}, "LaunchTemplate.InstanceType"),
    ({"LaunchTemplate": {"LaunchTemplateName": "lt"}}, "LaunchTemplate.InstanceType"),
    ({"AvailabilityZones": []}, "AvailabilityZones"),
    ({"AvailabilityZones": ["us-east-1a", "eu-west-1a"]}, "AvailabilityZones[1]"),
    ({"ReservedMemoryMiB": 4096}, "ReservedMemoryMiB"),
    ({"HealthCheckType": "HTTP"}, "HealthCheckType"),
    ({"NewInstancesProtectedFromScaleIn": "yes"}, "NewInstancesProtectedFromScaleIn"),
    ({"VPCZoneIdentifier": "subnet-1"}, "VPCZoneIdentifier"),
    ({"AutoScalingGroupName": ""}, "AutoScalingGroupName"),
], ids=["min-above-max", "desired-above-max", "desired-below-min", "negative-min", "quoted-number", "fraction",
        "unknown-type", "no-type", "no-zones", "zone-of-another-region", "reserve-all-memory", "bad-health-check",
        "quoted-bool", "unsupported-key", "empty-name"])
def test_asg_limits_are_awss(overrides, field_path):
    with pytest.raises(ValidationError) as err:
        parse_auto_scaling_group(asg_request(**overrides))
    assert err.value.field_path == field_path
    assert err.value.code == "ValidationError"


# --- capacity providers --------------------------------------------------------

def cp_request(managed_scaling=None, **provider):
    group = {"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:"
                                    "autoScalingGroupName/asg", **provider}
    if managed_scaling is not None:
        group["managedScaling"] = managed_scaling
    return {"name": "web-capacity", "autoScalingGroupProvider": group}


def test_capacity_provider_defaults_are_awss_and_round_trip():
    cp = parse_capacity_provider(cp_request())
    scaling = cp.auto_scaling_group_provider.managed_scaling
    assert (scaling.target_capacity, scaling.minimum_scaling_step_size, scaling.maximum_scaling_step_size,
            scaling.instance_warmup_period) == (100, 1, 10000, 300)
    assert cp.auto_scaling_group_provider.managed_termination_protection == "DISABLED"
    assert cp.capacity_provider_arn == "arn:aws:ecs:us-east-1:123456789012:capacity-provider/web-capacity"
    assert CapacityProvider.from_api(cp.to_api()) == cp
    assert cp.to_api()["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 100


@pytest.mark.parametrize("request_, error, field_path", [
    ({**cp_request(), "name": "ecs-ec2-capacity-provider"}, ClientException, "name"),
    ({**cp_request(), "name": "FARGATE_2"}, ClientException, "name"),
    ({**cp_request(), "name": "web capacity"}, ClientException, "name"),
    (cp_request({"targetCapacity": 0}), InvalidParameterException,
     "autoScalingGroupProvider.managedScaling.targetCapacity"),
    (cp_request({"targetCapacity": 101}), InvalidParameterException,
     "autoScalingGroupProvider.managedScaling.targetCapacity"),
    (cp_request({"minimumScalingStepSize": 0}), InvalidParameterException,
     "autoScalingGroupProvider.managedScaling.minimumScalingStepSize"),
    (cp_request({"maximumScalingStepSize": 10001}), InvalidParameterException,
     "autoScalingGroupProvider.managedScaling.maximumScalingStepSize"),
    (cp_request({"minimumScalingStepSize": 5, "maximumScalingStepSize": 2}), InvalidParameterException,
     "autoScalingGroupProvider.managedScaling.minimumScalingStepSize"),
    (cp_request({"instanceWarmupPeriod": 10001}), InvalidParameterException,
     "autoScalingGroupProvider.managedScaling.instanceWarmupPeriod"),
    (cp_request({"status": "ON"}), InvalidParameterException, "autoScalingGroupProvider.managedScaling.status"),
    (cp_request({"status": "DISABLED"}, managedTerminationProtection="ENABLED"), ClientException,
     "autoScalingGroupProvider.managedTerminationProtection"),
    (cp_request({"targetCapacity": "90"}), ClientException, "autoScalingGroupProvider.managedScaling.targetCapacity"),
    (cp_request({"target": 90}), ClientException, "autoScalingGroupProvider.managedScaling.target"),
    ({"name": "web-capacity"}, ClientException, "autoScalingGroupProvider"),
], ids=["ecs-prefix", "fargate-prefix", "space", "target-0", "target-101", "min-step-0", "max-step-10001",
        "min-above-max-step", "warmup", "bad-status", "termination-protection-without-scaling", "quoted-number",
        "unknown-key", "no-group"])
def test_capacity_provider_limits_are_ecss(request_, error, field_path):
    with pytest.raises(error) as err:
        parse_capacity_provider(request_)
    assert err.value.field_path == field_path


def test_managed_termination_protection_needs_protected_instances():
    cp = parse_capacity_provider(cp_request({"status": "ENABLED"}, managedTerminationProtection="ENABLED"))
    unprotected = parse_auto_scaling_group(asg_request())
    protected = parse_auto_scaling_group(asg_request(NewInstancesProtectedFromScaleIn=True))
    check_provider_group(cp, protected)
    with pytest.raises(ClientException, match="instance protection from scale in"):
        check_provider_group(cp, unprotected)
    with pytest.raises(ClientException, match="MaxSize"):
        check_provider_group(cp, parse_auto_scaling_group(asg_request(MinSize=0, MaxSize=0)))


# --- Application Auto Scaling ------------------------------------------------

RESOURCE = "service/production-cluster/web-app-service"


def tt_policy(**config):
    return {"PolicyName": "cpu", "ResourceId": RESOURCE, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 75, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}, **config}}


def step_policy(steps, **config):
    return {"PolicyName": "steps", "ResourceId": RESOURCE, "PolicyType": "StepScaling",
            "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": steps,
                                               **config}}


def test_target_tracking_defaults_and_round_trip():
    policy = parse_scaling_policy(tt_policy(ScaleOutCooldown=60))
    tt = policy.target_tracking_scaling_policy_configuration
    assert (tt.target_value, tt.scale_out_cooldown, tt.scale_in_cooldown, tt.disable_scale_in) == (75.0, 60, 300, False)
    assert policy.policy_arn.endswith(f":resource/ecs/{RESOURCE}:policyName/cpu")
    assert ScalingPolicy.from_api(policy.to_api()) == policy
    assert policy.to_api()["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 75.0


def test_step_scaling_defaults_and_round_trip():
    policy = parse_scaling_policy(step_policy([
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 15, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 15, "ScalingAdjustment": 3}]))
    step = policy.step_scaling_policy_configuration
    assert (step.cooldown, step.metric_aggregation_type) == (300, "Average")
    assert ScalingPolicy.from_api(policy.to_api()) == policy


def test_scalable_target_round_trip_and_limits():
    target = parse_scalable_target({"ResourceId": RESOURCE, "MinCapacity": 0, "MaxCapacity": 20})
    assert (target.service_namespace, target.scalable_dimension) == ("ecs", "ecs:service:DesiredCount")
    assert target.service_name == "web-app-service"
    assert ScalableTarget.from_api(target.to_api()) == target
    with pytest.raises(ValidationException, match="Minimum capacity cannot be greater than maximum capacity"):
        parse_scalable_target({"ResourceId": RESOURCE, "MinCapacity": 5, "MaxCapacity": 2})
    with pytest.raises(ValidationException):
        parse_scalable_target({"ResourceId": RESOURCE, "MinCapacity": -1, "MaxCapacity": 2})


ALB_LABEL = "app/web-alb/0123456789abcdef/targetgroup/web-tg/fedcba9876543210"


@pytest.mark.parametrize("request_, field_path", [
    ({**tt_policy(), "ServiceNamespace": "ec2"}, "ServiceNamespace"),
    ({**tt_policy(), "ResourceId": "web-app-service"}, "ResourceId"),
    ({**tt_policy(), "ScalableDimension": "ecs:service:CPU"}, "ScalableDimension"),
    ({**tt_policy(), "PolicyType": "PredictiveScaling"}, "PolicyType"),
    ({**tt_policy(), "PolicyName": ""}, "PolicyName"),
    ({**step_policy([]), "PolicyType": "TargetTrackingScaling"}, "TargetTrackingScalingPolicyConfiguration"),
    ({**tt_policy(), "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
                                                        "StepAdjustments": []}}, "StepScalingPolicyConfiguration"),
    (tt_policy(TargetValue=0), "TargetTrackingScalingPolicyConfiguration.TargetValue"),
    (tt_policy(ScaleInCooldown=-1), "TargetTrackingScalingPolicyConfiguration.ScaleInCooldown"),
    (tt_policy(PredefinedMetricSpecification={"PredefinedMetricType": "CPUUtilization"}),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType"),
    (tt_policy(PredefinedMetricSpecification={"PredefinedMetricType": "ALBRequestCountPerTarget"}),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.ResourceLabel"),
    (tt_policy(PredefinedMetricSpecification={"PredefinedMetricType": "ECSServiceAverageCPUUtilization",
                                              "ResourceLabel": ALB_LABEL}),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.ResourceLabel"),
    (tt_policy(PredefinedMetricSpecification=None), "TargetTrackingScalingPolicyConfiguration"),
    (tt_policy(CustomizedMetricSpecification={"MetricName": "Latency", "Namespace": "App", "Statistic": "Average"}),
     "TargetTrackingScalingPolicyConfiguration"),
    (tt_policy(DisableScaleIn="false"), "TargetTrackingScalingPolicyConfiguration.DisableScaleIn"),
    (tt_policy(TargetValue="75"), "TargetTrackingScalingPolicyConfiguration.TargetValue"),
], ids=["namespace", "resource-id", "dimension", "policy-type", "empty-name", "type-without-its-config",
        "both-configs", "target-zero", "negative-cooldown", "unknown-metric", "alb-without-label",
        "label-on-cpu-metric", "no-metric", "two-metrics", "quoted-bool", "quoted-number"])
def test_scaling_policy_limits_are_application_auto_scalings(request_, field_path):
    with pytest.raises(ValidationException) as err:
        parse_scaling_policy(request_)
    assert err.value.field_path == field_path
    assert err.value.code == "ValidationException"


def test_alb_request_count_with_a_label_and_custom_metrics_are_accepted():
    parse_scaling_policy(tt_policy(PredefinedMetricSpecification={
        "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": ALB_LABEL}))
    parse_scaling_policy(tt_policy(PredefinedMetricSpecification=None, CustomizedMetricSpecification={
        "MetricName": "Latency", "Namespace": "App", "Statistic": "Average",
        "Dimensions": [{"Name": "Service", "Value": "web"}]}))


@pytest.mark.parametrize("steps, config, message", [
    ([], {}, "at least one"),
    ([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
      {"MetricIntervalLowerBound": 15, "ScalingAdjustment": 2}], {}, "gap"),
    ([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
      {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}], {}, "overlap"),
    ([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
      {"MetricIntervalUpperBound": 10, "ScalingAdjustment": 1}], {}, "overlap"),
    ([{"MetricIntervalLowerBound": 10, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1}], {}, "less than"),
    ([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], {"MinAdjustmentMagnitude": 2},
     "PercentChangeInCapacity"),
    ([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": -1}], {"AdjustmentType": "ExactCapacity"}, "negative"),
    ([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], {"AdjustmentType": "Percent"}, "AdjustmentType"),
    ([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], {"MetricAggregationType": "Sum"},
     "MetricAggregationType"),
], ids=["no-steps", "gap", "overlap", "two-unbounded-lower", "empty-interval", "magnitude-without-percent",
        "negative-exact", "bad-adjustment-type", "bad-aggregation"])
def test_step_adjustments_must_tile_the_metric_axis(steps, config, message):
    with pytest.raises(ValidationException, match=message):
        parse_scaling_policy(step_policy(steps, **config))


@given(st.lists(st.integers(-1000, 1000), min_size=0, max_size=6, unique=True), st.booleans(), st.booleans())
def test_contiguous_steps_always_validate(cuts, open_low, open_high):
    """Steps cut at increasing points, with optional unbounded ends, are exactly what AWS accepts."""
    points = sorted(cuts)
    bounds = [None if open_low else -2000] + points + [None if open_high else 2000]
    steps = [{"MetricIntervalLowerBound": low, "MetricIntervalUpperBound": high, "ScalingAdjustment": i}
             for i, (low, high) in enumerate(zip(bounds, bounds[1:]))]
    steps = [{k: v for k, v in s.items() if v is not None} for s in steps]
    parse_scaling_policy(step_policy(steps))


# --- purity --------------------------------------------------------------------

@pytest.mark.parametrize("module", ["elb.py", "scaling.py", "service_request.py"])
def test_model_modules_stay_pure_and_import_no_layer_above(module):
    source = (pathlib.Path(__file__).parents[2] / "emulator" / "model" / module).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):  # `..x` from emulator/model/ is emulator.x
            prefix = {0: "", 1: "emulator.model.", 2: "emulator."}[node.level]
            imported.add(prefix + (node.module or ""))
    roots = {name.split(".")[0] for name in imported}
    assert not roots & {"asyncio", "docker", "aiohttp", "prometheus_client"}
    above = ("emulator.placement", "emulator.scaling", "emulator.control", "emulator.runtime", "emulator.alb",
             "emulator.metrics", "emulator.api", "emulator.app", "emulator.scenario")
    assert not [name for name in imported if name.startswith(above)]
