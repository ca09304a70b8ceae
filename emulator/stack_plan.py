"""A dry run of a stack's placement: its instances launched on paper, its services placed.

`ecsemu place` uses it to show, without Docker, where each task of a stack
would go and, when one doesn't fit, the service event ECS would write. It
is the placement engine applied to a stack file, nothing more: no scaling,
no capacity provider (tasks that don't fit are reported, not provisioned).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .model.arn import container_instance_arn
from .model.container_instance import new_container_instance
from .model.events import unable_to_place
from .model.scaling import AutoScalingGroup
from .model.shapes import to_api
from .placement import ClusterSnapshot, InstanceSlot, place_tasks
from .placement.requests import for_service_tasks
from .scenario import Stack


class PlanError(ValueError):
    """A dry-run option that names something the stack does not have."""


@dataclass
class PlannedInstance:
    ec2_instance_id: str
    container_instance_arn: str
    instance_type: str
    availability_zone: str
    registered_cpu: int
    registered_memory: int
    remaining_cpu: int = 0
    remaining_memory: int = 0
    tasks: list[str] = field(default_factory=list)  # service name of each task placed here


@dataclass
class PlannedService:
    name: str
    requested: int
    placed: int = 0
    events: list[str] = field(default_factory=list)


@dataclass
class StackPlan:
    instances: list[PlannedInstance] = field(default_factory=list)
    services: list[PlannedService] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"containerInstances": to_api(self.instances), "services": to_api(self.services)}


def plan_stack_placement(stack: Stack, *, counts: dict[str, int] | None = None,
                         instances: dict[str, int] | None = None,
                         rng: random.Random | None = None) -> StackPlan:
    """Launch each ASG's desired capacity (balanced over its AZs), then place every service."""
    counts, instances, rng = counts or {}, instances or {}, rng or random.Random(0)
    _check_names(counts, {s.service_name for s in stack.services}, "--count", "service")
    _check_names(instances, {a.auto_scaling_group_name for a in stack.auto_scaling_groups}, "--instances",
                 "Auto Scaling group")
    plan = StackPlan()
    snapshot = ClusterSnapshot()
    for asg in stack.auto_scaling_groups:
        wanted = instances.get(asg.auto_scaling_group_name, asg.desired_capacity or asg.min_size)
        azs = asg.availability_zones or ["us-east-1a"]
        for _ in range(wanted):
            planned, attributes = _launch(stack, asg, azs[len(plan.instances) % len(azs)], len(plan.instances), rng)
            plan.instances.append(planned)
            snapshot.add(InstanceSlot(planned.container_instance_arn, cpu=planned.registered_cpu,
                                      memory=planned.registered_memory, attributes=attributes,
                                      ec2_instance_id=planned.ec2_instance_id))
    by_arn = {i.container_instance_arn: i for i in plan.instances}
    for req in stack.services:
        td = stack.task_definition(req.task_definition or "")
        count = counts.get(req.service_name, req.desired_count or 0)
        request = for_service_tasks(req.service_name, td, count, constraints=req.placement_constraints,
                                    strategies=req.placement_strategy)
        result = place_tasks(snapshot, request, rng)
        service = PlannedService(req.service_name, count, len(result.placements))
        for arn in result.placements:
            by_arn[arn].tasks.append(req.service_name)
        if result.failures:
            service.events.append(unable_to_place(req.service_name, result.failures[0].service_event_detail()))
        plan.services.append(service)
    for slot in snapshot.slots:
        by_arn[slot.arn].remaining_cpu, by_arn[slot.arn].remaining_memory = slot.cpu, slot.memory
    return plan


def _launch(stack: Stack, asg: AutoScalingGroup, az: str, index: int,
            rng: random.Random) -> tuple[PlannedInstance, dict[str, str | None]]:
    instance_id = f"{rng.getrandbits(128):032x}"
    ci = new_container_instance(
        arn=container_instance_arn(stack.cluster.cluster_name, instance_id, region=stack.settings.region),
        ec2_instance_id=f"i-{index:017x}", instance_type=asg.instance_type, availability_zone=az,
        registered_at=0.0, reserved_memory_mib=asg.reserved_memory_mib)
    planned = PlannedInstance(
        ec2_instance_id=ci.ec2_instance_id, container_instance_arn=ci.container_instance_arn,
        instance_type=asg.instance_type.name, availability_zone=az,
        registered_cpu=ci.registered_resources.cpu, registered_memory=ci.registered_resources.memory)
    return planned, ci.attributes


def _check_names(given: dict[str, int], known: set[str], flag: str, what: str) -> None:
    for name in given:
        if name not in known:
            raise PlanError(f"{flag}: the stack has no {what} named '{name}' (it has: {', '.join(sorted(known))})")
