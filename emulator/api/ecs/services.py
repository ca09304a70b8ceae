"""ECS's service operations: thin handlers over emulator.control.services (desired state only;
the service scheduler makes the tasks follow)."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidParameterException
from ...model.cluster import CapacityProviderStrategyItem
from ...model.service import Service
from ...model.service_request import LAUNCH_TYPES, REPLICA, DAEMON, parse_create_service
from ...model.shapes import from_camel_api, to_api
from ...placement.query import compile_expression
from ...control import services as core
from ..backend import Backend
from ..params import Params, page
from .common import not_empty, placement_members

# UpdateService members AWS has that this emulator does not act on: refused with a reason, not ignored.
UNSUPPORTED_UPDATES = ("networkConfiguration", "platformVersion", "deploymentController", "loadBalancers",
                       "serviceRegistries", "serviceConnectConfiguration", "volumeConfigurations",
                       "vpcLatticeConfigurations", "enableExecuteCommand", "availabilityZoneRebalancing",
                       "propagateTags", "enableECSManagedTags")


def render_service(service: Service) -> dict[str, Any]:
    data = to_api(service)
    data["events"] = [to_api(e) for e in core.service_events(service)]
    return data


async def create_service_op(backend: Backend, params: Params) -> dict[str, Any]:
    req = parse_create_service(params.data, check_expression=compile_expression)
    service = core.create_service(backend.store, backend.clock, req, region=backend.region, rng=backend.rng)
    return {"service": render_service(service)}


async def update_service_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(UNSUPPORTED_UPDATES, "UpdateService")
    constraints, strategies = placement_members(params)
    items = params.obj_list("capacityProviderStrategy")
    service = core.update_service(
        backend.store, backend.clock, params.str("cluster"), params.str("service", required=True),
        desired_count=params.int("desiredCount"), task_definition=params.str("taskDefinition"),
        deployment_configuration=params.obj("deploymentConfiguration"),
        force_new_deployment=params.bool("forceNewDeployment"),
        health_check_grace_period_seconds=params.int("healthCheckGracePeriodSeconds"),
        placement_constraints=constraints, placement_strategy=strategies,
        capacity_provider_strategy=None if items is None else
        [from_camel_api(CapacityProviderStrategyItem, i, InvalidParameterException) for i in items],
        rng=backend.rng, region=backend.region)
    return {"service": render_service(service)}


async def describe_services_op(backend: Backend, params: Params) -> dict[str, Any]:
    services, failures = core.describe_services(backend.store, params.str("cluster"),
                                                not_empty(params.str_list("services", required=True), "Services cannot be empty."), region=backend.region)
    return {"services": [render_service(s) for s in services], "failures": failures}


async def list_services_op(backend: Backend, params: Params) -> dict[str, Any]:
    arns = core.list_services(backend.store, params.str("cluster"),
                              launch_type=params.enum("launchType", LAUNCH_TYPES),
                              scheduling_strategy=params.enum("schedulingStrategy", (REPLICA, DAEMON)),
                              region=backend.region)
    items, more = page(arns, params, default_max=10)
    return {"serviceArns": items, **more}


async def delete_service_op(backend: Backend, params: Params) -> dict[str, Any]:
    service = core.delete_service(backend.store, backend.clock, params.str("cluster"),
                                  params.str("service", required=True), force=params.bool("force"),
                                  region=backend.region)
    return {"service": render_service(service)}


OPERATIONS = {
    "CreateService": create_service_op,
    "UpdateService": update_service_op,
    "DescribeServices": describe_services_op,
    "ListServices": list_services_op,
    "DeleteService": delete_service_op,
}
