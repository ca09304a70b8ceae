"""The change journal's records, and the messages ECS writes for them.

Every change a person would want to see later (a service event, a task
state change, a scaling activity) is one `Event` with AWS time and wall
time. Messages are built here so every layer words them as AWS does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SERVICE_EVENT = "service-event"
TASK_STATE_CHANGE = "task-state-change"
INSTANCE_STATE_CHANGE = "container-instance-state-change"
SCALING_ACTIVITY = "scaling-activity"
DEPLOYMENT_STATE_CHANGE = "deployment-state-change"
EVENT_KINDS = (SERVICE_EVENT, TASK_STATE_CHANGE, INSTANCE_STATE_CHANGE, SCALING_ACTIVITY,
               DEPLOYMENT_STATE_CHANGE)


@dataclass
class Event:
    kind: str
    resource: str           # ARN (or name) of what changed
    message: str
    aws_time: float = 0.0   # the emulator's clock (AWS seconds, time_scale applied)
    wall_time: float = 0.0  # the host's clock
    detail: dict[str, Any] = field(default_factory=dict)
    seq: int = 0            # position in the journal, set by the store


def steady_state(service_name: str) -> str:
    return f"(service {service_name}) has reached a steady state."


def started_tasks(service_name: str, task_ids: list[str]) -> str:
    return f"(service {service_name}) has started {len(task_ids)} tasks: {_task_list(task_ids)}."


def stopped_tasks(service_name: str, task_ids: list[str]) -> str:
    return f"(service {service_name}) has stopped {len(task_ids)} running tasks: {_task_list(task_ids)}."


def registered_targets(service_name: str, count: int, target_group_arn: str) -> str:
    return f"(service {service_name}) registered {count} targets in (target-group {target_group_arn})"


def deregistered_targets(service_name: str, count: int, target_group_arn: str) -> str:
    return f"(service {service_name}) deregistered {count} targets in (target-group {target_group_arn})"


def unable_to_place(service_name: str, detail: str | None = None) -> str:
    """ECS's event when no instance can take a service task; `detail` names the closest one."""
    base = (f"service {service_name} was unable to place a task because no container instance "
            "met all of its requirements.")
    return f"{base} {detail}" if detail else base


def deployment_completed(service_name: str, deployment_id: str) -> str:
    return f"(service {service_name}) (deployment {deployment_id}) deployment completed."


def deployment_failed(service_name: str, deployment_id: str) -> str:
    return (f"(service {service_name}) (deployment {deployment_id}) deployment failed: "
            "tasks failed to start.")


def deployment_blocked(service_name: str) -> str:
    return (f"(service {service_name}) was unable to stop or start tasks during a deployment because "
            "of the service deployment configuration. Update the minimumHealthyPercent or "
            "maximumPercent value and try again.")


def _task_list(task_ids: list[str]) -> str:
    return " ".join(f"(task {t})" for t in task_ids)
