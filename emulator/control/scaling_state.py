"""Both scaling dimensions' AWS resources in the one store, with AWS's rules and words: scalable targets,
scaling policies and scaling activities (Application Auto Scaling) and capacity providers on clusters (ECS).

The API handlers, stack files and the control loops all come through these
plain functions, so a resource is the same whichever way it was made. Each
refusal is the service's own exception in its own wording and changes
nothing; each change AWS would log is an Event in the journal (a scaling
activity is a SCALING_ACTIVITY event on the ECS service's ARN).

Store kinds and keys:
- "scalable_target": `target_key(namespace, dimension, resource_id)`, a RegisteredScalableTarget
- "scaling_policy":  the policy ARN, a RegisteredScalingPolicy
- "scaling_activity": the ActivityId, a ScalingActivity (the newest 1000 per scalable target are kept)
- "capacity_provider": the name, a CapacityProvider (RegisteredCapacityProvider once this module wrote it)

Only ECS services scale here: ServiceNamespace `ecs`, ScalableDimension
`ecs:service:DesiredCount`. Every write happens inside one store
transaction and never across an await, so two updates can't interleave and
ConcurrentUpdateException, which AWS answers to an update racing another,
has nothing to report here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..errors import (
    ClientException,
    InvalidNextTokenException,
    InvalidParameterException,
    LimitExceededException,
    ObjectNotFoundException,
    ResourceInUseException,
    ValidationException,
)
from ..model.arn import DEFAULT_ACCOUNT, DEFAULT_REGION, capacity_provider_arn, cluster_arn, service_arn, short_name
from ..model.cluster import CapacityProviderStrategyItem, Cluster
from ..model.events import SCALING_ACTIVITY, Event
from ..model.scaling import (
    DESIRED_COUNT,
    ECS_NAMESPACE,
    AutoScalingGroup,
    AutoScalingGroupProvider,
    CapacityProvider,
    ScalableTarget,
    ScalingPolicy,
    _check_resource,
    check_provider_group,
    parse_capacity_provider,
    parse_scalable_target,
    parse_scaling_policy,
    validate_capacity_provider,
)
from ..model.service import SERVICE_ACTIVE, SERVICE_DRAINING
from ..model.service_request import MAX_STRATEGY_ITEMS, validate_capacity_provider_strategy
from ..model.shapes import fail, from_camel_api, from_pascal_api, out_of_range, to_api, to_pascal_api
from ..model.state import StateStore, register_kind
from ..model.task import STOPPED
from ..scaling.target_tracking import managed_alarms
from . import asg as _asg  # noqa: F401  (registers the "auto_scaling_group" kind this module reads)
from .registry import get_cluster
from .services import update_service

# --- journal kinds (besides SCALING_ACTIVITY) ---------------------------------------

SCALABLE_TARGET_REGISTERED = "scalable-target-registered"
SCALABLE_TARGET_DEREGISTERED = "scalable-target-deregistered"
SCALING_POLICY_PUT = "scaling-policy-put"
SCALING_POLICY_DELETED = "scaling-policy-deleted"
CAPACITY_PROVIDER_CREATED = "capacity-provider-created"
CAPACITY_PROVIDER_UPDATED = "capacity-provider-updated"
CAPACITY_PROVIDER_DELETED = "capacity-provider-deleted"
CAPACITY_PROVIDER_DELETE_FAILED = "capacity-provider-delete-failed"
CLUSTER_CAPACITY_PROVIDERS_PUT = "cluster-capacity-providers-put"

# --- ScalingActivity StatusCode --------------------------------------------------------

PENDING, IN_PROGRESS, SUCCESSFUL = "Pending", "InProgress", "Successful"
OVERRIDDEN, UNFULFILLED, FAILED = "Overridden", "Unfulfilled", "Failed"
ACTIVITY_STATUSES = (PENDING, IN_PROGRESS, SUCCESSFUL, OVERRIDDEN, UNFULFILLED, FAILED)
FINISHED_STATUSES = (SUCCESSFUL, OVERRIDDEN, UNFULFILLED, FAILED)

# --- quotas and page sizes ("Application Auto Scaling service quotas"; the API reference) -------

MAX_ACTIVITIES_PER_TARGET = 1000
MAX_SCALABLE_TARGETS = 3000            # per resource type (ECS services) and region
MAX_POLICIES_PER_TARGET = 50           # step scaling and target tracking together
TARGETS_PAGE, POLICIES_PAGE, ACTIVITIES_PAGE = 50, 10, 50   # MaxResults: both its default and its maximum
MAX_CLUSTER_CAPACITY_PROVIDERS = MAX_STRATEGY_ITEMS
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")

ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
EC2_AUTOSCALING = "EC2_AUTOSCALING"
UPDATE_COMPLETE, DELETE_COMPLETE, DELETE_FAILED = "UPDATE_COMPLETE", "DELETE_COMPLETE", "DELETE_FAILED"

# Application Auto Scaling's service-linked role for ECS: what RoleARN shows when none was given.
ECS_SERVICE_LINKED_ROLE = ("arn:aws:iam::{account}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
                           "AWSServiceRoleForApplicationAutoScaling_ECSService")

# UpdateService draws from its rng only to start a deployment, which a desired-count change never does.
_NO_DEPLOYMENT_RNG = random.Random(0)


# --- what the store holds ---------------------------------------------------------------


@dataclass
class RegisteredScalableTarget(ScalableTarget):
    """A scalable target as DescribeScalableTargets shows it: with its ARN, creation time and tags."""

    role_arn: str | None = field(default=None, metadata={"aws": "RoleARN"})
    creation_time: float = 0.0
    scalable_target_arn: str | None = field(default=None, metadata={"aws": "ScalableTargetARN"})
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return target_key(self.service_namespace, self.scalable_dimension, self.resource_id)


@dataclass
class Alarm:
    """A CloudWatch alarm a policy uses (for target tracking, the two it created)."""

    alarm_name: str
    alarm_arn: str = field(metadata={"aws": "AlarmARN"})


@dataclass
class RegisteredScalingPolicy(ScalingPolicy):
    """A scaling policy as DescribeScalingPolicies shows it: with its alarms and creation time."""

    policy_arn: str | None = field(default=None, metadata={"aws": "PolicyARN"})
    alarms: list[Alarm] = field(default_factory=list)
    creation_time: float = 0.0


@dataclass
class NotScaledReason:
    code: str
    max_capacity: int | None = None
    min_capacity: int | None = None
    current_capacity: int | None = None


@dataclass
class ScalingActivity:
    """Application Auto Scaling's ScalingActivity: one change (or refusal) of a target's capacity."""

    activity_id: str
    resource_id: str
    description: str
    cause: str
    start_time: float
    status_code: str
    service_namespace: str = ECS_NAMESPACE
    scalable_dimension: str = DESIRED_COUNT
    end_time: float | None = None
    status_message: str | None = None
    details: str | None = None
    not_scaled_reasons: list[NotScaledReason] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        data = to_pascal_api(self)
        if not self.not_scaled_reasons:
            data.pop("NotScaledReasons", None)
        return data

    @classmethod
    def from_api(cls, data: Any) -> ScalingActivity:
        return from_pascal_api(cls, data, ValidationException)


@dataclass
class RegisteredCapacityProvider(CapacityProvider):
    """A capacity provider as DescribeCapacityProviders shows it, with why its last update failed."""

    update_status_reason: str | None = None
    provider_type: str = field(default=EC2_AUTOSCALING, metadata={"aws": "type"})


register_kind("scalable_target", RegisteredScalableTarget)
register_kind("scaling_policy", RegisteredScalingPolicy)
register_kind("scaling_activity", ScalingActivity)
# Any CapacityProvider may be put (stack files hold plain ones); reading back gives the registered form.
register_kind("capacity_provider", CapacityProvider, dump=lambda cp: cp.to_api(),
              load=RegisteredCapacityProvider.from_api)


def target_key(service_namespace: str, scalable_dimension: str, resource_id: str) -> str:
    """The "scalable_target" store key: `ecs|ecs:service:DesiredCount|service/<cluster>/<service>`."""
    return f"{service_namespace}|{scalable_dimension}|{resource_id}"


def alarm_arn(alarm_name: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm_name}"


# --- scalable targets -------------------------------------------------------------------


def register_scalable_target(store: StateStore, clock: Clock, request: Mapping[str, Any] | ScalableTarget,
                             region: str = DEFAULT_REGION) -> RegisteredScalableTarget:
    """RegisterScalableTarget: create the target, or update the MinCapacity, MaxCapacity, RoleARN,
    SuspendedState and Tags the request gives (the rest is kept).

    `request` is the call's PascalCase body or a ScalableTarget. The ECS service must be ACTIVE. When
    its desired count lies outside [MinCapacity, MaxCapacity] it is moved inside at once, as AWS does,
    and that is a Successful scaling activity ("minimum capacity was set to 2").
    """
    data = _target_request(request)
    namespace, resource_id, dimension = _key_members(data)
    _check_resource(namespace, resource_id, dimension)
    key = target_key(namespace, dimension, resource_id)
    existing: RegisteredScalableTarget | None = store.get("scalable_target", key)
    if existing is None and (data.get("MinCapacity") is None or data.get("MaxCapacity") is None):
        raise ValidationException("MinCapacity and MaxCapacity are required when registering a new "
                                  "scalable target.")
    merged = _merge_target(existing, data)
    target = RegisteredScalableTarget.from_api(merged)
    parse_scalable_target({k: v for k, v in merged.items() if k not in ("RoleARN", "Tags")})  # AWS's range checks
    service = _ecs_service(store, resource_id, region)
    if existing is None and sum(1 for t in store.list("scalable_target")
                                if t.service_namespace == namespace) >= MAX_SCALABLE_TARGETS:
        raise LimitExceededException(f"You have reached the maximum number of scalable targets "
                                     f"({MAX_SCALABLE_TARGETS}) for namespace {namespace}.")
    now = clock.now()
    target.creation_time = existing.creation_time if existing else now
    target.scalable_target_arn = (existing.scalable_target_arn if existing
                                  else _new_scalable_target_arn(region))
    target.role_arn = target.role_arn or ECS_SERVICE_LINKED_ROLE.format(account=DEFAULT_ACCOUNT)
    with store.transaction() as tx:
        tx.put("scalable_target", key, target)
        tx.record(Event(SCALABLE_TARGET_REGISTERED, target.scalable_target_arn,
                        f"{'Updated' if existing else 'Registered'} scalable target {resource_id} "
                        f"({dimension}): MinCapacity {target.min_capacity}, MaxCapacity {target.max_capacity}.",
                        detail={"ResourceId": resource_id, "MinCapacity": target.min_capacity,
                                "MaxCapacity": target.max_capacity}))
        if service.desired_count < target.min_capacity:
            set_desired_count(store, clock, resource_id, target.min_capacity,
                              cause=f"minimum capacity was set to {target.min_capacity}", region=region)
        elif service.desired_count > target.max_capacity:
            set_desired_count(store, clock, resource_id, target.max_capacity,
                              cause=f"maximum capacity was set to {target.max_capacity}", region=region)
    return target


def deregister_scalable_target(store: StateStore, clock: Clock, service_namespace: str, resource_id: str,
                               scalable_dimension: str) -> RegisteredScalableTarget:
    """DeregisterScalableTarget: the target and every scaling policy on it go; its activities stay."""
    _check_resource(service_namespace, resource_id, scalable_dimension)
    target = get_scalable_target(store, resource_id, service_namespace, scalable_dimension)
    if target is None:
        raise ObjectNotFoundException(f"No scalable target found for service namespace: {service_namespace}, "
                                      f"resource ID: {resource_id}, scalable dimension: {scalable_dimension}")
    policies = scaling_policies_of(store, resource_id, service_namespace, scalable_dimension)
    with store.transaction() as tx:
        for policy in policies:
            tx.delete("scaling_policy", policy.policy_arn)
            tx.record(_policy_deleted(policy))
        tx.delete("scalable_target", target.key)
        tx.record(Event(SCALABLE_TARGET_DEREGISTERED, target.scalable_target_arn or target.key,
                        f"Deregistered scalable target {resource_id} ({scalable_dimension}).",
                        detail={"ResourceId": resource_id}))
    return target


def get_scalable_target(store: StateStore, resource_id: str, service_namespace: str = ECS_NAMESPACE,
                        scalable_dimension: str = DESIRED_COUNT) -> RegisteredScalableTarget | None:
    """The registered target of `service/<cluster>/<service>`, or None."""
    return store.get("scalable_target", target_key(service_namespace, scalable_dimension, resource_id))


def describe_scalable_targets(store: StateStore, service_namespace: str, *,
                              resource_ids: Sequence[str] | None = None, scalable_dimension: str | None = None,
                              max_results: int | None = None, next_token: str | None = None,
                              ) -> tuple[list[RegisteredScalableTarget], str | None]:
    """DescribeScalableTargets: (one page of targets, oldest first; the NextToken when more remain)."""
    _check_filters(service_namespace, scalable_dimension)
    wanted = None if resource_ids is None else set(resource_ids)
    targets = [t for t in store.list("scalable_target") if t.service_namespace == service_namespace
               and (wanted is None or t.resource_id in wanted)
               and (scalable_dimension is None or t.scalable_dimension == scalable_dimension)]
    return _page(targets, max_results, next_token, TARGETS_PAGE)


# --- scaling policies -------------------------------------------------------------------


def put_scaling_policy(store: StateStore, clock: Clock, request: Mapping[str, Any] | ScalingPolicy,
                       region: str = DEFAULT_REGION) -> RegisteredScalingPolicy:
    """PutScalingPolicy: create the policy or replace its configuration (its ARN and CreationTime stay).

    `request` is the call's PascalCase body or a ScalingPolicy. A target tracking policy gets the two
    alarms Application Auto Scaling creates (one, AlarmHigh, with DisableScaleIn); a step scaling
    policy has none until an alarm names it.
    """
    data = _policy_request(request)
    _key_members(data)
    policy = parse_scaling_policy(data, region)
    target = get_scalable_target(store, policy.resource_id, policy.service_namespace, policy.scalable_dimension)
    if target is None:
        raise ObjectNotFoundException(
            f"No scalable target registered for service namespace: {policy.service_namespace}, resource ID: "
            f"{policy.resource_id}, scalable dimension: {policy.scalable_dimension}")
    existing: RegisteredScalingPolicy | None = store.get("scaling_policy", policy.policy_arn)
    if existing is None and len(scaling_policies_of(store, policy.resource_id, policy.service_namespace,
                                                    policy.scalable_dimension)) >= MAX_POLICIES_PER_TARGET:
        raise LimitExceededException(f"You have reached the maximum number of scaling policies "
                                     f"({MAX_POLICIES_PER_TARGET}) for scalable target {policy.resource_id}.")
    registered = RegisteredScalingPolicy(**{f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)})
    registered.creation_time = existing.creation_time if existing else clock.now()
    if registered.policy_type == "TargetTrackingScaling":
        made = managed_alarms(registered)
        registered.alarms = [Alarm(a.alarm_name, alarm_arn(a.alarm_name, region))
                             for a in (made.high, made.low) if a is not None]
    with store.transaction() as tx:
        tx.put("scaling_policy", registered.policy_arn, registered)
        tx.record(Event(SCALING_POLICY_PUT, registered.policy_arn,
                        f"{'Updated' if existing else 'Created'} {registered.policy_type} policy "
                        f"{registered.policy_name} on {registered.resource_id}.",
                        detail={"ResourceId": registered.resource_id, "PolicyName": registered.policy_name,
                                "Alarms": [a.alarm_name for a in registered.alarms]}))
    return registered


def delete_scaling_policy(store: StateStore, clock: Clock, policy_name: str, service_namespace: str,
                          resource_id: str, scalable_dimension: str) -> RegisteredScalingPolicy:
    """DeleteScalingPolicy: the policy (and the alarms it made) goes."""
    _check_resource(service_namespace, resource_id, scalable_dimension)
    policy = next((p for p in scaling_policies_of(store, resource_id, service_namespace, scalable_dimension)
                   if p.policy_name == policy_name), None)
    if policy is None:
        raise ObjectNotFoundException(
            f"No scaling policy found for service namespace: {service_namespace}, resource ID: {resource_id}, "
            f"scalable dimension: {scalable_dimension}, policy name: {policy_name}")
    with store.transaction() as tx:
        tx.delete("scaling_policy", policy.policy_arn)
        tx.record(_policy_deleted(policy))
    return policy


def scaling_policies_of(store: StateStore, resource_id: str, service_namespace: str = ECS_NAMESPACE,
                        scalable_dimension: str = DESIRED_COUNT) -> list[RegisteredScalingPolicy]:
    """Every policy on one scalable target, oldest first."""
    return [p for p in store.list("scaling_policy") if p.resource_id == resource_id
            and p.service_namespace == service_namespace and p.scalable_dimension == scalable_dimension]


def describe_scaling_policies(store: StateStore, service_namespace: str, *,
                              policy_names: Sequence[str] | None = None, resource_id: str | None = None,
                              scalable_dimension: str | None = None, max_results: int | None = None,
                              next_token: str | None = None) -> tuple[list[RegisteredScalingPolicy], str | None]:
    """DescribeScalingPolicies: (one page of policies, oldest first; the NextToken when more remain).
    Unknown PolicyNames are ignored, as AWS does."""
    _check_filters(service_namespace, scalable_dimension)
    names = None if policy_names is None else set(policy_names)
    policies = [p for p in store.list("scaling_policy") if p.service_namespace == service_namespace
                and (names is None or p.policy_name in names)
                and (resource_id is None or p.resource_id == resource_id)
                and (scalable_dimension is None or p.scalable_dimension == scalable_dimension)]
    return _page(policies, max_results, next_token, POLICIES_PAGE)


# --- scaling activities -----------------------------------------------------------------


def record_scaling_activity(store: StateStore, clock: Clock, resource_id: str, description: str, cause: str, *,
                            status_code: str = IN_PROGRESS, status_message: str | None = None,
                            details: str | None = None, not_scaled_reasons: Iterable[NotScaledReason] = (),
                            service_namespace: str = ECS_NAMESPACE, scalable_dimension: str = DESIRED_COUNT,
                            region: str = DEFAULT_REGION) -> ScalingActivity:
    """A new scaling activity (StartTime now; EndTime now too when `status_code` is a finished one).

    Words as AWS's: description "Setting desired count to 4.", cause "monitor alarm
    TargetTracking-...-AlarmHigh-... in state ALARM triggered policy cpu75", status message
    "Successfully set desired count to 4. Change successfully fulfilled by ecs.". An activity that
    did not scale carries `not_scaled_reasons` (shown only with IncludeNotScaledActivities). Only
    the newest MAX_ACTIVITIES_PER_TARGET of a target are kept.
    """
    _check_status(status_code)
    now = clock.now()
    activity = ScalingActivity(str(uuid.uuid4()), resource_id, description, cause, now, status_code,
                               service_namespace, scalable_dimension,
                               end_time=now if status_code in FINISHED_STATUSES else None,
                               status_message=status_message, details=details,
                               not_scaled_reasons=list(not_scaled_reasons))
    same = [a for a in store.list("scaling_activity") if (a.service_namespace, a.resource_id, a.scalable_dimension)
            == (service_namespace, resource_id, scalable_dimension)]
    with store.transaction() as tx:
        for old in same[:max(0, len(same) + 1 - MAX_ACTIVITIES_PER_TARGET)]:
            tx.delete("scaling_activity", old.activity_id)
        tx.put("scaling_activity", activity.activity_id, activity)
        tx.record(_activity_event(activity, region, description))
    return activity


def update_scaling_activity(store: StateStore, clock: Clock, activity_id: str, status_code: str, *,
                            status_message: str | None = None, details: str | None = None,
                            region: str = DEFAULT_REGION) -> ScalingActivity:
    """Move an activity on (Pending -> InProgress -> Successful, ...); a finished status sets EndTime."""
    _check_status(status_code)
    activity: ScalingActivity | None = store.get("scaling_activity", activity_id)
    if activity is None:
        raise ObjectNotFoundException(f"No scaling activity found with ActivityId {activity_id}.")
    with store.transaction() as tx:
        activity.status_code = status_code
        if status_message is not None:
            activity.status_message = status_message
        if details is not None:
            activity.details = details
        if status_code in FINISHED_STATUSES and activity.end_time is None:
            activity.end_time = clock.now()
        tx.put("scaling_activity", activity_id, activity)
        tx.record(_activity_event(activity, region, status_message or f"{activity.description} {status_code}."))
    return activity


def set_desired_count(store: StateStore, clock: Clock, resource_id: str, capacity: int, *, cause: str,
                      region: str = DEFAULT_REGION) -> ScalingActivity:
    """Set the ECS service's desiredCount (UpdateService) and record it as a Successful activity, at once."""
    _, cluster, service = resource_id.split("/", 2)
    with store.transaction():
        update_service(store, clock, cluster, service, desired_count=capacity, rng=_NO_DEPLOYMENT_RNG,
                       region=region)
        return record_scaling_activity(
            store, clock, resource_id, f"Setting desired count to {capacity}.", cause, status_code=SUCCESSFUL,
            status_message=f"Successfully set desired count to {capacity}. Change successfully fulfilled by ecs.",
            region=region)


