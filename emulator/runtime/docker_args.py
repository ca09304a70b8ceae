"""Pure functions from ECS's specs to docker-py `containers.run` arguments.

Kept apart from the code that calls Docker so the mapping (limits, ports,
health checks, labels, the Docker-in-Docker recipe) is tested as plain
data. Real CPU and memory are the nominal ECS amounts times the instance's
resource scales: ECS accounting stays in the type's units, the machine
gives each instance (and so each task) a fraction of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import (
    LABEL_AZ,
    LABEL_CLUSTER,
    LABEL_CONTAINER,
    LABEL_INSTANCE,
    LABEL_INSTANCE_TYPE,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_TASK,
    LABEL_TASK_ARN,
    ContainerSpec,
    HealthCheckSpec,
    InstanceSpec,
    TaskSpec,
)

INNER_SOCKET_DIR = "/run/ecsemu"
INNER_DATA_ROOT = "/var/lib/docker"
MIN_CONTAINER_MEMORY_MIB = 6  # Docker refuses less
NANO = 1_000_000_000
CPU_PERIOD_US = 100_000
LABEL_STOP_TIMEOUT = "io.ecsemu.stop-timeout"
LABEL_REAL_CPUS = "io.ecsemu.real-cpus"  # the instance's CPU share, to restore its quota after a restart


@dataclass(frozen=True)
class InstanceRecipe:
    """How to run a Docker-in-Docker host on this machine (see PLATFORM notes)."""

    privileged: bool

    def host_config_kwargs(self) -> dict:
        if self.privileged:
            return {"privileged": True}
        # --privileged fails where CAP_SYS_RESOURCE is missing from the bounding set:
        # every other capability, no seccomp/apparmor, and the cgroup tree mounted rw.
        return {
            "cap_add": ["ALL"],
            "cap_drop": ["SYS_RESOURCE"],
            "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
        }

    def raw_host_config(self) -> dict:
        """HostConfig fields docker-py has no argument for: the CLI's `systempaths=unconfined`."""
        return {} if self.privileged else {"MaskedPaths": [], "ReadonlyPaths": []}


def cpu_quota_us(cpus: float) -> int:
    return max(1000, int(cpus * CPU_PERIOD_US))


def instance_name(owner: str, ec2_instance_id: str) -> str:
    return f"ecsemu-{owner}-{ec2_instance_id}"


def instance_labels(owner: str, spec: InstanceSpec) -> dict[str, str]:
    return {
        LABEL_OWNER: owner,
        LABEL_ROLE: "instance",
        LABEL_CLUSTER: spec.cluster,
        LABEL_INSTANCE: spec.ec2_instance_id,
        LABEL_INSTANCE_TYPE: spec.instance_type.name,
        LABEL_AZ: spec.availability_zone,
        LABEL_REAL_CPUS: f"{spec.real_cpus:g}",
    }


@dataclass(frozen=True)
class InstanceCreate:
    """A low-level container create: docker-py's host-config arguments plus raw HostConfig fields."""

    create: dict
    host_config: dict
    raw_host_config: dict


