"""Application Auto Scaling's DescribeScalingActivities: what scaled a service, newest first."""

from __future__ import annotations

from typing import Any

from ...control import scaling_state as core
from ..backend import Backend
from ..params import Params
from .common import operation, page_members, with_token


@operation
async def describe_scaling_activities_op(backend: Backend, params: Params) -> dict[str, Any]:
    activities, token = core.describe_scaling_activities(
        backend.store, params.str("ServiceNamespace", required=True), resource_id=params.str("ResourceId"),
        scalable_dimension=params.str("ScalableDimension"),
        include_not_scaled=params.bool("IncludeNotScaledActivities"), **page_members(params))
    return with_token({"ScalingActivities": [a.to_api() for a in activities]}, token)


OPERATIONS = {
    "DescribeScalingActivities": describe_scaling_activities_op,
}