def describe_scaling_activities(store: StateStore, service_namespace: str, *, resource_id: str | None = None,
                                scalable_dimension: str | None = None, include_not_scaled: bool = False,
                                max_results: int | None = None, next_token: str | None = None,
                                ) -> tuple[list[ScalingActivity], str | None]:
    """DescribeScalingActivities: (one page of activities, newest first; the NextToken when more remain)."""
    _check_filters(service_namespace, scalable_dimension)
    activities = [a for a in reversed(store.list("scaling_activity")) if a.service_namespace == service_namespace
                  and (resource_id is None or a.resource_id == resource_id)
                  and (scalable_dimension is None or a.scalable_dimension == scalable_dimension)
                  and (include_not_scaled or not a.not_scaled_reasons)]
    activities.sort(key=lambda a: -a.start_time)  # stable: equal times keep newest-recorded first
    return _page(activities, max_results, next_token, ACTIVITIES_PAGE)


# --- capacity providers (ECS) ---------------------------------------------------------


def create_capacity_provider(store: StateStore, clock: Clock, request: Mapping[str, Any] | CapacityProvider,
                             region: str = DEFAULT_REGION) -> RegisteredCapacityProvider:
    """CreateCapacityProvider for an Auto Scaling group: ACTIVE at once.

    `request` is the call's camelCase body ({name, autoScalingGroupProvider, tags}) or a
    CapacityProvider. `autoScalingGroupArn` may be the group's ARN or name; the stored provider
    holds the group's ARN. The group must exist, serve no other ACTIVE provider, and be protected
    from scale-in when managed termination protection is on.
    """
    data = _provider_request(request)
    cp = _registered_provider(parse_capacity_provider(data, region))
    existing = store.get("capacity_provider", cp.name)
    if existing is not None and existing.status == ACTIVE:
        raise ClientException("The specified capacity provider already exists. To change the configuration of "
                              "an existing capacity provider, update the capacity provider.")
    group = _auto_scaling_group(store, cp.auto_scaling_group_provider.auto_scaling_group_arn)
    cp.auto_scaling_group_provider.auto_scaling_group_arn = group.auto_scaling_group_arn or ""
    if any(other.status == ACTIVE and _group_name(other.auto_scaling_group_provider.auto_scaling_group_arn)
           == group.auto_scaling_group_name for other in store.list("capacity_provider")):
        raise ClientException("The specified Auto Scaling group ARN is already being used by another capacity "
                              "provider. Specify a unique Auto Scaling group ARN and try again.")
    check_provider_group(cp, group)
    cp.status, cp.update_status, cp.update_status_reason = ACTIVE, None, None
    with store.transaction() as tx:
        tx.put("capacity_provider", cp.name, cp)
        tx.record(Event(CAPACITY_PROVIDER_CREATED, cp.capacity_provider_arn or cp.name,
                        f"Created capacity provider {cp.name} for Auto Scaling group "
                        f"{group.auto_scaling_group_name}.",
                        detail={"autoScalingGroupName": group.auto_scaling_group_name,
                                "managedScaling": cp.auto_scaling_group_provider.managed_scaling.status}))
    return cp


