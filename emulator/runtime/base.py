"""The runtime contract: launch and terminate instances, run and stop tasks, report what happens.

Everything here is data the control loops understand in ECS's terms; how a
runtime makes it real is its own business. Both implementations obey the
same contract test suite (tests/contract/), which keeps the fake honest.

Times are not reported: the caller stamps events with its clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from ..model.instance_types import InstanceType

# Labels on everything a runtime creates: they are the truth of what exists,
# so listing by label rebuilds the picture after a restart.
LABEL_PREFIX = "io.ecsemu"
LABEL_OWNER = f"{LABEL_PREFIX}.owner"          # the emulator installation (its state directory)
LABEL_CLUSTER = f"{LABEL_PREFIX}.cluster"
LABEL_INSTANCE = f"{LABEL_PREFIX}.ec2-instance-id"
LABEL_INSTANCE_TYPE = f"{LABEL_PREFIX}.instance-type"
LABEL_AZ = f"{LABEL_PREFIX}.availability-zone"
LABEL_TASK = f"{LABEL_PREFIX}.task-id"
LABEL_TASK_ARN = f"{LABEL_PREFIX}.task-arn"
LABEL_CONTAINER = f"{LABEL_PREFIX}.container-name"
LABEL_ROLE = f"{LABEL_PREFIX}.role"            # "instance" | "task" | "image"


class RuntimeFailure(Exception):
    """A runtime failure with ECS's words (e.g. `CannotPullContainerError: ...`)."""


class CannotPullContainerError(RuntimeFailure):
    def __init__(self, image: str, detail: str) -> None:
        super().__init__(f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                         f"failed to resolve ref {image}: {detail}")
        self.image = image


class CannotStartContainerError(RuntimeFailure):
    """Docker refused to start a container (a host port already allocated, a bad command, ...)."""


class InstanceNotFound(RuntimeFailure):
    """Every per-instance call raises it for an instance that isn't running (or never was)."""


@dataclass(frozen=True)
class InstanceSpec:
    """What to launch: an EC2 instance of a type, in an AZ, with its share of the real machine."""

    cluster: str
    ec2_instance_id: str
    instance_type: InstanceType
    availability_zone: str
    cpu_scale: float = 0.25      # fraction of the type's vCPUs the container really gets
    memory_scale: float = 0.25   # fraction of the type's memory the container really gets

    @property
    def real_cpus(self) -> float:
        return self.instance_type.vcpus * self.cpu_scale

    @property
    def real_memory_mib(self) -> int:
        return int(self.instance_type.memory_mib * self.memory_scale)


@dataclass
class InstanceStatus:
    ec2_instance_id: str
    cluster: str
    instance_type: str
    availability_zone: str
    state: str                    # "running" | "stopped" (gone or dead)
    address: str | None = None    # where the host reaches the instance's published ports
    runtime_id: str | None = None


@dataclass(frozen=True)
class PortMappingSpec:
    container_port: int
    host_port: int = 0            # 0: the runtime picks a free host port
    protocol: str = "tcp"


@dataclass(frozen=True)
class HealthCheckSpec:
    command: tuple[str, ...]      # ECS form: ("CMD-SHELL", "curl ...") or ("CMD", "x", "y")
    interval_s: float = 30
    timeout_s: float = 5
    retries: int = 3
    start_period_s: float = 0


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    cpu_shares: int = 0                       # ECS container cpu units; 0 -> Docker's minimum (2)
    memory_mib: int | None = None             # hard limit
    memory_reservation_mib: int | None = None # soft limit
    port_mappings: tuple[PortMappingSpec, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] | None = None
    entry_point: tuple[str, ...] | None = None
    health_check: HealthCheckSpec | None = None
    essential: bool = True
    stop_timeout_s: int = 30
    log_group: str | None = None
    log_stream: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    cluster: str
    task_id: str
    task_arn: str
    ec2_instance_id: str
    containers: tuple[ContainerSpec, ...]
    network_mode: str = "bridge"
    cpu_scale: float = 0.25                   # real CPU per nominal unit, as the instance's
    memory_scale: float = 0.25
    cpu_units: int | None = None              # task-level cpu (ECS units); None: the containers' sum

    @property
    def reserved_cpu_units(self) -> int:
        """The CPU units ECS reserves for the task: task-level cpu, else the containers' sum."""
        return self.cpu_units if self.cpu_units is not None else sum(c.cpu_shares for c in self.containers)


