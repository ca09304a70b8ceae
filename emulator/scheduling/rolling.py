"""One step of ECS's rolling update (the `ECS` deployment controller), as a pure function.

ECS keeps at most `floor(desired x maximumPercent / 100)` tasks RUNNING or
PENDING and at least `ceil(desired x minimumHealthyPercent / 100)` healthy
ones while it replaces the tasks of older deployments with the PRIMARY's.
Each step: replace tasks that failed their health checks, trim a PRIMARY
that has more tasks than desired, start what the upper bound allows, and
stop old tasks as far as the lower bound allows. With maximumPercent 200
and minimumHealthyPercent 100 that is the article's blue/green: the new
tasks start next to the old ones, and an old one stops only when a new one
is healthy. With 100/50 half the old tasks stop first to make room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SCALE_IN, REPLACED, UNHEALTHY = "scale-in", "replaced", "unhealthy"


@dataclass(frozen=True)
class TaskView:
    task_arn: str
    deployment_id: str
    running: bool            # lastStatus RUNNING (else still PENDING)
    healthy: bool            # counts toward minimumHealthyPercent
    failed_health: bool = False  # failed its ELB / container health check after the grace period


@dataclass
class RollingStep:
    start: int = 0                                             # PRIMARY tasks to place now
    stop: list[tuple[str, str]] = field(default_factory=list)  # (task ARN, why)
    blocked: bool = False    # the bounds allow no progress at all (ECS says so in an event)


def plan_rolling_step(desired: int, maximum_percent: int, minimum_healthy_percent: int,
                      primary_id: str, tasks: list[TaskView]) -> RollingStep:
    """The next step for a service whose live (not stopping) tasks are `tasks`."""
    step = RollingStep()
    max_tasks = math.floor(desired * maximum_percent / 100)
    min_healthy = math.ceil(desired * minimum_healthy_percent / 100)
    live = list(tasks)
    for t in [t for t in live if t.failed_health]:
        step.stop.append((t.task_arn, UNHEALTHY))  # not healthy: stopping it costs no healthy task
        live.remove(t)
    primary = [t for t in live if t.deployment_id == primary_id]
    old = [t for t in live if t.deployment_id != primary_id]
    extra = len(primary) - desired
    if extra > 0:
        for t in sorted(primary, key=lambda t: (t.running, t.healthy))[:extra]:  # pending ones go first
            step.stop.append((t.task_arn, SCALE_IN))
            live.remove(t)
        primary = [t for t in live if t.deployment_id == primary_id]
    missing = max(0, desired - len(primary))
    step.start = min(missing, max(0, max_tasks - len(live))) if old else missing
    healthy = sum(1 for t in live if t.healthy)
    allowance = healthy - min_healthy
    for t in sorted(old, key=lambda t: (t.healthy, t.running)):  # the ones that serve nobody go first
        if t.healthy:
            if allowance <= 0:
                continue
            allowance -= 1
        step.stop.append((t.task_arn, REPLACED))
    waiting = any(not t.running or not t.healthy for t in live)
    step.blocked = bool(old) and step.start == 0 and not step.stop and not waiting
    return step
