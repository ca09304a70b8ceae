"""Feasibility checkers: may a task of this request go on this instance, and if not, why.

Checkers run in ECS's order: the instance must be usable (ACTIVE, agent
connected), then have the CPU, memory and ports the task needs, then
satisfy the placement constraints. The first checker an instance fails
names the reason ECS reports (`RESOURCE:CPU`, `MemberOf placement
constraint unsatisfied.`, ...); how far an instance got is how "close" it
was, which picks the instance ECS names in a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..model.container_instance import ACTIVE
from ..model.placement_spec import PlacementConstraint
from .query import Expression, compile_expression
from .snapshot import InstanceSlot, PlacementRequest

AGENT = "AGENT"
INACTIVE = "INACTIVE"
RESOURCE_CPU = "RESOURCE:CPU"
RESOURCE_MEMORY = "RESOURCE:MEMORY"
RESOURCE_PORTS = "RESOURCE:PORTS"
RESOURCE_PORTS_UDP = "RESOURCE:PORTS_UDP"
MEMBER_OF = "MemberOf placement constraint unsatisfied."
DISTINCT_INSTANCE = "DistinctInstance placement constraint unsatisfied."
NO_INSTANCES = "No Container Instances were found in your cluster."


@dataclass(frozen=True)
class Checker:
    reason: str
    passes: Callable[[InstanceSlot], bool]


def memberof_expressions(constraints: tuple[PlacementConstraint, ...]) -> list[Expression]:
    return [compile_expression(c.expression or "") for c in constraints if c.type == "memberOf"]


def has_distinct_instance(constraints: tuple[PlacementConstraint, ...]) -> bool:
    return any(c.type == "distinctInstance" for c in constraints)


def checkers_for(request: PlacementRequest) -> list[Checker]:
    """The ordered pipeline for one request (used to explain failures)."""
    needs, group = request.needs, request.group
    checks = [
        Checker(AGENT, lambda s: s.agent_connected),
        Checker(INACTIVE, lambda s: s.status == ACTIVE),
        Checker(RESOURCE_CPU, lambda s: s.cpu >= needs.cpu),
        Checker(RESOURCE_MEMORY, lambda s: s.memory >= needs.memory),
        Checker(RESOURCE_PORTS, lambda s: s.ports.isdisjoint(needs.ports)),
        Checker(RESOURCE_PORTS_UDP, lambda s: s.ports_udp.isdisjoint(needs.ports_udp)),
    ]
    for expr in memberof_expressions(request.constraints):
        checks.append(Checker(MEMBER_OF, expr.matches))
    if has_distinct_instance(request.constraints):
        checks.append(Checker(DISTINCT_INSTANCE, lambda s: s.group_counts.get(group, 0) == 0))
    return checks


def first_failure(slot: InstanceSlot, checks: list[Checker]) -> int:
    """Index of the first checker `slot` fails, or len(checks) when it passes them all."""
    for i, check in enumerate(checks):
        if not check.passes(slot):
            return i
    return len(checks)
