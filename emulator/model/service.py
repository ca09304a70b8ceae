"""Services and their deployments, in DescribeServices' shape.

A service keeps `desiredCount` tasks of its PRIMARY deployment running; a
new task definition starts a new PRIMARY and the old ones become ACTIVE
until drained, then INACTIVE. The rounding rules of rolling deployments
(`floor` for maximumPercent, `ceil` for minimumHealthyPercent) live here as
pure functions because every layer above needs them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .cluster import CapacityProviderStrategyItem
from .placement_spec import PlacementConstraint, PlacementStrategy

PRIMARY, ACTIVE_DEPLOYMENT, INACTIVE_DEPLOYMENT = "PRIMARY", "ACTIVE", "INACTIVE"
IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"
SERVICE_ACTIVE, SERVICE_DRAINING, SERVICE_INACTIVE = "ACTIVE", "DRAINING", "INACTIVE"


@dataclass
class DeploymentCircuitBreaker:
    enable: bool = False
    rollback: bool = False


@dataclass
class DeploymentConfiguration:
    maximum_percent: int = 200
    minimum_healthy_percent: int = 100
    deployment_circuit_breaker: DeploymentCircuitBreaker = field(default_factory=DeploymentCircuitBreaker)

    def max_tasks(self, desired: int) -> int:
        """Upper bound on RUNNING + PENDING tasks during a deployment."""
        return math.floor(desired * self.maximum_percent / 100)

    def min_healthy_tasks(self, desired: int) -> int:
        """Lower bound on healthy RUNNING tasks during a deployment."""
        return math.ceil(desired * self.minimum_healthy_percent / 100)


def circuit_breaker_threshold(desired_count: int) -> int:
    """Failed tasks that trip the breaker: half the desired count, rounded up, in [3, 200]."""
    return min(200, max(3, math.ceil(0.5 * desired_count)))


@dataclass
class LoadBalancer:
    target_group_arn: str | None = None
    load_balancer_name: str | None = None
    container_name: str | None = None
    container_port: int | None = None


@dataclass
class Deployment:
    id: str
    status: str
    task_definition: str
    desired_count: int = 0
    pending_count: int = 0
    running_count: int = 0
    failed_tasks: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    launch_type: str | None = "EC2"
    capacity_provider_strategy: list[CapacityProviderStrategyItem] = field(default_factory=list)
    rollout_state: str = IN_PROGRESS
    rollout_state_reason: str = "ECS deployment in progress."


def new_deployment_id(rng: random.Random) -> str:
    """ECS's `ecs-svc/` followed by 19 digits."""
    return f"ecs-svc/{rng.randrange(10**18, 10**19)}"


@dataclass
class ServiceEvent:
    id: str
    created_at: float
    message: str


@dataclass
class Service:
    service_arn: str
    service_name: str
    cluster_arn: str
    task_definition: str
    desired_count: int = 0
    running_count: int = 0
    pending_count: int = 0
    status: str = SERVICE_ACTIVE
    launch_type: str | None = "EC2"
    capacity_provider_strategy: list[CapacityProviderStrategyItem] = field(default_factory=list)
    placement_constraints: list[PlacementConstraint] = field(default_factory=list)
    placement_strategy: list[PlacementStrategy] = field(default_factory=list)
    deployment_configuration: DeploymentConfiguration = field(default_factory=DeploymentConfiguration)
    deployments: list[Deployment] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    health_check_grace_period_seconds: int | None = None
    scheduling_strategy: str = "REPLICA"
    deployment_controller: dict[str, str] = field(default_factory=lambda: {"type": "ECS"})
    events: list[ServiceEvent] = field(default_factory=list)
    created_at: float = 0.0
    created_by: str | None = None
    role_arn: str | None = None
    enable_ecs_managed_tags: bool = field(default=False, metadata={"aws": "enableECSManagedTags"})
    propagate_tags: str = "NONE"

    @property
    def task_group(self) -> str:
        """Every task of a service is in group `service:<name>` (placement counts by it)."""
        return f"service:{self.service_name}"

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == PRIMARY), None)
