"""Tasks and their containers, through ECS's lifecycle.

`lastStatus` only moves forward along ECS's order (PROVISIONING -> PENDING ->
ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING ->
STOPPED); `advance_task` enforces that and stamps the times ECS shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROVISIONING, PENDING, ACTIVATING, RUNNING = "PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"
DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED = "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"

LIFECYCLE = (PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED)
_ORDER = {status: i for i, status in enumerate(LIFECYCLE)}
DESIRED_STATUSES = (RUNNING, PENDING, STOPPED)

# stopCode values
TASK_FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
USER_INITIATED = "UserInitiated"
SERVICE_SCHEDULER_INITIATED = "ServiceSchedulerInitiated"
TERMINATION_NOTICE = "TerminationNotice"
STOP_CODES = (TASK_FAILED_TO_START, ESSENTIAL_CONTAINER_EXITED, USER_INITIATED,
              SERVICE_SCHEDULER_INITIATED, "SpotInterruption", TERMINATION_NOTICE)

# stoppedReason strings in ECS's wording
REASON_ESSENTIAL_EXITED = "Essential container in task exited"
REASON_USER = "Task stopped by user"
REASON_FAILED_TO_START = "Task failed to start"


def reason_scaling_activity(deployment_id: str) -> str:
    return f"Scaling activity initiated by (deployment {deployment_id})"


def reason_elb_health(target_group_arn: str) -> str:
    return f"Task failed ELB health checks in (target-group {target_group_arn})"


def reason_host_terminated(ec2_instance_id: str) -> str:
    return f"Host EC2 (instance {ec2_instance_id}) stopped/terminated"


HEALTH_STATUSES = ("HEALTHY", "UNHEALTHY", "UNKNOWN")


@dataclass
class NetworkBinding:
    bind_ip: str = field(default="0.0.0.0", metadata={"aws": "bindIP"})
    container_port: int | None = None
    host_port: int | None = None
    protocol: str = "tcp"


@dataclass
class Container:
    container_arn: str
    task_arn: str
    name: str
    image: str
    last_status: str = PENDING
    exit_code: int | None = None
    reason: str | None = None
    runtime_id: str | None = None
    network_bindings: list[NetworkBinding] = field(default_factory=list)
    health_status: str = "UNKNOWN"
    cpu: str | None = None
    memory: str | None = None
    memory_reservation: str | None = None


@dataclass
class Task:
    task_arn: str
    cluster_arn: str
    task_definition_arn: str
    group: str
    last_status: str = PENDING
    desired_status: str = RUNNING
    container_instance_arn: str | None = None
    containers: list[Container] = field(default_factory=list)
    cpu: str | None = None
    memory: str | None = None
    started_by: str | None = None
    launch_type: str | None = "EC2"
    capacity_provider_name: str | None = None
    availability_zone: str | None = None
    health_status: str = "UNKNOWN"
    created_at: float | None = None
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stopped_reason: str | None = None
    stop_code: str | None = None
    connectivity: str | None = None
    version: int = 1
    tags: list[dict[str, str]] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def is_stopped(self) -> bool:
        return self.last_status == STOPPED

    @property
    def holds_resources(self) -> bool:
        """A placed task keeps its instance's resources until it has STOPPED."""
        return self.container_instance_arn is not None and self.last_status != STOPPED


class LifecycleError(ValueError):
    pass


def advance_task(task: Task, status: str, now: float) -> None:
    """Move `task.lastStatus` forward to `status`, stamping ECS's timestamps.

    Going backwards (RUNNING -> PENDING) is a bug in the caller: ECS never does.
    Moving to the same status is a no-op, so level-based loops may repeat it.
    """
    if status not in _ORDER:
        raise LifecycleError(f"unknown task status {status!r}")
    if _ORDER[status] < _ORDER[task.last_status]:
        raise LifecycleError(f"task {task.task_id} cannot go from {task.last_status} back to {status}")
    if status == task.last_status:
        return
    task.last_status = status
    task.version += 1
    if status == RUNNING and task.started_at is None:
        task.started_at = now
    if _ORDER[status] >= _ORDER[STOPPING] and task.stopping_at is None:
        task.stopping_at = now
    if status == STOPPED:
        task.stopped_at = now
        task.desired_status = STOPPED


def request_stop(task: Task, reason: str, stop_code: str, now: float) -> None:
    """Set desiredStatus STOPPED with ECS's reason; the runtime then stops the containers."""
    if task.desired_status == STOPPED and task.stopped_reason:
        return
    task.desired_status = STOPPED
    task.stopped_reason = reason
    task.stop_code = stop_code
    if task.stopping_at is None:
        task.stopping_at = now
    task.version += 1
