"""Placement constraints and strategies as ECS's API states them, with their validation.

The placement engine (`emulator.placement`) acts on these; this module only
says what a well-formed one is, in the words AWS answers with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ClientException, InvalidParameterException

MAX_CONSTRAINTS = 10
MAX_STRATEGIES = 5
MAX_EXPRESSION_LENGTH = 2000

CONSTRAINT_TYPES = ("distinctInstance", "memberOf")
STRATEGY_TYPES = ("binpack", "spread", "random")
BINPACK_FIELDS = ("cpu", "memory")
_ATTRIBUTE_FIELD = re.compile(r"^attribute:[A-Za-z0-9\-_/.]{1,128}$")


@dataclass(frozen=True)
class PlacementConstraint:
    type: str
    expression: str | None = None


@dataclass(frozen=True)
class PlacementStrategy:
    type: str
    field: str | None = None


# A service with no strategy: fewest tasks per AZ, then per instance.
DEFAULT_SERVICE_STRATEGY = (
    PlacementStrategy("spread", "attribute:ecs.availability-zone"),
    PlacementStrategy("spread", "instanceId"),
)


def validate_constraints(constraints: list[PlacementConstraint], *, in_task_definition: bool = False) -> None:
    error = ClientException if in_task_definition else InvalidParameterException
    if len(constraints) > MAX_CONSTRAINTS:
        raise error(f"The number of placement constraints ({len(constraints)}) exceeds the limit of {MAX_CONSTRAINTS}.")
    for c in constraints:
        if c.type not in CONSTRAINT_TYPES:
            raise error(f"Invalid placement constraint type '{c.type}'. Valid types: distinctInstance, memberOf.")
        if in_task_definition and c.type != "memberOf":
            raise error("Task definition placement constraints only support type memberOf.")
        if c.type == "distinctInstance" and c.expression:
            raise error("The distinctInstance placement constraint does not take an expression.")
        if c.type == "memberOf":
            if not c.expression:
                raise error("The memberOf placement constraint requires an expression.")
            if len(c.expression) > MAX_EXPRESSION_LENGTH:
                raise error(f"The placement constraint expression is longer than {MAX_EXPRESSION_LENGTH} characters.")


def validate_strategies(strategies: list[PlacementStrategy]) -> None:
    if len(strategies) > MAX_STRATEGIES:
        raise InvalidParameterException(
            f"The number of placement strategies ({len(strategies)}) exceeds the limit of {MAX_STRATEGIES}.")
    for s in strategies:
        if s.type not in STRATEGY_TYPES:
            raise InvalidParameterException(
                f"Invalid placement strategy type '{s.type}'. Valid types: binpack, spread, random.")
        if s.type == "binpack" and s.field not in BINPACK_FIELDS:
            raise InvalidParameterException(
                f"Invalid field '{s.field}' for placement strategy binpack. Valid fields: cpu, memory.")
        if s.type == "spread" and not (
            s.field in ("instanceId", "host") or (s.field and _ATTRIBUTE_FIELD.match(s.field))
        ):
            raise InvalidParameterException(
                f"Invalid field '{s.field}' for placement strategy spread. "
                "Valid fields: instanceId, host, or attribute:<name>.")
        if s.type == "random" and s.field:
            raise InvalidParameterException("The random placement strategy does not take a field.")
