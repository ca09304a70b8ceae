"""Where the loops find tasks without scanning every task: the state store's indexes of them.

The store keeps these in step at every commit (see `StateStore.index`), so a
loop that reads a service's tasks, an instance's tasks or how many tasks are
RUNNING reads what is committed, at the cost of the answer rather than of
the whole cluster (10,000 tasks, every few seconds, in several loops).
Callers still test the fields they care about on the objects they get.
"""

from __future__ import annotations

from ..model.state import Index, StateStore
from ..model.task import Task


def _group_index(store: StateStore) -> Index:
    return store.index("task", "cluster+group", lambda t: (t.cluster_arn, t.group))


def _instance_index(store: StateStore) -> Index:
    return store.index("task", "container_instance", lambda t: t.container_instance_arn)


def _status_index(store: StateStore) -> Index:
    return store.index("task", "last_status", lambda t: t.last_status)


def tasks_of_group(store: StateStore, cluster_arn: str, group: str) -> list[Task]:
    """Every task (STOPPED ones too) of a task group in a cluster, in the store's order.

    (A task's cluster and group are set when it is made and never change, so no re-check is needed.)"""
    return _group_index(store).objects((cluster_arn, group))


def tasks_on_instance(store: StateStore, container_instance_arn: str) -> list[Task]:
    """Every task (STOPPED ones too) placed on a container instance, in the store's order."""
    return [t for t in _instance_index(store).objects(container_instance_arn)
            if t.container_instance_arn == container_instance_arn]


def tasks_with_status(store: StateStore, last_status: str) -> list[Task]:
    """Every task whose lastStatus is `last_status`, in the store's order."""
    return [t for t in _status_index(store).objects(last_status) if t.last_status == last_status]


def count_with_status(store: StateStore, last_status: str) -> int:
    """How many committed tasks have this lastStatus (without building the list)."""
    return _status_index(store).count(last_status)


__all__ = ["count_with_status", "tasks_of_group", "tasks_on_instance", "tasks_with_status"]