def update_capacity_provider(store: StateStore, clock: Clock, name: str,
                             auto_scaling_group_provider: Mapping[str, Any],
                             region: str = DEFAULT_REGION) -> RegisteredCapacityProvider:
    """UpdateCapacityProvider: `auto_scaling_group_provider` is AutoScalingGroupProviderUpdate
    ({managedScaling, managedTerminationProtection, managedDraining}); the members given replace
    the current ones, and inside managedScaling only the keys given change."""
    cp = get_capacity_provider(store, name)
    path = "autoScalingGroupProvider"
    if not isinstance(auto_scaling_group_provider, Mapping):
        fail(ClientException, path, f"Invalid value for {path}: expected an object.")
    unknown = sorted(set(auto_scaling_group_provider) -
                     {"managedScaling", "managedTerminationProtection", "managedDraining"})
    if unknown:
        fail(ClientException, f"{path}.{unknown[0]}", f"Unknown parameter '{unknown[0]}'.")
    current = to_api(cp.auto_scaling_group_provider)
    scaling = auto_scaling_group_provider.get("managedScaling")
    if scaling is not None and not isinstance(scaling, Mapping):
        fail(ClientException, f"{path}.managedScaling", "Invalid value: expected an object.")
    merged = {**current, **{k: v for k, v in auto_scaling_group_provider.items() if v is not None},
              "managedScaling": {**current.get("managedScaling", {}), **(scaling or {})}}
    updated = dataclasses.replace(cp, auto_scaling_group_provider=from_camel_api(AutoScalingGroupProvider, merged,
                                                                                ClientException))
    validate_capacity_provider(updated)
    group = _auto_scaling_group(store, updated.auto_scaling_group_provider.auto_scaling_group_arn, required=False)
    if group is not None:
        check_provider_group(updated, group)
    updated.update_status, updated.update_status_reason = UPDATE_COMPLETE, None
    with store.transaction() as tx:
        tx.put("capacity_provider", updated.name, updated)
        tx.record(Event(CAPACITY_PROVIDER_UPDATED, updated.capacity_provider_arn or updated.name,
                        f"Updated capacity provider {updated.name}.",
                        detail={"autoScalingGroupProvider": to_api(updated.auto_scaling_group_provider)}))
    return updated


