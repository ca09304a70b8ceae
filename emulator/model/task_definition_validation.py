"""RegisterTaskDefinition's checks, answering bad input as ECS does.

`parse_task_definition` turns AWS's JSON (the `--cli-input-json` file, or a
stack file's task definition) into a `TaskDefinition`, or raises
`ClientException` with ECS's wording and nothing registered. Limits that
only apply to Fargate are not checked: this emulator is the EC2 launch type.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ClientException
from .placement_spec import validate_constraints
from .shapes import fail, from_camel_api
from .task_definition import (
    SUPPORTED_NETWORK_MODES,
    ContainerDefinition,
    TaskDefinition,
)

_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_UNITS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(vcpu|gb|mb|mib|gib)?\s*$", re.IGNORECASE)

OUTPUT_ONLY_FIELDS = ("taskDefinitionArn", "revision", "status", "compatibilities", "requiresAttributes",
                      "registeredAt", "registeredBy", "deregisteredAt")
LOG_DRIVERS = ("json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens")
MIN_CONTAINER_MEMORY_MIB = 6
TASK_CPU_RANGE = (128, 196608)   # 0.125 vCPU .. 192 vCPU on EC2
MAX_CONTAINERS = 10


def parse_task_definition(data: Any) -> TaskDefinition:
    """A validated TaskDefinition from RegisterTaskDefinition's JSON; ClientException otherwise."""
    if not isinstance(data, dict):
        raise ClientException("The task definition must be a JSON object.")
    output_only = [k for k in OUTPUT_ONLY_FIELDS if k in data]
    if output_only:
        raise ClientException(
            f"Unknown parameter in input: \"{output_only[0]}\"; it is set by ECS, not by "
            "RegisterTaskDefinition (remove the fields DescribeTaskDefinition adds).")
    data = dict(data)
    for key in ("cpu", "memory"):
        if isinstance(data.get(key), (int, float)):
            data[key] = str(data[key])
    try:
        td = from_camel_api(TaskDefinition, data, ClientException)
    except ClientException as exc:
        path = getattr(exc, "field_path", "")
        fail(ClientException, path, f"Invalid task definition: {exc.message}" + (f" (at {path})" if path else ""))
    validate_task_definition(td)
    return td


def validate_task_definition(td: TaskDefinition) -> None:
    if not td.family or not _FAMILY.match(td.family):
        raise ClientException(
            "Family name must be 1-255 characters: letters (upper and lower case), numbers, "
            "hyphens, and underscores are allowed.")
    _validate_compatibility(td)
    td.cpu = _normalise_task_size(td.cpu, "cpu", 1024)
    td.memory = _normalise_task_size(td.memory, "memory", 1024)
    if td.cpu is not None and not TASK_CPU_RANGE[0] <= int(td.cpu) <= TASK_CPU_RANGE[1]:
        raise ClientException(
            f"Invalid 'cpu' setting for task. The task cpu must be between {TASK_CPU_RANGE[0]} "
            f"and {TASK_CPU_RANGE[1]} CPU units.")
    if td.memory is not None and int(td.memory) < MIN_CONTAINER_MEMORY_MIB:
        raise ClientException(
            f"Invalid 'memory' setting for task. The task memory must be at least {MIN_CONTAINER_MEMORY_MIB} MiB.")
    _validate_containers(td)
    validate_constraints(td.placement_constraints, in_task_definition=True)


def _validate_compatibility(td: TaskDefinition) -> None:
    for compat in td.requires_compatibilities:
        if compat not in ("EC2", "FARGATE", "EXTERNAL"):
            raise ClientException(f"Invalid requiresCompatibilities value '{compat}'. Valid values: EC2, FARGATE, EXTERNAL.")
        if compat != "EC2":
            raise ClientException(
                f"requiresCompatibilities {compat} is not supported: this emulator runs the EC2 launch type only.")
    if td.network_mode not in ("bridge", "host", "awsvpc", "none"):
        raise ClientException(f"Invalid networkMode '{td.network_mode}'. Valid values: bridge, host, awsvpc, none.")
    if td.network_mode not in SUPPORTED_NETWORK_MODES:
        raise ClientException(
            f"networkMode {td.network_mode} is not supported by this emulator; use bridge or host.")


def _normalise_task_size(value: str | None, what: str, unit: int) -> str | None:
    """'1 vCPU' -> '1024', '2 GB' -> '2048', '512' -> '512' (AWS accepts all three)."""
    if value is None:
        return None
    m = _UNITS.match(value)
    if not m:
        raise ClientException(f"Invalid '{what}' setting for task: '{value}'.")
    number, suffix = float(m.group(1)), (m.group(2) or "").lower()
    if what == "cpu" and suffix not in ("", "vcpu"):
        raise ClientException(f"Invalid 'cpu' setting for task: '{value}'. Use CPU units or vCPU.")
    if what == "memory" and suffix not in ("", "gb", "gib", "mb", "mib"):
        raise ClientException(f"Invalid 'memory' setting for task: '{value}'. Use MiB or GB.")
    if suffix in ("vcpu", "gb", "gib"):
        number *= unit
    if number != int(number):
        raise ClientException(f"Invalid '{what}' setting for task: '{value}' is not a whole number of units.")
    return str(int(number))


