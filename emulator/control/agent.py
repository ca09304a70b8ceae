"""The ECS agent's side of the emulator: instances register, placed tasks start, containers are followed.

What the real ECS agent does on each EC2 instance, done here for all of
them: when an instance's Docker daemon answers it registers as a container
instance; a placed task's containers are started in that daemon; and the
task's `lastStatus` follows the real containers through the runtime's
event stream (PENDING -> RUNNING -> STOPPED, with ECS's `stoppedReason`
and `stopCode`). Resources an instance lends a task are taken when the
task is placed and given back when it has STOPPED, in the store and in
the cluster's placement snapshot alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ..clock import Clock
from ..errors import InvalidParameterException, ValidationError
from ..model.arn import DEFAULT_REGION, container_arn, container_instance_arn, new_id, task_arn
from ..model.container_instance import DRAINING, INACTIVE, ContainerInstance, new_container_instance
from ..model.events import INSTANCE_STATE_CHANGE, TASK_STATE_CHANGE, Event
from ..model.instance_types import get_instance_type
from ..model.placement_spec import PlacementConstraint, PlacementStrategy
from ..model.state import StateStore
from ..model.task import (
    ESSENTIAL_CONTAINER_EXITED,
    PENDING,
    PROVISIONING,
    REASON_ESSENTIAL_EXITED,
    REASON_FAILED_TO_START,
    REASON_USER,
    RUNNING,
    STOPPED,
    TASK_FAILED_TO_START,
    TERMINATION_NOTICE,
    USER_INITIATED,
    Container,
    NetworkBinding,
    Task,
    advance_task,
    reason_host_terminated,
    request_stop,
)
from ..model.task_definition import TaskDefinition
from ..placement import ClusterSnapshot, TaskNeeds, place_tasks
from ..placement.snapshot import slot_for
from ..placement.placer import PlacementFailure
from ..placement.requests import for_run_task
from ..runtime.base import ContainerStatus, InstanceSpec, InstanceNotFound, Runtime, RuntimeEvent, RuntimeFailure
from .logs import LogStore
from .registry import get_cluster, resolve_task_definition
from .task_index import tasks_on_instance
from .task_specs import task_spec

log = logging.getLogger(__name__)

MAX_RUN_TASK_COUNT = 10


class ClusterAgent:
    def __init__(self, store: StateStore, runtime: Runtime, clock: Clock, *, region: str = DEFAULT_REGION,
                 cpu_scale: float = 0.25, memory_scale: float = 0.25, logs_dir: Path | None = None,
                 rng: random.Random | None = None) -> None:
        self.store, self.runtime, self.clock, self.region = store, runtime, clock, region
        self.cpu_scale, self.memory_scale = cpu_scale, memory_scale
        self.logs = LogStore(logs_dir)
        self.rng = rng or random.Random()
        self.snapshots: dict[str, ClusterSnapshot] = {}
        self.task_index: dict[str, str] = {}        # task id -> task ARN
        self.instance_index: dict[str, str] = {}    # EC2 instance id -> container instance ARN
        self.addresses: dict[str, str] = {}         # EC2 instance id -> where the host reaches its ports
        # Awaited before a task's containers get SIGTERM (the load balancer drains its targets first).
        self.before_stop: Callable[[Task], Awaitable[None]] | None = None
        self._background: set[asyncio.Task] = set()
        self._rebuild_indexes()

    # --- bookkeeping ----------------------------------------------------------

    def _rebuild_indexes(self) -> None:
        """Indexes and placement snapshots from the store (at start, and after recovery)."""
        self.task_index = {t.task_id: t.task_arn for t in self.store.list("task")}
        instances = [ci for ci in self.store.list("container_instance") if ci.status != INACTIVE]
        self.instance_index = {ci.ec2_instance_id: ci.container_instance_arn for ci in instances}
        tasks = [t for t in self.store.list("task") if t.holds_resources]
        self.snapshots = {}
        for cluster in {_cluster_of(ci) for ci in instances}:
            members = [ci for ci in instances if _cluster_of(ci) == cluster]
            self.snapshots[cluster] = ClusterSnapshot.from_state(members, tasks)

    def address_of(self, ec2_instance_id: str) -> str | None:
        return self.addresses.get(ec2_instance_id)

    def note_address(self, ec2_instance_id: str, address: str | None) -> None:
        if address:
            self.addresses[ec2_instance_id] = address

    def snapshot(self, cluster_name: str) -> ClusterSnapshot:
        return self.snapshots.setdefault(cluster_name, ClusterSnapshot())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def settle(self) -> None:
        """Wait for the task starts and stops in flight (tests and orderly shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _record(self, tx, kind: str, resource: str, message: str, **detail) -> None:
        tx.record(Event(kind, resource, message, detail=detail))

    # --- instances ------------------------------------------------------------

    async def launch_instance(self, cluster_name: str, instance_type: str, availability_zone: str, *,
                              reserved_memory_mib: int | None = None, capacity_provider_name: str | None = None,
                              attributes: dict[str, str | None] | None = None) -> ContainerInstance:
        """Start an EC2 instance and register it as an ACTIVE container instance when its daemon answers."""
        cluster = get_cluster(self.store, cluster_name, self.region)
        try:
            itype = get_instance_type(instance_type)
        except ValueError as exc:  # what EC2 Auto Scaling answers for a launch template's bad type
            raise ValidationError(str(exc)) from None
        ec2_id = f"i-{self.rng.getrandbits(68):017x}"
        spec = InstanceSpec(cluster.cluster_name, ec2_id, itype, availability_zone, self.cpu_scale, self.memory_scale)
        status = await self.runtime.launch_instance(spec)
        ci = new_container_instance(
            arn=container_instance_arn(cluster.cluster_name, new_id(), region=self.region), ec2_instance_id=ec2_id,
            instance_type=itype, availability_zone=availability_zone, registered_at=self.clock.now(),
            reserved_memory_mib=reserved_memory_mib, custom_attributes=attributes,
            capacity_provider_name=capacity_provider_name)
        with self.store.transaction() as tx:
            tx.put("container_instance", ci.container_instance_arn, ci)
            self._record(tx, INSTANCE_STATE_CHANGE, ci.container_instance_arn,
                         f"container instance {ci.instance_id} ({ec2_id}, {instance_type}, {availability_zone}) "
                         "registered ACTIVE", address=status.address)
        self.instance_index[ec2_id] = ci.container_instance_arn
        self.note_address(ec2_id, status.address)
        self.snapshot(cluster.cluster_name).add(slot_for(ci))
        return ci

    async def terminate_instance(self, container_instance_arn: str) -> None:
        """Terminate the EC2 instance: its tasks stop (SIGTERM, then SIGKILL after stopTimeout)."""
        ci = self._instance(container_instance_arn)
        now = self.clock.now()
        with self.store.transaction() as tx:
            ci.status = DRAINING  # no new tasks while it shuts down
            tx.put("container_instance", ci.container_instance_arn, ci)
            for task in self._tasks_on(ci):
                request_stop(task, reason_host_terminated(ci.ec2_instance_id), TERMINATION_NOTICE, now)
                tx.put("task", task.task_arn, task)
        snapshot = self.snapshot(_cluster_of(ci))
        with contextlib.suppress(KeyError):
            idx = snapshot.index_of(ci.container_instance_arn)
            snapshot.slots[idx].status = DRAINING
            snapshot.touch(idx)
        with contextlib.suppress(InstanceNotFound):
            await self.runtime.terminate_instance(ci.ec2_instance_id)
        self._instance_gone(self.store.get("container_instance", container_instance_arn))

    def _instance(self, arn: str) -> ContainerInstance:
        ci = self.store.get("container_instance", arn)
        if ci is None or ci.status == INACTIVE:
            raise InvalidParameterException(f"The container instance {arn} was not found.")
        return ci

    def _tasks_on(self, ci: ContainerInstance) -> list[Task]:
        return [t for t in tasks_on_instance(self.store, ci.container_instance_arn) if t.last_status != STOPPED]

    def _instance_gone(self, ci: ContainerInstance) -> None:
        """The instance no longer exists: its tasks are STOPPED and it is deregistered (INACTIVE)."""
        now = self.clock.now()
        cluster = _cluster_of(ci)
        with self.store.transaction() as tx:
            for task in self._tasks_on(ci):
                if task.desired_status != STOPPED:
                    request_stop(task, reason_host_terminated(ci.ec2_instance_id), TERMINATION_NOTICE, now)
                for c in task.containers:
                    c.last_status = STOPPED
                self._finish(tx, task, ci, release=False)
            ci.status, ci.agent_connected = INACTIVE, False
            ci.running_tasks_count = ci.pending_tasks_count = 0
            tx.put("container_instance", ci.container_instance_arn, ci)
            self._record(tx, INSTANCE_STATE_CHANGE, ci.container_instance_arn,
                         f"container instance {ci.instance_id} ({ci.ec2_instance_id}) deregistered: "
                         "the EC2 instance is gone")
        self.instance_index.pop(ci.ec2_instance_id, None)
        snapshot = self.snapshot(cluster)
        if any(s.arn == ci.container_instance_arn for s in snapshot.slots):
            snapshot.remove(ci.container_instance_arn)

    # --- tasks ----------------------------------------------------------------

    async def run_task(self, cluster_name: str, task_definition: str, count: int = 1, *, group: str | None = None,
                       constraints: Sequence[PlacementConstraint] = (),
                       strategies: Sequence[PlacementStrategy] = (),
                       started_by: str | None = None) -> tuple[list[Task], list[PlacementFailure]]:
        """ECS RunTask: place `count` tasks, create them PENDING, start them; failures as ECS reports them."""
        cluster = get_cluster(self.store, cluster_name, self.region)
        if not 1 <= count <= MAX_RUN_TASK_COUNT:
            raise InvalidParameterException(f"count must be between 1 and {MAX_RUN_TASK_COUNT}.")
        td = resolve_task_definition(self.store, task_definition, self.region)
        snapshot = self.snapshot(cluster.cluster_name)
        if not snapshot.slots:
            raise InvalidParameterException("No Container Instances were found in your cluster.")
        request = for_run_task(td, count, group=group, constraints=constraints, strategies=strategies)
        plan = place_tasks(snapshot, request, self.rng)
        tasks = self.create_tasks(cluster.cluster_arn, td, plan.placements, request.group, started_by)
        return tasks, plan.failures

    def create_tasks(self, cluster_arn: str, td: TaskDefinition, placements: Sequence[str], group: str,
                     started_by: str | None) -> list[Task]:
        """Tasks for placements the snapshot already accounts for: store them PENDING, then start them."""
        needs = TaskNeeds.of(td)
        now = self.clock.now()
        tasks = []
        with self.store.transaction() as tx:
            for instance_arn in placements:
                ci = self.store.get("container_instance", instance_arn)
                task = self._new_task(cluster_arn, td, ci, group, started_by, now)
                ci.remaining_resources = ci.remaining_resources.take(needs.cpu, needs.memory, needs.ports,
                                                                     needs.ports_udp)
                ci.pending_tasks_count += 1
                tx.put("container_instance", instance_arn, ci)
                tx.put("task", task.task_arn, task)
                self._record(tx, TASK_STATE_CHANGE, task.task_arn,
                             f"task {task.task_id} ({td.family_revision}) PENDING on container instance "
                             f"{ci.instance_id}", lastStatus=PENDING)
                self.task_index[task.task_id] = task.task_arn
                tasks.append(task)
        for task in tasks:
            self._spawn(self._start(task.task_arn))
        return tasks

    def create_provisioning_tasks(self, cluster_arn: str, td: TaskDefinition, count: int, group: str,
                                  started_by: str | None, capacity_provider_name: str) -> list[Task]:
        """Tasks no instance has room for yet, held in PROVISIONING until the capacity provider adds some."""
        now = self.clock.now()
        tasks = []
        with self.store.transaction() as tx:
            for _ in range(count):
                task = self._new_task(cluster_arn, td, None, group, started_by, now)
                task.last_status, task.capacity_provider_name = PROVISIONING, capacity_provider_name
                tx.put("task", task.task_arn, task)
                self._record(tx, TASK_STATE_CHANGE, task.task_arn,
                             f"task {task.task_id} ({td.family_revision}) PROVISIONING: waiting for capacity from "
                             f"capacity provider {capacity_provider_name}", lastStatus=PROVISIONING)
                self.task_index[task.task_id] = task.task_arn
                tasks.append(task)
        return tasks

    def place_provisioning_tasks(self, tasks: Sequence[Task], placements: Sequence[str]) -> list[Task]:
        """PROVISIONING tasks that now fit: onto their instances (the snapshot already took their room), PENDING."""
        now = self.clock.now()
        placed = []
        with self.store.transaction() as tx:
            for task, instance_arn in zip(tasks, placements):
                td = self.store.get("task_definition", task.task_definition_arn)
                needs = TaskNeeds.of(td)
                ci = self.store.get("container_instance", instance_arn)
                ci.remaining_resources = ci.remaining_resources.take(needs.cpu, needs.memory, needs.ports,
                                                                     needs.ports_udp)
                ci.pending_tasks_count += 1
                task.container_instance_arn, task.availability_zone = instance_arn, ci.availability_zone
                advance_task(task, PENDING, now)
                tx.put("container_instance", instance_arn, ci)
                tx.put("task", task.task_arn, task)
                self._record(tx, TASK_STATE_CHANGE, task.task_arn,
                             f"task {task.task_id} ({td.family_revision}) PENDING on container instance "
                             f"{ci.instance_id}", lastStatus=PENDING)
                placed.append(task)
        for task in placed:
            self._spawn(self._start(task.task_arn))
        return placed

    def _new_task(self, cluster_arn: str, td: TaskDefinition, ci: ContainerInstance | None, group: str,
                  started_by: str | None, now: float) -> Task:
        task_id = new_id()
        cluster = cluster_arn.rsplit("/", 1)[-1]
        arn = task_arn(cluster, task_id, region=self.region)
        containers = [Container(container_arn=container_arn(cluster, new_id(), region=self.region), task_arn=arn,
                                name=c.name or "", image=c.image or "", cpu=str(c.cpu),
                                memory=str(c.memory) if c.memory is not None else None,
                                memory_reservation=str(c.memory_reservation) if c.memory_reservation else None)
                      for c in td.container_definitions]
        return Task(task_arn=arn, cluster_arn=cluster_arn, task_definition_arn=td.task_definition_arn or "",
                    group=group, container_instance_arn=ci.container_instance_arn if ci else None,
                    containers=containers, cpu=str(td.required_cpu), memory=str(td.required_memory),
                    started_by=started_by, availability_zone=ci.availability_zone if ci else None, created_at=now,
                    capacity_provider_name=ci.capacity_provider_name if ci else None)

    async def _start(self, arn: str) -> None:
        task = self.store.get("task", arn)
        if task is None or task.last_status == STOPPED:
            return
        ci = self.store.get("container_instance", task.container_instance_arn)
        if task.desired_status == STOPPED:  # stopped before its containers were started
            with self.store.transaction() as tx:
                self._finish(tx, task, ci)
            return
        td = self.store.get("task_definition", task.task_definition_arn)
        spec = task_spec(task, td, ci, time_scale=self.clock.time_scale, cpu_scale=self.cpu_scale,
                         memory_scale=self.memory_scale)
        pull_started = self.clock.now()
        try:
            status = await self.runtime.run_task(spec)
        except (RuntimeFailure, InstanceNotFound) as exc:
            self._failed_to_start(arn, str(exc))
            return
        except Exception as exc:  # Docker unreachable, the instance vanishing mid-start, ...
            log.warning("task %s failed to start: %s", task.task_id, exc)
            self._failed_to_start(arn, f"{REASON_FAILED_TO_START}: {exc}")
            return
        task = self.store.get("task", arn)
        if task is None or task.last_status == STOPPED:
            return
        task.pull_started_at, task.pull_stopped_at = pull_started, self.clock.now()
        for cs in status.containers:
            self._apply_container(task, cs)
        with self.store.transaction() as tx:
            self._maybe_running(tx, task)
            tx.put("task", arn, task)
        if task.desired_status == STOPPED:  # a stop arrived while the containers were starting
            self._spawn(self._stop_containers(task))

    def _failed_to_start(self, arn: str, reason: str) -> None:
        task = self.store.get("task", arn)
        ci = self.store.get("container_instance", task.container_instance_arn)
        request_stop(task, reason, TASK_FAILED_TO_START, self.clock.now())
        for c in task.containers:
            c.last_status, c.reason = STOPPED, reason
        with self.store.transaction() as tx:
            self._finish(tx, task, ci)

    async def stop_task(self, arn: str, reason: str = REASON_USER, stop_code: str = USER_INITIATED) -> Task:
        """ECS StopTask: SIGTERM now, SIGKILL after each container's stopTimeout; STOPPED when all have exited."""
        task = self.store.get("task", arn)
        if task is None:
            raise InvalidParameterException("The referenced task was not found.")
        if task.last_status != STOPPED:
            self.request_stop_task(task, reason, stop_code)
        return task

    def request_stop_task(self, task: Task, reason: str, stop_code: str) -> None:
        """desiredStatus STOPPED now (in the store), the containers' stop in the background."""
        already = task.desired_status == STOPPED
        request_stop(task, reason, stop_code, self.clock.now())
        with self.store.transaction() as tx:
            tx.put("task", task.task_arn, task)
            if task.last_status == PROVISIONING:  # never placed: nothing to stop, nothing to give back
                for c in task.containers:
                    c.last_status = STOPPED
                self._finish(tx, task, None)
                return
        if not already and task.last_status != PENDING:
            self._spawn(self._stop_containers(task))

    async def _stop_containers(self, task: Task) -> None:
        if self.before_stop is not None and task.last_status == RUNNING:
            try:
                await self.before_stop(task)
            except Exception:  # draining is best effort; the stop itself must happen
                log.exception("draining task %s before its stop failed", task.task_id)
        ci = self.store.get("container_instance", task.container_instance_arn)
        try:
            await self.runtime.stop_task(ci.ec2_instance_id, task.task_id)
        except InstanceNotFound:
            pass

    # --- following the containers --------------------------------------------

    async def follow_events(self) -> None:
        """Apply the runtime's events to task and instance state, forever (one consumer)."""
        async for event in self.runtime.events():
            try:
                await self.handle_event(event)
            except Exception:
                log.exception("could not apply runtime event %s", event)

    async def handle_event(self, event: RuntimeEvent) -> None:
        if event.task_id is None:
            arn = self.instance_index.get(event.ec2_instance_id)
            if event.instance_state == "stopped" and arn:
                self._instance_gone(self.store.get("container_instance", arn))
            return
        arn = self.task_index.get(event.task_id)
        task = self.store.get("task", arn) if arn else None
        if task is None or task.last_status == STOPPED or event.container is None:
            return
        container = self._apply_container(task, event.container)
        ci = self.store.get("container_instance", task.container_instance_arn)
        with self.store.transaction() as tx:
            if container and container.last_status == STOPPED and task.desired_status != STOPPED:
                essential = self._is_essential(task, container.name)
                if essential:
                    request_stop(task, REASON_ESSENTIAL_EXITED, ESSENTIAL_CONTAINER_EXITED, self.clock.now())
                    self._spawn(self._stop_containers(task))
            if all(c.last_status == STOPPED for c in task.containers):
                self._finish(tx, task, ci)
            else:
                self._maybe_running(tx, task)
                tx.put("task", task.task_arn, task)
        if task.last_status == STOPPED:
            self._spawn(self._clean_up(task, ci))

    def _is_essential(self, task: Task, name: str) -> bool:
        td = self.store.get("task_definition", task.task_definition_arn)
        cd = td.container(name) if td else None
        return cd.essential if cd else True

    def _apply_container(self, task: Task, status: ContainerStatus) -> Container | None:
        container = next((c for c in task.containers if c.name == status.name), None)
        if container is None:
            return None
        container.runtime_id = status.runtime_id or container.runtime_id
        if status.state == "running" and container.last_status != STOPPED:
            container.last_status = RUNNING
        elif status.state == "exited":
            container.last_status = STOPPED
            container.exit_code = status.exit_code
            container.reason = status.reason or container.reason
        if status.health:
            container.health_status = {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY"}.get(status.health, "UNKNOWN")
        if status.network_bindings:
            container.network_bindings = [NetworkBinding("0.0.0.0", b.container_port, b.host_port, b.protocol)
                                          for b in status.network_bindings]
        task.health_status = self._task_health(task)
        return container

    def _task_health(self, task: Task) -> str:
        """HEALTHY only when every essential container with a health check is HEALTHY (ECS's rule)."""
        td = self.store.get("task_definition", task.task_definition_arn)
        checked = [c for c in task.containers
                   if td and (cd := td.container(c.name)) and cd.essential and cd.health_check]
        if not checked:
            return "UNKNOWN"
        if any(c.health_status == "UNHEALTHY" for c in checked):
            return "UNHEALTHY"
        return "HEALTHY" if all(c.health_status == "HEALTHY" for c in checked) else "UNKNOWN"

    def _maybe_running(self, tx, task: Task) -> None:
        if task.last_status != PENDING or task.desired_status == STOPPED:
            return
        if not all(c.last_status == RUNNING for c in task.containers):
            return
        advance_task(task, RUNNING, self.clock.now())
        ci = self.store.get("container_instance", task.container_instance_arn)
        ci.pending_tasks_count = max(0, ci.pending_tasks_count - 1)
        ci.running_tasks_count += 1
        tx.put("container_instance", ci.container_instance_arn, ci)
        self._record(tx, TASK_STATE_CHANGE, task.task_arn, f"task {task.task_id} RUNNING", lastStatus=RUNNING)

    def _finish(self, tx, task: Task, ci: ContainerInstance | None, *, release: bool = True) -> None:
        """STOPPED: the task gives its resources back (unless its instance is gone with them)."""
        was = task.last_status
        advance_task(task, STOPPED, self.clock.now())
        if task.stopped_reason is None:
            task.stopped_reason, task.stop_code = REASON_ESSENTIAL_EXITED, ESSENTIAL_CONTAINER_EXITED
        tx.put("task", task.task_arn, task)
        self._record(tx, TASK_STATE_CHANGE, task.task_arn,
                     f"task {task.task_id} STOPPED: {task.stopped_reason}", lastStatus=STOPPED,
                     stopCode=task.stop_code)
        if ci is None or not release:
            return
        td = self.store.get("task_definition", task.task_definition_arn)
        needs = TaskNeeds.of(td)
        ci.remaining_resources = ci.remaining_resources.give_back(needs.cpu, needs.memory, needs.ports,
                                                                  needs.ports_udp)
        if was == RUNNING:
            ci.running_tasks_count = max(0, ci.running_tasks_count - 1)
        else:
            ci.pending_tasks_count = max(0, ci.pending_tasks_count - 1)
        tx.put("container_instance", ci.container_instance_arn, ci)
        snapshot = self.snapshot(_cluster_of(ci))
        try:
            snapshot.give_back(snapshot.index_of(ci.container_instance_arn), task.group, needs)
        except KeyError:
            pass

    async def _clean_up(self, task: Task, ci: ContainerInstance | None) -> None:
        """Keep the stopped task's output in its log stream, then remove its containers."""
        if ci is None or ci.status == INACTIVE:
            return
        td = self.store.get("task_definition", task.task_definition_arn)
        spec = task_spec(task, td, ci, time_scale=self.clock.time_scale)
        try:
            for c in spec.containers:
                if c.log_group:
                    text = await self.runtime.task_logs(ci.ec2_instance_id, task.task_id, c.name)
                    self.logs.write(c.log_group, c.log_stream or task.task_id, text)
            await self.runtime.remove_task(ci.ec2_instance_id, task.task_id)
        except (InstanceNotFound, RuntimeFailure):
            pass


def _cluster_of(ci: ContainerInstance) -> str:
    return ci.container_instance_arn.split("/")[1]