def delete_capacity_provider(store: StateStore, clock: Clock, name_or_arn: str,
                             region: str = DEFAULT_REGION) -> RegisteredCapacityProvider:
    """DeleteCapacityProvider: INACTIVE with updateStatus DELETE_COMPLETE. A provider still associated
    with a cluster is not refused: as on AWS, the call answers with it ACTIVE, updateStatus
    DELETE_FAILED and the reason in updateStatusReason."""
    cp = get_capacity_provider(store, name_or_arn)
    holders = [c.cluster_name for c in store.list("cluster") if c.status == ACTIVE and cp.name in c.capacity_providers]
    with store.transaction() as tx:
        if holders:
            cp.update_status = DELETE_FAILED
            cp.update_status_reason = (f"The capacity provider cannot be deleted because it is associated with "
                                       f"cluster: {holders[0]}. Remove the capacity provider from the cluster and "
                                       "try again.")
            kind, message = CAPACITY_PROVIDER_DELETE_FAILED, f"Capacity provider {cp.name}: {cp.update_status_reason}"
        else:
            cp.status, cp.update_status, cp.update_status_reason = INACTIVE, DELETE_COMPLETE, None
            kind, message = CAPACITY_PROVIDER_DELETED, f"Deleted capacity provider {cp.name}."
        tx.put("capacity_provider", cp.name, cp)
        tx.record(Event(kind, cp.capacity_provider_arn or cp.name, message))
    return cp


