"""ECS's task operations: RunTask, StopTask, DescribeTasks, ListTasks, over the cluster agent.

RunTask answers 200 with `tasks` and `failures[]` (the closest instance and
ECS's reason) when some tasks do not fit, as ECS does; the agent places and
starts them.
"""

from __future__ import annotations

from typing import Any

from ...errors import ClientException, InvalidParameterException, ServiceNotFoundException
from ...model.arn import service_arn, short_name
from ...model.cluster import Tag
from ...model.shapes import from_camel_api
from ...model.task import DESIRED_STATUSES, REASON_USER, RUNNING, Task
from ...model.service_request import LAUNCH_TYPES
from ...placement.requests import validate_placement
from ...control.registry import resolve_task_definition
from ..backend import Backend
from ..params import Params, page
from .common import (MAX_DESCRIBE, at_most, cluster_of, instance_arn, not_empty, placement_members, render_task,
                     task_arn_of, tasks_of)

# RunTask members AWS has that this emulator does not act on: refused with a reason, not ignored.
UNSUPPORTED_RUN_TASK = ("overrides", "networkConfiguration", "capacityProviderStrategy", "platformVersion",
                        "volumeConfigurations", "enableExecuteCommand")
MAX_STARTED_BY = 128
MAX_STOP_REASON = 255


async def run_task_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(UNSUPPORTED_RUN_TASK, "RunTask")
    cluster = cluster_of(backend, params)
    launch_type = params.enum("launchType", LAUNCH_TYPES)
    if launch_type not in (None, "EC2"):
        raise InvalidParameterException(f"launchType {launch_type} is not supported: this emulator runs the EC2 "
                                        "launch type only.")
    td = resolve_task_definition(backend.store, params.str("taskDefinition", required=True), backend.region)
    if td.status != "ACTIVE":
        raise ClientException("TaskDefinition is inactive")
    started_by = params.str("startedBy")
    if started_by is not None and len(started_by) > MAX_STARTED_BY:
        raise InvalidParameterException(f"startedBy must be at most {MAX_STARTED_BY} characters.")
    constraints, strategies = placement_members(params)
    validate_placement(constraints or [], strategies or [])
    tags = [from_camel_api(Tag, t, InvalidParameterException) for t in params.obj_list("tags") or []]
    tasks, failures = await backend.agent.run_task(
        cluster.cluster_name, td.task_definition_arn, params.int("count", 1), group=params.str("group"),
        constraints=constraints or (), strategies=strategies or (), started_by=started_by)
    if tags:
        _tag(backend, tasks, tags)
    return {"tasks": [render_task(t) for t in tasks], "failures": [f.to_api() for f in failures]}


def _tag(backend: Backend, tasks: list[Task], tags: list[Tag]) -> None:
    with backend.store.transaction() as tx:
        for task in tasks:
            task.tags = [{"key": t.key, "value": t.value} for t in tags]
            tx.put("task", task.task_arn, task)


async def stop_task_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    arn = task_arn_of(backend, cluster, params.str("task", required=True))
    reason = params.str("reason") or REASON_USER
    if len(reason) > MAX_STOP_REASON:
        raise InvalidParameterException(f"reason must be at most {MAX_STOP_REASON} characters.")
    if backend.store.get("task", arn) is None:
        raise InvalidParameterException("The referenced task was not found.")
    task = await backend.agent.stop_task(arn, reason)
    return {"task": render_task(task)}


async def describe_tasks_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    refs = at_most(not_empty(params.str_list("tasks", required=True), "Tasks cannot be empty."), MAX_DESCRIBE, "tasks")
    include_tags = "TAGS" in (params.str_list("include") or [])
    tasks, failures = [], []
    for ref in refs:
        arn = task_arn_of(backend, cluster, ref)
        task = backend.store.get("task", arn)
        if task is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            tasks.append(render_task(task, include_tags))
    return {"tasks": tasks, "failures": failures}


async def list_tasks_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    desired = params.enum("desiredStatus", DESIRED_STATUSES, RUNNING)
    tests = [lambda t: t.desired_status == desired]
    if "containerInstance" in params:
        wanted_instance = instance_arn(backend, cluster, params.str("containerInstance"))
        tests.append(lambda t: t.container_instance_arn == wanted_instance)
    if "family" in params:
        family = params.str("family")
        tests.append(lambda t: _family_of(t) == family)
    if "startedBy" in params:
        started_by = params.str("startedBy")
        tests.append(lambda t: t.started_by == started_by)
    if "serviceName" in params:
        name = short_name(params.str("serviceName"))
        if backend.store.get("service", service_arn(cluster.cluster_name, name, region=backend.region)) is None:
            raise ServiceNotFoundException("Service not found.")
        tests.append(lambda t: t.group == f"service:{name}")
    if "launchType" in params:
        launch_type = params.enum("launchType", LAUNCH_TYPES)
        tests.append(lambda t: t.launch_type == launch_type)
    arns = [t.task_arn for t in tasks_of(backend, cluster) if all(test(t) for test in tests)]
    items, more = page(arns, params)
    return {"taskArns": items, **more}


def _family_of(task: Task) -> str:
    return task.task_definition_arn.rsplit("task-definition/", 1)[-1].rsplit(":", 1)[0]


OPERATIONS = {
    "RunTask": run_task_op,
    "StopTask": stop_task_op,
    "DescribeTasks": describe_tasks_op,
    "ListTasks": list_tasks_op,
}
