"""The service scheduler: keeps each service's desired tasks of its PRIMARY deployment running.

A level-based reconcile loop: every pass reads the service, its tasks and
their health from the store (never trusting a remembered picture), asks
the pure rolling step what to do, and acts through the agent: places and
starts tasks, stops tasks that are replaced, scaled in or failed their
health checks. It keeps `runningCount`/`pendingCount` true, moves
deployments through IN_PROGRESS -> COMPLETED (or FAILED, with the
circuit breaker and its optional rollback), and writes ECS's service
events. For a service behind a load balancer, a task is healthy once its
targets are healthy, and one whose target turns unhealthy (after the
health check grace period) is replaced; `load_balancing` registers and
drains the targets.

At scale (a service of 10,000 tasks, a pass every 5 s) a pass must not cost
10,000 of anything when nothing changed. It still reads the truth each pass,
through what the store keeps up to date: a service's tasks come from the
store's group index and are read again whenever the store's task version
moves (any commit, or a rolled-back transaction); a task's health view is
made again when the task commits a change, its targets change state, or the
time could change it (grace period, HEALTHY_AFTER_S); and the rolling step,
a pure function, is not recomputed for the very same inputs.
"""

from __future__ import annotations

import logging
import random
from collections import Counter

from ..clock import Clock
from ..model.arn import short_name
from ..model.events import (
    SERVICE_EVENT,
    Event,
    deployment_blocked,
    deployment_completed,
    deployment_failed,
    started_tasks,
    steady_state,
    stopped_tasks,
    unable_to_place,
)
from ..model.service import (
    ACTIVE_DEPLOYMENT,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PRIMARY,
    SERVICE_ACTIVE,
    SERVICE_DRAINING,
    SERVICE_INACTIVE,
    Deployment,
    Service,
    ServiceEvent,
    circuit_breaker_threshold,
    new_deployment_id,
)
from ..model.state import StateStore
from ..model.task import (PROVISIONING, RUNNING, SERVICE_SCHEDULER_INITIATED, STOPPED, Task,
                          reason_scaling_activity)
from ..placement import place_tasks
from ..placement.requests import for_service
from ..scheduling.rolling import UNHEALTHY, RollingStep, TaskView, plan_rolling_step
from .agent import ClusterAgent
from .services import refresh_counts, task_counts
from .task_index import count_with_status, tasks_of_group

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 40         # no load balancer, no container health check: healthy 40 s after RUNNING
RECONCILE_EVERY_S = 5        # AWS seconds between passes
EVENT_REPEAT_S = 300         # the same placement failure is not repeated sooner than this
MAX_EVENTS = 100             # DescribeServices shows the latest 100
REASON_CONTAINER_HEALTH = "Task failed container health checks"


def capacity_provider_of(service: Service) -> str | None:
    """The capacity provider the service's new tasks wait on (its strategy's first weighted or based one)."""
    for item in service.capacity_provider_strategy:
        if item.weight or item.base:
            return item.capacity_provider
    return None


def reason_elb_health(target_group_arn: str) -> str:
    return f"Task failed ELB health checks in (target-group {target_group_arn})"


class _GroupTasks:
    """A service's tasks at one version of the store's tasks, and what a pass works out from them."""

    def __init__(self, version: int, key: tuple[str, str], tasks: list[Task]) -> None:
        self.version, self.key, self.tasks = version, key, tasks
        self.live = [t for t in tasks if t.last_status != STOPPED and t.desired_status != STOPPED]
        self._not_stopped: list[Task] | None = None
        self._counts: Counter | None = None

    def not_stopped(self) -> list[Task]:
        if self._not_stopped is None:
            self._not_stopped = [t for t in self.tasks if t.last_status != STOPPED]
        return self._not_stopped

    def counts(self) -> Counter:
        """(startedBy, lastStatus) -> how many of the tasks that have not STOPPED."""
        if self._counts is None:
            self._counts = task_counts(self.not_stopped())
        return self._counts

    def started_by(self, deployment_id: str) -> bool:
        """Whether a task that has not STOPPED was started by that deployment."""
        return any(n for (started_by, _), n in self.counts().items() if started_by == deployment_id)


