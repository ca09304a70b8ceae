"""FakeRuntime: the runtime contract kept in memory, for unit tests and `ecsemu simulate`.

It obeys the same contract suite as the Docker runtime (tests/contract/), so
control loops tested on it behave the same on real containers. It must stay
cheap at simulation scale (1,000 instances, 10,000 tasks): every call touches
one instance's dicts, never a scan of everything, and nothing sleeps.

What is simulated, and how it differs from Docker:
- Instances are running as soon as `launch_instance` returns (unless a
  `launch_delay` hook waits first). Their `address` ("10.99.x.y") is a label
  only: nothing listens there and nothing may ever send traffic to it.
- Containers start at once in "running", with ECS's health "starting" when
  they have a health check. Stopping is instant and graceful (exit code 0);
  stopTimeout is not waited for.
- Images: by default every reference exists except names containing
  "does-not-exist"; `images=` / `add_image` / `remove_image` change that.
- Host ports: static ones as asked, dynamic ones from ECS's ephemeral range
  (49153-65535, skipping ECS's reserved ports), handed out round-robin per
  instance as Docker does; a port already bound fails the task with Docker's
  wording, and nothing of the task is left behind.
- Logs: each container "prints" one start-up line; `write_log` adds more.
  Logs outlive `remove_task` and `terminate_instance`, as awslogs output does.
- Usage (`task_usage`): each task uses what `set_usage` last said, in the
  instance type's terms, and reports it scaled by the task's resource scales
  as the Docker runtime's real readings are. Until told otherwise a task
  idles (0.2% of a vCPU, 32 MiB). CPU seconds accumulate on the `clock`
  given to the runtime (default `time.monotonic`), which is also the
  `sampled_at_monotonic` it reports, and stop when the task's containers exit.

Test knobs (not part of the `Runtime` protocol): `kill_container`,
`kill_instance`, `set_health`, `set_usage`, `write_log`, `add_image`,
`remove_image`, `image_exists`, `drain_events`, and the `launch_delay` hook.
For simulations at scale: `begin_usage_round` / `repeat_usage_round` (the same
set_usage calls again, for every task at once, applied lazily),
`task_usage_values` (task_usage as plain tuples) and `probe_now` (http_probe,
synchronously); `http_probe` and `task_usage` never wait, and say so with an
`answers_at_once` attribute that lets callers skip a task per call.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from ..model.container_instance import DEFAULT_RESERVED_PORTS, DYNAMIC_PORT_RANGE
from .base import (
    CannotPullContainerError,
    CannotStartContainerError,
    ContainerSpec,
    ContainerStatus,
    InstanceNotFound,
    InstanceSpec,
    InstanceStatus,
    PortMappingSpec,
    RuntimeEvent,
    RuntimeFailure,
    TaskSpec,
    TaskStatus,
    TaskUsage,
)

MISSING_IMAGE_MARKER = "does-not-exist"
HEALTH_VALUES = ("healthy", "unhealthy")
KILLED_EXIT_CODE = 137    # SIGKILL: what Docker reports for a container killed from outside
STOPPED_EXIT_CODE = 0     # the sample app drains and exits 0 on SIGTERM
IDLE_VCPUS = 0.002        # what a task uses until `set_usage` says otherwise (in the instance type's vCPUs)
IDLE_MEMORY_MIB = 32.0
MIB = 1 << 20

LaunchDelay = Callable[[InstanceSpec], Awaitable[None]]


@dataclass
class _Task:
    spec: TaskSpec
    containers: dict[str, ContainerStatus]   # by container name, in the task definition's order
    # Usage, real (already scaled): CPU seconds = cpu_base + cpu_rate x (clock - cpu_base_at).
    cpu_base: float = 0.0
    cpu_base_at: float = 0.0
    cpu_rate: float = 0.0
    memory_bytes: int = 0
    live: int = 0   # how many of its containers are running (kept by run_task and _exit)
    # What `repeat_usage_round` replays, lazily: the round of its last set_usage (shared by the round's
    # tasks) and how many of that round's repeats it has applied.
    usage_round: _UsageRound | None = None
    repeats_seen: int = 0

    def catch_up(self) -> None:
        """Apply the repeats of its usage round it has not seen yet, as the set_usage calls they stand for
        would have: each rebases the CPU counter at its time, with the same rate."""
        usage_round = self.usage_round
        if usage_round is None:
            return
        times, seen = usage_round.times, self.repeats_seen
        end = len(times)
        if seen == end:
            return
        rate, base, base_at = self.cpu_rate, self.cpu_base, self.cpu_base_at
        at = times[seen]
        gap = at - base_at
        base, base_at = base + rate * (gap if gap > 0.0 else 0.0), at   # max(0.0, gap), as cpu_seconds does
        seen += 1
        if seen < end:
            if seen - 1 >= usage_round.even_from and usage_round.gap > 0.0:
                # the rest come one `gap` after another: the same rebase, the same addition each time
                step = rate * usage_round.gap
                for _ in range(end - seen):
                    base = base + step
                base_at = times[end - 1]
            else:
                for at in times[seen:end]:
                    gap = at - base_at
                    base, base_at = base + rate * (gap if gap > 0.0 else 0.0), at
        self.cpu_base, self.cpu_base_at, self.repeats_seen = base, base_at, end

    def cpu_seconds(self, now: float) -> float:
        self.catch_up()
        return self.cpu_base + self.cpu_rate * max(0.0, now - self.cpu_base_at)

    def set_cpu_rate(self, rate: float, now: float) -> None:
        self.cpu_base, self.cpu_base_at, self.cpu_rate = self.cpu_seconds(now), now, rate

    @property
    def running(self) -> bool:
        return self.live > 0


class _UsageRound:
    """The times one round of set_usage calls was repeated, and from which one on they are evenly spaced."""

    __slots__ = ("times", "gap", "even_from")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.gap = 0.0        # the time between the repeats from `even_from` on
        self.even_from = 0    # times[j] - times[j - 1] == gap for every j > even_from

    def repeat(self, at: float) -> None:
        times = self.times
        if times:
            gap = at - times[-1]
            if gap != self.gap or len(times) == 1:
                self.gap, self.even_from = gap, len(times) - 1
        times.append(at)


@dataclass
class _Instance:
    spec: InstanceSpec
    status: InstanceStatus
    next_dynamic_port: int
    tasks: dict[str, _Task] = field(default_factory=dict)
    bound_ports: set[tuple[str, int]] = field(default_factory=set)   # (protocol, host port) of running containers
    # host port -> the running containers published on it, in the order http_probe would find them
    # (with whether START_UNHEALTHY is set in their environment)
    listening: dict[int, list[tuple[ContainerStatus, bool]]] = field(default_factory=dict)


_CLOSED = object()


class _EventStream:
    """Reads the runtime's queue; cancelling a wait loses no event (unlike an async generator)."""

    def __init__(self, queue: asyncio.Queue) -> None:
        self._queue = queue

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> RuntimeEvent:
        event = await self._queue.get()
        if event is _CLOSED:
            self._queue.put_nowait(_CLOSED)   # every later reader stops too
            raise StopAsyncIteration
        return event


