"""Both scaling dimensions as data: ASGs and capacity providers (instances), scalable targets and policies (tasks).

Each object is in the shape of the AWS call that creates it, so stack files
and the API read the same JSON: `AutoScalingGroup` in EC2 Auto Scaling's
PascalCase, `CapacityProvider` in ECS's camelCase, `ScalableTarget` and
`ScalingPolicy` in Application Auto Scaling's PascalCase. The `parse_*`
functions check AWS's ranges and answer in each service's own error words
(`ValidationError`, `ClientException`, `ValidationException`). No scaling
math lives here: `emulator.scaling` computes with these.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import ClientException, InvalidParameterException, ValidationError, ValidationException
from .arn import DEFAULT_ACCOUNT, DEFAULT_REGION, auto_scaling_group_arn, capacity_provider_arn
from .cluster import Tag
from .shapes import fail, from_camel_api, from_pascal_api, out_of_range, to_pascal_api
from .instance_types import InstanceType, get_instance_type
from .shapes import to_api

ENABLED, DISABLED = "ENABLED", "DISABLED"

# --- EC2 Auto Scaling groups --------------------------------------------------


@dataclass
class LaunchTemplateSpecification:
    """Names the launch template; `InstanceType` is the emulator's stand-in for its launch data."""

    launch_template_name: str | None = None
    launch_template_id: str | None = None
    version: str | None = None
    instance_type: str | None = None


@dataclass
class AsgTag:
    key: str
    value: str = ""
    propagate_at_launch: bool = True


@dataclass
class AutoScalingGroup:
    auto_scaling_group_name: str
    launch_template: LaunchTemplateSpecification
    min_size: int
    max_size: int
    desired_capacity: int | None = None
    auto_scaling_group_arn: str | None = None
    availability_zones: list[str] = field(default_factory=list)
    default_cooldown: int = 300
    health_check_type: str = "EC2"
    health_check_grace_period: int = 300
    new_instances_protected_from_scale_in: bool = False
    tags: list[AsgTag] = field(default_factory=list)
    # Emulator key: memory the OS and agent keep per instance (None: the catalogue's rule).
    reserved_memory_mib: int | None = field(default=None, metadata={"aws": "ReservedMemoryMiB"})

    @property
    def instance_type(self) -> InstanceType:
        return get_instance_type(self.launch_template.instance_type or "")

    def registered_memory_mib(self) -> int:
        return self.instance_type.registered_memory_mib(self.reserved_memory_mib)

    def to_api(self) -> dict[str, Any]:
        return to_pascal_api(self)

    @classmethod
    def from_api(cls, data: Any) -> AutoScalingGroup:
        return from_pascal_api(cls, data, ValidationError)


def parse_auto_scaling_group(data: Any, region: str = DEFAULT_REGION,
                             account: str = DEFAULT_ACCOUNT) -> AutoScalingGroup:
    """CreateAutoScalingGroup's request (+ `LaunchTemplate.InstanceType`, `ReservedMemoryMiB`), validated."""
    if isinstance(data, dict) and "AutoScalingGroupARN" in data:
        fail(ValidationError, "AutoScalingGroupARN", "Unknown parameter 'AutoScalingGroupARN': Auto Scaling sets it.")
    asg = AutoScalingGroup.from_api(data)
    if asg.desired_capacity is None:
        asg.desired_capacity = asg.min_size
    group_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{asg.auto_scaling_group_name}"))
    asg.auto_scaling_group_arn = auto_scaling_group_arn(asg.auto_scaling_group_name, group_id, region, account)
    validate_auto_scaling_group(asg, region)
    return asg


