"""When tasks do not fit: one failure per unplaced task, ECS's reason, the closest instance, service-event text."""

from __future__ import annotations

import random

import pytest
from builders import a_cluster, a_request, an_instance, arn, names

from emulator.placement import ClusterSnapshot, place_tasks
from emulator.placement.constraints import (
    AGENT,
    DISTINCT_INSTANCE,
    INACTIVE,
    MEMBER_OF,
    NO_INSTANCES,
    RESOURCE_CPU,
    RESOURCE_MEMORY,
    RESOURCE_PORTS,
    RESOURCE_PORTS_UDP,
)
from emulator.placement.placer import PlacementFailure, explain_failure


def place(snapshot, request, seed: int = 7):
    return place_tasks(snapshot, request, random.Random(seed))


def test_count_beyond_capacity_places_what_fits_and_fails_the_rest_one_by_one():
    snapshot = a_cluster().with_instances(2, type="t3.medium").build()
    plan = place(snapshot, a_request().needing(memory=1024).count(10).build())
    assert len(plan.placements) == 6
    assert len(plan.failures) == 4
    assert {(f.arn, f.reason) for f in plan.failures} in ({(arn("ci-0"), RESOURCE_MEMORY)},
                                                        {(arn("ci-1"), RESOURCE_MEMORY)})


def test_zero_count_places_nothing_and_fails_nothing():
    plan = place(a_cluster().build(), a_request().count(0).build())
    assert (plan.placements, plan.failures) == ([], [])


def test_empty_cluster():
    plan = place(a_cluster().build(), a_request().needing(memory=64).count(3).build())
    assert plan.placements == []
    assert [(f.arn, f.reason) for f in plan.failures] == [(None, NO_INSTANCES)] * 3
    failure = plan.failures[0]
    assert failure.reason == "No Container Instances were found in your cluster."
    assert failure.to_api() == {"reason": "No Container Instances were found in your cluster."}
    assert failure.service_event_detail() == "Reason: No Container Instances were found in your cluster."
    assert explain_failure(ClusterSnapshot(), a_request().build()) == PlacementFailure(None, NO_INSTANCES)


REASON_CASES = [
    # id, instances, request, (closest instance, reason)
    ("cpu", [an_instance("ci-0").cpu(100)], a_request().needing(cpu=200), ("ci-0", RESOURCE_CPU)),
    ("memory", [an_instance("ci-0").memory(100)], a_request().needing(memory=200), ("ci-0", RESOURCE_MEMORY)),
    ("ports", [an_instance("ci-0").ports(80)], a_request().needing(ports=[80]), ("ci-0", RESOURCE_PORTS)),
    ("reserved-port", [an_instance("ci-0")], a_request().needing(ports=[2375]), ("ci-0", RESOURCE_PORTS)),
    ("ports-udp", [an_instance("ci-0").udp(53)], a_request().needing(udp=[53]), ("ci-0", RESOURCE_PORTS_UDP)),
    ("member-of", [an_instance("ci-0")], a_request().member_of("attribute:ecs.instance-type == m5.large"),
     ("ci-0", MEMBER_OF)),
    ("distinct-instance", [an_instance("ci-0").holding("service:web")], a_request().distinct(),
     ("ci-0", DISTINCT_INSTANCE)),
    ("agent", [an_instance("ci-0").disconnected()], a_request(), ("ci-0", AGENT)),
    ("inactive-draining", [an_instance("ci-0").draining()], a_request(), ("ci-0", INACTIVE)),
    ("agent-before-status", [an_instance("ci-0").draining().disconnected()], a_request(), ("ci-0", AGENT)),
    # The closest instance is the one that got furthest through the checks.
    ("room-but-member-of-beats-no-memory",
     [an_instance("ci-0").memory(100), an_instance("ci-1").type("m5.large")],
     a_request().needing(memory=200).member_of("attribute:ecs.instance-type == c5.large"), ("ci-1", MEMBER_OF)),
    ("no-memory-beats-no-cpu", [an_instance("ci-0").cpu(10), an_instance("ci-1").memory(10)],
     a_request().needing(cpu=100, memory=100), ("ci-1", RESOURCE_MEMORY)),
    ("no-cpu-beats-disconnected", [an_instance("ci-0").disconnected(), an_instance("ci-1").cpu(10)],
     a_request().needing(cpu=100), ("ci-1", RESOURCE_CPU)),
    ("no-cpu-beats-draining", [an_instance("ci-0").draining(), an_instance("ci-1").cpu(10)],
     a_request().needing(cpu=100), ("ci-1", RESOURCE_CPU)),
    ("ports-beat-memory", [an_instance("ci-0").memory(10), an_instance("ci-1").ports(80)],
     a_request().needing(memory=100, ports=[80]), ("ci-1", RESOURCE_PORTS)),
    ("distinct-beats-member-of", [an_instance("ci-0").type("m5.large").holding("service:web"),
                                  an_instance("ci-1").type("t3.medium")],
     a_request().member_of("attribute:ecs.instance-type == m5.large").distinct(), ("ci-0", DISTINCT_INSTANCE)),
    ("most-memory-among-memory-failures", [an_instance("ci-0").memory(100), an_instance("ci-1").memory(150),
                                           an_instance("ci-2").memory(120)],
     a_request().needing(memory=200), ("ci-1", RESOURCE_MEMORY)),
    ("most-cpu-among-cpu-failures", [an_instance("ci-0").cpu(10), an_instance("ci-1").cpu(50),
                                     an_instance("ci-2").cpu(30)],
     a_request().needing(cpu=100), ("ci-1", RESOURCE_CPU)),
]