def get_capacity_provider(store: StateStore, name_or_arn: str) -> RegisteredCapacityProvider:
    """The ACTIVE capacity provider of that name or ARN, or ECS's ClientException."""
    found = store.get("capacity_provider", short_name(name_or_arn))
    if found is None or found.status != ACTIVE:
        raise ClientException("The specified capacity provider does not exist. Specify a valid name or ARN and "
                              "try again.")
    if not isinstance(found, RegisteredCapacityProvider):
        found = _registered_provider(found)
    return found


def describe_capacity_providers(store: StateStore, names: Sequence[str] | None = None, region: str = DEFAULT_REGION,
                                ) -> tuple[list[RegisteredCapacityProvider], list[dict[str, str]]]:
    """DescribeCapacityProviders: (providers, failures). Without names, every provider, INACTIVE ones
    too (AWS keeps deleted ones discoverable for a while); a name not found is a MISSING failure."""
    if names is None:
        return [_registered_provider(cp) for cp in store.list("capacity_provider")], []
    providers: list[RegisteredCapacityProvider] = []
    failures = []
    for ref in names:
        cp = store.get("capacity_provider", short_name(ref))
        if cp is None:
            failures.append({"arn": capacity_provider_arn(short_name(ref), region=region), "reason": "MISSING"})
        elif all(known.name != cp.name for known in providers):
            providers.append(_registered_provider(cp))
    return providers, failures


