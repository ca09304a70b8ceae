"""Services' desired state in the store: CreateService, UpdateService and DeleteService as ECS answers them.

This module only writes what a person asked for (a service, its desired
count, a new PRIMARY deployment); the service scheduler reads it and makes
the tasks follow. Every refusal is ECS's exception with ECS's wording, and
a refused call changes nothing. The API, stack files and the CLI all come
through here, so a service is the same whichever way it was made.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from ..clock import Clock
from ..errors import (
    ClientException,
    InvalidParameterException,
    ServiceNotActiveException,
    ServiceNotFoundException,
)
from ..model.arn import DEFAULT_REGION, service_arn, short_name
from ..model.cluster import CapacityProviderStrategyItem, Cluster
from ..model.events import DEPLOYMENT_STATE_CHANGE, Event
from ..model.placement_spec import PlacementConstraint, PlacementStrategy
from ..model.service import (
    ACTIVE_DEPLOYMENT,
    IN_PROGRESS,
    PRIMARY,
    SERVICE_ACTIVE,
    SERVICE_DRAINING,
    Deployment,
    DeploymentConfiguration,
    Service,
    new_deployment_id,
)
from ..model.service_request import (
    DAEMON,
    CreateServiceRequest,
    check_against_task_definition,
    validate_capacity_provider_strategy,
)
from ..model.shapes import from_camel_api, to_api
from ..model.state import StateStore
from ..model.task_definition import TaskDefinition
from ..placement.requests import validate_placement
from .registry import get_cluster, resolve_task_definition
from .task_index import tasks_of_group

DEFAULT_CLUSTER = "default"
MAX_DESCRIBE_SERVICES = 10
MAX_SERVICE_EVENTS = 100  # DescribeServices shows the latest 100 events


def create_service(store: StateStore, clock: Clock, req: CreateServiceRequest, *, region: str = DEFAULT_REGION,
                   rng: random.Random) -> Service:
    """A new ACTIVE service with one PRIMARY deployment (IN_PROGRESS); the scheduler starts its tasks."""
    cluster = get_cluster(store, req.cluster or DEFAULT_CLUSTER, region)
    if req.scheduling_strategy == DAEMON:
        raise InvalidParameterException("The DAEMON scheduling strategy is not supported by this emulator yet: "
                                        "use REPLICA with a desiredCount.")
    td = _active_task_definition(store, req.task_definition or "", region)
    check_against_task_definition(req, td)
    validate_placement(req.placement_constraints, req.placement_strategy)
    arn = service_arn(cluster.cluster_name, req.service_name, region=region)
    existing = store.get("service", arn)
    if existing is not None and existing.status in (SERVICE_ACTIVE, SERVICE_DRAINING):
        raise InvalidParameterException("Creation of service was not idempotent.")
    launch_type, strategy = _launch(cluster, req.launch_type, req.capacity_provider_strategy,
                                    use_cluster_default=req.uses_cluster_default_strategy)
    now = clock.now()
    desired = req.desired_count or 0
    deployment = _new_deployment(rng, td, desired, launch_type, strategy, now)
    service = Service(
        service_arn=arn, service_name=req.service_name, cluster_arn=cluster.cluster_arn,
        task_definition=td.task_definition_arn or "", desired_count=desired, status=SERVICE_ACTIVE,
        launch_type=launch_type, capacity_provider_strategy=strategy,
        placement_constraints=list(req.placement_constraints), placement_strategy=list(req.placement_strategy),
        deployment_configuration=req.deployment_configuration, deployments=[deployment],
        load_balancers=list(req.load_balancers),
        health_check_grace_period_seconds=req.health_check_grace_period_seconds,
        scheduling_strategy=req.scheduling_strategy, deployment_controller=dict(req.deployment_controller),
        created_at=now, role_arn=req.role, enable_ecs_managed_tags=req.enable_ecs_managed_tags,
        propagate_tags=req.propagate_tags or "NONE")
    with store.transaction() as tx:
        tx.put("service", arn, service)
        tx.record(_deployment_created(service, deployment))
    return service


def update_service(store: StateStore, clock: Clock, cluster: str | None, service: str, *,
                   desired_count: int | None = None, task_definition: str | None = None,
                   deployment_configuration: DeploymentConfiguration | dict[str, Any] | None = None,
                   force_new_deployment: bool = False, health_check_grace_period_seconds: int | None = None,
                   placement_constraints: Sequence[PlacementConstraint] | None = None,
                   placement_strategy: Sequence[PlacementStrategy] | None = None,
                   capacity_provider_strategy: Sequence[CapacityProviderStrategyItem] | None = None,
                   rng: random.Random, region: str = DEFAULT_REGION) -> Service:
    """UpdateService: counts change in place; a new task definition, placement, strategy or
    forceNewDeployment starts a new PRIMARY deployment and the old PRIMARY becomes ACTIVE.

    A `deployment_configuration` dict holds only the keys to change (AWS's camelCase).
    """
    found_cluster = get_cluster(store, cluster or DEFAULT_CLUSTER, region)
    svc = _active_service(store, found_cluster, service, region)
    changes = _UpdatePlan(svc)
    if desired_count is not None:
        changes.desired_count(desired_count)
    if task_definition is not None:
        changes.task_definition(_active_task_definition(store, task_definition, region))
    if deployment_configuration is not None:
        changes.deployment_configuration(deployment_configuration)
    if health_check_grace_period_seconds is not None:
        changes.grace_period(health_check_grace_period_seconds)
    if placement_constraints is not None or placement_strategy is not None:
        changes.placement(placement_constraints, placement_strategy)
    if capacity_provider_strategy is not None:
        changes.capacity_provider_strategy(found_cluster, list(capacity_provider_strategy))
    now = clock.now()
    with store.transaction() as tx:
        changes.apply(now)
        if changes.redeploy or force_new_deployment:
            tx.record(_deployment_created(svc, _start_deployment(store, svc, rng, now)))
        tx.put("service", svc.service_arn, svc)
    return svc


def delete_service(store: StateStore, clock: Clock, cluster: str | None, service: str, *, force: bool = False,
                   region: str = DEFAULT_REGION) -> Service:
    """DeleteService: DRAINING with desiredCount 0; the scheduler stops the tasks, then marks it INACTIVE."""
    found_cluster = get_cluster(store, cluster or DEFAULT_CLUSTER, region)
    svc = _active_service(store, found_cluster, service, region)
    if svc.desired_count > 0 and not force and svc.scheduling_strategy != DAEMON:
        raise InvalidParameterException("The service cannot be stopped while it is scaled above 0.")
    now = clock.now()
    with store.transaction() as tx:
        svc.status, svc.desired_count = SERVICE_DRAINING, 0
        for d in svc.deployments:
            d.desired_count, d.updated_at = 0, now
        tx.put("service", svc.service_arn, svc)
    return svc


def describe_services(store: StateStore, cluster: str | None, services: Sequence[str], *,
                      region: str = DEFAULT_REGION) -> tuple[list[Service], list[dict[str, str]]]:
    """The services found (any status, as ECS shows INACTIVE ones too) and `MISSING` failures."""
    found_cluster = get_cluster(store, cluster or DEFAULT_CLUSTER, region)
    if len(services) > MAX_DESCRIBE_SERVICES:
        raise InvalidParameterException(f"You can describe at most {MAX_DESCRIBE_SERVICES} services at a time.")
    found, failures = [], []
    for name in services:
        arn = service_arn(found_cluster.cluster_name, short_name(name), region=region)
        svc = store.get("service", arn)
        if svc is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            refresh_counts(svc, live_tasks(store, svc))  # true at the moment of the call
            found.append(svc)
    return found, failures


def live_tasks(store: StateStore, svc: Service) -> list:
    """The service's tasks that have not STOPPED (old deployments' included)."""
    return [t for t in tasks_of_group(store, svc.cluster_arn, svc.task_group) if t.last_status != "STOPPED"]


def task_counts(tasks: list) -> Counter:
    """(startedBy, lastStatus) -> how many of these tasks."""
    return Counter(map(_STARTED_BY_AND_STATUS, tasks))


def refresh_counts(svc: Service, tasks: list, counts: Counter | None = None) -> None:
    """runningCount / pendingCount of the service and of each deployment, from its live tasks
    (`counts`: their task_counts, when the caller has them already)."""
    if counts is None:
        counts = task_counts(tasks)
    svc.running_count = sum(n for (_, status), n in counts.items() if status == "RUNNING")
    svc.pending_count = len(tasks) - svc.running_count
    for d in svc.deployments:
        mine = sum(n for (started_by, _), n in counts.items() if started_by == d.id)
        d.running_count = counts.get((d.id, "RUNNING"), 0)
        d.pending_count = mine - d.running_count


_STARTED_BY_AND_STATUS = attrgetter("started_by", "last_status")


def list_services(store: StateStore, cluster: str | None, *, launch_type: str | None = None,
                  scheduling_strategy: str | None = None, region: str = DEFAULT_REGION) -> list[str]:
    """ARNs of the cluster's ACTIVE and DRAINING services, oldest first."""
    found_cluster = get_cluster(store, cluster or DEFAULT_CLUSTER, region)
    return [s.service_arn for s in store.list("service")
            if s.cluster_arn == found_cluster.cluster_arn and s.status in (SERVICE_ACTIVE, SERVICE_DRAINING)
            and (launch_type is None or s.launch_type == launch_type)
            and (scheduling_strategy is None or s.scheduling_strategy == scheduling_strategy)]


