"""Building placement requests the way ECS does for services and for RunTask.

A service's tasks are in group `service:<name>` and, with no strategy,
spread over AZs then instances; a standalone task's group defaults to
`family:<family>` and has no default strategy. The task definition's own
`memberOf` constraints always apply on top of the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidParameterException
from ..model.placement_spec import (
    DEFAULT_SERVICE_STRATEGY,
    MAX_CONSTRAINTS,
    PlacementConstraint,
    PlacementStrategy,
    validate_constraints,
    validate_strategies,
)
from ..model.service import Service
from ..model.task_definition import TaskDefinition
from .query import QuerySyntaxError, compile_expression
from .snapshot import PlacementRequest, TaskNeeds

MAX_GROUP_LENGTH = 255


def validate_placement(constraints: Sequence[PlacementConstraint], strategies: Sequence[PlacementStrategy]) -> None:
    """InvalidParameterException for anything CreateService/RunTask would refuse, syntax included."""
    validate_constraints(list(constraints))
    validate_strategies(list(strategies))
    for c in constraints:
        if c.type == "memberOf":
            try:
                compile_expression(c.expression or "")
            except QuerySyntaxError as exc:
                raise InvalidParameterException(str(exc)) from None


def for_service(service: Service, task_definition: TaskDefinition, count: int) -> PlacementRequest:
    return for_service_tasks(service.service_name, task_definition, count,
                             constraints=service.placement_constraints, strategies=service.placement_strategy)


def for_service_tasks(service_name: str, task_definition: TaskDefinition, count: int, *,
                      constraints: Sequence[PlacementConstraint] = (),
                      strategies: Sequence[PlacementStrategy] = ()) -> PlacementRequest:
    """`count` tasks of service `service_name` (group `service:<name>`, default strategy if none)."""
    return PlacementRequest(
        group=f"service:{service_name}",
        needs=TaskNeeds.of(task_definition),
        count=count,
        constraints=_with_task_definition_constraints(constraints, task_definition),
        strategies=tuple(strategies) or DEFAULT_SERVICE_STRATEGY,
    )


def for_run_task(task_definition: TaskDefinition, count: int, *, group: str | None = None,
                 constraints: Sequence[PlacementConstraint] = (),
                 strategies: Sequence[PlacementStrategy] = ()) -> PlacementRequest:
    group = group or f"family:{task_definition.family}"
    if len(group) > MAX_GROUP_LENGTH:
        raise InvalidParameterException(f"group must be at most {MAX_GROUP_LENGTH} characters.")
    return PlacementRequest(
        group=group,
        needs=TaskNeeds.of(task_definition),
        count=count,
        constraints=_with_task_definition_constraints(constraints, task_definition),
        strategies=tuple(strategies),
    )


def _with_task_definition_constraints(constraints: Sequence[PlacementConstraint],
                                      task_definition: TaskDefinition) -> tuple[PlacementConstraint, ...]:
    combined = tuple(constraints) + tuple(task_definition.placement_constraints)
    if len(combined) > MAX_CONSTRAINTS:
        raise InvalidParameterException(
            f"The task definition and the request together have {len(combined)} placement constraints; "
            f"the limit is {MAX_CONSTRAINTS}.")
    return combined
