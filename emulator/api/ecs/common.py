"""What ECS's handlers share: finding a cluster and its members by name or ARN, reading placement
members, and rendering tasks and task definitions in the API's shape."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidParameterException
from ...model.arn import container_instance_arn, short_name, task_arn
from ...model.cluster import Cluster
from ...model.container_instance import ContainerInstance
from ...model.placement_spec import PlacementConstraint, PlacementStrategy
from ...model.shapes import from_camel_api, to_api
from ...model.task import Task
from ...model.task_definition import TaskDefinition
from ...control.registry import get_cluster
from ...control.services import DEFAULT_CLUSTER
from ..backend import Backend
from ..params import Params

MAX_DESCRIBE = 100  # DescribeTasks / DescribeContainerInstances / DescribeClusters take at most 100


def cluster_of(backend: Backend, params: Params) -> Cluster:
    """The request's `cluster` (name or ARN; `default` when absent); ClusterNotFoundException if not ACTIVE."""
    return get_cluster(backend.store, params.str("cluster") or DEFAULT_CLUSTER, backend.region)


def cluster_name_of(arn: str) -> str:
    """`prod` from `...:container-instance/prod/<id>` or `...:task/prod/<id>`."""
    return arn.split(":", 5)[-1].split("/")[1]


def instance_arn(backend: Backend, cluster: Cluster, ref: str) -> str:
    """A container instance's ARN from its id or ARN, in this cluster."""
    return container_instance_arn(cluster.cluster_name, short_name(ref), region=backend.region)


def task_arn_of(backend: Backend, cluster: Cluster, ref: str) -> str:
    return task_arn(cluster.cluster_name, short_name(ref), region=backend.region)


def instances_of(backend: Backend, cluster: Cluster, *, include_inactive: bool = False) -> list[ContainerInstance]:
    return [ci for ci in backend.store.list("container_instance")
            if cluster_name_of(ci.container_instance_arn) == cluster.cluster_name
            and (include_inactive or ci.status != "INACTIVE")]


def tasks_of(backend: Backend, cluster: Cluster) -> list[Task]:
    return [t for t in backend.store.list("task") if t.cluster_arn == cluster.cluster_arn]


def not_empty(items: list[Any], message: str) -> list[Any]:
    """DescribeTasks / DescribeServices / DescribeContainerInstances refuse an empty list, in AWS's words."""
    if not items:
        raise InvalidParameterException(message)
    return items


def at_most(items: list[Any], limit: int, name: str) -> list[Any]:
    if len(items) > limit:
        raise InvalidParameterException(f"{name} can hold at most {limit} items.")
    return items


def placement_members(params: Params) -> tuple[list[PlacementConstraint] | None, list[PlacementStrategy] | None]:
    """`placementConstraints` and `placementStrategy` as given (None when absent)."""
    constraints = params.obj_list("placementConstraints")
    strategies = params.obj_list("placementStrategy")
    return (None if constraints is None else
            [from_camel_api(PlacementConstraint, c, InvalidParameterException) for c in constraints],
            None if strategies is None else
            [from_camel_api(PlacementStrategy, s, InvalidParameterException) for s in strategies])


def render_task(task: Task, include_tags: bool = True) -> dict[str, Any]:
    data = to_api(task)
    if not include_tags:
        data.pop("tags", None)
    return data


def render_task_definition(td: TaskDefinition) -> dict[str, Any]:
    """DescribeTaskDefinition's `taskDefinition`; its tags travel beside it, as in AWS's answers."""
    data = to_api(td)
    data.pop("tags", None)
    return data


def task_definition_tags(td: TaskDefinition) -> list[dict[str, str]]:
    return list(td.extra.get("tags") or [])