@pytest.mark.parametrize("instances, request_builder, expected", [c[1:] for c in REASON_CASES],
                         ids=[c[0] for c in REASON_CASES])
def test_failure_reason_and_closest_instance(instances, request_builder, expected):
    snapshot = a_cluster().with_instance(*instances).build()
    plan = place(snapshot, request_builder.count(2).build())
    assert plan.placements == []
    assert [(names([f.arn])[0], f.reason) for f in plan.failures] == [expected] * 2


def test_filtered_counts_every_instance_once_per_reason():
    snapshot = a_cluster().with_instance(
        an_instance("cpu").cpu(10), an_instance("mem").memory(10), an_instance("port").ports(80),
        an_instance("udp").udp(53), an_instance("type").type("m5.large"), an_instance("agent").disconnected(),
        an_instance("draining").draining(), an_instance("distinct").holding("service:web"),
        an_instance("another-distinct").holding("service:web"),
    ).build()
    request = a_request().needing(cpu=100, memory=100, ports=[80], udp=[53]).distinct() \
        .member_of("attribute:ecs.instance-type == t3.medium").build()
    failure = place(snapshot, request).failures[0]
    assert failure.filtered == {RESOURCE_CPU: 1, RESOURCE_MEMORY: 1, RESOURCE_PORTS: 1, RESOURCE_PORTS_UDP: 1,
                                MEMBER_OF: 1, AGENT: 1, INACTIVE: 1, DISTINCT_INSTANCE: 2}
    assert sum(failure.filtered.values()) == len(snapshot)


def test_filtered_after_filling_the_cluster_counts_the_filled_instances():
    snapshot = a_cluster().with_instances(3, type="t3.medium").with_instance(an_instance("off").draining()).build()
    plan = place(snapshot, a_request().needing(memory=1024).count(10).build())
    assert plan.failures[0].filtered == {RESOURCE_MEMORY: 3, INACTIVE: 1}


def failure(reason: str, instance: str | None = "0123456789abcdef") -> PlacementFailure:
    return PlacementFailure(None if instance is None else arn(instance), reason)


EVENT_CASES = [
    ("cpu", failure(RESOURCE_CPU),
     "The closest matching container-instance 0123456789abcdef has insufficient CPU units available."),
    ("memory", failure(RESOURCE_MEMORY),
     "The closest matching container-instance 0123456789abcdef has insufficient memory available."),
    ("ports", failure(RESOURCE_PORTS),
     "The closest matching container-instance 0123456789abcdef is already using a port required by your task."),
    ("member-of", failure(MEMBER_OF),
     'The closest matching container-instance 0123456789abcdef encountered error '
     '"MemberOf placement constraint unsatisfied.".'),
    ("distinct-instance", failure(DISTINCT_INSTANCE),
     'The closest matching container-instance 0123456789abcdef encountered error '
     '"DistinctInstance placement constraint unsatisfied.".'),
    ("agent", failure(AGENT), 'The closest matching container-instance 0123456789abcdef encountered error "AGENT".'),
    ("no-instances", failure(NO_INSTANCES, None), "Reason: No Container Instances were found in your cluster."),
]


@pytest.mark.parametrize("failure, text", [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES])
def test_service_event_detail(failure, text):
    assert failure.service_event_detail() == text


def test_service_event_detail_of_a_real_failure():
    snapshot = a_cluster().with_instance(an_instance("5f3c9e2a7b1d4c6e8a0b2d4f6e8a0c1e").memory(100)).build()
    detail = place(snapshot, a_request().needing(memory=200).build()).failures[0].service_event_detail()
    assert detail == ("The closest matching container-instance 5f3c9e2a7b1d4c6e8a0b2d4f6e8a0c1e "
                      "has insufficient memory available.")


TO_API_CASES = [
    ("with-instance", failure(RESOURCE_CPU, "ci-0"), {"arn": arn("ci-0"), "reason": "RESOURCE:CPU"}),
    ("member-of", failure(MEMBER_OF, "ci-0"),
     {"arn": arn("ci-0"), "reason": "MemberOf placement constraint unsatisfied."}),
    ("no-instance", failure(NO_INSTANCES, None), {"reason": NO_INSTANCES}),
]


@pytest.mark.parametrize("failure, shape", [c[1:] for c in TO_API_CASES], ids=[c[0] for c in TO_API_CASES])
def test_failure_to_api(failure, shape):
    assert failure.to_api() == shape


def test_reason_constants_are_ecs_wording():
    assert (RESOURCE_CPU, RESOURCE_MEMORY, RESOURCE_PORTS, RESOURCE_PORTS_UDP, AGENT, INACTIVE) == (
        "RESOURCE:CPU", "RESOURCE:MEMORY", "RESOURCE:PORTS", "RESOURCE:PORTS_UDP", "AGENT", "INACTIVE")
    assert MEMBER_OF == "MemberOf placement constraint unsatisfied."
    assert DISTINCT_INSTANCE == "DistinctInstance placement constraint unsatisfied."


def test_explain_failure_leaves_the_snapshot_alone():
    snapshot = a_cluster().with_instances(2).build()
    before = [(s.cpu, s.memory, set(s.ports), dict(s.group_counts)) for s in snapshot.slots]
    explain_failure(snapshot, a_request().needing(memory=10**6).build())
    assert [(s.cpu, s.memory, set(s.ports), dict(s.group_counts)) for s in snapshot.slots] == before
