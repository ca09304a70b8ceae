"""CreateService's request, checked as ECS checks it, for the API and stack files alike.

`parse_create_service` turns CreateService's JSON into a `CreateServiceRequest`
or raises `InvalidParameterException` (ECS's word for a bad value) carrying
`field_path`, the request key it is about, so a stack file can point at its
line. It checks what the request alone can show; `check_against_task_definition`
adds what needs the task definition. Whether the cluster, task definition,
target groups and capacity providers exist is the caller's check: it needs state.

The memberOf expression parser lives a layer up (`emulator.placement.query`),
so callers pass it in as `check_expression` rather than this model importing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import AwsError, InvalidParameterException
from .cluster import CapacityProviderStrategyItem, Tag
from .shapes import fail, from_camel_api, out_of_range
from .placement_spec import (MAX_CONSTRAINTS, PlacementConstraint, PlacementStrategy, validate_constraints,
                             validate_strategies)
from .service import DeploymentConfiguration, LoadBalancer
from .task_definition import TaskDefinition

REPLICA, DAEMON = "REPLICA", "DAEMON"
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")
PROPAGATE_TAGS = ("TASK_DEFINITION", "SERVICE", "NONE")
MAX_STRATEGY_ITEMS = 20
BASE_RANGE = (0, 100000)
WEIGHT_RANGE = (0, 1000)
MAX_LOAD_BALANCERS = 5
MAX_GRACE_PERIOD_S = 2147483647
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

ExpressionCheck = Callable[[str], object]  # raises ValueError on a bad memberOf expression


@dataclass
class CreateServiceRequest:
    service_name: str
    task_definition: str | None = None
    cluster: str | None = None
    desired_count: int | None = None
    launch_type: str | None = None
    capacity_provider_strategy: list[CapacityProviderStrategyItem] = field(default_factory=list)
    placement_constraints: list[PlacementConstraint] = field(default_factory=list)
    placement_strategy: list[PlacementStrategy] = field(default_factory=list)
    deployment_configuration: DeploymentConfiguration = field(default_factory=DeploymentConfiguration)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    health_check_grace_period_seconds: int | None = None
    scheduling_strategy: str = REPLICA
    deployment_controller: dict[str, str] = field(default_factory=lambda: {"type": "ECS"})
    network_configuration: dict[str, Any] | None = None
    platform_version: str | None = None
    role: str | None = None
    client_token: str | None = None
    tags: list[Tag] = field(default_factory=list)
    enable_ecs_managed_tags: bool = False
    propagate_tags: str | None = None
    enable_execute_command: bool = False

    @property
    def uses_cluster_default_strategy(self) -> bool:
        """Neither launchType nor a strategy: the cluster's defaultCapacityProviderStrategy applies."""
        return self.launch_type is None and not self.capacity_provider_strategy


def parse_create_service(data: Any, *, check_expression: ExpressionCheck | None) -> CreateServiceRequest:
    """A validated CreateServiceRequest; InvalidParameterException (with `field_path`) otherwise."""
    if not isinstance(data, dict):
        fail(InvalidParameterException, "", "CreateService's input must be an object.")
    req = from_camel_api(CreateServiceRequest, data, InvalidParameterException)
    if req.scheduling_strategy == DAEMON:  # DAEMON's defaults differ from REPLICA's
        given = data.get("deploymentConfiguration") or {}
        req.deployment_configuration.maximum_percent = given.get("maximumPercent", 100)
        req.deployment_configuration.minimum_healthy_percent = given.get("minimumHealthyPercent", 0)
    _check_basics(req)
    _check_launch(req)
    _check_deployment_configuration(req)
    _check_placement(req, check_expression)
    _check_load_balancers(req)
    return req