def put_cluster_capacity_providers(store: StateStore, clock: Clock, cluster: str, capacity_providers: Sequence[str],
                                   default_capacity_provider_strategy: Sequence[CapacityProviderStrategyItem |
                                                                                Mapping[str, Any]],
                                   region: str = DEFAULT_REGION) -> Cluster:
    """PutClusterCapacityProviders: the cluster's whole list of providers and its default strategy.

    Every provider must be ACTIVE and not associated with another cluster; the strategy follows
    ECS's rules and names only listed providers. A provider left out is disassociated, unless a
    service's strategy or a running task still uses it (ResourceInUseException).
    """
    found = get_cluster(store, cluster, region)
    strategy = [item if isinstance(item, CapacityProviderStrategyItem) else
                from_camel_api(CapacityProviderStrategyItem, item, InvalidParameterException)
                for item in default_capacity_provider_strategy]
    names = [short_name(n) for n in capacity_providers]
    check_cluster_capacity_providers(store, found.cluster_name, names, strategy)
    removed = [name for name in found.capacity_providers if name not in names]
    for name in removed:
        if provider_in_use(store, found, name):
            raise ResourceInUseException("The specified capacity provider is in use and cannot be removed.")
    with store.transaction() as tx:
        found.capacity_providers, found.default_capacity_provider_strategy = names, strategy
        tx.put("cluster", found.cluster_arn, found)
        tx.record(Event(CLUSTER_CAPACITY_PROVIDERS_PUT, found.cluster_arn,
                        f"Cluster {found.cluster_name} capacity providers: {', '.join(names) or '(none)'}.",
                        detail={"capacityProviders": names, "removed": removed,
                                "defaultCapacityProviderStrategy": to_api(strategy)}))
    return found