def service_events(service: Service, limit: int = MAX_SERVICE_EVENTS) -> list:
    """The service's events newest first, at most `limit` (the scheduler keeps them newest first)."""
    return sorted(service.events, key=lambda e: e.created_at, reverse=True)[:limit]


# --- helpers -------------------------------------------------------------------------


class _UpdatePlan:
    """UpdateService's changes, all checked before any is applied, so a refusal changes nothing."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.redeploy = False
        self._apply: list = []

    def desired_count(self, count: int) -> None:
        if self.svc.scheduling_strategy == DAEMON:
            raise InvalidParameterException(
                "The daemon scheduling strategy does not support a desired count for services.")
        if count < 0:
            raise InvalidParameterException("desiredCount must be 0 or greater.")
        self._apply.append(lambda svc, now: _set_desired(svc, count, now))

    def task_definition(self, td: TaskDefinition) -> None:
        if td.task_definition_arn != self.svc.task_definition:
            check_against_task_definition(_as_request(self.svc), td)
            self.redeploy = True
            self._apply.append(lambda svc, now: setattr(svc, "task_definition", td.task_definition_arn))

    def deployment_configuration(self, given: DeploymentConfiguration | dict[str, Any]) -> None:
        if isinstance(given, DeploymentConfiguration):
            config = given
        else:
            if not isinstance(given, dict):
                raise InvalidParameterException("deploymentConfiguration must be an object.")
            merged = {**to_api(self.svc.deployment_configuration), **given}
            config = from_camel_api(DeploymentConfiguration, merged, InvalidParameterException)
        _check_deployment_configuration(config, self.svc.scheduling_strategy)
        self._apply.append(lambda svc, now: setattr(svc, "deployment_configuration", config))

    def grace_period(self, seconds: int) -> None:
        if not 0 <= seconds <= 2147483647:
            raise InvalidParameterException("healthCheckGracePeriodSeconds must be between 0 and 2147483647.")
        self._apply.append(lambda svc, now: setattr(svc, "health_check_grace_period_seconds", seconds))

    def placement(self, constraints: Sequence[PlacementConstraint] | None,
                  strategies: Sequence[PlacementStrategy] | None) -> None:
        new_constraints = list(self.svc.placement_constraints if constraints is None else constraints)
        new_strategies = list(self.svc.placement_strategy if strategies is None else strategies)
        validate_placement(new_constraints, new_strategies)
        if self.svc.scheduling_strategy == DAEMON and new_strategies:
            raise InvalidParameterException("The daemon scheduling strategy does not support placement strategies.")
        if (new_constraints, new_strategies) != (self.svc.placement_constraints, self.svc.placement_strategy):
            self.redeploy = True
            self._apply.append(lambda svc, now: (setattr(svc, "placement_constraints", new_constraints),
                                                 setattr(svc, "placement_strategy", new_strategies)))

    def capacity_provider_strategy(self, cluster: Cluster, items: list[CapacityProviderStrategyItem]) -> None:
        launch_type, strategy = _launch(cluster, None, items, use_cluster_default=not items)
        if (launch_type, strategy) != (self.svc.launch_type, self.svc.capacity_provider_strategy):
            self.redeploy = True
            self._apply.append(lambda svc, now: (setattr(svc, "launch_type", launch_type),
                                                 setattr(svc, "capacity_provider_strategy", strategy)))

    def apply(self, now: float) -> None:
        for change in self._apply:
            change(self.svc, now)


def _set_desired(svc: Service, count: int, now: float) -> None:
    svc.desired_count = count
    primary = svc.primary
    if primary is not None:
        primary.desired_count, primary.updated_at = count, now


def _start_deployment(store: StateStore, svc: Service, rng: random.Random, now: float) -> Deployment:
    td = store.get("task_definition", svc.task_definition)
    for d in svc.deployments:
        if d.status == PRIMARY:
            d.status, d.updated_at = ACTIVE_DEPLOYMENT, now
    deployment = _new_deployment(rng, td, svc.desired_count, svc.launch_type, svc.capacity_provider_strategy, now)
    svc.deployments.insert(0, deployment)
    return deployment


def _deployment_created(svc: Service, deployment: Deployment) -> Event:
    return Event(DEPLOYMENT_STATE_CHANGE, svc.service_arn,
                 f"(service {svc.service_name}) (deployment {deployment.id}) created for "
                 f"{short_name(deployment.task_definition)}", detail={"deployment": deployment.id})


def _new_deployment(rng: random.Random, td: TaskDefinition, desired: int, launch_type: str | None,
                    strategy: list[CapacityProviderStrategyItem], now: float) -> Deployment:
    deployment_id = new_deployment_id(rng)
    return Deployment(id=deployment_id, status=PRIMARY, task_definition=td.task_definition_arn or "",
                      desired_count=desired, created_at=now, updated_at=now, launch_type=launch_type,
                      capacity_provider_strategy=list(strategy), rollout_state=IN_PROGRESS,
                      rollout_state_reason=f"ECS deployment {deployment_id} in progress.")


def _active_service(store: StateStore, cluster: Cluster, service: str, region: str) -> Service:
    svc = store.get("service", service_arn(cluster.cluster_name, short_name(service), region=region))
    if svc is None:
        raise ServiceNotFoundException("Service not found.")
    if svc.status != SERVICE_ACTIVE:
        raise ServiceNotActiveException("Service was not ACTIVE.")
    return svc


def _active_task_definition(store: StateStore, ref: str, region: str) -> TaskDefinition:
    """CreateService/UpdateService's lookup: ECS answers a missing one with InvalidParameterException."""
    try:
        td = resolve_task_definition(store, ref, region)
    except ClientException:
        raise InvalidParameterException("TaskDefinition not found.") from None
    if td.status != "ACTIVE":
        raise ClientException("TaskDefinition is inactive")
    return td