def validate_auto_scaling_group(asg: AutoScalingGroup, region: str | None = None) -> None:
    if not 1 <= len(asg.auto_scaling_group_name) <= 255:
        fail(ValidationError, "AutoScalingGroupName", "The AutoScalingGroupName must be 1-255 characters long.")
    try:
        instance_type = asg.instance_type
    except ValueError as exc:
        fail(ValidationError, "LaunchTemplate.InstanceType", str(exc) if asg.launch_template.instance_type else
             "LaunchTemplate.InstanceType is required: the emulator has no separate CreateLaunchTemplate.")
    for path, value in (("MinSize", asg.min_size), ("MaxSize", asg.max_size),
                        ("DesiredCapacity", asg.desired_capacity), ("DefaultCooldown", asg.default_cooldown),
                        ("HealthCheckGracePeriod", asg.health_check_grace_period)):
        out_of_range(ValidationError, path, value, 0, 2**31 - 1)
    if asg.min_size > asg.max_size:
        fail(ValidationError, "MaxSize", f"Max bound, {asg.max_size}, must be greater than or equal to min bound, "
                                         f"{asg.min_size}")
    if not asg.min_size <= (asg.desired_capacity or 0) <= asg.max_size:
        fail(ValidationError, "DesiredCapacity", f"Desired capacity:{asg.desired_capacity} must be between the "
                                                 f"specified min size:{asg.min_size} and max size:{asg.max_size}")
    if not asg.availability_zones:
        fail(ValidationError, "AvailabilityZones", "At least one Availability Zone or VPC Subnet is required.")
    for i, zone in enumerate(asg.availability_zones):
        if region and not re.fullmatch(re.escape(region) + r"[a-z]", zone):
            fail(ValidationError, f"AvailabilityZones[{i}]",
                 f"The availability zone '{zone}' is not legal in {region}.")
    if asg.health_check_type not in ("EC2", "ELB"):
        fail(ValidationError, "HealthCheckType",
             f"Invalid health check type '{asg.health_check_type}'; use EC2 or ELB.")
    if asg.reserved_memory_mib is not None and not 0 <= asg.reserved_memory_mib < instance_type.memory_mib:
        fail(ValidationError, "ReservedMemoryMiB", f"ReservedMemoryMiB must be between 0 and "
                                                   f"{instance_type.memory_mib - 1} for {instance_type.name}.")


# --- ECS capacity providers ---------------------------------------------------

@dataclass
class ManagedScaling:
    status: str = DISABLED
    target_capacity: int = 100
    minimum_scaling_step_size: int = 1
    maximum_scaling_step_size: int = 10000
    instance_warmup_period: int = 300


@dataclass
class AutoScalingGroupProvider:
    auto_scaling_group_arn: str
    managed_scaling: ManagedScaling = field(default_factory=ManagedScaling)
    managed_termination_protection: str = DISABLED
    managed_draining: str = ENABLED


@dataclass
class CapacityProvider:
    name: str
    auto_scaling_group_provider: AutoScalingGroupProvider
    capacity_provider_arn: str | None = None
    status: str = "ACTIVE"
    update_status: str | None = None
    tags: list[Tag] = field(default_factory=list)

    @property
    def managed_scaling_enabled(self) -> bool:
        return self.auto_scaling_group_provider.managed_scaling.status == ENABLED

    def to_api(self) -> dict[str, Any]:
        return to_api(self)

    @classmethod
    def from_api(cls, data: Any) -> CapacityProvider:
        return from_camel_api(cls, data, ClientException)


_CP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def parse_capacity_provider(data: Any, region: str = DEFAULT_REGION,
                            account: str = DEFAULT_ACCOUNT) -> CapacityProvider:
    """CreateCapacityProvider's request, validated; the ARN is filled in."""
    if isinstance(data, dict) and "capacityProviderArn" in data:
        fail(ClientException, "capacityProviderArn", "Unknown parameter 'capacityProviderArn': ECS sets it.")
    cp = CapacityProvider.from_api(data)
    cp.capacity_provider_arn = capacity_provider_arn(cp.name, region=region, account=account)
    validate_capacity_provider(cp)
    return cp


def validate_capacity_provider(cp: CapacityProvider) -> None:
    if not _CP_NAME.match(cp.name):
        fail(ClientException, "name", "The specified capacity provider name is invalid. Up to 255 characters are "
                                      "allowed: letters (upper and lower case), numbers, underscores, and hyphens.")
    if cp.name.lower().startswith(("aws", "ecs", "fargate")):
        fail(ClientException, "name", "The specified capacity provider name is invalid. A capacity provider name "
                                      "cannot be prefixed with 'aws', 'ecs', or 'fargate'.")
    provider, path = cp.auto_scaling_group_provider, "autoScalingGroupProvider"
    scaling = provider.managed_scaling
    for key, value, allowed in ((f"{path}.managedScaling.status", scaling.status, (ENABLED, DISABLED)),
                                (f"{path}.managedTerminationProtection", provider.managed_termination_protection,
                                 (ENABLED, DISABLED)),
                                (f"{path}.managedDraining", provider.managed_draining, (ENABLED, DISABLED))):
        if value not in allowed:
            fail(InvalidParameterException, key, f"Invalid value '{value}'. Valid values: {', '.join(allowed)}.")
    ms = f"{path}.managedScaling."
    out_of_range(InvalidParameterException, ms + "targetCapacity", scaling.target_capacity, 1, 100)
    out_of_range(InvalidParameterException, ms + "minimumScalingStepSize", scaling.minimum_scaling_step_size, 1, 10000)
    out_of_range(InvalidParameterException, ms + "maximumScalingStepSize", scaling.maximum_scaling_step_size, 1, 10000)
    out_of_range(InvalidParameterException, ms + "instanceWarmupPeriod", scaling.instance_warmup_period, 0, 10000)
    if scaling.minimum_scaling_step_size > scaling.maximum_scaling_step_size:
        fail(InvalidParameterException, ms + "minimumScalingStepSize",
             "The minimumScalingStepSize must be less than or equal to the maximumScalingStepSize.")
    if provider.managed_termination_protection == ENABLED and scaling.status != ENABLED:
        fail(ClientException, f"{path}.managedTerminationProtection",
             "The managed termination protection setting for the capacity provider is invalid. To enable managed "
             "termination protection for a capacity provider, managed scaling must be enabled.")


