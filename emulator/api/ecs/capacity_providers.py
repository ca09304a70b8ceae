"""ECS's capacity provider operations: CreateCapacityProvider, DescribeCapacityProviders, UpdateCapacityProvider,
DeleteCapacityProvider and PutClusterCapacityProviders, over emulator.control.scaling_state.

Only Auto Scaling group providers exist here: Amazon ECS Managed Instances
(`managedInstancesProvider`, `cluster`) and Fargate are refused with a reason.
"""

from __future__ import annotations

from typing import Any

from ...control import scaling_state as core
from ...errors import InvalidParameterException
from ...model.scaling import CapacityProvider
from ..backend import Backend
from ..params import Params, page
from .clusters import render_cluster
from .common import MAX_DESCRIBE, at_most

UNSUPPORTED = ("managedInstancesProvider", "cluster")
INCLUDE_VALUES = ("TAGS",)
PROVIDERS_PAGE = 10  # DescribeCapacityProviders' maxResults: 1-10, 10 by default


def render_capacity_provider(cp: CapacityProvider, include_tags: bool = True) -> dict[str, Any]:
    data = cp.to_api()
    if not include_tags:
        data.pop("tags", None)
    return data


async def create_capacity_provider_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(UNSUPPORTED, "CreateCapacityProvider")
    params.str("name", required=True)
    params.obj("autoScalingGroupProvider", required=True)
    params.obj_list("tags")
    body = {k: v for k, v in params.data.items() if k not in UNSUPPORTED and v is not None}
    cp = core.create_capacity_provider(backend.store, backend.clock, body, backend.region)
    return {"capacityProvider": render_capacity_provider(cp)}


async def describe_capacity_providers_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(["cluster"], "DescribeCapacityProviders")
    names = params.str_list("capacityProviders")
    if names is not None:
        at_most(names, MAX_DESCRIBE, "capacityProviders")
    include = params.str_list("include") or []
    for value in include:
        if value not in INCLUDE_VALUES:
            raise InvalidParameterException(f"Invalid include value '{value}'. Valid values: "
                                            f"{', '.join(INCLUDE_VALUES)}.")
    providers, failures = core.describe_capacity_providers(backend.store, names, backend.region)
    items, more = page(providers, params, default_max=PROVIDERS_PAGE, limit=PROVIDERS_PAGE)
    return {"capacityProviders": [render_capacity_provider(cp, "TAGS" in include) for cp in items],
            "failures": failures, **more}


async def update_capacity_provider_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(UNSUPPORTED, "UpdateCapacityProvider")
    cp = core.update_capacity_provider(backend.store, backend.clock, params.str("name", required=True),
                                       params.obj("autoScalingGroupProvider", required=True), backend.region)
    return {"capacityProvider": render_capacity_provider(cp)}


async def delete_capacity_provider_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(["cluster"], "DeleteCapacityProvider")
    cp = core.delete_capacity_provider(backend.store, backend.clock, params.str("capacityProvider", required=True),
                                       backend.region)
    return {"capacityProvider": render_capacity_provider(cp)}


async def put_cluster_capacity_providers_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = core.put_cluster_capacity_providers(
        backend.store, backend.clock, params.str("cluster", required=True),
        params.str_list("capacityProviders", required=True),
        params.obj_list("defaultCapacityProviderStrategy", required=True), backend.region)
    return {"cluster": render_cluster(backend, cluster, ("TAGS", "SETTINGS"))}


OPERATIONS = {
    "CreateCapacityProvider": create_capacity_provider_op,
    "DescribeCapacityProviders": describe_capacity_providers_op,
    "UpdateCapacityProvider": update_capacity_provider_op,
    "DeleteCapacityProvider": delete_capacity_provider_op,
    "PutClusterCapacityProviders": put_cluster_capacity_providers_op,
}
