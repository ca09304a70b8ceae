"""Clusters and task-definition revisions in the state store, named and numbered as ECS does."""

from __future__ import annotations

import dataclasses

from ..errors import ClientException, ClusterNotFoundException
from ..model.arn import DEFAULT_REGION, cluster_arn, short_name, task_definition_arn
from ..model.cluster import Cluster
from ..model.events import Event
from ..model.state import StateStore
from ..model.task_definition import TaskDefinition


def ensure_cluster(store: StateStore, name: str, region: str = DEFAULT_REGION) -> Cluster:
    arn = cluster_arn(name, region=region)
    cluster = store.get("cluster", arn)
    if cluster is None or cluster.status != "ACTIVE":
        cluster = Cluster(cluster_arn=arn, cluster_name=name)
        with store.transaction() as tx:
            tx.put("cluster", arn, cluster)
    return cluster


def get_cluster(store: StateStore, name_or_arn: str, region: str = DEFAULT_REGION) -> Cluster:
    cluster = store.get("cluster", cluster_arn(short_name(name_or_arn), region=region))
    if cluster is None or cluster.status != "ACTIVE":
        raise ClusterNotFoundException("Cluster not found.")
    return cluster


def register_task_definition(store: StateStore, td: TaskDefinition, now: float,
                             region: str = DEFAULT_REGION) -> TaskDefinition:
    """The next revision of the family (revisions are never reused, even after deregistering)."""
    revisions = [t.revision for t in store.list("task_definition") if t.family == td.family]
    registered = dataclasses.replace(td, revision=max(revisions, default=0) + 1, status="ACTIVE",
                                     registered_at=now, deregistered_at=None)
    registered.task_definition_arn = task_definition_arn(td.family, registered.revision, region=region)
    with store.transaction() as tx:
        tx.put("task_definition", registered.task_definition_arn, registered)
        tx.record(Event("task-definition-registered", registered.task_definition_arn,
                        f"registered task definition {registered.family_revision}"))
    return registered


def resolve_task_definition(store: StateStore, ref: str, region: str = DEFAULT_REGION) -> TaskDefinition:
    """`family`, `family:revision` or an ARN -> the task definition (latest ACTIVE for a family)."""
    name = ref.rsplit("task-definition/", 1)[-1]
    family, _, revision = name.partition(":")
    if revision:
        td = store.get("task_definition", task_definition_arn(family, int(revision) if revision.isdigit() else -1,
                                                              region=region))
    else:
        active = [t for t in store.list("task_definition") if t.family == family and t.status == "ACTIVE"]
        td = max(active, key=lambda t: t.revision, default=None)
    if td is None:
        raise ClientException("Unable to describe task definition.")
    return td