def check_provider_group(cp: CapacityProvider, asg: AutoScalingGroup) -> None:
    """The rules CreateCapacityProvider checks against the Auto Scaling group it names."""
    path = "autoScalingGroupProvider.autoScalingGroupArn"
    if cp.managed_scaling_enabled and asg.max_size == 0:
        fail(ClientException, path, "The Auto Scaling group's MaxSize must be greater than 0 for managed scaling.")
    if (cp.auto_scaling_group_provider.managed_termination_protection == ENABLED
            and not asg.new_instances_protected_from_scale_in):
        fail(ClientException, "autoScalingGroupProvider.managedTerminationProtection",
             "The managed termination protection setting for the capacity provider is invalid. To enable managed "
             "termination protection for a capacity provider, the Auto Scaling group must have instance "
             "protection from scale in enabled.")


# --- Application Auto Scaling: scalable targets and policies -----------------

ECS_NAMESPACE, DESIRED_COUNT = "ecs", "ecs:service:DesiredCount"
PREDEFINED_METRICS = ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                      "ALBRequestCountPerTarget")
POLICY_TYPES = ("TargetTrackingScaling", "StepScaling")
ADJUSTMENT_TYPES = ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")
STATISTICS = ("Average", "Minimum", "Maximum", "SampleCount", "Sum")
AGGREGATIONS = ("Average", "Minimum", "Maximum")
MAX_COOLDOWN = 31536000
TARGET_VALUE = (8.515920e-109, 1.174271e+108)
_RESOURCE_ID = re.compile(r"^service/(?P<cluster>[A-Za-z0-9_-]{1,255})/(?P<service>[A-Za-z0-9_-]{1,255})$")
_RESOURCE_LABEL = re.compile(r"^app/[A-Za-z0-9-]{1,32}/[0-9a-f]+/targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$")


def service_resource_id(cluster: str, service: str) -> str:
    return f"service/{cluster}/{service}"


@dataclass
class SuspendedState:
    dynamic_scaling_in_suspended: bool = False
    dynamic_scaling_out_suspended: bool = False
    scheduled_scaling_suspended: bool = False


@dataclass
class ScalableTarget:
    resource_id: str
    min_capacity: int
    max_capacity: int
    service_namespace: str = ECS_NAMESPACE
    scalable_dimension: str = DESIRED_COUNT
    role_arn: str | None = field(default=None, metadata={"aws": "RoleARN"})
    suspended_state: SuspendedState = field(default_factory=SuspendedState)

    @property
    def service_name(self) -> str:
        return self.resource_id.rsplit("/", 1)[-1]

    def to_api(self) -> dict[str, Any]:
        return to_pascal_api(self)

    @classmethod
    def from_api(cls, data: Any) -> ScalableTarget:
        return from_pascal_api(cls, data, ValidationException)


@dataclass
class PredefinedMetricSpecification:
    predefined_metric_type: str
    resource_label: str | None = None


@dataclass
class MetricDimension:
    name: str
    value: str


@dataclass
class CustomizedMetricSpecification:
    metric_name: str
    namespace: str
    statistic: str
    dimensions: list[MetricDimension] = field(default_factory=list)
    unit: str | None = None


@dataclass
class TargetTrackingScalingPolicyConfiguration:
    target_value: float
    predefined_metric_specification: PredefinedMetricSpecification | None = None
    customized_metric_specification: CustomizedMetricSpecification | None = None
    scale_out_cooldown: int = 300
    scale_in_cooldown: int = 300
    disable_scale_in: bool = False


@dataclass
class StepAdjustment:
    scaling_adjustment: int
    metric_interval_lower_bound: float | None = None
    metric_interval_upper_bound: float | None = None