class ServiceScheduler:
    def __init__(self, store: StateStore, agent: ClusterAgent, clock: Clock, *,
                 rng: random.Random | None = None) -> None:
        self.store, self.agent, self.clock = store, agent, clock
        self.rng = rng or random.Random()
        self._counted_failures: set[str] = set()
        self._last_event: dict[str, tuple[str, float]] = {}
        # Each pass reads every task of a service; what it makes of one (its TaskView) is kept until the
        # task commits a change, its targets change state, or time could change it (see _views_of).
        self._views: dict[str, TaskView] = {}                # task ARN -> its view, while it holds
        self._view_params: dict[str, tuple] = {}             # service ARN -> what its tasks' views assumed
        self._stale: set[str] = set()                        # task ARNs whose view must be made again
        self._task_version = store.version("task")           # the task commits the views have heard of
        self._checked: dict[str, bool] = {}                  # task definition ARN -> has a health check
        self._td_version = -1
        self._plans: dict[str, tuple] = {}                   # service ARN -> (inputs, views, step) of its last plan
        self._view_lists: dict[str, tuple] = {}              # service ARN -> (key, tasks, views) of its last pass
        self._timed_views = 0                                # views of the list being made that depend on time
        self._groups: dict[str, _GroupTasks] = {}            # service ARN -> its tasks at the store's task version
        self._load_balancing = None
        self._unsubscribe = store.subscribe(self._on_commit)

    @property
    def load_balancing(self):
        """ServiceLoadBalancing, when the process runs an ALB (it tells this scheduler of target state)."""
        return self._load_balancing

    @load_balancing.setter
    def load_balancing(self, lb) -> None:
        self._load_balancing = lb
        self._views.clear()
        if lb is not None:
            lb.on_target_state = self._stale.add

    def close(self) -> None:
        self._unsubscribe()

    def _on_commit(self, notice) -> None:
        for change in notice.changes:
            if change.kind == "task":
                self._stale.add(change.key)
                self._task_version += 1

    async def run(self) -> None:
        while True:
            self.reconcile_all()
            await self.clock.sleep(RECONCILE_EVERY_S)

    def reconcile_all(self) -> None:
        if self.load_balancing is not None:
            try:
                self.load_balancing.sync()
            except Exception:
                log.exception("syncing load balancer targets failed")
        for service in self.store.list("service"):
            if service.status != SERVICE_INACTIVE:
                try:
                    self.reconcile(service)
                except Exception:
                    log.exception("reconciling service %s failed", service.service_name)

    # --- one pass ------------------------------------------------------------------

    def reconcile(self, service: Service) -> None:
        now = self.clock.now()
        group = self._group_tasks(service)
        tasks, live = group.tasks, group.live
        primary = service.primary
        if primary is None:
            return
        self._count_failures(service, primary, tasks)
        desired = service.desired_count if service.status == SERVICE_ACTIVE else 0
        cfg = service.deployment_configuration
        step = self._plan(service, (desired, cfg.maximum_percent, cfg.minimum_healthy_percent, primary.id),
                          self._views_of(service, live, now, keep=True))
        if primary.rollout_state == FAILED:
            step.start = 0  # a FAILED deployment launches nothing
        stopped = self._apply_stops(service, step.stop, {t.task_arn: t for t in live} if step.stop else {})
        self._place_provisioning(service, primary, live)  # ECS told of these when it created them
        started = self._start(service, primary, step.start) if step.start else []
        if step.blocked:
            self._event(service, deployment_blocked(service.service_name), repeat_after=EVENT_REPEAT_S)
        if started:
            self._event(service, started_tasks(service.service_name, [t.task_id for t in started]))
        if stopped:
            self._event(service, stopped_tasks(service.service_name, [t.task_id for t in stopped]))
        self._update_counts(service, now)

    def _tasks(self, service: Service) -> list[Task]:
        return self._group_tasks(service).tasks

    def _group_tasks(self, service: Service) -> _GroupTasks:
        """The service's tasks as the store holds them now (kept while the store's task version is the same:
        any committed change to any task, or a rolled-back transaction, makes it read them again)."""
        version = self.store.version("task")
        group = self._groups.get(service.service_arn)
        if group is None or group.version != version or group.key != (service.cluster_arn, service.task_group):
            group = self._groups[service.service_arn] = _GroupTasks(
                version, (service.cluster_arn, service.task_group),
                tasks_of_group(self.store, service.cluster_arn, service.task_group))
        return group

    def _plan(self, service: Service, inputs: tuple, views: list[TaskView]) -> RollingStep:
        """plan_rolling_step(*inputs, views); a pure function, so the same inputs give back the last answer."""
        last = self._plans.get(service.service_arn)
        if last is not None and last[0] == inputs and (last[1] is views or last[1] == views):
            step = last[2]
        else:
            step = plan_rolling_step(*inputs, views)
            self._plans[service.service_arn] = (inputs, views, RollingStep(step.start, list(step.stop),
                                                                           step.blocked))
            return step
        return RollingStep(step.start, list(step.stop), step.blocked)

    def _views_of(self, service: Service, tasks: list[Task], now: float, *, keep: bool = False) -> list[TaskView]:
        """`_view` of each task, made again only for tasks whose view may have changed since the last pass.

        With `keep`, the list itself is kept for the next pass: given the same task list while no task,
        task definition or target changed state and no view depends on the time, it is the answer again."""
        self._forget_stale_views()
        lb = self.load_balancing if service.load_balancers else None
        params = (service.health_check_grace_period_seconds or 0, len(service.load_balancers), id(lb),
                  len(lb.alb.runtimes) if lb is not None else 0)
        if self._view_params.get(service.service_arn) != params:
            if service.service_arn in self._view_params:
                self._views.clear()
            self._view_params[service.service_arn] = params
        key = (self._task_version, self._td_version, lb.target_version if lb is not None else None, params)
        kept = self._view_lists.get(service.service_arn) if keep else None
        if kept is not None and kept[0] == key and kept[1] is tasks:
            return kept[2]
        self._timed_views = 0
        get = self._views.get
        views = [get(t.task_arn) or self._keep_view(service, t, now) for t in tasks]
        if keep:
            if self._timed_views:
                self._view_lists.pop(service.service_arn, None)
            else:
                self._view_lists[service.service_arn] = (key, tasks, views)
        return views

    def _forget_stale_views(self) -> None:
        td_version = self.store.version("task_definition")
        if self.store.version("task") != self._task_version or td_version != self._td_version:
            # Objects changed without a commit notice (a rolled-back transaction) or task definitions changed.
            self._views.clear()
            self._checked.clear()
            self._task_version, self._td_version = self.store.version("task"), td_version
        elif self._stale:
            views = self._views
            for arn in self._stale:
                views.pop(arn, None)
        self._stale.clear()

    def _keep_view(self, service: Service, task: Task, now: float) -> TaskView:
        view = self._view(service, task, now)
        if self._changes_with_time(service, task, view, now):
            self._timed_views += 1
        else:
            self._views[task.task_arn] = view
        return view

    def _changes_with_time(self, service: Service, task: Task, view: TaskView, now: float) -> bool:
        """Whether the same task could get another view later only because time passed (a grace period or
        HEALTHY_AFTER_S running out): such views are made again every pass, as before."""
        if not view.running or task.started_at is None:
            return False
        since = now - (task.started_at or now)
        grace = service.health_check_grace_period_seconds or 0
        if service.load_balancers and self.load_balancing is not None:
            return not view.failed_health and since < grace
        if self._has_health_check(task.task_definition_arn):
            return not view.failed_health and since < grace
        return not view.healthy and since < HEALTHY_AFTER_S

    def _has_health_check(self, td_arn: str) -> bool:
        checked = self._checked.get(td_arn)
        if checked is None:
            td = self.store.get("task_definition", td_arn)
            checked = td is not None and any(c.essential and c.health_check for c in td.container_definitions)
            if td is not None:
                self._checked[td_arn] = checked
        return checked

    def _view(self, service: Service, task: Task, now: float) -> TaskView:
        running = task.last_status == RUNNING
        checked = self._has_health_check(task.task_definition_arn)
        since = now - (task.started_at or now)
        grace = service.health_check_grace_period_seconds or 0
        lb = self.load_balancing if service.load_balancers else None
        if lb is not None:
            target = lb.task_target_state(service, task)
            container_ok = not checked or task.health_status == "HEALTHY"
            healthy = running and target == "healthy" and container_ok
            failed = running and since >= grace and (
                target == "unhealthy" or (checked and task.health_status == "UNHEALTHY"))
        elif checked:
            healthy = running and task.health_status == "HEALTHY"
            failed = running and task.health_status == "UNHEALTHY" and since >= grace
        else:
            healthy, failed = running and since >= HEALTHY_AFTER_S, False
        return TaskView(task.task_arn, task.started_by or "", running, healthy, failed)

    def _apply_stops(self, service: Service, stops: list[tuple[str, str]], live: dict[str, Task]) -> list[Task]:
        stopped = []
        for arn, why in stops:
            task = live[arn]
            if why == UNHEALTHY:
                group = self.load_balancing.unhealthy_target_group(task) if self.load_balancing else None
                reason = reason_elb_health(group) if group else REASON_CONTAINER_HEALTH
            else:
                reason = reason_scaling_activity(task.started_by or "")
            stopped.append(self._stop(task, reason))
        return stopped

    def _stop(self, task: Task, reason: str) -> Task:
        self.agent.request_stop_task(task, reason, SERVICE_SCHEDULER_INITIATED)
        return task

    def _start(self, service: Service, primary: Deployment, count: int) -> list[Task]:
        td = self.store.get("task_definition", primary.task_definition)
        cluster = short_name(service.cluster_arn)
        snapshot = self.agent.snapshot(cluster)
        provider = capacity_provider_of(service)
        if provider is not None:
            # With a capacity provider, what doesn't fit is created anyway and waits in PROVISIONING;
            # those tasks are what makes the provider grow its Auto Scaling group.
            plan = place_tasks(snapshot, for_service(service, td, count), self.rng) if snapshot.slots else None
            placements = plan.placements if plan else []
            started = self.agent.create_tasks(service.cluster_arn, td, placements, service.task_group,
                                              started_by=primary.id)
            waiting = self.agent.create_provisioning_tasks(service.cluster_arn, td, count - len(placements),
                                                           service.task_group, primary.id, provider)
            return started + waiting
        if not snapshot.slots:
            self._event(service, unable_to_place(service.service_name,
                                                 "Reason: No Container Instances were found in your cluster."),
                        repeat_after=EVENT_REPEAT_S)
            return []
        plan = place_tasks(snapshot, for_service(service, td, count), self.rng)
        started = self.agent.create_tasks(service.cluster_arn, td, plan.placements, service.task_group,
                                          started_by=primary.id)
        if plan.failures:
            self._event(service, unable_to_place(service.service_name, plan.failures[0].service_event_detail()),
                        repeat_after=EVENT_REPEAT_S)
        return started

    def _place_provisioning(self, service: Service, primary: Deployment, live: list[Task]) -> list[Task]:
        """The PRIMARY's PROVISIONING tasks that fit now (an instance joined or room freed), oldest first."""
        if not count_with_status(self.store, PROVISIONING):
            return []  # no task anywhere waits for capacity
        waiting = sorted((t for t in live if t.last_status == PROVISIONING and t.started_by == primary.id),
                         key=lambda t: t.created_at or 0)
        if not waiting:
            return []
        snapshot = self.agent.snapshot(short_name(service.cluster_arn))
        if not snapshot.slots:
            return []
        td = self.store.get("task_definition", waiting[0].task_definition_arn)
        plan = place_tasks(snapshot, for_service(service, td, len(waiting)), self.rng)
        return self.agent.place_provisioning_tasks(waiting, plan.placements)

    # --- the circuit breaker --------------------------------------------------------

    def _count_failures(self, service: Service, primary: Deployment, tasks: list[Task]) -> None:
        """Tasks of the PRIMARY that stopped before RUNNING, or for failed health checks, count against it."""
        breaker = service.deployment_configuration.deployment_circuit_breaker
        if not breaker.enable or primary.rollout_state != IN_PROGRESS:
            return
        for t in tasks:
            if t.started_by != primary.id or t.last_status != STOPPED or t.task_arn in self._counted_failures:
                continue
            failed_to_start = t.started_at is None and t.stop_code != SERVICE_SCHEDULER_INITIATED
            failed_health = t.stopped_reason == REASON_CONTAINER_HEALTH or "failed ELB health" in (t.stopped_reason or "")
            if failed_to_start or failed_health or (t.stopped_reason or "").startswith("Essential container"):
                self._counted_failures.add(t.task_arn)
                primary.failed_tasks += 1
        if primary.failed_tasks >= circuit_breaker_threshold(service.desired_count):
            self._trip(service, primary)

    def _trip(self, service: Service, primary: Deployment) -> None:
        now = self.clock.now()
        primary.rollout_state = FAILED
        primary.rollout_state_reason = "ECS deployment circuit breaker: tasks failed to start."
        self._event(service, deployment_failed(service.service_name, primary.id))
        breaker = service.deployment_configuration.deployment_circuit_breaker
        previous = next((d for d in service.deployments if d.status == ACTIVE_DEPLOYMENT
                         and d.rollout_state == COMPLETED), None)
        if not breaker.rollback or previous is None:
            return
        rollback = Deployment(id=new_deployment_id(self.rng), status=PRIMARY, task_definition=previous.task_definition,
                              desired_count=service.desired_count, created_at=now, updated_at=now,
                              rollout_state=IN_PROGRESS,
                              rollout_state_reason=f"ECS deployment circuit breaker: rolling back to deploymentId "
                                                   f"{previous.id}.")
        primary.status = ACTIVE_DEPLOYMENT
        service.deployments.insert(0, rollback)
        service.task_definition = previous.task_definition
        self._event(service, f"(service {service.service_name}) (deployment {primary.id}) deployment failed: "
                             f"rolling back to deployment {previous.id}.")

    # --- counts, deployments, events ---------------------------------------------------

    def _update_counts(self, service: Service, now: float) -> None:
        group = self._group_tasks(service)   # as the store holds them after this pass's starts and stops
        tasks = group.not_stopped()          # live_tasks(store, service)
        refresh_counts(service, tasks, group.counts())
        primary = service.primary
        kept = []
        for d in service.deployments:
            if d is primary:
                d.desired_count = service.desired_count if service.status == SERVICE_ACTIVE else 0
            else:
                d.desired_count = 0
                if not group.started_by(d.id):
                    continue  # drained: INACTIVE deployments leave the list, as in DescribeServices
            kept.append(d)
        service.deployments = kept
        if primary and primary.rollout_state == IN_PROGRESS and len(kept) == 1 and self._steady(service, tasks, now):
            primary.rollout_state = COMPLETED
            primary.rollout_state_reason = f"ECS deployment {primary.id} completed."
            primary.updated_at = now
            self._event(service, deployment_completed(service.service_name, primary.id))
            self._event(service, steady_state(service.service_name))
        if service.status == SERVICE_DRAINING and not tasks:
            service.status = SERVICE_INACTIVE
        self._save(service)

    def _steady(self, service: Service, tasks: list[Task], now: float) -> bool:
        primary = service.primary
        mine = [t for t in tasks if t.started_by == primary.id and t.desired_status != STOPPED]
        return len(mine) == service.desired_count == len(tasks) and all(
            view.healthy for view in self._views_of(service, mine, now))

    def service_event(self, service: Service, message: str) -> None:
        """Add one of ECS's service events (the load balancing side writes through this too)."""
        self._event(service, message)

    def _event(self, service: Service, message: str, *, repeat_after: float | None = None) -> None:
        now = self.clock.now()
        if repeat_after is not None:
            last = self._last_event.get(service.service_arn)
            if last and last[0] == message and now - last[1] < repeat_after:
                return
        self._last_event[service.service_arn] = (message, now)
        service.events.insert(0, ServiceEvent(id=f"{self.rng.getrandbits(128):032x}", created_at=now,
                                              message=message))
        del service.events[MAX_EVENTS:]
        with self.store.transaction() as tx:
            tx.record(Event(SERVICE_EVENT, service.service_arn, message))

    def _save(self, service: Service) -> None:
        with self.store.transaction() as tx:
            tx.put("service", service.service_arn, service)
