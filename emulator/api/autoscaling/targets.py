"""Application Auto Scaling's scalable targets: RegisterScalableTarget, DescribeScalableTargets,
DeregisterScalableTarget."""

from __future__ import annotations

from typing import Any

from ...control import scaling_state as core
from ..backend import Backend
from ..params import Params
from .common import operation, page_members, target_key, with_token


def render_target(target: core.RegisteredScalableTarget) -> dict[str, Any]:
    data = target.to_api()
    data.pop("Tags", None)  # ListTagsForResource's, not DescribeScalableTargets'
    return data


@operation
async def register_scalable_target_op(backend: Backend, params: Params) -> dict[str, Any]:
    target_key(params)
    params.int("MinCapacity")
    params.int("MaxCapacity")
    params.str("RoleARN")
    params.obj("SuspendedState")
    params.obj("Tags")
    target = core.register_scalable_target(backend.store, backend.clock, params.data, backend.region)
    return {"ScalableTargetARN": target.scalable_target_arn}


@operation
async def describe_scalable_targets_op(backend: Backend, params: Params) -> dict[str, Any]:
    targets, token = core.describe_scalable_targets(
        backend.store, params.str("ServiceNamespace", required=True), resource_ids=params.str_list("ResourceIds"),
        scalable_dimension=params.str("ScalableDimension"), **page_members(params))
    return with_token({"ScalableTargets": [render_target(t) for t in targets]}, token)


@operation
async def deregister_scalable_target_op(backend: Backend, params: Params) -> dict[str, Any]:
    namespace, resource_id, dimension = target_key(params)
    core.deregister_scalable_target(backend.store, backend.clock, namespace, resource_id, dimension)
    return {}


OPERATIONS = {
    "RegisterScalableTarget": register_scalable_target_op,
    "DescribeScalableTargets": describe_scalable_targets_op,
    "DeregisterScalableTarget": deregister_scalable_target_op,
}