def _check_basics(req: CreateServiceRequest) -> None:
    if not _SERVICE_NAME.match(req.service_name):
        fail(InvalidParameterException, "serviceName", "Service name must be 1-255 characters: letters (upper "
                                                       "and lower case), numbers, hyphens, and underscores.")
    controller = req.deployment_controller.get("type", "ECS")
    if set(req.deployment_controller) - {"type"} or controller not in ("ECS", "CODE_DEPLOY", "EXTERNAL"):
        fail(InvalidParameterException, "deploymentController.type",
             f"Invalid deploymentController type '{controller}'. Valid values: ECS, CODE_DEPLOY, EXTERNAL.")
    if controller != "ECS":
        fail(InvalidParameterException, "deploymentController.type",
             f"The {controller} deployment controller is not supported by this emulator; use ECS (rolling update).")
    if not req.task_definition:
        fail(InvalidParameterException, "taskDefinition",
             "A task definition is required for services that use the ECS deployment controller.")
    if req.scheduling_strategy not in (REPLICA, DAEMON):
        fail(InvalidParameterException, "schedulingStrategy",
             f"Invalid schedulingStrategy '{req.scheduling_strategy}'. Valid values: REPLICA, DAEMON.")
    if req.scheduling_strategy == REPLICA and req.desired_count is None:
        fail(InvalidParameterException, "desiredCount", "desiredCount is required for the REPLICA scheduling strategy.")
    if req.scheduling_strategy == DAEMON and req.desired_count is not None:
        fail(InvalidParameterException, "desiredCount",
             "The daemon scheduling strategy does not support a desired count for services.")
    if req.desired_count is not None and req.desired_count < 0:
        fail(InvalidParameterException, "desiredCount", "desiredCount must be 0 or greater.")
    out_of_range(InvalidParameterException, "healthCheckGracePeriodSeconds",
                 req.health_check_grace_period_seconds, 0, MAX_GRACE_PERIOD_S)
    if req.propagate_tags is not None and req.propagate_tags not in PROPAGATE_TAGS:
        fail(InvalidParameterException, "propagateTags",
             f"Invalid propagateTags '{req.propagate_tags}'. Valid values: {', '.join(PROPAGATE_TAGS)}.")


def _check_launch(req: CreateServiceRequest) -> None:
    if req.launch_type is not None and req.capacity_provider_strategy:
        fail(InvalidParameterException, "capacityProviderStrategy", "Specifying both a launch type and capacity "
                                                                    "provider strategy is not supported. Remove one "
                                                                    "and try again.")
    if req.launch_type is not None and req.launch_type not in LAUNCH_TYPES:
        fail(InvalidParameterException, "launchType",
             f"Invalid launchType '{req.launch_type}'. Valid values: {', '.join(LAUNCH_TYPES)}.")
    if req.launch_type not in (None, "EC2"):
        fail(InvalidParameterException, "launchType",
             f"launchType {req.launch_type} is not supported: this emulator runs the EC2 launch type only.")
    if req.platform_version is not None:
        fail(InvalidParameterException, "platformVersion",
             "The platform version must be null when specifying an EC2 launch type.")
    validate_capacity_provider_strategy(req.capacity_provider_strategy)


def validate_capacity_provider_strategy(items: list[CapacityProviderStrategyItem],
                                        path: str = "capacityProviderStrategy") -> None:
    """The rules CreateService, RunTask and PutClusterCapacityProviders share."""
    if len(items) > MAX_STRATEGY_ITEMS:
        fail(InvalidParameterException, path,
             f"A capacity provider strategy can contain at most {MAX_STRATEGY_ITEMS} capacity providers.")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not item.capacity_provider:
            fail(InvalidParameterException, f"{path}[{i}].capacityProvider", "The capacity provider name is required.")
        if item.capacity_provider in seen:
            fail(InvalidParameterException, f"{path}[{i}].capacityProvider",
                 f"Capacity provider '{item.capacity_provider}' appears more than once in the strategy.")
        seen.add(item.capacity_provider)
        out_of_range(InvalidParameterException, f"{path}[{i}].base", item.base, *BASE_RANGE)
        out_of_range(InvalidParameterException, f"{path}[{i}].weight", item.weight, *WEIGHT_RANGE)
    with_base = [i for i, item in enumerate(items) if item.base > 0]
    if len(with_base) > 1:
        fail(InvalidParameterException, f"{path}[{with_base[1]}].base",
             "Only one capacity provider in a capacity provider strategy can have a base defined.")
    if items and not any(item.weight > 0 for item in items):
        fail(InvalidParameterException, path,
             "At least one capacity provider in a capacity provider strategy must have a weight greater than 0.")


