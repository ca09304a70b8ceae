"""What the Docker runtime asks Docker for, as plain data: limits, ports, health checks, labels, the DinD recipe."""

from __future__ import annotations

import pytest

from emulator.model.instance_types import get_instance_type
from emulator.runtime.base import (LABEL_CLUSTER, LABEL_INSTANCE, LABEL_OWNER, LABEL_ROLE, LABEL_TASK, ContainerSpec,
                                   HealthCheckSpec, InstanceSpec, PortMappingSpec, TaskSpec)
from emulator.runtime.docker_args import LABEL_STOP_TIMEOUT, InstanceRecipe, instance_create, task_container_kwargs

T3_MEDIUM = InstanceSpec("prod", "i-0123456789abcdef0", get_instance_type("t3.medium"), "us-east-1a",
                         cpu_scale=0.25, memory_scale=0.25)


def create(privileged: bool):
    return instance_create("own1", T3_MEDIUM, image="ecsemu/instance:latest", volume="vol",
                           socket_dir="/tmp/ecsemu-own1/i-0123456789abcdef0",
                           recipe=InstanceRecipe(privileged=privileged))


def test_instance_gets_its_type_times_the_resource_scales():
    hc = create(privileged=False).host_config
    assert hc["cpu_quota"] / hc["cpu_period"] == 0.5   # 2 vCPU x 0.25
    assert hc["mem_limit"] == hc["memswap_limit"] == "1024m"   # 4 GiB x 0.25, no swap


def test_instance_labels_say_what_it_is():
    labels = create(False).create["labels"]
    assert labels[LABEL_OWNER] == "own1" and labels[LABEL_ROLE] == "instance"
    assert labels[LABEL_CLUSTER] == "prod" and labels[LABEL_INSTANCE] == "i-0123456789abcdef0"


@pytest.mark.parametrize("privileged, expected, raw", [
    (True, {"privileged": True}, {}),
    (False, {"cap_add": ["ALL"], "cap_drop": ["SYS_RESOURCE"],
             "security_opt": ["seccomp=unconfined", "apparmor=unconfined"]},
     {"MaskedPaths": [], "ReadonlyPaths": []}),   # the CLI's systempaths=unconfined
], ids=["privileged-host", "capability-recipe"])
def test_recipe_security_options(privileged, expected, raw):
    args = create(privileged)
    for key, value in expected.items():
        assert args.host_config[key] == value
    assert args.raw_host_config == raw
    assert ("/sys/fs/cgroup" in args.host_config["binds"]) is (not privileged)
    assert args.host_config["binds"]["vol"]["bind"] == "/var/lib/docker"


def task(containers: tuple[ContainerSpec, ...], network_mode: str = "bridge") -> TaskSpec:
    return TaskSpec("prod", "0123456789abcdef0123456789abcdef", "arn:aws:ecs:us-east-1:123456789012:task/prod/x",
                    "i-0123456789abcdef0", containers, network_mode=network_mode)


@pytest.mark.parametrize("container, expected", [
    (ContainerSpec("a", "img", cpu_shares=1024, memory_mib=1024),
     {"cpu_shares": 1024, "mem_limit": "256m", "memswap_limit": "256m"}),
    (ContainerSpec("a", "img", cpu_shares=0, memory_reservation_mib=512),
     {"cpu_shares": 2, "mem_reservation": "128m"}),
    (ContainerSpec("a", "img", memory_mib=8), {"mem_limit": "6m"}),
    (ContainerSpec("a", "img", port_mappings=(PortMappingSpec(8080, 0), PortMappingSpec(53, 5353, "udp"))),
     {"ports": {"8080/tcp": None, "53/udp": 5353}}),
    (ContainerSpec("a", "img", health_check=HealthCheckSpec(("CMD-SHELL", "curl -f localhost"), 10, 5, 3, 2)),
     {"healthcheck": {"test": ["CMD-SHELL", "curl -f localhost"], "interval": 10_000_000_000,
                      "timeout": 5_000_000_000, "retries": 3, "start_period": 2_000_000_000}}),
    (ContainerSpec("a", "img", environment=(("APP_VERSION", "v2"),), command=("python3", "app.py")),
     {"environment": {"APP_VERSION": "v2"}, "command": ["python3", "app.py"]}),
], ids=["hard-limit-scaled", "cpu-0-gets-2-shares-and-soft-limit", "docker-minimum-memory",
        "dynamic-and-static-ports", "health-check-in-nanoseconds", "environment-and-command"])
def test_task_container_arguments(container, expected):
    kw = task_container_kwargs("own1", task((container,)), container)
    for key, value in expected.items():
        assert kw[key] == value


def test_task_container_labels_carry_task_identity_and_stop_timeout():
    container = ContainerSpec("web", "img", stop_timeout_s=7)
    labels = task_container_kwargs("own1", task((container,)), container)["labels"]
    assert labels[LABEL_TASK] == "0123456789abcdef0123456789abcdef"
    assert labels["com.amazonaws.ecs.container-name"] == "web"
    assert labels[LABEL_STOP_TIMEOUT] == "7"


def test_host_network_mode_publishes_nothing():
    container = ContainerSpec("a", "img", port_mappings=(PortMappingSpec(8080, 8080),))
    kw = task_container_kwargs("own1", task((container,), network_mode="host"), container)
    assert kw["network_mode"] == "host" and "ports" not in kw
