"""ECS's side of a service's load balancer: register RUNNING tasks as targets, drain them before they stop.

What ECS does for a service with `loadBalancers`:
- a task that reaches RUNNING is registered in each of the service's target
  groups as (instance, host port of containerName:containerPort); the
  service says "registered N targets in (target-group ...)";
- a task that is to stop (the scheduler replaces it, a deployment retires
  it, StopTask) is deregistered first and its containers get SIGTERM only
  once the target has drained (in-flight requests done, or the group's
  deregistration delay over): "has begun draining connections on N tasks",
  then "deregistered N targets";
- a task that dies on its own is deregistered as soon as the agent sees it
  (the ALB answers 502 for what was in flight on it; it does not retry).

Level-based: `sync()` makes every target group hold exactly the RUNNING,
not-stopping tasks of its services (the scheduler calls it each pass; after
a restart it re-registers everything), and a store subscription applies the
same rule to each task as its state commits, so reaction takes milliseconds,
not a scheduler pass. Target health flows back to the scheduler through
`task_target_state` (and `on_target_state`, which names each task whose
registration or target state changed). A sync that found every task as it
should be is not repeated until the store's tasks or services, or the
registrations, change.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

from ..alb import balancer as b
from ..alb.balancer import Target
from ..alb.service import AlbService
from ..alb.targets import DRAINED, REMOVED, TargetChange
from ..clock import Clock
from ..model.elb import LoadBalancer, TargetGroup
from ..model.events import deregistered_targets, registered_targets
from ..model.service import SERVICE_INACTIVE, Service
from ..model.state import CommitNotice, StateStore, register_kind
from ..model.task import RUNNING, STOPPED, Task
from .agent import ClusterAgent
from .task_index import tasks_of_group

log = logging.getLogger(__name__)

register_kind("target_group", TargetGroup, dump=lambda tg: tg.to_api(with_attributes=True), load=TargetGroup.from_api)
register_kind("load_balancer", LoadBalancer)

# Target health as the service scheduler needs it (one word over all of a task's target groups).
TARGET_HEALTHY, TARGET_UNHEALTHY, TARGET_INITIAL = "healthy", "unhealthy", "initial"

# A stop never waits longer than the delay plus this (AWS seconds) for a drain notice: a safety net.
DRAIN_SLACK_S = 5.0

ServiceEventSink = Callable[[Service, str], None]


@dataclass(frozen=True)
class Binding:
    """Where one of a service's load balancers sends traffic for one task."""

    target_group_arn: str
    target: Target