class FakeRuntime:
    """The `Runtime` protocol in memory. See the module docstring for what it simulates."""

    def __init__(self, images: Iterable[str] | None = None, *, rng: random.Random | None = None,
                 launch_delay: LaunchDelay | None = None, behave_like_sample_app: bool = False,
                 clock: Callable[[], float] | None = None) -> None:
        # images=None: everything exists but MISSING_IMAGE_MARKER names; else exactly `images`.
        self._any_image = images is None
        self._images = {_normalize(i) for i in images or ()}
        self._missing: set[str] = set()
        self._rng = rng or random.Random()
        # Awaited before an instance registers, e.g. `lambda spec: clock.sleep(90)` on a FakeClock.
        self.launch_delay = launch_delay
        # Containers act as the sample app would: health checks pass at once (or fail with
        # START_UNHEALTHY=1), EXIT_ON_START=N exits at once. For the emulator process and simulations.
        self.behave_like_sample_app = behave_like_sample_app
        self._instances: dict[str, _Instance] = {}
        self._by_cluster: dict[str, dict[str, _Instance]] = {}
        self._by_address: dict[str, list[_Instance]] = {}   # what http_probe looks up (launch order)
        self._launching: set[str] = set()
        self._logs: dict[str, dict[tuple[str, str], list[str]]] = {}   # instance -> (task, container) -> lines
        self._launched = 0
        self._queue: asyncio.Queue = asyncio.Queue()
        self._closed = False
        self._usage_round = _UsageRound()   # the set_usage calls repeat_usage_round repeats
        # Seconds on which task CPU accumulates (usage only), e.g. a simulation's clock.
        self.usage_clock = clock or time.monotonic

    # --- images ---------------------------------------------------------------

    def image_exists(self, image: str) -> bool:
        ref = _normalize(image)
        if ref in self._missing:
            return False
        return ref in self._images or (self._any_image and MISSING_IMAGE_MARKER not in ref)

    def add_image(self, image: str) -> None:
        """Make `image` exist (as if pushed to the cluster's image store)."""
        ref = _normalize(image)
        self._missing.discard(ref)
        self._images.add(ref)

    def remove_image(self, image: str) -> None:
        """Make `image` missing: tasks naming it fail with CannotPullContainerError."""
        ref = _normalize(image)
        self._images.discard(ref)
        self._missing.add(ref)

    # --- instances ------------------------------------------------------------

    async def launch_instance(self, spec: InstanceSpec) -> InstanceStatus:
        self._check_open()
        instance_id = spec.ec2_instance_id
        if instance_id in self._instances or instance_id in self._launching:
            raise ValueError(f"instance {instance_id} already exists")
        self._launching.add(instance_id)
        try:
            if self.launch_delay is not None:
                await self.launch_delay(spec)
            self._check_open()
        finally:
            self._launching.discard(instance_id)
        status = InstanceStatus(
            ec2_instance_id=instance_id, cluster=spec.cluster, instance_type=spec.instance_type.name,
            availability_zone=spec.availability_zone, state="running",
            address=self._next_address(), runtime_id=self._new_id())
        instance = _Instance(spec, status, next_dynamic_port=DYNAMIC_PORT_RANGE[0])
        self._instances[instance_id] = instance
        self._by_cluster.setdefault(spec.cluster, {})[instance_id] = instance
        self._by_address.setdefault(status.address, []).append(instance)
        self._logs.setdefault(instance_id, {})
        self._emit(RuntimeEvent(instance_id, instance_state="running"))
        return replace(status)

    async def terminate_instance(self, ec2_instance_id: str, *, stop_timeout_s: float = 30) -> None:
        instance = self._instance(ec2_instance_id)
        was_running = instance.status.state == "running"
        for task in instance.tasks.values():
            self._exit_running(instance, task, STOPPED_EXIT_CODE, None)
        self._forget(instance)
        if was_running:
            self._emit(RuntimeEvent(ec2_instance_id, instance_state="stopped"))

    async def list_instances(self, cluster: str | None = None) -> list[InstanceStatus]:
        instances = self._instances if cluster is None else self._by_cluster.get(cluster, {})
        return [replace(i.status) for i in instances.values()]

    # --- tasks ----------------------------------------------------------------

    async def run_task(self, spec: TaskSpec) -> TaskStatus:
        """Start every container at once; a failure (image, port) leaves nothing behind."""
        self._check_open()
        instance = self._running_instance(spec.ec2_instance_id)
        if spec.task_id in instance.tasks:
            raise ValueError(f"task {spec.task_id} already exists on instance {spec.ec2_instance_id}")
        names = [c.name for c in spec.containers]
        if len(set(names)) != len(names):
            raise ValueError(f"task {spec.task_id} names a container twice: {names}")
        for container in spec.containers:
            if not self.image_exists(container.image):
                raise CannotPullContainerError(container.image, f"{_normalize(container.image)}: not found")
        bindings, next_port = self._plan_bindings(instance, spec)
        instance.next_dynamic_port = next_port
        task = _Task(spec, {}, cpu_base_at=self.usage_clock(), cpu_rate=IDLE_VCPUS * spec.cpu_scale,
                     memory_bytes=int(IDLE_MEMORY_MIB * MIB * spec.memory_scale))
        logs = self._logs[spec.ec2_instance_id]
        for container, ports in zip(spec.containers, bindings):
            status = ContainerStatus(
                name=container.name, state="running", runtime_id=self._new_id(),
                health="starting" if container.health_check else None, network_bindings=ports)
            task.containers[container.name] = status
            task.live += 1
            instance.bound_ports.update((p.protocol, p.host_port) for p in ports)
            starts_unhealthy = _starts_unhealthy(container)
            for p in ports:
                instance.listening.setdefault(p.host_port, []).append((status, starts_unhealthy))
            logs[(spec.task_id, container.name)] = [_start_line(spec, container, ports)]
        instance.tasks[spec.task_id] = task
        for status in task.containers.values():
            self._emit_container(instance, task, status)
        if self.behave_like_sample_app:
            self._sample_app_start(instance, task, spec)
        return _task_status(task)

    def _sample_app_start(self, instance: _Instance, task: _Task, spec: TaskSpec) -> None:
        """What the sample app does right after it starts: exit (EXIT_ON_START), or pass or fail its
        health check (START_UNHEALTHY); the events follow the running event, as Docker's would."""
        for container in spec.containers:
            status = task.containers[container.name]
            env = dict(container.environment)
            if env.get("EXIT_ON_START"):
                self._exit(instance, task, status, int(env["EXIT_ON_START"]), None)
            elif status.health is not None:
                status.health = "unhealthy" if env.get("START_UNHEALTHY") in ("1", "true") else "healthy"
                self._emit_container(instance, task, status)

    async def stop_task(self, ec2_instance_id: str, task_id: str) -> None:
        """Every running container exits 0 at once; an unknown or stopped task is a no-op."""
        instance = self._instance(ec2_instance_id)
        task = instance.tasks.get(task_id)
        if task is not None:
            self._exit_running(instance, task, STOPPED_EXIT_CODE, None)

    async def remove_task(self, ec2_instance_id: str, task_id: str) -> None:
        """Forget a stopped task (its logs stay); an unknown task is a no-op."""
        instance = self._instance(ec2_instance_id)
        task = instance.tasks.get(task_id)
        if task is None:
            return
        running = [c.name for c in task.containers.values() if c.state == "running"]
        if running:
            raise RuntimeFailure(f"task {task_id} still has running containers {running}: stop it first")
        del instance.tasks[task_id]

    async def list_tasks(self, ec2_instance_id: str) -> list[TaskStatus]:
        return [_task_status(t) for t in self._instance(ec2_instance_id).tasks.values()]

    async def task_usage(self, ec2_instance_id: str) -> list[TaskUsage]:
        """Counters of the instance's tasks that have a running container (see `set_usage`)."""
        instance = self._instance(ec2_instance_id)
        now = self.usage_clock()
        return [TaskUsage(t.spec.task_id, t.cpu_seconds(now), t.memory_bytes, now)
                for t in instance.tasks.values() if t.running]

    task_usage.answers_at_once = True  # type: ignore[attr-defined]  # never waits: callers may skip gather()

    def task_usage_values(self, ec2_instance_id: str) -> list[tuple[str, float, int, float]]:
        """`task_usage` as plain (task id, CPU seconds, memory bytes, sampled at) tuples, synchronously:
        what a metrics collector reads 10,000 of every sampling."""
        instance = self._instance(ec2_instance_id)
        now = self.usage_clock()
        values = []
        for t in instance.tasks.values():
            if t.live > 0:
                if t.usage_round is not None and t.repeats_seen != len(t.usage_round.times):
                    t.catch_up()
                gap = now - t.cpu_base_at   # t.cpu_seconds(now), without the calls
                values.append((t.spec.task_id, t.cpu_base + t.cpu_rate * (gap if gap > 0.0 else 0.0),
                               t.memory_bytes, now))
        return values

    async def task_logs(self, ec2_instance_id: str, task_id: str, container: str) -> str:
        """What the container printed; "" for a container that never ran here."""
        logs = self._logs.get(ec2_instance_id)
        if logs is None:
            raise InstanceNotFound(f"instance {ec2_instance_id} not found")
        lines = logs.get((task_id, container), [])
        return "".join(f"{line}\n" for line in lines)

    # --- events ---------------------------------------------------------------

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """Every change, in order, from one queue: give it one consumer."""
        return _EventStream(self._queue)

    def drain_events(self) -> list[RuntimeEvent]:
        """Knob: take every event queued so far without waiting (tests and simulations)."""
        events = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is _CLOSED:
                self._queue.put_nowait(_CLOSED)
                break
            events.append(event)
        return events

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_CLOSED)

    # --- test knobs -----------------------------------------------------------

    def kill_container(self, ec2_instance_id: str, task_id: str, name: str,
                       exit_code: int = KILLED_EXIT_CODE, reason: str | None = None) -> None:
        """A running container dies from outside (OOM kill, `docker kill`, a crash)."""
        instance = self._instance(ec2_instance_id)
        task, status = self._container(instance, task_id, name)
        if status.state != "running":
            raise ValueError(f"container {name} of task {task_id} is not running ({status.state})")
        self._exit(instance, task, status, exit_code, reason)

    def kill_instance(self, ec2_instance_id: str, *, remove: bool = False) -> None:
        """The instance dies: its containers exit 137, then an instance event "stopped".

        It stays listed as "stopped" (with its exited tasks) until
        `terminate_instance` cleans it up; `remove=True` makes it vanish at once,
        as if its container had been removed from outside.
        """
        instance = self._instance(ec2_instance_id)
        if instance.status.state == "running":
            for task in instance.tasks.values():
                self._exit_running(instance, task, KILLED_EXIT_CODE, None)
            instance.status.state = "stopped"
            self._emit(RuntimeEvent(ec2_instance_id, instance_state="stopped"))
        if remove:
            self._forget(instance)

    def set_health(self, ec2_instance_id: str, task_id: str, name: str, health: str) -> None:
        """The container's health check now reports `health` ("healthy" or "unhealthy")."""
        if health not in HEALTH_VALUES:
            raise ValueError(f"health must be one of {HEALTH_VALUES}, not {health!r}")
        instance = self._instance(ec2_instance_id)
        task, status = self._container(instance, task_id, name)
        if status.health is None:
            raise ValueError(f"container {name} of task {task_id} has no health check")
        if status.state != "running":
            raise ValueError(f"container {name} of task {task_id} is not running ({status.state})")
        if status.health != health:
            status.health = health
            self._emit_container(instance, task, status)

    def set_usage(self, ec2_instance_id: str, task_id: str, cpu_fraction_of_reserved: float | None = None,
                  memory_mib: float | None = None, cpu_seconds_per_second: float | None = None) -> None:
        """From now on the task uses this much; what is not given stays as it was.

        In the instance type's terms, as ECS would measure on a real EC2
        instance: `cpu_fraction_of_reserved` 0.5 is half the CPU units the task
        reserves (1.0: all of them; above 1 when it borrows idle CPU);
        `cpu_seconds_per_second` is vCPUs busy (1.0: one whole vCPU);
        `memory_mib` is memory in use. `task_usage` reports them times the
        task's resource scales, as real readings are. A task whose containers
        have exited keeps its counters; setting its usage changes nothing.
        """
        if cpu_fraction_of_reserved is not None and cpu_seconds_per_second is not None:
            raise ValueError("give cpu_fraction_of_reserved or cpu_seconds_per_second, not both")
        for name, value in (("cpu_fraction_of_reserved", cpu_fraction_of_reserved), ("memory_mib", memory_mib),
                            ("cpu_seconds_per_second", cpu_seconds_per_second)):
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        instance = self._instance(ec2_instance_id)
        task = instance.tasks.get(task_id)
        if task is None:
            raise ValueError(f"no task {task_id} on {ec2_instance_id}")
        if not task.running:
            return
        spec = task.spec
        if cpu_fraction_of_reserved is not None:
            units = spec.reserved_cpu_units
            if units <= 0:
                raise ValueError(f"task {task_id} reserves no CPU units: give cpu_seconds_per_second instead")
            cpu_seconds_per_second = cpu_fraction_of_reserved * units / 1024
        if cpu_seconds_per_second is not None:
            task.set_cpu_rate(cpu_seconds_per_second * spec.cpu_scale, self.usage_clock())
            task.usage_round, task.repeats_seen = self._usage_round, len(self._usage_round.times)
        if memory_mib is not None:
            task.memory_bytes = int(memory_mib * MIB * spec.memory_scale)

    def begin_usage_round(self) -> None:
        """Knob for simulations: the `set_usage` calls from now on make a new round (see repeat_usage_round)."""
        self._usage_round = _UsageRound()

    def repeat_usage_round(self) -> None:
        """Knob for simulations: as if every `set_usage` call of the current round were made again now, with
        the same arguments (a task whose containers have exited since is left alone, as set_usage would).

        A simulation whose traffic has not changed calls this instead of one set_usage per task: the
        counters read the same, to the last bit, and the cost is paid lazily, per task, when it is read."""
        self._usage_round.repeat(self.usage_clock())

    async def http_probe(self, host: str, port: int, path: str, timeout: float) -> int:
        """What an HTTP GET to (instance address, host port) would answer, without a socket.

        The ALB's health checks use this on the in-memory runtime, whose addresses
        are labels: 200 from a running container published on that port, 503
        while its container health check (or START_UNHEALTHY) says unhealthy, and
        a refused connection when nothing listens there. It answers at once (it
        never waits), so a health checker may run many of these in one go.
        """
        return self.probe_now(host, port)

    http_probe.answers_at_once = True  # type: ignore[attr-defined]

    def probe_now(self, host: str, port: int) -> int:
        """`http_probe`'s answer, synchronously: only what listens on that address and port is looked at
        (the first running container published there, in start order)."""
        for instance in self._by_address.get(host, ()):
            if instance.status.state != "running":
                continue
            for status, starts_unhealthy in instance.listening.get(port, ()):
                if status.state != "running":
                    continue
                unhealthy = status.health == "unhealthy" or (self.behave_like_sample_app and starts_unhealthy)
                return 503 if unhealthy else 200
        raise ConnectionRefusedError(f"nothing listens on {host}:{port}")

    def write_log(self, ec2_instance_id: str, task_id: str, name: str, text: str) -> None:
        """The container's app prints `text` (one or more lines)."""
        logs = self._logs.get(ec2_instance_id, {}).get((task_id, name))
        if logs is None:
            raise ValueError(f"no container {name} of task {task_id} ever ran on {ec2_instance_id}")
        logs.extend(text.splitlines() or [""])

    # --- internals ------------------------------------------------------------

    def _plan_bindings(self, instance: _Instance, spec: TaskSpec) -> tuple[list[tuple[PortMappingSpec, ...]], int]:
        """Host ports for every container, or a RuntimeFailure; changes nothing."""
        bound, pending = instance.bound_ports, set()   # no copy: tasks stay O(their own ports)
        cursor = instance.next_dynamic_port
        planned = []
        for container in spec.containers:
            ports = []
            for mapping in _effective_mappings(spec.network_mode, container.port_mappings):
                if mapping.host_port:
                    port = mapping.host_port
                    if (mapping.protocol, port) in bound or (mapping.protocol, port) in pending:
                        raise CannotStartContainerError(_bind_error(container.name, f"Bind for 0.0.0.0:{port} failed: "
                                                                         "port is already allocated"))
                else:
                    port, cursor = _pick_dynamic_port(mapping.protocol, (bound, pending), cursor, container.name)
                pending.add((mapping.protocol, port))
                ports.append(PortMappingSpec(mapping.container_port, port, mapping.protocol))
            planned.append(tuple(ports))
        return planned, cursor

    def _exit_running(self, instance: _Instance, task: _Task, exit_code: int, reason: str | None) -> None:
        for status in task.containers.values():
            if status.state == "running":
                self._exit(instance, task, status, exit_code, reason)

    def _exit(self, instance: _Instance, task: _Task, status: ContainerStatus,
              exit_code: int, reason: str | None) -> None:
        if status.state == "running":
            task.live -= 1
        status.state, status.exit_code, status.reason = "exited", exit_code, reason
        if not task.running:   # its last container: the CPU counter stops where it is
            task.set_cpu_rate(0.0, self.usage_clock())
        instance.bound_ports.difference_update((p.protocol, p.host_port) for p in status.network_bindings)
        for p in status.network_bindings:
            listeners = instance.listening.get(p.host_port)
            if listeners is not None:
                listeners[:] = [entry for entry in listeners if entry[0] is not status]
                if not listeners:
                    del instance.listening[p.host_port]
        self._emit_container(instance, task, status)

    def _emit_container(self, instance: _Instance, task: _Task, status: ContainerStatus) -> None:
        self._emit(RuntimeEvent(instance.status.ec2_instance_id, task.spec.task_id, container=replace(status)))

    def _emit(self, event: RuntimeEvent) -> None:
        self._queue.put_nowait(event)

    def _forget(self, instance: _Instance) -> None:
        instance_id = instance.status.ec2_instance_id
        del self._instances[instance_id]
        cluster = self._by_cluster[instance.spec.cluster]
        del cluster[instance_id]
        if not cluster:
            del self._by_cluster[instance.spec.cluster]
        others = [i for i in self._by_address.get(instance.status.address, []) if i is not instance]
        if others:
            self._by_address[instance.status.address] = others
        else:
            self._by_address.pop(instance.status.address, None)

    def _instance(self, ec2_instance_id: str) -> _Instance:
        try:
            return self._instances[ec2_instance_id]
        except KeyError:
            raise InstanceNotFound(f"instance {ec2_instance_id} not found") from None

    def _running_instance(self, ec2_instance_id: str) -> _Instance:
        instance = self._instance(ec2_instance_id)
        if instance.status.state != "running":
            raise RuntimeFailure(f"instance {ec2_instance_id} is {instance.status.state}: it cannot run tasks")
        return instance

    def _container(self, instance: _Instance, task_id: str, name: str) -> tuple[_Task, ContainerStatus]:
        task = instance.tasks.get(task_id)
        if task is None or name not in task.containers:
            raise ValueError(f"no container {name} of task {task_id} on {instance.status.ec2_instance_id}")
        return task, task.containers[name]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeFailure("the runtime is closed")

    def _next_address(self) -> str:
        # A label, never a network target (PLATFORM.md: never guess or sweep addresses).
        n = self._launched
        self._launched += 1
        return f"10.99.{n // 254 % 256}.{n % 254 + 1}"

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(256):064x}"


