"""Resource fit: CPU, memory, TCP/UDP host ports, dynamic ports, and which instances may get tasks at all."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from builders import a_cluster, a_request, an_instance, names

from emulator.model.container_instance import DEFAULT_RESERVED_PORTS, INACTIVE, REGISTERING
from emulator.model.instance_types import get_instance_type
from emulator.model.task_definition import ContainerDefinition, PortMapping, TaskDefinition
from emulator.placement import TaskNeeds, place_tasks
from emulator.placement.constraints import (
    RESOURCE_CPU,
    RESOURCE_MEMORY,
    RESOURCE_PORTS,
    RESOURCE_PORTS_UDP,
)

RNG_SEED = 7


def place(snapshot, request, seed: int = RNG_SEED):
    return place_tasks(snapshot, request, random.Random(seed))


# --- one instance, one task: does it fit, and if not, why -----------------------

FIT_CASES = [
    # id, instance builder, request builder, expected reason (None: it fits)
    ("cpu-exact", an_instance("ci-0").cpu(1024), a_request().needing(cpu=1024), None),
    ("cpu-one-over", an_instance("ci-0").cpu(1024), a_request().needing(cpu=1025), RESOURCE_CPU),
    ("memory-exact", an_instance("ci-0").memory(512), a_request().needing(memory=512), None),
    ("memory-one-over", an_instance("ci-0").memory(512), a_request().needing(memory=513), RESOURCE_MEMORY),
    ("cpu-checked-before-memory", an_instance("ci-0").cpu(0).memory(0),
     a_request().needing(cpu=1, memory=1), RESOURCE_CPU),
    ("zero-cpu-on-zero-cpu-instance", an_instance("ci-0").cpu(0), a_request().needing(cpu=0, memory=128), None),
    ("zero-memory-task", an_instance("ci-0").memory(0), a_request().needing(cpu=128, memory=0), None),
    ("free-tcp-port", an_instance("ci-0"), a_request().needing(ports=[8080]), None),
    ("used-tcp-port", an_instance("ci-0").ports(8080), a_request().needing(ports=[8080]), RESOURCE_PORTS),
    ("one-of-several-ports-used", an_instance("ci-0").ports(443),
     a_request().needing(ports=[80, 443]), RESOURCE_PORTS),
    *[(f"reserved-port-{p}", an_instance("ci-0"), a_request().needing(ports=[p]), RESOURCE_PORTS)
      for p in sorted(DEFAULT_RESERVED_PORTS)],
    ("port-next-to-reserved-range", an_instance("ci-0"), a_request().needing(ports=[51681]), None),
    ("reserved-ports-can-be-turned-off", an_instance("ci-0").no_reserved_ports(),
     a_request().needing(ports=[22]), None),
    ("free-udp-port", an_instance("ci-0"), a_request().needing(udp=[53]), None),
    ("used-udp-port", an_instance("ci-0").udp(53), a_request().needing(udp=[53]), RESOURCE_PORTS_UDP),
    ("tcp-use-does-not-block-udp", an_instance("ci-0").ports(53), a_request().needing(udp=[53]), None),
    ("udp-use-does-not-block-tcp", an_instance("ci-0").udp(8080), a_request().needing(ports=[8080]), None),
    ("reserved-tcp-22-does-not-block-udp-22", an_instance("ci-0"), a_request().needing(udp=[22]), None),
    ("tcp-checked-before-udp", an_instance("ci-0").ports(80).udp(53),
     a_request().needing(ports=[80], udp=[53]), RESOURCE_PORTS),
    ("memory-checked-before-ports", an_instance("ci-0").memory(100).ports(80),
     a_request().needing(memory=200, ports=[80]), RESOURCE_MEMORY),
]


@pytest.mark.parametrize("instance, request_builder, reason",
                         [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_one_task_on_one_instance(instance, request_builder, reason):
    snapshot = a_cluster().with_instance(instance).build()
    plan = place(snapshot, request_builder.build())
    if reason is None:
        assert names(plan.placements) == ["ci-0"]
        assert plan.failures == []
    else:
        assert plan.placements == []
        assert [(f.arn, f.reason) for f in plan.failures] == [(snapshot.slots[0].arn, reason)]


# --- how many tasks of a shape one instance holds ---------------------------------

CAPACITY_CASES = [
    # id, instance type, needs, tasks that fit, reason for the first that does not
    ("seed-pitfall-t3.medium-holds-3-not-4-tasks-of-1GiB", "t3.medium",
     TaskNeeds(memory=1024), 3, RESOURCE_MEMORY),
    ("t3.medium-cpu-bound-at-2-with-1-vcpu-tasks", "t3.medium",
     TaskNeeds(cpu=1024, memory=1024), 2, RESOURCE_CPU),
    ("t3.small-takes-one-1.5GiB-task", "t3.small", TaskNeeds(memory=1536), 1, RESOURCE_MEMORY),
    ("t2.micro-registers-896MiB", "t2.micro", TaskNeeds(memory=448), 2, RESOURCE_MEMORY),
    ("m5.large-registers-7680MiB", "m5.large", TaskNeeds(memory=1024), 7, RESOURCE_MEMORY),
    ("c5.xlarge-4-vcpus", "c5.xlarge", TaskNeeds(cpu=1024, memory=256), 4, RESOURCE_CPU),
    ("static-port-one-task-per-instance", "m5.2xlarge", TaskNeeds(cpu=128, memory=128, ports=frozenset({80})),
     1, RESOURCE_PORTS),
    ("static-udp-port-one-task-per-instance", "m5.2xlarge",
     TaskNeeds(cpu=128, memory=128, ports_udp=frozenset({514})), 1, RESOURCE_PORTS_UDP),
    ("dynamic-ports-never-conflict", "t3.medium", TaskNeeds(cpu=256, memory=256), 8, RESOURCE_CPU),
    ("zero-cpu-tasks-bound-by-memory-only", "t3.medium", TaskNeeds(cpu=0, memory=512), 7, RESOURCE_MEMORY),
]


@pytest.mark.parametrize("type_name, needs, fits, reason",
                         [c[1:] for c in CAPACITY_CASES], ids=[c[0] for c in CAPACITY_CASES])
def test_instance_capacity(type_name, needs, fits, reason):
    snapshot = a_cluster().with_instances(1, type=type_name).build()
    plan = place(snapshot, a_request().needs(needs).count(fits + 1).build())
    assert names(plan.placements) == ["ci-0"] * fits
    assert [f.reason for f in plan.failures] == [reason]


def test_seed_pitfall_uses_the_registered_not_the_nominal_memory():
    t3_medium = get_instance_type("t3.medium")
    assert t3_medium.memory_mib == 4096
    assert t3_medium.registered_memory_mib() == 3584
    snapshot = a_cluster().with_instances(1, type="t3.medium").build()
    assert snapshot.slots[0].memory == t3_medium.registered_memory_mib()
    assert snapshot.slots[0].cpu == 2048


def test_resources_taken_are_exactly_the_tasks_needs():
    snapshot = a_cluster().with_instances(1, type="m5.xlarge").build()
    needs = TaskNeeds(cpu=300, memory=700, ports=frozenset({8080}), ports_udp=frozenset({8125}))
    place(snapshot, a_request().needs(needs).build())
    slot, m5_xlarge = snapshot.slots[0], get_instance_type("m5.xlarge")
    assert (slot.cpu, slot.memory) == (4096 - 300, m5_xlarge.registered_memory_mib() - 700)
    assert slot.ports == set(DEFAULT_RESERVED_PORTS) | {8080}
    assert slot.ports_udp == {8125}
    assert slot.running_tasks_count == 1 and slot.group_counts == {"service:web": 1}


# --- TaskNeeds from a task definition ---------------------------------------------------


def container(name="app", *, cpu=0, memory=None, reservation=None, ports=()):
    return ContainerDefinition(name=name, image="nginx", cpu=cpu, memory=memory, memory_reservation=reservation,
                               port_mappings=[PortMapping(*p) for p in ports])


NEEDS_CASES = [
    # id, task definition, expected needs
    ("memory-hard-limit", TaskDefinition("f", [container(cpu=256, memory=512)]),
     TaskNeeds(cpu=256, memory=512)),
    ("memory-reservation-wins-over-limit", TaskDefinition("f", [container(memory=1024, reservation=256)]),
     TaskNeeds(memory=256)),
    ("containers-add-up", TaskDefinition("f", [container("a", cpu=128, memory=128),
                                               container("b", cpu=256, reservation=64)]),
     TaskNeeds(cpu=384, memory=192)),
    ("task-level-cpu-memory-win", TaskDefinition("f", [container(cpu=128, memory=128)], cpu="1024", memory="2048"),
     TaskNeeds(cpu=1024, memory=2048)),
    ("bridge-static-host-port", TaskDefinition("f", [container(memory=64, ports=[(80, 8080)])]),
     TaskNeeds(memory=64, ports=frozenset({8080}))),
    ("bridge-dynamic-host-port-0", TaskDefinition("f", [container(memory=64, ports=[(80, 0)])]),
     TaskNeeds(memory=64)),
    ("bridge-dynamic-host-port-absent", TaskDefinition("f", [container(memory=64, ports=[(80, None)])]),
     TaskNeeds(memory=64)),
    ("bridge-udp-port", TaskDefinition("f", [container(memory=64, ports=[(53, 53, "udp"), (80, 80, "tcp")])]),
     TaskNeeds(memory=64, ports=frozenset({80}), ports_udp=frozenset({53}))),
    ("host-mode-container-port-is-the-host-port",
     TaskDefinition("f", [container(memory=64, ports=[(8080, None)])], network_mode="host"),
     TaskNeeds(memory=64, ports=frozenset({8080}))),
]


@pytest.mark.parametrize("td, needs", [c[1:] for c in NEEDS_CASES], ids=[c[0] for c in NEEDS_CASES])
def test_task_needs_of_task_definition(td, needs):
    assert TaskNeeds.of(td) == needs


# --- only ACTIVE instances with a connected agent get tasks -----------------------------

ELIGIBILITY_CASES = [
    ("active-connected", an_instance("ci-1"), True),
    ("draining", an_instance("ci-1").draining(), False),
    ("inactive", an_instance("ci-1").status(INACTIVE), False),
    ("registering", an_instance("ci-1").status(REGISTERING), False),
    ("agent-disconnected", an_instance("ci-1").disconnected(), False),
]


@pytest.mark.parametrize("candidate, gets_tasks", [c[1:] for c in ELIGIBILITY_CASES],
                         ids=[c[0] for c in ELIGIBILITY_CASES])
def test_only_active_connected_instances_get_tasks(candidate, gets_tasks):
    # Spread on instanceId would put two of the four tasks on ci-1 if it were eligible.
    snapshot = a_cluster().with_instance(an_instance("ci-0"), candidate).build()
    plan = place(snapshot, a_request().needing(memory=256).count(4).spread("instanceId").build())
    expected = {"ci-0": 2, "ci-1": 2} if gets_tasks else {"ci-0": 4}
    assert Counter(names(plan.placements)) == expected
