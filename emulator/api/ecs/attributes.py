"""ECS's custom attributes on container instances: PutAttributes, ListAttributes, DeleteAttributes.

Names and values are checked as ECS checks them (the cluster query language
section of ecs-semantics.md); the `ecs.` attributes the agent registers are
not the caller's to change. A change reaches the agent's placement snapshot
(`touch`), so the next `memberOf` placement sees it.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from ...errors import InvalidParameterException
from ...model.cluster import Cluster
from ...model.container_instance import INACTIVE, ContainerInstance
from ..backend import Backend
from ..errors import AttributeLimitExceededException, TargetNotFoundException
from ..params import Params, page
from .common import cluster_of, instance_arn, instances_of

TARGET_TYPE = "container-instance"
MAX_ATTRIBUTES_PER_CALL = 10
MAX_CUSTOM_ATTRIBUTES = 10   # per resource
RESERVED_PREFIX = "ecs."
_NAME = re.compile(r"^[A-Za-z0-9\-_/.]{1,128}$")
_VALUE = re.compile(r"^[A-Za-z0-9\-_/.@: ]{1,128}$")


# --- core ----------------------------------------------------------------------------


def check_attribute(name: Any, value: Any, *, with_value: bool = True) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterException(
            f"Invalid attribute name '{name}': 1-128 letters, numbers, hyphens, underscores, slashes or periods.")
    if name.startswith(RESERVED_PREFIX):
        raise InvalidParameterException(
            f"Attribute {name}: names starting with '{RESERVED_PREFIX}' are set by the ECS agent, not by PutAttributes "
            "or DeleteAttributes.")
    if with_value and value is not None:
        if not isinstance(value, str) or not _VALUE.match(value) or value != value.strip():
            raise InvalidParameterException(
                f"Invalid value '{value}' for attribute {name}: 1-128 letters, numbers, hyphens, underscores, "
                "slashes, periods, at signs, colons or spaces, with no leading or trailing whitespace.")


def _targets(backend: Backend, cluster: Cluster, items: list[dict[str, Any]], *,
             with_value: bool) -> list[tuple[ContainerInstance, str, str | None, dict[str, Any]]]:
    """(instance, name, value, echoed attribute) per item, every item checked before anything changes."""
    if not items:
        raise InvalidParameterException("attributes must hold at least one attribute.")
    if len(items) > MAX_ATTRIBUTES_PER_CALL:
        raise InvalidParameterException(f"attributes can hold at most {MAX_ATTRIBUTES_PER_CALL} items.")
    out = []
    for item in items:
        name, value = item.get("name"), item.get("value")
        check_attribute(name, value, with_value=with_value)
        if item.get("targetType", TARGET_TYPE) != TARGET_TYPE:
            raise InvalidParameterException(f"Invalid targetType '{item.get('targetType')}'. Valid values: "
                                            f"{TARGET_TYPE}.")
        target = item.get("targetId")
        if not isinstance(target, str) or not target:
            raise InvalidParameterException(f"Attribute {name}: targetId (a container instance id or ARN) is "
                                            "required.")
        arn = instance_arn(backend, cluster, target)
        ci = backend.store.get("container_instance", arn)
        if ci is None or ci.status == INACTIVE:
            raise TargetNotFoundException(f"Could not find container instance {target} in cluster "
                                          f"{cluster.cluster_name}.")
        echoed = {"name": name, **({"value": value} if value is not None else {}),
                  "targetType": TARGET_TYPE, "targetId": target}
        out.append((ci, name, value, echoed))
    return out


def put_attributes(backend: Backend, cluster: Cluster, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    targets = _targets(backend, cluster, items, with_value=True)
    updated: dict[str, dict[str, str | None]] = {}
    for ci, name, value, _ in targets:
        attrs = updated.setdefault(ci.container_instance_arn, dict(ci.attributes))
        attrs[name] = value
    for arn, attrs in updated.items():
        custom = [n for n in attrs if not n.startswith(RESERVED_PREFIX)]
        if len(custom) > MAX_CUSTOM_ATTRIBUTES:
            raise AttributeLimitExceededException(
                f"You can apply up to {MAX_CUSTOM_ATTRIBUTES} custom attributes for each resource "
                f"({arn.rsplit('/', 1)[-1]} would have {len(custom)}).")
    _save(backend, cluster, updated)
    return [echoed for *_, echoed in targets]


def delete_attributes(backend: Backend, cluster: Cluster, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    targets = _targets(backend, cluster, items, with_value=False)
    updated: dict[str, dict[str, str | None]] = {}
    for ci, name, _, _ in targets:
        updated.setdefault(ci.container_instance_arn, dict(ci.attributes)).pop(name, None)
    _save(backend, cluster, updated)
    return [echoed for *_, echoed in targets]


def _save(backend: Backend, cluster: Cluster, updated: dict[str, dict[str, str | None]]) -> None:
    """New attributes into the store, then into the agent's placement snapshot."""
    with backend.store.transaction() as tx:
        for arn, attrs in updated.items():
            ci = backend.store.get("container_instance", arn)
            ci.attributes = attrs
            ci.version += 1
            tx.put("container_instance", arn, ci)
    snapshot = backend.agent.snapshot(cluster.cluster_name)
    for arn, attrs in updated.items():
        with contextlib.suppress(KeyError):
            idx = snapshot.index_of(arn)
            snapshot.slots[idx].attributes = dict(attrs)
            snapshot.touch(idx)


# --- handlers ------------------------------------------------------------------------


async def put_attributes_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    return {"attributes": put_attributes(backend, cluster, params.obj_list("attributes", required=True))}


async def delete_attributes_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    return {"attributes": delete_attributes(backend, cluster, params.obj_list("attributes", required=True))}


async def list_attributes_op(backend: Backend, params: Params) -> dict[str, Any]:
    cluster = cluster_of(backend, params)
    params.enum("targetType", (TARGET_TYPE,), required=True)
    name, value = params.str("attributeName"), params.str("attributeValue")
    if value is not None and name is None:
        raise InvalidParameterException("attributeValue can only be used together with attributeName.")
    found = []
    for ci in instances_of(backend, cluster):
        for attr_name, attr_value in sorted(ci.attributes.items()):
            if (name is None or attr_name == name) and (value is None or attr_value == value):
                found.append({"name": attr_name, **({"value": attr_value} if attr_value is not None else {}),
                              "targetType": TARGET_TYPE, "targetId": ci.container_instance_arn})
    items, more = page(found, params)
    return {"attributes": items, **more}


OPERATIONS = {
    "PutAttributes": put_attributes_op,
    "ListAttributes": list_attributes_op,
    "DeleteAttributes": delete_attributes_op,
}
