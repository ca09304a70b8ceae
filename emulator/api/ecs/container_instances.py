"""ECS's container-instance operations: list (with the cluster query language), describe, drain.

A status change is written to the store and to the agent's placement
snapshot (`ClusterSnapshot.touch`), so placement stops choosing a DRAINING
instance at once. Moving the tasks off it is the service scheduler's job.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ...errors import InvalidParameterException
from ...model.container_instance import ACTIVE, DRAINING, INACTIVE, ContainerInstance
from ...model.events import INSTANCE_STATE_CHANGE, Event
from ...model.cluster import Cluster
from ...placement.snapshot import ClusterSnapshot
from ...placement.query import QuerySyntaxError, compile_expression
from ..backend import Backend
from ..params import Params, page
from .common import MAX_DESCRIBE, at_most, cluster_of, instance_arn, instances_of, not_empty

INSTANCE_STATUSES = ("ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED")
SETTABLE_STATUSES = (ACTIVE, DRAINING)
MAX_STATE_UPDATES = 10


# --- core ----------------------------------------------------------------------------


def filter_instances(backend: Backend, instances: list[ContainerInstance], expression: str) -> list[ContainerInstance]:
    """The instances matching a `--filter` expression; InvalidParameterException for bad syntax."""
    try:
        compiled = compile_expression(expression)
    except QuerySyntaxError as exc:
        raise InvalidParameterException(str(exc)) from None
    # The placement snapshot's slots are exactly what the query language reads (task groups included).
    slots = ClusterSnapshot.from_state(instances, backend.store.list("task")).slots
    return [ci for ci, slot in zip(instances, slots) if compiled.matches(slot)]


def set_instance_status(backend: Backend, cluster: Cluster, instances: list[ContainerInstance],
                        status: str) -> None:
    """ACTIVE or DRAINING, in the store and in the agent's placement snapshot."""
    changed = [ci for ci in instances if ci.status != status]
    with backend.store.transaction() as tx:
        for ci in changed:
            ci.status = status
            ci.version += 1
            tx.put("container_instance", ci.container_instance_arn, ci)
            tx.record(Event(INSTANCE_STATE_CHANGE, ci.container_instance_arn,
                            f"container instance {ci.instance_id} ({ci.ec2_instance_id}) set to {status}",
                            detail={"status": status}))
    snapshot = backend.agent.snapshot(cluster.cluster_name)
    for ci in changed:
        with contextlib.suppress(KeyError):
            idx = snapshot.index_of(ci.container_instance_arn)
            snapshot.slots[idx].status = status
            snapshot.touch(idx)


# --- handlers ------------------------------------------------------------------------


async def list_container_instances_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    status = params.enum("status", INSTANCE_STATUSES)
    instances = [ci for ci in instances_of(backend, cluster) if status is None or ci.status == status]
    if "filter" in params:
        instances = filter_instances(backend, instances, params.str("filter"))
    items, more = page([ci.container_instance_arn for ci in instances], params)
    return {"containerInstanceArns": items, **more}


async def describe_container_instances_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    refs = at_most(not_empty(params.str_list("containerInstances", required=True), "Container instance cannot be empty."), MAX_DESCRIBE, "containerInstances")
    include_tags = "TAGS" in (params.str_list("include") or [])
    found, failures = [], []
    for ref in refs:
        arn = instance_arn(backend, cluster, ref)
        ci = backend.store.get("container_instance", arn)
        if ci is None:
            failures.append({"arn": arn, "reason": "MISSING"})
            continue
        data = ci.to_api()
        if not include_tags:
            data.pop("tags", None)
        found.append(data)
    return {"containerInstances": found, "failures": failures}


async def update_container_instances_state_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    refs = at_most(params.str_list("containerInstances", required=True), MAX_STATE_UPDATES, "containerInstances")
    status = params.enum("status", INSTANCE_STATUSES, required=True)
    if status not in SETTABLE_STATUSES:
        raise InvalidParameterException("Container instance status can only be updated to ACTIVE or DRAINING.")
    found, failures = [], []
    for ref in refs:
        arn = instance_arn(backend, cluster, ref)
        ci = backend.store.get("container_instance", arn)
        if ci is None or ci.status == INACTIVE:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(ci)
    set_instance_status(backend, cluster, found, status)
    return {"containerInstances": [ci.to_api() for ci in found], "failures": failures}


OPERATIONS = {
    "ListContainerInstances": list_container_instances_op,
    "DescribeContainerInstances": describe_container_instances_op,
    "UpdateContainerInstancesState": update_container_instances_state_op,
}