@dataclass
class ContainerStatus:
    name: str
    state: str                                # "created" | "running" | "exited"
    runtime_id: str | None = None
    exit_code: int | None = None
    health: str | None = None                 # "starting" | "healthy" | "unhealthy" | None (no check)
    reason: str | None = None                 # e.g. "OutOfMemoryError: Container killed due to memory usage"
    network_bindings: tuple[PortMappingSpec, ...] = ()


@dataclass
class TaskStatus:
    task_id: str
    task_arn: str
    ec2_instance_id: str
    containers: list[ContainerStatus] = field(default_factory=list)


@dataclass(frozen=True)
class TaskUsage:
    """One reading of a running task's counters, summed over its containers.

    Real figures, as the machine measured them (not scaled back to the
    instance type): the metrics layer divides by the resource scales.
    """

    task_id: str
    cpu_seconds_total: float      # cumulative CPU time of all the task's containers since they started
    memory_bytes: int             # current memory use (what ECS counts: usage less page cache)
    sampled_at_monotonic: float   # when it was read, on the runtime's monotonic clock (rates come from deltas)


@dataclass(frozen=True)
class RuntimeEvent:
    """Something changed: a task container (`task_id` set) or an instance (`task_id` None)."""

    ec2_instance_id: str
    task_id: str | None = None
    container: ContainerStatus | None = None
    instance_state: str | None = None         # "running" | "stopped" for instance events


class Runtime(Protocol):
    """The contract (tests/contract/ checks it for every implementation):

    - stop_task and remove_task are no-ops for an unknown task; a task's logs outlive remove_task;
    - a port conflict raises CannotStartContainerError and leaves nothing behind;
    - instance events say "running" on launch and "stopped" on death or termination;
    - cancelling a wait on events() loses no event;
    - task_usage lists only tasks with a running container, and a task's CPU seconds never go back.
    """

    async def launch_instance(self, spec: InstanceSpec) -> InstanceStatus:
        """Start an instance; returns once it can run tasks (its daemon answers)."""

    async def terminate_instance(self, ec2_instance_id: str, *, stop_timeout_s: float = 30) -> None:
        """Stop its tasks (SIGTERM, SIGKILL after their stopTimeout) and remove it and its data."""

    async def list_instances(self, cluster: str | None = None) -> list[InstanceStatus]:
        ...

    async def run_task(self, spec: TaskSpec) -> TaskStatus:
        """Start the task's containers; raises CannotPullContainerError for a missing image."""

    async def stop_task(self, ec2_instance_id: str, task_id: str) -> None:
        """SIGTERM every container, SIGKILL after its stopTimeout; returns when all have exited."""

    async def remove_task(self, ec2_instance_id: str, task_id: str) -> None:
        """Remove a stopped task's containers (its logs are kept)."""

    async def list_tasks(self, ec2_instance_id: str) -> list[TaskStatus]:
        ...

    async def task_logs(self, ec2_instance_id: str, task_id: str, container: str) -> str:
        ...

    async def task_usage(self, ec2_instance_id: str) -> list[TaskUsage]:
        """CPU and memory counters of every task with a running container on the instance.

        A stopped task is absent. Cheap enough to call for every instance every
        few seconds: no per-container API call (the Docker runtime reads cgroup files).
        """

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """Changes as they happen (container start/exit/health, instance death); one consumer."""

    async def close(self) -> None:
        ...
