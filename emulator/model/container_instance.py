"""Container instances: the EC2 hosts of a cluster, with what they registered and what is left.

Resources are kept as plain numbers and port sets, and rendered in ECS's
`Resource` list shape (`registeredResources` / `remainingResources`) at the
API edge. CPU is in units (1 vCPU = 1,024), memory in MiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .instance_types import InstanceType

# Ports ECS keeps on every instance (ECS_RESERVED_PORTS default).
DEFAULT_RESERVED_PORTS = frozenset({22, 2375, 2376, 51678, 51679, 51680})
# Host ports handed out for dynamic (hostPort 0) mappings: the ephemeral range ECS falls back to.
DYNAMIC_PORT_RANGE = (49153, 65535)

ACTIVE, DRAINING, REGISTERING, DEREGISTERING, INACTIVE = (
    "ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "INACTIVE")


@dataclass(frozen=True)
class Resources:
    cpu: int
    memory: int
    ports: frozenset[int] = frozenset()
    ports_udp: frozenset[int] = frozenset()

    def to_api(self) -> list[dict[str, Any]]:
        return [
            {"name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": self.cpu},
            {"name": "MEMORY", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": self.memory},
            {"name": "PORTS", "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0,
             "stringSetValue": [str(p) for p in sorted(self.ports)]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0,
             "stringSetValue": [str(p) for p in sorted(self.ports_udp)]},
        ]

    @classmethod
    def from_api(cls, items: list[dict[str, Any]]) -> Resources:
        by_name = {item["name"]: item for item in items}
        return cls(
            cpu=int(by_name.get("CPU", {}).get("integerValue", 0)),
            memory=int(by_name.get("MEMORY", {}).get("integerValue", 0)),
            ports=frozenset(int(p) for p in by_name.get("PORTS", {}).get("stringSetValue", [])),
            ports_udp=frozenset(int(p) for p in by_name.get("PORTS_UDP", {}).get("stringSetValue", [])),
        )

    def take(self, cpu: int, memory: int, ports: frozenset[int] = frozenset(),
             ports_udp: frozenset[int] = frozenset()) -> Resources:
        """What is left after a task reserves these (may go negative: callers check fit first)."""
        return replace(self, cpu=self.cpu - cpu, memory=self.memory - memory,
                       ports=self.ports | ports, ports_udp=self.ports_udp | ports_udp)

    def give_back(self, cpu: int, memory: int, ports: frozenset[int] = frozenset(),
                  ports_udp: frozenset[int] = frozenset()) -> Resources:
        return replace(self, cpu=self.cpu + cpu, memory=self.memory + memory,
                       ports=self.ports - ports, ports_udp=self.ports_udp - ports_udp)


@dataclass(frozen=True)
class Attribute:
    name: str
    value: str | None = None
    target_type: str | None = None
    target_id: str | None = None


@dataclass
class ContainerInstance:
    container_instance_arn: str
    ec2_instance_id: str
    registered_resources: Resources
    remaining_resources: Resources
    attributes: dict[str, str | None] = field(default_factory=dict)
    status: str = ACTIVE
    status_reason: str | None = None
    agent_connected: bool = True
    agent_version: str = "1.88.0"
    docker_version: str = "DockerVersion: 20.10.24"
    registered_at: float = 0.0
    running_tasks_count: int = 0
    pending_tasks_count: int = 0
    capacity_provider_name: str | None = None
    version: int = 1
    tags: list[dict[str, str]] = field(default_factory=list)

    @property
    def instance_id(self) -> str:
        """The id ECS shows at the end of the container-instance ARN."""
        return self.container_instance_arn.rsplit("/", 1)[-1]

    @property
    def availability_zone(self) -> str | None:
        return self.attributes.get("ecs.availability-zone")

    @property
    def instance_type(self) -> str | None:
        return self.attributes.get("ecs.instance-type")

    def to_api(self) -> dict[str, Any]:
        return {
            "containerInstanceArn": self.container_instance_arn,
            "ec2InstanceId": self.ec2_instance_id,
            "version": self.version,
            "versionInfo": {"agentVersion": self.agent_version, "dockerVersion": self.docker_version},
            "remainingResources": self.remaining_resources.to_api(),
            "registeredResources": self.registered_resources.to_api(),
            "status": self.status,
            **({"statusReason": self.status_reason} if self.status_reason else {}),
            "agentConnected": self.agent_connected,
            "runningTasksCount": self.running_tasks_count,
            "pendingTasksCount": self.pending_tasks_count,
            "attributes": [{"name": k, **({"value": v} if v is not None else {})}
                           for k, v in sorted(self.attributes.items())],
            "registeredAt": self.registered_at,
            **({"capacityProviderName": self.capacity_provider_name} if self.capacity_provider_name else {}),
            "tags": list(self.tags),
        }

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ContainerInstance:
        return cls(
            container_instance_arn=data["containerInstanceArn"],
            ec2_instance_id=data["ec2InstanceId"],
            registered_resources=Resources.from_api(data["registeredResources"]),
            remaining_resources=Resources.from_api(data["remainingResources"]),
            attributes={a["name"]: a.get("value") for a in data.get("attributes", [])},
            status=data.get("status", ACTIVE),
            status_reason=data.get("statusReason"),
            agent_connected=data.get("agentConnected", True),
            agent_version=data.get("versionInfo", {}).get("agentVersion", "1.88.0"),
            docker_version=data.get("versionInfo", {}).get("dockerVersion", ""),
            registered_at=data.get("registeredAt", 0.0),
            running_tasks_count=data.get("runningTasksCount", 0),
            pending_tasks_count=data.get("pendingTasksCount", 0),
            capacity_provider_name=data.get("capacityProviderName"),
            version=data.get("version", 1),
            tags=data.get("tags", []),
        )


def standard_attributes(instance_type: InstanceType, availability_zone: str,
                        ami_id: str = "ami-ecsemu0000000001") -> dict[str, str | None]:
    """The attributes the ECS agent registers for a Linux instance of this type."""
    return {
        "ecs.availability-zone": availability_zone,
        "ecs.instance-type": instance_type.name,
        "ecs.os-type": "linux",
        "ecs.os-family": "LINUX",
        "ecs.cpu-architecture": instance_type.architecture,
        "ecs.ami-id": ami_id,
        "ecs.vpc-id": "vpc-ecsemu0001",
        "ecs.subnet-id": "subnet-" + availability_zone.replace("-", ""),
        "ecs.capability.docker-remote-api.1.41": None,
        "ecs.capability.task-cpu-mem-limit": None,
        "ecs.capability.container-health-check": None,
    }


def registered_resources(instance_type: InstanceType, reserved_memory_mib: int | None = None,
                         reserved_ports: frozenset[int] = DEFAULT_RESERVED_PORTS) -> Resources:
    return Resources(
        cpu=instance_type.cpu_units,
        memory=instance_type.registered_memory_mib(reserved_memory_mib),
        ports=frozenset(reserved_ports),
    )


def new_container_instance(*, arn: str, ec2_instance_id: str, instance_type: InstanceType,
                           availability_zone: str, registered_at: float,
                           reserved_memory_mib: int | None = None,
                           custom_attributes: dict[str, str | None] | None = None,
                           capacity_provider_name: str | None = None) -> ContainerInstance:
    resources = registered_resources(instance_type, reserved_memory_mib)
    attributes = standard_attributes(instance_type, availability_zone)
    attributes.update(custom_attributes or {})
    return ContainerInstance(
        container_instance_arn=arn, ec2_instance_id=ec2_instance_id,
        registered_resources=resources, remaining_resources=resources,
        attributes=attributes, registered_at=registered_at,
        capacity_provider_name=capacity_provider_name,
    )