def instance_create(owner: str, spec: InstanceSpec, *, image: str, volume: str, socket_dir: str,
                    recipe: InstanceRecipe, network: str | None = None) -> InstanceCreate:
    """One EC2 instance: a DinD host with its type's scaled limits, data volume and socket folder."""
    binds = {
        volume: {"bind": INNER_DATA_ROOT, "mode": "rw"},
        socket_dir: {"bind": INNER_SOCKET_DIR, "mode": "rw"},
    }
    if not recipe.privileged:
        binds["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
    host_config = {
        "binds": binds,
        # A CFS quota rather than NanoCpus, so the quota can be lifted while an image loads.
        "cpu_period": CPU_PERIOD_US,
        "cpu_quota": cpu_quota_us(spec.real_cpus),
        "mem_limit": f"{spec.real_memory_mib}m",
        "memswap_limit": f"{spec.real_memory_mib}m",  # no swap: over the limit is OOM, as on EC2
        **recipe.host_config_kwargs(),
    }
    if network:
        host_config["network_mode"] = network
    create = {
        "image": image,
        "name": instance_name(owner, spec.ec2_instance_id),
        "hostname": spec.ec2_instance_id,
        "detach": True,
        "labels": instance_labels(owner, spec),
        "environment": {"ECSEMU_INSTANCE_ID": spec.ec2_instance_id},
        "volumes": [INNER_DATA_ROOT, INNER_SOCKET_DIR],
    }
    return InstanceCreate(create, host_config, recipe.raw_host_config())


def task_container_name(spec: TaskSpec, container: ContainerSpec) -> str:
    """The ECS agent's naming: ecs-<family>-<revision>-<container>-<id>; here the task id stands in."""
    return f"ecs-{container.name}-{spec.task_id[:20]}"


def task_labels(owner: str, spec: TaskSpec, container: ContainerSpec) -> dict[str, str]:
    labels = {
        LABEL_OWNER: owner,
        LABEL_ROLE: "task",
        LABEL_CLUSTER: spec.cluster,
        LABEL_INSTANCE: spec.ec2_instance_id,
        LABEL_TASK: spec.task_id,
        LABEL_TASK_ARN: spec.task_arn,
        LABEL_CONTAINER: container.name,
        # The labels the real ECS agent puts on task containers.
        "com.amazonaws.ecs.task-arn": spec.task_arn,
        "com.amazonaws.ecs.container-name": container.name,
        "com.amazonaws.ecs.cluster": spec.cluster,
        # docker-py's high-level create has no stop_timeout: stop_task reads it from here.
        LABEL_STOP_TIMEOUT: str(container.stop_timeout_s),
    }
    if container.log_group:
        labels[f"{LABEL_TASK}.log-group"] = container.log_group
        labels[f"{LABEL_TASK}.log-stream"] = container.log_stream or ""
    return labels


def scaled_mib(mib: int | None, scale: float) -> int | None:
    if mib is None:
        return None
    return max(MIN_CONTAINER_MEMORY_MIB, int(mib * scale))


def healthcheck_kwargs(hc: HealthCheckSpec) -> dict:
    """ECS healthCheck -> Docker's: same command forms, durations in nanoseconds."""
    test = list(hc.command)
    result = {
        "test": test,
        "interval": int(hc.interval_s * NANO),
        "timeout": int(hc.timeout_s * NANO),
        "retries": hc.retries,
    }
    if hc.start_period_s:
        result["start_period"] = int(hc.start_period_s * NANO)
    return result


def task_container_kwargs(owner: str, spec: TaskSpec, container: ContainerSpec) -> dict:
    """`containers.create` arguments for one container of a task, inside its instance's daemon."""
    kwargs: dict = {
        "image": container.image,
        "name": task_container_name(spec, container),
        "detach": True,
        "labels": task_labels(owner, spec, container),
        # ECS gives a container with cpu 0 two shares, Docker's minimum.
        "cpu_shares": max(2, container.cpu_shares),
        "environment": dict(container.environment),
        "stop_signal": "SIGTERM",
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "2"}},
    }
    hard = scaled_mib(container.memory_mib, spec.memory_scale)
    soft = scaled_mib(container.memory_reservation_mib, spec.memory_scale)
    if hard is not None:
        kwargs["mem_limit"] = f"{hard}m"
        kwargs["memswap_limit"] = f"{hard}m"
    if soft is not None and (hard is None or soft < hard):
        kwargs["mem_reservation"] = f"{soft}m"
    if spec.network_mode == "host":
        kwargs["network_mode"] = "host"
    elif container.port_mappings:
        kwargs["ports"] = {f"{pm.container_port}/{pm.protocol}": (pm.host_port or None)
                           for pm in container.port_mappings}
    if container.command is not None:
        kwargs["command"] = list(container.command)
    if container.entry_point is not None:
        kwargs["entrypoint"] = list(container.entry_point)
    if container.health_check is not None:
        kwargs["healthcheck"] = healthcheck_kwargs(container.health_check)
    return kwargs
