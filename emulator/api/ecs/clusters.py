"""ECS's cluster operations: CreateCluster, DescribeClusters, ListClusters, DeleteCluster.

A cluster's counts are not stored: DescribeClusters computes them from the
instances, tasks and services the store holds, so they are never stale.
A deleted cluster stays INACTIVE (DescribeClusters shows it, ListClusters
does not), as ECS does.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import (
    ClusterContainsContainerInstancesException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    InvalidParameterException,
)
from ...model.arn import cluster_arn, short_name
from ...model.cluster import CapacityProviderStrategyItem, Cluster, Tag
from ...model.container_instance import ACTIVE, DRAINING
from ...model.service import SERVICE_ACTIVE, SERVICE_DRAINING
from ...model.shapes import from_camel_api, to_api
from ...model.task import PENDING, RUNNING, STOPPED
from ...control.registry import get_cluster
from ...control.scaling_state import check_cluster_capacity_providers
from ...control.services import DEFAULT_CLUSTER
from ..backend import Backend
from ..params import Params, page
from .common import MAX_DESCRIBE, at_most, instances_of, tasks_of

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
INSIGHTS_VALUES = ("enabled", "disabled", "enhanced")
INCLUDE_VALUES = ("ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS")


# --- core ----------------------------------------------------------------------------


def create_cluster(backend: Backend, name: str, *, tags: list[Tag], settings: list[dict[str, str]] | None,
                   capacity_providers: list[str], strategy: list[CapacityProviderStrategyItem]) -> Cluster:
    """A new ACTIVE cluster, or the existing ACTIVE one of that name unchanged (CreateCluster is idempotent)."""
    arn = cluster_arn(name, region=backend.region)
    existing = backend.store.get("cluster", arn)
    if existing is not None and existing.status == "ACTIVE":
        return existing
    cluster = Cluster(cluster_arn=arn, cluster_name=name, tags=tags, capacity_providers=capacity_providers,
                      default_capacity_provider_strategy=strategy)
    if settings is not None:
        cluster.settings = settings
    with backend.store.transaction() as tx:
        tx.put("cluster", arn, cluster)
    return cluster


def cluster_counts(backend: Backend, cluster: Cluster) -> dict[str, int]:
    instances = [ci for ci in instances_of(backend, cluster) if ci.status in (ACTIVE, DRAINING)]
    tasks = tasks_of(backend, cluster)
    services = [s for s in backend.store.list("service") if s.cluster_arn == cluster.cluster_arn]
    return {
        "registeredContainerInstancesCount": len(instances),
        "runningTasksCount": sum(1 for t in tasks if t.last_status == RUNNING),
        "pendingTasksCount": sum(1 for t in tasks if t.last_status == PENDING),
        "activeServicesCount": sum(1 for s in services if s.status == SERVICE_ACTIVE),
        "drainingServicesCount": sum(1 for s in services if s.status == SERVICE_DRAINING),
    }


def delete_cluster(backend: Backend, name: str) -> Cluster:
    cluster = get_cluster(backend.store, name, backend.region)
    if any(ci.status in (ACTIVE, DRAINING) for ci in instances_of(backend, cluster)):
        raise ClusterContainsContainerInstancesException(
            "The Cluster cannot be deleted while Container Instances are active or draining.")
    if any(s.cluster_arn == cluster.cluster_arn and s.status in (SERVICE_ACTIVE, SERVICE_DRAINING)
           for s in backend.store.list("service")):
        raise ClusterContainsServicesException("The Cluster cannot be deleted while Services are active.")
    if any(t.last_status != STOPPED for t in tasks_of(backend, cluster)):
        raise ClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.")
    with backend.store.transaction() as tx:
        cluster.status = "INACTIVE"
        tx.put("cluster", cluster.cluster_arn, cluster)
    return cluster


def render_cluster(backend: Backend, cluster: Cluster, include: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    data = to_api(cluster)
    counts = cluster_counts(backend, cluster)
    data.update({k: v for k, v in counts.items() if k != "drainingServicesCount"})
    if "TAGS" not in include:
        data.pop("tags", None)
    if "SETTINGS" not in include:
        data.pop("settings", None)
    if "STATISTICS" in include:
        data["statistics"] = [
            {"name": "runningEC2TasksCount", "value": str(counts["runningTasksCount"])},
            {"name": "pendingEC2TasksCount", "value": str(counts["pendingTasksCount"])},
            {"name": "activeEC2ServiceCount", "value": str(counts["activeServicesCount"])},
            {"name": "drainingEC2ServiceCount", "value": str(counts["drainingServicesCount"])},
        ]
    return data


# --- handlers ------------------------------------------------------------------------


async def create_cluster_op(backend: Backend, params: Params) -> dict[str, Any]:
    params.unsupported(["configuration", "serviceConnectDefaults"], "CreateCluster")
    name = params.str("clusterName") or DEFAULT_CLUSTER
    if not _CLUSTER_NAME.match(name):
        raise InvalidParameterException("Cluster name must be 1-255 characters: letters (upper and lower case), "
                                        "numbers, hyphens, and underscores.")
    tags = [from_camel_api(Tag, t, InvalidParameterException) for t in params.obj_list("tags") or []]
    settings = params.obj_list("settings")
    for s in settings or []:
        if s.get("name") != "containerInsights" or s.get("value") not in INSIGHTS_VALUES:
            raise InvalidParameterException("Cluster settings support only containerInsights with the value "
                                            "enabled, disabled or enhanced.")
    providers = params.str_list("capacityProviders") or []
    strategy = [from_camel_api(CapacityProviderStrategyItem, i, InvalidParameterException)
                for i in params.obj_list("defaultCapacityProviderStrategy") or []]
    check_cluster_capacity_providers(backend.store, name, providers, strategy)
    cluster = create_cluster(backend, name, tags=tags, settings=settings, capacity_providers=providers,
                             strategy=strategy)
    return {"cluster": render_cluster(backend, cluster, ("TAGS", "SETTINGS"))}


async def describe_clusters_op(backend: Backend, params: Params) -> dict[str, Any]:
    names = at_most(params.str_list("clusters") or [DEFAULT_CLUSTER], MAX_DESCRIBE, "clusters")
    include = params.str_list("include") or []
    for value in include:
        if value not in INCLUDE_VALUES:
            raise InvalidParameterException(f"Invalid include value '{value}'. Valid values: "
                                            f"{', '.join(INCLUDE_VALUES)}.")
    clusters, failures = [], []
    for name in names:
        arn = cluster_arn(short_name(name), region=backend.region)
        cluster = backend.store.get("cluster", arn)
        if cluster is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            clusters.append(render_cluster(backend, cluster, include))
    return {"clusters": clusters, "failures": failures}


async def list_clusters_op(backend: Backend, params: Params) -> dict[str, Any]:
    arns = [c.cluster_arn for c in backend.store.list("cluster") if c.status == "ACTIVE"]
    items, more = page(arns, params)
    return {"clusterArns": items, **more}


async def delete_cluster_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = delete_cluster(backend, params.str("cluster", required=True))
    return {"cluster": render_cluster(backend, cluster, ("TAGS", "SETTINGS"))}


OPERATIONS = {
    "CreateCluster": create_cluster_op,
    "DescribeClusters": describe_clusters_op,
    "ListClusters": list_clusters_op,
    "DeleteCluster": delete_cluster_op,
}