def _launch(cluster: Cluster, launch_type: str | None, strategy: Sequence[CapacityProviderStrategyItem], *,
            use_cluster_default: bool) -> tuple[str | None, list[CapacityProviderStrategyItem]]:
    """(launchType, capacityProviderStrategy): the request's, else the cluster's default strategy, else EC2."""
    if use_cluster_default and cluster.default_capacity_provider_strategy:
        return None, list(cluster.default_capacity_provider_strategy)
    if strategy:
        validate_capacity_provider_strategy(list(strategy))
        unknown = [i.capacity_provider for i in strategy if i.capacity_provider not in cluster.capacity_providers]
        if unknown:
            raise InvalidParameterException(
                "The specified capacity provider strategy cannot contain a capacity provider that is not "
                f"associated with the cluster ({unknown[0]}). Associate the capacity provider with the cluster "
                "or specify a valid capacity provider and try again.")
        return None, list(strategy)
    return launch_type or "EC2", []


def _as_request(svc: Service) -> CreateServiceRequest:
    """The service as a CreateService request, for the checks that compare it with a task definition."""
    return CreateServiceRequest(service_name=svc.service_name, task_definition=svc.task_definition,
                                load_balancers=list(svc.load_balancers),
                                placement_constraints=list(svc.placement_constraints),
                                scheduling_strategy=svc.scheduling_strategy)


def _check_deployment_configuration(config: DeploymentConfiguration, scheduling_strategy: str) -> None:
    """The same bounds CreateService checks (see model.service_request)."""
    if scheduling_strategy == DAEMON and config.maximum_percent > 100:
        raise InvalidParameterException(
            "The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment "
            "configuration. Change the maximumPercent value to 100, and try again.")
    if scheduling_strategy != DAEMON and config.maximum_percent < 100:
        raise InvalidParameterException(
            f"maximumPercent ({config.maximum_percent}) must be at least 100 for the REPLICA scheduling strategy.")
    if not 0 <= config.minimum_healthy_percent <= 100:
        raise InvalidParameterException(
            f"minimumHealthyPercent ({config.minimum_healthy_percent}) must be between 0 and 100.")
    if config.minimum_healthy_percent > config.maximum_percent:
        raise InvalidParameterException(
            f"minimumHealthyPercent ({config.minimum_healthy_percent}) must be less than or equal to "
            f"maximumPercent ({config.maximum_percent}).")
