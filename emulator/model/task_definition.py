"""Task definitions and container definitions, in ECS's RegisterTaskDefinition shape.

Only what the emulator acts on is typed; other fields AWS accepts in a
container definition (mountPoints, ulimits, ...) are kept verbatim in
`extra` so a real task-definition JSON file registers unchanged. Validation
lives in `task_definition_validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .placement_spec import PlacementConstraint

NETWORK_MODES = ("bridge", "host", "awsvpc", "none")
SUPPORTED_NETWORK_MODES = ("bridge", "host")

# Used when a container definition sets no stopTimeout (ECS_CONTAINER_STOP_TIMEOUT).
DEFAULT_STOP_TIMEOUT_S = 30


@dataclass
class PortMapping:
    container_port: int | None = None
    host_port: int | None = None  # 0 or absent in bridge mode: a dynamic host port
    protocol: str = "tcp"
    name: str | None = None
    app_protocol: str | None = None
    container_port_range: str | None = None

    @property
    def is_dynamic(self) -> bool:
        return not self.host_port


@dataclass
class KeyValuePair:
    name: str | None = None
    value: str | None = None


@dataclass
class HealthCheck:
    command: list[str] = field(default_factory=list)
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int | None = None


@dataclass
class LogConfiguration:
    log_driver: str = "json-file"
    options: dict[str, str] = field(default_factory=dict)
    secret_options: list[dict[str, str]] | None = None


# Container-definition fields AWS accepts that the emulator stores but does not act on.
UNTYPED_CONTAINER_FIELDS = frozenset({
    "repositoryCredentials", "links", "restartPolicy", "environmentFiles", "mountPoints",
    "volumesFrom", "linuxParameters", "secrets", "dependsOn", "versionConsistency",
    "hostname", "disableNetworking", "privileged", "readonlyRootFilesystem", "dnsServers",
    "dnsSearchDomains", "extraHosts", "dockerSecurityOptions", "interactive",
    "pseudoTerminal", "ulimits", "systemControls", "resourceRequirements",
    "firelensConfiguration", "credentialSpecs",
})

# RegisterTaskDefinition fields stored but not acted on.
UNTYPED_TASK_FIELDS = frozenset({
    "tags", "pidMode", "ipcMode", "proxyConfiguration", "inferenceAccelerators",
    "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
})


@dataclass
class ContainerDefinition:
    AWS_UNTYPED_FIELDS: ClassVar[frozenset[str]] = UNTYPED_CONTAINER_FIELDS

    name: str | None = None
    image: str | None = None
    cpu: int = 0
    memory: int | None = None               # hard limit (MiB)
    memory_reservation: int | None = None   # soft limit (MiB)
    port_mappings: list[PortMapping] = field(default_factory=list)
    essential: bool = True
    environment: list[KeyValuePair] = field(default_factory=list)
    command: list[str] | None = None
    entry_point: list[str] | None = None
    health_check: HealthCheck | None = None
    log_configuration: LogConfiguration | None = None
    stop_timeout: int | None = None
    start_timeout: int | None = None
    docker_labels: dict[str, str] | None = None
    working_directory: str | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reserved_memory(self) -> int:
        """What placement reserves: memoryReservation if set, else memory."""
        if self.memory_reservation is not None:
            return self.memory_reservation
        return self.memory or 0

    def env(self) -> dict[str, str]:
        return {kv.name: kv.value or "" for kv in self.environment if kv.name}


@dataclass
class TaskDefinition:
    AWS_UNTYPED_FIELDS: ClassVar[frozenset[str]] = UNTYPED_TASK_FIELDS

    family: str
    container_definitions: list[ContainerDefinition]
    revision: int = 0
    task_definition_arn: str | None = None
    network_mode: str = "bridge"
    requires_compatibilities: list[str] = field(default_factory=lambda: ["EC2"])
    compatibilities: list[str] = field(default_factory=lambda: ["EC2"])
    cpu: str | None = None      # task-level, in units ("1024") as AWS returns it
    memory: str | None = None   # task-level, in MiB ("2048")
    placement_constraints: list[PlacementConstraint] = field(default_factory=list)
    status: str = "ACTIVE"
    task_role_arn: str | None = None
    execution_role_arn: str | None = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    registered_at: float | None = None
    deregistered_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def family_revision(self) -> str:
        return f"{self.family}:{self.revision}"

    @property
    def required_cpu(self) -> int:
        """CPU units placement reserves: task-level cpu, else the containers' sum."""
        if self.cpu is not None:
            return int(self.cpu)
        return sum(c.cpu for c in self.container_definitions)

    @property
    def required_memory(self) -> int:
        """MiB placement reserves: task-level memory, else each container's reservation."""
        if self.memory is not None:
            return int(self.memory)
        return sum(c.reserved_memory for c in self.container_definitions)

    def static_host_ports(self) -> list[tuple[int, str]]:
        """(port, protocol) pairs the task claims on its instance."""
        ports = []
        for c in self.container_definitions:
            for pm in c.port_mappings:
                port = pm.host_port if self.network_mode == "bridge" else (pm.host_port or pm.container_port)
                if port:
                    ports.append((port, pm.protocol))
        return ports

    def dynamic_port_count(self) -> int:
        if self.network_mode != "bridge":
            return 0
        return sum(1 for c in self.container_definitions for pm in c.port_mappings if pm.is_dynamic)

    def container(self, name: str) -> ContainerDefinition | None:
        return next((c for c in self.container_definitions if c.name == name), None)