def _check_deployment_configuration(req: CreateServiceRequest) -> None:
    config, path = req.deployment_configuration, "deploymentConfiguration"
    if req.scheduling_strategy == DAEMON and config.maximum_percent > 100:
        fail(InvalidParameterException, f"{path}.maximumPercent",
             "The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment "
             "configuration. Change the maximumPercent value to 100, and try again.")
    if req.scheduling_strategy == REPLICA and config.maximum_percent < 100:
        fail(InvalidParameterException, f"{path}.maximumPercent",
             f"maximumPercent ({config.maximum_percent}) must be at least 100 for the REPLICA scheduling strategy.")
    if not 0 <= config.minimum_healthy_percent <= 100:
        fail(InvalidParameterException, f"{path}.minimumHealthyPercent",
             f"minimumHealthyPercent ({config.minimum_healthy_percent}) must be between 0 and 100.")
    if config.minimum_healthy_percent > config.maximum_percent:
        fail(InvalidParameterException, f"{path}.minimumHealthyPercent",
             f"minimumHealthyPercent ({config.minimum_healthy_percent}) must be less than or equal to "
             f"maximumPercent ({config.maximum_percent}).")


def _check_placement(req: CreateServiceRequest, check_expression: ExpressionCheck | None) -> None:
    for i, constraint in enumerate(req.placement_constraints):
        _located(f"placementConstraints[{i}]", validate_constraints, [constraint])
        if constraint.type == "memberOf" and check_expression is not None:
            try:
                check_expression(constraint.expression or "")
            except ValueError as exc:
                fail(InvalidParameterException, f"placementConstraints[{i}].expression", str(exc))
    _located("placementConstraints", validate_constraints, req.placement_constraints)
    for i, strategy in enumerate(req.placement_strategy):
        _located(f"placementStrategy[{i}]", validate_strategies, [strategy])
    _located("placementStrategy", validate_strategies, req.placement_strategy)
    if req.scheduling_strategy == DAEMON and req.placement_strategy:
        fail(InvalidParameterException, "placementStrategy",
             "The daemon scheduling strategy does not support placement strategies.")


def _located(path: str, check: Callable[[Any], None], value: Any) -> None:
    try:
        check(value)
    except AwsError as exc:
        fail(type(exc), path, exc.message)


def _check_load_balancers(req: CreateServiceRequest) -> None:
    if len(req.load_balancers) > MAX_LOAD_BALANCERS:
        fail(InvalidParameterException, "loadBalancers",
             f"A service can attach at most {MAX_LOAD_BALANCERS} target groups.")
    for i, lb in enumerate(req.load_balancers):
        if lb.load_balancer_name:
            fail(InvalidParameterException, f"loadBalancers[{i}].loadBalancerName",
                 "Classic Load Balancers are not supported by this emulator; use targetGroupArn (an ALB).")
        for key, value in (("targetGroupArn", lb.target_group_arn), ("containerName", lb.container_name),
                           ("containerPort", lb.container_port)):
            if value is None:
                fail(InvalidParameterException, f"loadBalancers[{i}].{key}",
                     f"{key} is required for each load balancer of a service.")
        out_of_range(InvalidParameterException, f"loadBalancers[{i}].containerPort", lb.container_port, 1, 65535)


def check_against_task_definition(req: CreateServiceRequest, td: TaskDefinition) -> None:
    """CreateService's checks that need the task definition it names."""
    for i, lb in enumerate(req.load_balancers):
        container = td.container(lb.container_name or "")
        if container is None:
            fail(InvalidParameterException, f"loadBalancers[{i}].containerName",
                 f"The container {lb.container_name} does not exist in the task definition.")
        if not any(pm.container_port == lb.container_port for pm in container.port_mappings):
            fail(InvalidParameterException, f"loadBalancers[{i}].containerPort",
                 f"The container {lb.container_name} did not have a container port {lb.container_port} defined.")
    if req.network_configuration is not None and td.network_mode != "awsvpc":
        fail(InvalidParameterException, "networkConfiguration",
             "Network Configuration is not valid for the given networkMode of this task definition.")
    total = len(req.placement_constraints) + len(td.placement_constraints)
    if total > MAX_CONSTRAINTS:
        fail(InvalidParameterException, "placementConstraints",
             f"The task definition and the service together have {total} placement constraints; "
             f"the limit is {MAX_CONSTRAINTS}.")