class ServiceLoadBalancing:
    """Keeps target groups in step with services' tasks; drains tasks before they stop."""

    def __init__(self, store: StateStore, agent: ClusterAgent, alb: AlbService, clock: Clock,
                 service_event: ServiceEventSink) -> None:
        self.store, self.agent, self.alb, self.clock = store, agent, alb, clock
        self.service_event = service_event
        self._bindings: dict[str, list[Binding]] = {}   # task ARN -> its registered targets
        self._drains: dict[str, asyncio.Event] = {}      # target id -> set when drained or removed
        self._draining: dict[str, list[Binding]] = {}   # task ARN -> its targets still draining
        self._services: dict[tuple[str, str], str] = {}  # (cluster ARN, task group) -> service ARN
        self._services_version = -1                      # the store's service version that map is of
        # Told the ARN of a task whose target state may have changed (registered, health, drained...):
        # the scheduler keeps its per-task health views with it.
        self.on_target_state: Callable[[str], None] | None = None
        self.target_version = 0   # changes whenever a registration or a target's state does
        self._bindings_version = 0   # changes whenever _bindings does
        self._in_step: tuple | None = None   # the versions at which sync last found nothing to do
        self._unsubscribe = store.subscribe(self._on_commit)
        self._target_unsubscribes = []
        agent.before_stop = self.drain_task

    def watch_target_groups(self) -> None:
        """Hear drain notices from every target group the ALB runs (call after ensuring them)."""
        for unsubscribe in self._target_unsubscribes:
            unsubscribe()
        self._target_unsubscribes = [rt.subscribe(self._on_target_change) for rt in self.alb.runtimes.values()]

    def close(self) -> None:
        self._unsubscribe()
        for unsubscribe in self._target_unsubscribes:
            unsubscribe()
        self._target_unsubscribes = []
        if self.agent.before_stop == self.drain_task:
            self.agent.before_stop = None

    # --- which targets a task is ---------------------------------------------------------

    def bindings_for(self, service: Service, task: Task) -> list[Binding]:
        """The (target group, target) pairs of a RUNNING task: the instance address and host port."""
        ci = self.store.get("container_instance", task.container_instance_arn or "")
        address = self.agent.address_of(ci.ec2_instance_id) if ci is not None else None
        if address is None:
            return []
        found = []
        for lb in service.load_balancers:
            if lb.target_group_arn not in self.alb.runtimes:
                continue
            port = _host_port(task, lb.container_name, lb.container_port)
            if port:
                found.append(Binding(lb.target_group_arn,
                                     Target(address, port, instance_id=ci.ec2_instance_id, task_arn=task.task_arn)))
        return found

    def bindings_of(self, task_arn: str) -> list[Binding]:
        """The targets a task is registered as now."""
        return list(self._bindings.get(task_arn, []))

    def task_target_state(self, service: Service, task: Task) -> str | None:
        """healthy / unhealthy / initial over all the task's target groups; None when not registered."""
        states = []
        for binding in self._bindings.get(task.task_arn, []):
            ts = self.alb.runtimes[binding.target_group_arn].targets.get(binding.target.target_id)
            if ts is not None:
                states.append(ts.state)
        if not states:
            return None
        if any(s == b.UNHEALTHY for s in states):
            return TARGET_UNHEALTHY
        if all(s in (b.HEALTHY, b.UNAVAILABLE) for s in states) and len(states) == len(service.load_balancers):
            return TARGET_HEALTHY
        return TARGET_INITIAL

    def unhealthy_target_group(self, task: Task) -> str | None:
        """The first target group in which the task's target is unhealthy (for the stop reason)."""
        for binding in self._bindings.get(task.task_arn, []):
            ts = self.alb.runtimes[binding.target_group_arn].targets.get(binding.target.target_id)
            if ts is not None and ts.state == b.UNHEALTHY:
                return binding.target_group_arn
        return None

    # --- keeping registrations level ----------------------------------------------------------

    def sync(self) -> None:
        """Every load-balanced service's RUNNING tasks registered; every other task's targets deregistered."""
        store = self.store
        key = (store.version("task"), store.version("service"), self._bindings_version)
        if key == self._in_step:
            return  # nothing sync reads has changed since it found every task as it should be
        services = {(s.cluster_arn, s.task_group): s for s in store.list("service")
                    if s.load_balancers and s.status != SERVICE_INACTIVE}
        wanted = {t.task_arn for (cluster, group) in services for t in tasks_of_group(store, cluster, group)
                  if t.last_status == RUNNING and t.desired_status != STOPPED}
        differ = wanted.symmetric_difference(self._bindings)
        if not differ:
            self._in_step = key
            return  # what every task would be told is what it already is
        seen = set()
        for task in self.store.list("task"):
            if task.task_arn not in differ:  # wanted and registered, or neither: nothing to do
                if task.task_arn in self._bindings:
                    seen.add(task.task_arn)
                continue
            service = services.get((task.cluster_arn, task.group))
            if service is not None or task.task_arn in self._bindings:
                self._apply(service, task)
                seen.add(task.task_arn)
        for arn in [a for a in self._bindings if a not in seen]:  # tasks gone from the store
            self._deregister(None, arn)

    def _on_commit(self, notice: CommitNotice) -> None:
        for change in notice.changes:
            if change.kind == "task" and change.op == "put":
                task = change.obj
                if task.task_arn in self._bindings or task.group.startswith("service:"):
                    try:
                        self._apply(self._service_of(task), task)
                    except Exception:
                        log.exception("could not update the targets of task %s", task.task_arn)

    def _service_of(self, task: Task) -> Service | None:
        """The load-balanced, not INACTIVE service the task belongs to (the first service of its group)."""
        version = self.store.version("service")
        if version != self._services_version:
            self._services = {}
            for service in self.store.list("service"):
                self._services.setdefault((service.cluster_arn, service.task_group), service.service_arn)
            self._services_version = version
        arn = self._services.get((task.cluster_arn, task.group))
        service = self.store.get("service", arn) if arn is not None else None
        if service is None or service.task_group != task.group or service.cluster_arn != task.cluster_arn:
            return None
        return service if service.load_balancers and service.status != SERVICE_INACTIVE else None

    def _apply(self, service: Service | None, task: Task) -> None:
        wanted = (service is not None and task.last_status == RUNNING and task.desired_status != STOPPED)
        registered = task.task_arn in self._bindings
        if wanted and not registered:
            self._register(service, task)
        elif not wanted and registered:
            self._deregister(service, task.task_arn)

    def _register(self, service: Service, task: Task) -> None:
        bindings = self.bindings_for(service, task)
        if not bindings:
            return
        self._bindings[task.task_arn] = bindings
        self._bindings_version += 1
        self._target_state_changed(task.task_arn)
        for binding in bindings:
            self._drains.pop(binding.target.target_id, None)
            self.alb.runtimes[binding.target_group_arn].register([binding.target])
            self.service_event(service, registered_targets(service.service_name, 1, binding.target_group_arn))

    def _deregister(self, service: Service | None, task_arn: str) -> None:
        bindings = self._bindings.pop(task_arn, [])
        if bindings:
            self._bindings_version += 1
            self._target_state_changed(task_arn)
        draining = []
        for binding in bindings:
            runtime = self.alb.runtimes.get(binding.target_group_arn)
            if runtime is None or runtime.targets.get(binding.target.target_id) is None:
                continue
            target_id = binding.target.target_id
            drained = self._drains[target_id] = asyncio.Event()
            runtime.deregister([target_id])
            ts = runtime.targets.get(target_id)
            if ts is None or ts.drained:
                drained.set()
            draining.append(binding)
            if service is not None:
                self.service_event(service, f"(service {service.service_name}) has begun draining connections "
                                            "on 1 tasks.")
                self.service_event(service, deregistered_targets(service.service_name, 1,
                                                                 binding.target_group_arn))
        if draining:
            self._draining[task_arn] = draining

    def _target_state_changed(self, task_arn: str | None) -> None:
        self.target_version += 1
        if task_arn is not None and self.on_target_state is not None:
            self.on_target_state(task_arn)

    def _on_target_change(self, change: TargetChange) -> None:
        self._target_state_changed(change.target.task_arn)
        if change.kind in (DRAINED, REMOVED):
            event = self._drains.get(change.target.target_id)
            if event is not None:
                event.set()
            if change.kind == REMOVED:
                self._drains.pop(change.target.target_id, None)
                task_arn = change.target.task_arn
                left = [bd for bd in self._draining.get(task_arn, []) if bd.target != change.target]
                if left:
                    self._draining[task_arn] = left
                else:
                    self._draining.pop(task_arn, None)

    # --- stopping behind a load balancer ---------------------------------------------------

    async def drain_task(self, task: Task) -> None:
        """Before SIGTERM: deregister the task's targets and wait until they have drained."""
        if task.task_arn in self._bindings:
            self._deregister(self._service_of(task), task.task_arn)
        bindings = self._draining.get(task.task_arn, [])
        waits = [self._drains[bd.target.target_id] for bd in bindings if bd.target.target_id in self._drains]
        if not waits:
            return
        delay = max((self.alb.runtimes[bd.target_group_arn].deregistration_delay for bd in bindings
                     if bd.target_group_arn in self.alb.runtimes), default=0)
        drained = asyncio.ensure_future(asyncio.gather(*(w.wait() for w in waits)))
        timer = asyncio.ensure_future(self.clock.sleep(delay + DRAIN_SLACK_S))
        try:
            await asyncio.wait({drained, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (drained, timer):
                future.cancel()
            await asyncio.gather(drained, timer, return_exceptions=True)
        if not drained.done() or drained.cancelled():
            log.warning("task %s: its targets did not report drained in time; stopping it anyway", task.task_id)


def _host_port(task: Task, container_name: str | None, container_port: int | None) -> int | None:
    for container in task.containers:
        if container.name != container_name:
            continue
        for binding in container.network_bindings:
            if binding.container_port == container_port and binding.host_port:
                return binding.host_port
    return None
