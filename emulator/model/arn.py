"""ARNs in AWS's form, and the account/region the emulator pretends to be."""

from __future__ import annotations

import re
import uuid

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"

_ARN = re.compile(r"^arn:aws:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<resource>.+)$")


def ecs_arn(resource: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:ecs:{region}:{account}:{resource}"


def cluster_arn(cluster: str, **kw: str) -> str:
    return ecs_arn(f"cluster/{cluster}", **kw)


def service_arn(cluster: str, service: str, **kw: str) -> str:
    return ecs_arn(f"service/{cluster}/{service}", **kw)


def task_arn(cluster: str, task_id: str, **kw: str) -> str:
    return ecs_arn(f"task/{cluster}/{task_id}", **kw)


def container_instance_arn(cluster: str, instance_id: str, **kw: str) -> str:
    return ecs_arn(f"container-instance/{cluster}/{instance_id}", **kw)


def task_definition_arn(family: str, revision: int, **kw: str) -> str:
    return ecs_arn(f"task-definition/{family}:{revision}", **kw)


def container_arn(cluster: str, container_id: str, **kw: str) -> str:
    return ecs_arn(f"container/{cluster}/{container_id}", **kw)


def capacity_provider_arn(name: str, **kw: str) -> str:
    return ecs_arn(f"capacity-provider/{name}", **kw)


def auto_scaling_group_arn(name: str, group_id: str, region: str = DEFAULT_REGION,
                           account: str = DEFAULT_ACCOUNT) -> str:
    return (f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:{group_id}:"
            f"autoScalingGroupName/{name}")


def target_group_arn(name: str, tg_id: str, region: str = DEFAULT_REGION,
                     account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/{tg_id}"


def new_id() -> str:
    """A 32-hex-digit id, the form ECS uses for task and container-instance ids."""
    return uuid.uuid4().hex


def resource_of(arn: str) -> str:
    """The resource part of an ARN (`cluster/prod`), or the input if it is not an ARN."""
    m = _ARN.match(arn)
    return m.group("resource") if m else arn


def short_name(name_or_arn: str) -> str:
    """`prod` from `prod` or from `arn:aws:ecs:...:cluster/prod` (last path element)."""
    if not name_or_arn.startswith("arn:"):
        return name_or_arn
    return resource_of(name_or_arn).rsplit("/", 1)[-1]


def is_arn(value: str) -> bool:
    return bool(_ARN.match(value))