def check_cluster_capacity_providers(store: StateStore, cluster_name: str, names: Sequence[str],
                                     strategy: Sequence[CapacityProviderStrategyItem],
                                     strategy_path: str = "defaultCapacityProviderStrategy") -> None:
    """The rules CreateCluster and PutClusterCapacityProviders share for `capacityProviders` and the default
    strategy (InvalidParameterException)."""
    if len(names) > MAX_CLUSTER_CAPACITY_PROVIDERS:
        fail(InvalidParameterException, "capacityProviders",
             f"A cluster can have at most {MAX_CLUSTER_CAPACITY_PROVIDERS} capacity providers.")
    for i, name in enumerate(names):
        path = f"capacityProviders[{i}]"
        if name in names[:i]:
            fail(InvalidParameterException, path, f"Capacity provider '{name}' appears more than once in "
                                                  "capacityProviders.")
        if name in FARGATE_PROVIDERS:
            fail(InvalidParameterException, path, f"The {name} capacity provider is not supported: this emulator "
                                                  "runs the EC2 launch type only.")
        cp = store.get("capacity_provider", name)
        if cp is None or cp.status != ACTIVE:
            fail(InvalidParameterException, path, "The specified capacity provider was not found. Specify a valid "
                                                  "capacity provider and try again.")
        other = next((c.cluster_name for c in store.list("cluster") if c.status == ACTIVE
                      and c.cluster_name != cluster_name and name in c.capacity_providers), None)
        if other is not None:
            fail(InvalidParameterException, path,
                 f"The capacity provider {name} is already associated with cluster {other}. A capacity provider "
                 "that uses an Auto Scaling group can be associated with one cluster only.")
    validate_capacity_provider_strategy(list(strategy), strategy_path)
    for i, item in enumerate(strategy):
        if item.capacity_provider not in names:
            fail(InvalidParameterException, f"{strategy_path}[{i}].capacityProvider",
                 "The specified capacity provider strategy cannot contain a capacity provider that is not "
                 f"associated with the cluster ({item.capacity_provider}). Associate the capacity provider with "
                 "the cluster or specify a valid capacity provider and try again.")


def provider_in_use(store: StateStore, cluster: Cluster, name: str) -> bool:
    """Whether a service (its strategy or a deployment's) or an unstopped task of the cluster uses the provider."""
    for svc in store.list("service"):
        if svc.cluster_arn != cluster.cluster_arn or svc.status not in (SERVICE_ACTIVE, SERVICE_DRAINING):
            continue
        strategies = [svc.capacity_provider_strategy] + [d.capacity_provider_strategy for d in svc.deployments]
        if any(item.capacity_provider == name for strategy in strategies for item in strategy):
            return True
    return any(t.cluster_arn == cluster.cluster_arn and t.last_status != STOPPED and t.capacity_provider_name == name
               for t in store.list("task"))


# --- helpers ---------------------------------------------------------------------------


def _target_request(request: Mapping[str, Any] | ScalableTarget) -> dict[str, Any]:
    if isinstance(request, ScalableTarget):
        data = to_pascal_api(request)
        if "RoleArn" in data:  # ScalableTarget's own field name; the API's is RoleARN
            data["RoleARN"] = data.pop("RoleArn")
        for key in ("CreationTime", "ScalableTargetARN"):
            data.pop(key, None)
        return data
    if not isinstance(request, Mapping):
        raise ValidationException("The request must be an object.")
    return dict(request)


def _policy_request(request: Mapping[str, Any] | ScalingPolicy) -> dict[str, Any]:
    if isinstance(request, ScalingPolicy):
        data = to_pascal_api(request)
        for key in ("PolicyArn", "PolicyARN", "Alarms", "CreationTime"):
            data.pop(key, None)
        return data
    if not isinstance(request, Mapping):
        raise ValidationException("The request must be an object.")
    return dict(request)


def _provider_request(request: Mapping[str, Any] | CapacityProvider) -> dict[str, Any]:
    allowed = ("name", "autoScalingGroupProvider", "tags")
    if isinstance(request, CapacityProvider):
        data = request.to_api()
        return {k: data[k] for k in allowed if k in data}
    if not isinstance(request, Mapping):
        raise ClientException("The request must be an object.")
    for key in request:
        if key not in allowed:
            fail(ClientException, key, f"Unknown parameter '{key}'.")
    return dict(request)