@dataclass
class StepScalingPolicyConfiguration:
    adjustment_type: str
    step_adjustments: list[StepAdjustment]
    min_adjustment_magnitude: int | None = None
    cooldown: int = 300
    metric_aggregation_type: str = "Average"


@dataclass
class ScalingPolicy:
    policy_name: str
    resource_id: str
    policy_type: str = "StepScaling"  # PutScalingPolicy's default when PolicyType is absent
    service_namespace: str = ECS_NAMESPACE
    scalable_dimension: str = DESIRED_COUNT
    policy_arn: str | None = field(default=None, metadata={"aws": "PolicyARN"})
    target_tracking_scaling_policy_configuration: TargetTrackingScalingPolicyConfiguration | None = None
    step_scaling_policy_configuration: StepScalingPolicyConfiguration | None = None

    def to_api(self) -> dict[str, Any]:
        return to_pascal_api(self)

    @classmethod
    def from_api(cls, data: Any) -> ScalingPolicy:
        return from_pascal_api(cls, data, ValidationException)


def scaling_policy_arn(policy: ScalingPolicy, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    policy_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{policy.resource_id}/{policy.policy_name}")
    return (f"arn:aws:autoscaling:{region}:{account}:scalingPolicy:{policy_id}:resource/"
            f"{policy.service_namespace}/{policy.resource_id}:policyName/{policy.policy_name}")


def parse_scalable_target(data: Any) -> ScalableTarget:
    """RegisterScalableTarget's request, validated."""
    target = ScalableTarget.from_api(data)
    _check_resource(target.service_namespace, target.resource_id, target.scalable_dimension)
    out_of_range(ValidationException, "MinCapacity", target.min_capacity, 0, 2**31 - 1)
    out_of_range(ValidationException, "MaxCapacity", target.max_capacity, 0, 2**31 - 1)
    if target.min_capacity > target.max_capacity:
        fail(ValidationException, "MinCapacity", "Minimum capacity cannot be greater than maximum capacity")
    return target


def parse_scaling_policy(data: Any, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> ScalingPolicy:
    """PutScalingPolicy's request, validated; the ARN is filled in."""
    policy = ScalingPolicy.from_api(data)
    _check_resource(policy.service_namespace, policy.resource_id, policy.scalable_dimension)
    if not 1 <= len(policy.policy_name) <= 256:
        fail(ValidationException, "PolicyName", "PolicyName must be 1-256 characters long.")
    if policy.policy_type not in POLICY_TYPES:
        fail(ValidationException, "PolicyType", f"Unsupported policy type '{policy.policy_type}' for namespace ecs; "
                                                f"valid: {', '.join(POLICY_TYPES)}.")
    tracking, step = (policy.target_tracking_scaling_policy_configuration, policy.step_scaling_policy_configuration)
    wanted, other = ((tracking, "StepScalingPolicyConfiguration") if policy.policy_type == "TargetTrackingScaling"
                     else (step, "TargetTrackingScalingPolicyConfiguration"))
    if wanted is None:
        fail(ValidationException, f"{policy.policy_type}PolicyConfiguration",
             f"{policy.policy_type}PolicyConfiguration is required for PolicyType {policy.policy_type}.")
    if (tracking if other.startswith("Target") else step) is not None:
        fail(ValidationException, other, f"{other} cannot be used with PolicyType {policy.policy_type}.")
    if tracking:
        _check_target_tracking(tracking)
    if step:
        _check_step_scaling(step)
    policy.policy_arn = scaling_policy_arn(policy, region, account)
    return policy


def _check_resource(namespace: str, resource_id: str, dimension: str) -> None:
    if namespace != ECS_NAMESPACE:
        fail(ValidationException, "ServiceNamespace",
             f"Unsupported service namespace '{namespace}': this emulator scales ECS services (ecs).")
    if not _RESOURCE_ID.match(resource_id):
        fail(ValidationException, "ResourceId",
             f"Unsupported resource ID '{resource_id}': use service/<cluster-name>/<service-name>.")
    if dimension != DESIRED_COUNT:
        fail(ValidationException, "ScalableDimension",
             f"Unsupported scalable dimension '{dimension}' for namespace ecs; use {DESIRED_COUNT}.")


def _check_target_tracking(tt: TargetTrackingScalingPolicyConfiguration) -> None:
    path = "TargetTrackingScalingPolicyConfiguration"
    out_of_range(ValidationException, f"{path}.TargetValue", tt.target_value, *TARGET_VALUE)
    out_of_range(ValidationException, f"{path}.ScaleOutCooldown", tt.scale_out_cooldown, 0, MAX_COOLDOWN)
    out_of_range(ValidationException, f"{path}.ScaleInCooldown", tt.scale_in_cooldown, 0, MAX_COOLDOWN)
    predefined, custom = tt.predefined_metric_specification, tt.customized_metric_specification
    if (predefined is None) == (custom is None):
        fail(ValidationException, path, "Exactly one of PredefinedMetricSpecification or "
                                        "CustomizedMetricSpecification must be specified.")
    if predefined:
        where = f"{path}.PredefinedMetricSpecification"
        if predefined.predefined_metric_type not in PREDEFINED_METRICS:
            fail(ValidationException, f"{where}.PredefinedMetricType",
                 f"Unsupported predefined metric type '{predefined.predefined_metric_type}' for namespace ecs; "
                 f"valid: {', '.join(PREDEFINED_METRICS)}.")
        needs_label = predefined.predefined_metric_type == "ALBRequestCountPerTarget"
        if needs_label and not _RESOURCE_LABEL.match(predefined.resource_label or ""):
            fail(ValidationException, f"{where}.ResourceLabel", "ALBRequestCountPerTarget needs a ResourceLabel of "
                 "the form app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>.")
        if not needs_label and predefined.resource_label is not None:
            fail(ValidationException, f"{where}.ResourceLabel",
                 "ResourceLabel is only valid for the ALBRequestCountPerTarget metric type.")
    if custom and custom.statistic not in STATISTICS:
        fail(ValidationException, f"{path}.CustomizedMetricSpecification.Statistic",
             f"Invalid statistic '{custom.statistic}'; valid: {', '.join(STATISTICS)}.")


def _check_step_scaling(step: StepScalingPolicyConfiguration) -> None:
    path = "StepScalingPolicyConfiguration"
    if step.adjustment_type not in ADJUSTMENT_TYPES:
        fail(ValidationException, f"{path}.AdjustmentType",
             f"Invalid AdjustmentType '{step.adjustment_type}'; valid: {', '.join(ADJUSTMENT_TYPES)}.")
    if step.metric_aggregation_type not in AGGREGATIONS:
        fail(ValidationException, f"{path}.MetricAggregationType",
             f"Invalid MetricAggregationType '{step.metric_aggregation_type}'; valid: {', '.join(AGGREGATIONS)}.")
    out_of_range(ValidationException, f"{path}.Cooldown", step.cooldown, 0, MAX_COOLDOWN)
    if step.min_adjustment_magnitude is not None:
        if step.adjustment_type != "PercentChangeInCapacity":
            fail(ValidationException, f"{path}.MinAdjustmentMagnitude",
                 "MinAdjustmentMagnitude is only allowed with AdjustmentType PercentChangeInCapacity.")
        out_of_range(ValidationException, f"{path}.MinAdjustmentMagnitude", step.min_adjustment_magnitude, 1, 2**31 - 1)
    _check_steps(step)


def _check_steps(step: StepScalingPolicyConfiguration) -> None:
    """Intervals, relative to the alarm threshold, must not overlap or leave gaps."""
    path = "StepScalingPolicyConfiguration.StepAdjustments"
    steps = step.step_adjustments
    if not steps:
        fail(ValidationException, path, "StepAdjustments must contain at least one step adjustment.")
    for i, s in enumerate(steps):
        low, high = s.metric_interval_lower_bound, s.metric_interval_upper_bound
        if low is not None and high is not None and low >= high:
            fail(ValidationException, f"{path}[{i}]",
                 f"MetricIntervalLowerBound ({low}) must be less than MetricIntervalUpperBound ({high}).")
        if step.adjustment_type == "ExactCapacity" and s.scaling_adjustment < 0:
            fail(ValidationException, f"{path}[{i}].ScalingAdjustment",
                 "ScalingAdjustment cannot be negative with AdjustmentType ExactCapacity.")
    order = sorted(range(len(steps)), key=lambda i: -float("inf") if steps[i].metric_interval_lower_bound is None
                   else steps[i].metric_interval_lower_bound)
    for before, after in zip(order, order[1:]):
        high, low = steps[before].metric_interval_upper_bound, steps[after].metric_interval_lower_bound
        if high is None or low is None or high > low:
            fail(ValidationException, f"{path}[{after}]", "Step adjustment intervals cannot overlap.")
        if high < low:
            fail(ValidationException, f"{path}[{after}]",
                 f"There is a gap between step adjustment intervals ({high} to {low}).")
