"""Application Auto Scaling's scaling policies: PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy."""

from __future__ import annotations

from typing import Any

from ...control import scaling_state as core
from ..backend import Backend
from ..params import Params
from .common import operation, page_members, target_key, with_token


@operation
async def put_scaling_policy_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.str("PolicyName", required=True)
    target_key(params)
    params.str("PolicyType")
    params.obj("TargetTrackingScalingPolicyConfiguration")
    params.obj("StepScalingPolicyConfiguration")
    policy = core.put_scaling_policy(backend.store, backend.clock, params.data, backend.region)
    answer: dict[str, Any] = {"PolicyARN": policy.policy_arn}
    if policy.alarms:
        answer["Alarms"] = [{"AlarmName": a.alarm_name, "AlarmARN": a.alarm_arn} for a in policy.alarms]
    return answer


@operation
async def describe_scaling_policies_op(backend: Backend, params: Params) -> dict[str, Any]:
    policies, token = core.describe_scaling_policies(
        backend.store, params.str("ServiceNamespace", required=True), policy_names=params.str_list("PolicyNames"),
        resource_id=params.str("ResourceId"), scalable_dimension=params.str("ScalableDimension"),
        **page_members(params))
    return with_token({"ScalingPolicies": [p.to_api() for p in policies]}, token)


@operation
async def delete_scaling_policy_op(backend: Backend, params: Params) -> dict[str, Any]:
    name = params.str("PolicyName", required=True)
    namespace, resource_id, dimension = target_key(params)
    core.delete_scaling_policy(backend.store, backend.clock, name, namespace, resource_id, dimension)
    return {}


OPERATIONS = {
    "PutScalingPolicy": put_scaling_policy_op,
    "DescribeScalingPolicies": describe_scaling_policies_op,
    "DeleteScalingPolicy": delete_scaling_policy_op,
}