def _registered_provider(cp: CapacityProvider) -> RegisteredCapacityProvider:
    if isinstance(cp, RegisteredCapacityProvider):
        return cp
    return RegisteredCapacityProvider(**{f.name: getattr(cp, f.name) for f in dataclasses.fields(cp)})


def _key_members(data: Mapping[str, Any]) -> tuple[str, str, str]:
    values = []
    for name in ("ServiceNamespace", "ResourceId", "ScalableDimension"):
        value = data.get(name)
        if value is None:
            fail(ValidationException, name, f"1 validation error detected: Value null at '{name[:1].lower()}"
                                            f"{name[1:]}' failed to satisfy constraint: Member must not be null")
        if not isinstance(value, str):
            fail(ValidationException, name, f"Invalid value for {name}: expected a string.")
        values.append(value)
    return values[0], values[1], values[2]


def _merge_target(existing: RegisteredScalableTarget | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """The request over the existing target: members not given keep their value."""
    base: dict[str, Any] = {}
    if existing is not None:
        base = {"MinCapacity": existing.min_capacity, "MaxCapacity": existing.max_capacity,
                "RoleARN": existing.role_arn, "SuspendedState": to_pascal_api(existing.suspended_state),
                "Tags": dict(existing.tags)}
    merged = {**base, **{k: v for k, v in data.items() if v is not None}}
    suspended = data.get("SuspendedState")
    if isinstance(suspended, Mapping):
        merged["SuspendedState"] = {**base.get("SuspendedState", {}), **suspended}
    return merged


def _ecs_service(store: StateStore, resource_id: str, region: str) -> Any:
    _, cluster, service = resource_id.split("/", 2)
    svc = store.get("service", service_arn(cluster, service, region=region))
    found_cluster = store.get("cluster", cluster_arn(cluster, region=region))
    if svc is None or svc.status != SERVICE_ACTIVE or found_cluster is None or found_cluster.status != ACTIVE:
        raise ValidationException(f"ECS service doesn't exist: {resource_id}")
    return svc


def _new_scalable_target_arn(region: str) -> str:
    target_id = (uuid.uuid4().hex + uuid.uuid4().hex)[:36]
    return f"arn:aws:application-autoscaling:{region}:{DEFAULT_ACCOUNT}:scalable-target/{target_id}"


def _policy_deleted(policy: RegisteredScalingPolicy) -> Event:
    return Event(SCALING_POLICY_DELETED, policy.policy_arn or policy.policy_name,
                 f"Deleted {policy.policy_type} policy {policy.policy_name} on {policy.resource_id}.",
                 detail={"ResourceId": policy.resource_id, "PolicyName": policy.policy_name,
                         "Alarms": [a.alarm_name for a in policy.alarms]})


def _activity_event(activity: ScalingActivity, region: str, message: str) -> Event:
    resource = activity.resource_id
    if activity.service_namespace == ECS_NAMESPACE and resource.count("/") == 2:
        _, cluster, service = resource.split("/")
        resource = service_arn(cluster, service, region=region)
    return Event(SCALING_ACTIVITY, resource, message,
                 detail={"ActivityId": activity.activity_id, "ResourceId": activity.resource_id,
                         "ScalableDimension": activity.scalable_dimension, "Cause": activity.cause,
                         "StatusCode": activity.status_code, "StatusMessage": activity.status_message})


def _check_status(status_code: str) -> None:
    if status_code not in ACTIVITY_STATUSES:
        raise ValueError(f"StatusCode must be one of {', '.join(ACTIVITY_STATUSES)}, not {status_code!r}")


def _check_filters(namespace: str, dimension: str | None) -> None:
    if namespace != ECS_NAMESPACE:
        fail(ValidationException, "ServiceNamespace",
             f"Unsupported service namespace '{namespace}': this emulator scales ECS services (ecs).")
    if dimension is not None and dimension != DESIRED_COUNT:
        fail(ValidationException, "ScalableDimension",
             f"Unsupported scalable dimension '{dimension}' for namespace ecs; use {DESIRED_COUNT}.")


def _auto_scaling_group(store: StateStore, ref: str, *, required: bool = True) -> AutoScalingGroup | None:
    """The group an `autoScalingGroupArn` names: by its ARN, or (the emulator's leniency) by its name."""
    group = store.get("auto_scaling_group", _group_name(ref))
    if group is None and required:
        fail(ClientException, "autoScalingGroupProvider.autoScalingGroupArn",
             f"The specified Auto Scaling group was not found: {ref}. Specify a valid Auto Scaling group ARN and "
             "try again.")
    return group


def _group_name(ref: str) -> str:
    return ref.split("autoScalingGroupName/", 1)[1] if "autoScalingGroupName/" in ref else ref


def _page(items: list[Any], max_results: int | None, next_token: str | None,
          limit: int) -> tuple[list[Any], str | None]:
    """One page of `items` after `next_token` (an opaque offset), and the token of the next page."""
    size = limit if max_results is None else max_results
    out_of_range(ValidationException, "MaxResults", size, 1, limit)
    start = 0 if next_token is None else _offset(next_token)
    end = start + size
    return items[start:end], (_token(end) if end < len(items) else None)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error, AttributeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidNextTokenException("Invalid NextToken: use the NextToken of the previous answer.")
    return offset