def _starts_unhealthy(spec: ContainerSpec) -> bool:
    return dict(spec.environment).get("START_UNHEALTHY") in ("1", "true")


def _effective_mappings(network_mode: str, mappings: tuple[PortMappingSpec, ...]) -> tuple[PortMappingSpec, ...]:
    """Bridge: as asked; host: the container port itself; awsvpc/none: no host binding here."""
    if network_mode == "bridge":
        return mappings
    if network_mode == "host":
        return tuple(PortMappingSpec(m.container_port, m.container_port, m.protocol) for m in mappings)
    return ()


def _pick_dynamic_port(protocol: str, taken: tuple[set[tuple[str, int]], ...], cursor: int,
                       container: str) -> tuple[int, int]:
    """The next free port from `cursor`, wrapping round the range; returns (port, next cursor)."""
    low, high = DYNAMIC_PORT_RANGE
    for _ in range(high - low + 1):
        port, cursor = cursor, (low if cursor >= high else cursor + 1)
        if port not in DEFAULT_RESERVED_PORTS and not any((protocol, port) in ports for ports in taken):
            return port, cursor
    raise CannotStartContainerError(_bind_error(container, "Bind for 0.0.0.0:0 failed: all ports are allocated"))


def _bind_error(container: str, detail: str) -> str:
    return ("CannotStartContainerError: Error response from daemon: driver failed programming external "
            f"connectivity on endpoint {container}: {detail}")


def _start_line(spec: TaskSpec, container: ContainerSpec, ports: tuple[PortMappingSpec, ...]) -> str:
    listening = ", ".join(f"{p.container_port}/{p.protocol}" for p in ports) or "no ports"
    return (f"[fake runtime] {container.image} started as container {container.name} "
            f"of task {spec.task_id}; listening on {listening}")


def _task_status(task: _Task) -> TaskStatus:
    return TaskStatus(task.spec.task_id, task.spec.task_arn, task.spec.ec2_instance_id,
                      [replace(c) for c in task.containers.values()])


def _normalize(image: str) -> str:
    """`name` means `name:latest`, as Docker reads it."""
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in image else f"{image}:latest"
