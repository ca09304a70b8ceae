"""From a task definition and a placed task to what the runtime starts (pure mapping).

The environment carries what ECS's container metadata would tell the app
(task id, container instance id, AZ, cluster), so the sample app can say
who answered. AWS durations (the health check's interval and start period,
stopTimeout) are played `time_scale` times faster, with floors that keep
real processes workable; a health check's timeout is how long a real
command may take, so it is not scaled.
"""

from __future__ import annotations

from ..model.arn import short_name
from ..model.container_instance import ContainerInstance
from ..model.task import Task
from ..model.task_definition import DEFAULT_STOP_TIMEOUT_S, ContainerDefinition, TaskDefinition
from ..runtime.base import ContainerSpec, HealthCheckSpec, PortMappingSpec, TaskSpec

MIN_HEALTH_INTERVAL_S = 1.0
MIN_STOP_TIMEOUT_S = 2.0


def task_spec(task: Task, td: TaskDefinition, instance: ContainerInstance, *, time_scale: float = 1.0,
              cpu_scale: float = 0.25, memory_scale: float = 0.25) -> TaskSpec:
    metadata = {
        "ECS_TASK_ID": task.task_id,
        "ECS_TASK_ARN": task.task_arn,
        "ECS_CONTAINER_INSTANCE_ID": instance.instance_id,
        "ECS_AVAILABILITY_ZONE": instance.availability_zone or "",
        "ECS_CLUSTER": short_name(task.cluster_arn),
        "ECS_TASK_DEFINITION": td.family_revision,
    }
    containers = tuple(container_spec(c, td, task, metadata, time_scale) for c in td.container_definitions)
    return TaskSpec(cluster=short_name(task.cluster_arn), task_id=task.task_id, task_arn=task.task_arn,
                    ec2_instance_id=instance.ec2_instance_id, containers=containers,
                    network_mode=td.network_mode, cpu_scale=cpu_scale, memory_scale=memory_scale)


def container_spec(c: ContainerDefinition, td: TaskDefinition, task: Task, metadata: dict[str, str],
                   time_scale: float) -> ContainerSpec:
    env = {**c.env(), **metadata}
    log_group = log_stream = None
    if c.log_configuration and c.log_configuration.log_driver == "awslogs":
        options = c.log_configuration.options
        log_group = options.get("awslogs-group")
        prefix = options.get("awslogs-stream-prefix")
        # awslogs naming: prefix/container-name/task-id
        log_stream = f"{prefix}/{c.name}/{task.task_id}" if prefix else task.task_id
    stop_timeout = c.stop_timeout if c.stop_timeout is not None else DEFAULT_STOP_TIMEOUT_S
    return ContainerSpec(
        name=c.name or "",
        image=c.image or "",
        cpu_shares=c.cpu,
        memory_mib=c.memory,
        memory_reservation_mib=c.memory_reservation,
        port_mappings=tuple(PortMappingSpec(pm.container_port or 0, pm.host_port or 0, pm.protocol)
                            for pm in c.port_mappings),
        environment=tuple(sorted(env.items())),
        command=tuple(c.command) if c.command is not None else None,
        entry_point=tuple(c.entry_point) if c.entry_point is not None else None,
        health_check=_health_check(c, time_scale),
        essential=c.essential,
        stop_timeout_s=int(max(MIN_STOP_TIMEOUT_S, stop_timeout / time_scale)),
        log_group=log_group,
        log_stream=log_stream,
    )


def _health_check(c: ContainerDefinition, time_scale: float) -> HealthCheckSpec | None:
    hc = c.health_check
    if hc is None or not hc.command or hc.command[0] == "NONE":
        return None
    return HealthCheckSpec(
        command=tuple(hc.command),
        interval_s=max(MIN_HEALTH_INTERVAL_S, hc.interval / time_scale),
        timeout_s=hc.timeout,
        retries=hc.retries,
        start_period_s=(hc.start_period or 0) / time_scale,
    )