def _validate_containers(td: TaskDefinition) -> None:
    containers = td.container_definitions
    if not containers:
        raise ClientException("Container list cannot be empty.")
    if len(containers) > MAX_CONTAINERS:
        raise ClientException(f"Too many containers: a task definition holds at most {MAX_CONTAINERS}.")
    names = [c.name for c in containers]
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        raise ClientException(f"Container names must be unique within a task definition: '{duplicates[0]}' appears twice.")
    if not any(c.essential for c in containers):
        raise ClientException("A task definition must have at least one essential container.")
    for c in containers:
        _validate_container(c, td)
    _validate_sums(td)
    _validate_ports(td)


def _validate_container(c: ContainerDefinition, td: TaskDefinition) -> None:
    if not c.name or not _CONTAINER_NAME.match(c.name):
        raise ClientException(
            "Container.name must be 1-255 characters: letters, numbers, hyphens and underscores.")
    if not c.image or not c.image.strip():
        raise ClientException("Container.image should not be null or empty.")
    if c.cpu < 0:
        raise ClientException(f"Invalid 'cpu' setting for container '{c.name}'. The value must not be negative.")
    if c.memory is None and c.memory_reservation is None and td.memory is None:
        raise ClientException(
            f"Invalid setting for container '{c.name}'. At least one of 'memory' or "
            "'memoryReservation' must be specified.")
    for what, value in (("memory", c.memory), ("memoryReservation", c.memory_reservation)):
        if value is not None and value < MIN_CONTAINER_MEMORY_MIB:
            raise ClientException(
                f"Invalid '{what}' setting for container '{c.name}'. The value must be at least "
                f"{MIN_CONTAINER_MEMORY_MIB} MiB.")
    if c.memory is not None and c.memory_reservation is not None and c.memory_reservation > c.memory:
        raise ClientException(
            f"Invalid 'memoryReservation' setting for container '{c.name}'. The value for "
            "'memoryReservation' must be less than or equal to the value for 'memory'.")
    _validate_health_check(c)
    if c.stop_timeout is not None and not 2 <= c.stop_timeout <= 120:
        raise ClientException(f"Invalid 'stopTimeout' setting for container '{c.name}'. Valid values: 2-120 seconds.")
    if c.log_configuration and c.log_configuration.log_driver not in LOG_DRIVERS:
        raise ClientException(
            f"Invalid 'logDriver' setting for container '{c.name}': '{c.log_configuration.log_driver}'. "
            f"Valid values: {', '.join(LOG_DRIVERS)}.")


def _validate_health_check(c: ContainerDefinition) -> None:
    hc = c.health_check
    if hc is None:
        return
    if not hc.command:
        raise ClientException(f"Invalid 'healthCheck' setting for container '{c.name}'. 'command' is required.")
    if hc.command[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise ClientException(
            f"Invalid 'healthCheck.command' for container '{c.name}': it must start with CMD or CMD-SHELL.")
    for what, value, low, high in (("interval", hc.interval, 5, 300), ("timeout", hc.timeout, 2, 60),
                                   ("retries", hc.retries, 1, 10), ("startPeriod", hc.start_period, 0, 300)):
        if value is not None and not low <= value <= high:
            raise ClientException(
                f"Invalid 'healthCheck.{what}' setting for container '{c.name}'. Valid values: {low}-{high}.")


def _validate_sums(td: TaskDefinition) -> None:
    if td.cpu is not None:
        total = sum(c.cpu for c in td.container_definitions)
        if total > int(td.cpu):
            raise ClientException(
                f"Invalid 'cpu' setting for task. The sum of all container cpu values ({total}) "
                f"must be less than or equal to the task cpu value ({td.cpu}).")
    if td.memory is not None:
        for c in td.container_definitions:
            if c.memory is not None and c.memory > int(td.memory):
                raise ClientException(
                    f"Invalid 'memory' setting for container '{c.name}'. The container memory "
                    f"({c.memory}) must be less than or equal to the task memory ({td.memory}).")
        total = sum(c.reserved_memory for c in td.container_definitions)
        if total > int(td.memory):
            raise ClientException(
                f"Invalid 'memory' setting for task. The sum of all container memory reservations "
                f"({total}) must be less than or equal to the task memory value ({td.memory}).")


def _validate_ports(td: TaskDefinition) -> None:
    seen: set[tuple[int, str]] = set()
    for c in td.container_definitions:
        for pm in c.port_mappings:
            if pm.protocol not in ("tcp", "udp"):
                raise ClientException(f"Invalid protocol '{pm.protocol}' for container '{c.name}'. Valid values: tcp, udp.")
            if pm.container_port is None or not 1 <= pm.container_port <= 65535:
                raise ClientException(
                    f"Invalid 'containerPort' setting for container '{c.name}'. Valid values: 1-65535.")
            if pm.host_port is not None and not 0 <= pm.host_port <= 65535:
                raise ClientException(f"Invalid 'hostPort' setting for container '{c.name}'. Valid values: 0-65535.")
            if td.network_mode == "host" and pm.host_port not in (None, pm.container_port):
                raise ClientException(
                    f"When networkMode=host, the containerPort and hostPort values must match "
                    f"(container '{c.name}': {pm.container_port} vs {pm.host_port}).")
    for port in td.static_host_ports():
        if port in seen:
            raise ClientException(
                f"The host port {port[0]}/{port[1]} is used more than once in the task definition.")
        seen.add(port)
