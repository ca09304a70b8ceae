"""ECS's task-definition operations: register, describe, list (revisions and families), deregister.

Revisions are never reused and a deregistered one stays describable
(INACTIVE, with `deregisteredAt`), as in ECS; registration and lookup are
the registry's (emulator.control.registry).
"""

from __future__ import annotations

from typing import Any

from ...errors import ClientException
from ...model.arn import task_definition_arn
from ...model.events import Event
from ...model.task_definition import TaskDefinition
from ...model.task_definition_validation import parse_task_definition
from ...control.registry import register_task_definition, resolve_task_definition
from ..backend import Backend
from ..params import Params, page
from .common import render_task_definition, task_definition_tags

TASK_DEFINITION_STATUSES = ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS")
FAMILY_STATUSES = ("ACTIVE", "INACTIVE", "ALL")


# --- core ----------------------------------------------------------------------------


def deregister_task_definition(backend: Backend, ref: str) -> TaskDefinition:
    """INACTIVE with `deregisteredAt`; running tasks and services that use it are untouched (as in ECS)."""
    name = ref.rsplit("task-definition/", 1)[-1]
    family, _, revision = name.partition(":")
    if not revision.isdigit():
        raise ClientException("Invalid revision number: a task definition to deregister is given as "
                              "family:revision or as its full ARN.")
    td = backend.store.get("task_definition", task_definition_arn(family, int(revision), region=backend.region))
    if td is None:
        raise ClientException("Unable to describe task definition.")
    if td.status != "INACTIVE":
        with backend.store.transaction() as tx:
            td.status, td.deregistered_at = "INACTIVE", backend.clock.now()
            tx.put("task_definition", td.task_definition_arn, td)
            tx.record(Event("task-definition-deregistered", td.task_definition_arn,
                            f"deregistered task definition {td.family_revision}"))
    return td


def task_definition_arns(backend: Backend, *, family: str | None, status: str, descending: bool) -> list[str]:
    tds = [td for td in backend.store.list("task_definition")
           if td.status == status and (family is None or td.family == family)]
    tds.sort(key=lambda td: (td.family, td.revision), reverse=descending)
    return [td.task_definition_arn for td in tds]


def families(backend: Backend, *, prefix: str, status: str) -> list[str]:
    active: dict[str, bool] = {}
    for td in backend.store.list("task_definition"):
        if td.family.startswith(prefix):
            active[td.family] = active.get(td.family, False) or td.status == "ACTIVE"
    wanted = {"ALL": lambda a: True, "ACTIVE": lambda a: a, "INACTIVE": lambda a: not a}[status]
    return sorted(f for f, a in active.items() if wanted(a))


# --- handlers ------------------------------------------------------------------------


async def register_task_definition_op(backend: Backend, params: Params) -> dict[str, Any]:
    td = register_task_definition(backend.store, parse_task_definition(params.data), backend.clock.now(),
                                  region=backend.region)
    return {"taskDefinition": render_task_definition(td), "tags": task_definition_tags(td)}


async def describe_task_definition_op(backend: Backend, params: Params) -> dict[str, Any]:
    td = resolve_task_definition(backend.store, params.str("taskDefinition", required=True), backend.region)
    out: dict[str, Any] = {"taskDefinition": render_task_definition(td)}
    if "TAGS" in (params.str_list("include") or []):
        out["tags"] = task_definition_tags(td)
    return out


async def list_task_definitions_op(backend: Backend, params: Params) -> dict[str, Any]:
    arns = task_definition_arns(backend, family=params.str("familyPrefix"),
                                status=params.enum("status", TASK_DEFINITION_STATUSES, "ACTIVE"),
                                descending=params.enum("sort", ("ASC", "DESC"), "ASC") == "DESC")
    items, more = page(arns, params)
    return {"taskDefinitionArns": items, **more}


async def list_task_definition_families_op(backend: Backend, params: Params) -> dict[str, Any]:
    names = families(backend, prefix=params.str("familyPrefix") or "",
                     status=params.enum("status", FAMILY_STATUSES, "ALL"))
    items, more = page(names, params)
    return {"families": items, **more}


async def deregister_task_definition_op(backend: Backend, params: Params) -> dict[str, Any]:
    td = deregister_task_definition(backend, params.str("taskDefinition", required=True))
    return {"taskDefinition": render_task_definition(td)}


OPERATIONS = {
    "RegisterTaskDefinition": register_task_definition_op,
    "DescribeTaskDefinition": describe_task_definition_op,
    "ListTaskDefinitions": list_task_definitions_op,
    "ListTaskDefinitionFamilies": list_task_definition_families_op,
    "DeregisterTaskDefinition": deregister_task_definition_op,
}
