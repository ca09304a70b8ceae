"""After a restart: make the store and the real containers agree, losing nothing and leaking nothing.

The store says what should exist; Docker's labels say what does. Live
instances and tasks the store knows are adopted (their containers keep
running; their state catches up from what Docker reports). Containers the
store no longer wants are removed. Instances that vanished while the
emulator was down are deregistered and their tasks STOPPED. A task placed
but never started is started now.
"""

from __future__ import annotations

import logging

from ..model.container_instance import INACTIVE
from ..model.task import PENDING, STOPPED
from ..runtime.base import ContainerStatus, InstanceNotFound, RuntimeEvent
from .agent import ClusterAgent

log = logging.getLogger(__name__)


async def recover(agent: ClusterAgent) -> dict[str, int]:
    """Reconcile store and runtime; returns counts of what was adopted, removed and stopped."""
    counts = {"instances_adopted": 0, "instances_removed": 0, "instances_lost": 0,
              "tasks_adopted": 0, "tasks_removed": 0, "tasks_restarted": 0}
    adopt = getattr(agent.runtime, "adopt", None)
    live = await adopt() if adopt else await agent.runtime.list_instances()
    running = {s.ec2_instance_id for s in live if s.state == "running"}
    for status in live:
        agent.note_address(status.ec2_instance_id, status.address)
    wanted = {ci.ec2_instance_id: ci for ci in agent.store.list("container_instance") if ci.status != INACTIVE}
    for ec2_id, ci in wanted.items():
        if ec2_id not in running:
            agent._instance_gone(ci)
            counts["instances_lost"] += 1
    for status in live:
        if status.ec2_instance_id not in wanted:
            try:
                await agent.runtime.terminate_instance(status.ec2_instance_id, stop_timeout_s=5)
            except InstanceNotFound:
                log.warning("orphan instance %s could not be reached to remove", status.ec2_instance_id)
            counts["instances_removed"] += 1
    agent._rebuild_indexes()
    for ec2_id, ci in wanted.items():
        if ec2_id in running:
            counts["instances_adopted"] += 1
            await _recover_tasks(agent, ci, counts)
    return counts


async def _recover_tasks(agent: ClusterAgent, ci, counts: dict[str, int]) -> None:
    actual = {t.task_id: t for t in await agent.runtime.list_tasks(ci.ec2_instance_id)}
    for task_id in actual:
        arn = agent.task_index.get(task_id)
        task = agent.store.get("task", arn) if arn else None
        if task is None or task.last_status == STOPPED:
            await agent.runtime.stop_task(ci.ec2_instance_id, task_id)
            await agent.runtime.remove_task(ci.ec2_instance_id, task_id)
            counts["tasks_removed"] += 1
    for task in agent._tasks_on(ci):
        found = actual.get(task.task_id)
        if found is None:
            if task.last_status == PENDING:
                agent._spawn(agent._start(task.task_arn))  # placed, never started: start it now
                counts["tasks_restarted"] += 1
            else:
                for c in task.containers:  # its containers vanished with the emulator down
                    await agent.handle_event(RuntimeEvent(ci.ec2_instance_id, task.task_id, _exited(c.name)))
            continue
        counts["tasks_adopted"] += 1
        for status in found.containers:
            await agent.handle_event(RuntimeEvent(ci.ec2_instance_id, task.task_id, status))
        if task.desired_status == STOPPED and agent.store.get("task", task.task_arn).last_status != STOPPED:
            agent._spawn(agent._stop_containers(task))


def _exited(name: str):

    return ContainerStatus(name, "exited", exit_code=None, reason="Container not found after emulator restart")
