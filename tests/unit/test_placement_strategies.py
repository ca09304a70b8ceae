"""Placement strategies: binpack, spread (instance, AZ, custom attribute), random, chains, the service default."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from builders import AZ, AZS, a_cluster, a_request, an_instance, names, per_value

from emulator.model.placement_spec import DEFAULT_SERVICE_STRATEGY, PlacementStrategy
from emulator.placement import place_tasks


def place(snapshot, request, seed: int = 7):
    return place_tasks(snapshot, request, random.Random(seed))


def placed_names(instances, request_builder, seed: int = 7) -> list[str]:
    return names(place(a_cluster().with_instance(*instances).build(), request_builder.build(), seed).placements)


# --- binpack ------------------------------------------------------------------------------


def memory_instances(*amounts: int):
    return [an_instance(f"ci-{i}").type("m5.4xlarge").memory(m) for i, m in enumerate(amounts)]


def cpu_instances(*amounts: int):
    return [an_instance(f"ci-{i}").type("m5.4xlarge").cpu(c) for i, c in enumerate(amounts)]


BINPACK_CASES = [
    # id, instances, request, expected placements in order
    ("memory-least-remaining", memory_instances(3000, 2000, 1500, 4000),
     a_request().needing(memory=1000).binpack("memory"), ["ci-2"]),
    ("memory-least-remaining-that-fits", memory_instances(3000, 2000, 1100, 999),
     a_request().needing(memory=1200).binpack("memory"), ["ci-1"]),
    ("memory-exact-fit-wins", memory_instances(3000, 1200, 1300),
     a_request().needing(memory=1200).binpack("memory"), ["ci-1"]),
    ("memory-fills-the-tightest-first", memory_instances(4096, 2048),
     a_request().needing(memory=1024).count(3).binpack("memory"), ["ci-1", "ci-1", "ci-0"]),
    ("memory-ignores-cpu", [an_instance("ci-0").type("m5.4xlarge").memory(2000).cpu(100),
                            an_instance("ci-1").type("m5.4xlarge").memory(3000).cpu(50)],
     a_request().needing(cpu=10, memory=1000).binpack("memory"), ["ci-0"]),
    ("cpu-least-remaining", cpu_instances(4096, 1024, 2048),
     a_request().needing(cpu=512).binpack("cpu"), ["ci-1"]),
    ("cpu-least-remaining-that-fits", cpu_instances(4096, 256, 2048),
     a_request().needing(cpu=512).binpack("cpu"), ["ci-2"]),
    ("cpu-fills-the-tightest-first", cpu_instances(2048, 1024),
     a_request().needing(cpu=512).count(4).binpack("cpu"), ["ci-1", "ci-1", "ci-0", "ci-0"]),
    ("cpu-ignores-memory", [an_instance("ci-0").type("m5.4xlarge").cpu(2048).memory(500),
                            an_instance("ci-1").type("m5.4xlarge").cpu(4096).memory(300)],
     a_request().needing(cpu=512, memory=100).binpack("cpu"), ["ci-0"]),
]


@pytest.mark.parametrize("instances, request_builder, expected", [c[1:] for c in BINPACK_CASES],
                         ids=[c[0] for c in BINPACK_CASES])
def test_binpack(instances, request_builder, expected):
    assert placed_names(instances, request_builder) == expected


@pytest.mark.parametrize("field", ["cpu", "memory"])
def test_binpack_ties_are_random_but_reproducible_per_seed(field):
    request = a_request().needing(cpu=256, memory=256).binpack(field)
    by_seed = {seed: placed_names(memory_instances(4000, 4000, 4000), request, seed) for seed in range(40)}
    assert all(placed_names(memory_instances(4000, 4000, 4000), request, seed) == by_seed[seed]
               for seed in range(40))
    assert {n for chosen in by_seed.values() for n in chosen} == {"ci-0", "ci-1", "ci-2"}


# --- spread -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["instanceId", "host"])
def test_spread_on_instance_evens_out_tasks(field):
    snapshot = a_cluster().with_instances(3, type="m5.xlarge").build()
    plan = place(snapshot, a_request().needing(memory=128).count(7).spread(field).build())
    assert sorted(Counter(names(plan.placements)).values()) == [2, 2, 3]


@pytest.mark.parametrize("field", ["instanceId", "host"])
def test_spread_on_instance_counts_tasks_already_there(field):
    instances = [an_instance("ci-0").type("m5.xlarge").holding("service:web", 3),
                 an_instance("ci-1").type("m5.xlarge").holding("service:other", 5),
                 an_instance("ci-2").type("m5.xlarge").holding("service:web", 1)]
    assert Counter(placed_names(instances, a_request().needing(memory=128).count(5).spread(field))) == \
        {"ci-1": 3, "ci-2": 2}


def az_cluster(per_az=(1, 2, 3)):
    slots = []
    for az, n in zip(AZS, per_az):
        slots += [an_instance(f"{az[-1]}{i}").type("m5.xlarge").az(az) for i in range(n)]
    return a_cluster().with_instance(*slots)


SPREAD_AZ_CASES = [
    # id, AZ sizes, tasks already in AZs a/b/c, count, expected tasks per AZ from this batch
    ("even-over-uneven-azs", (1, 2, 3), (0, 0, 0), 6, {"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2}),
    ("remainder-one-each", (1, 2, 3), (0, 0, 0), 4, None),
    ("fills-the-lagging-az-first", (2, 2, 2), (2, 0, 1), 3, {"us-east-1b": 2, "us-east-1c": 1}),
    ("levels-then-evens", (2, 2, 2), (3, 0, 0), 9, {"us-east-1a": 1, "us-east-1b": 4, "us-east-1c": 4}),
]


@pytest.mark.parametrize("per_az, existing, count, expected", [c[1:] for c in SPREAD_AZ_CASES],
                         ids=[c[0] for c in SPREAD_AZ_CASES])
def test_spread_on_availability_zone(per_az, existing, count, expected):
    builder = az_cluster(per_az)
    snapshot = builder.build()
    for az, n in zip(AZS, existing):
        if n:
            slot = next(s for s in snapshot.slots if s.attributes["ecs.availability-zone"] == az)
            slot.group_counts["service:web"] = n
    plan = place(snapshot, a_request().needing(memory=128).count(count).spread(AZ).build())
    counts = per_value(snapshot, plan.placements, "ecs.availability-zone")
    if expected is None:
        assert sorted(counts.values()) == [1, 1, 2]
    else:
        assert counts == expected


def test_spread_on_az_skips_an_az_without_room():
    instances = [an_instance("a0").az("us-east-1a").memory(100), an_instance("b0").az("us-east-1b"),
                 an_instance("c0").az("us-east-1c")]
    assert Counter(placed_names(instances, a_request().needing(memory=256).count(4).spread(AZ))) == \
        {"b0": 2, "c0": 2}


def test_spread_on_custom_attribute_instances_lacking_it_form_their_own_value():
    instances = [an_instance("r1-0").type("m5.xlarge").attr("rack", "r1"),
                 an_instance("r1-1").type("m5.xlarge").attr("rack", "r1"),
                 an_instance("r2-0").type("m5.xlarge").attr("rack", "r2"),
                 an_instance("none-0").type("m5.xlarge"),
                 an_instance("none-1").type("m5.xlarge")]
    snapshot = a_cluster().with_instance(*instances).build()
    plan = place(snapshot, a_request().needing(memory=128).count(6).spread("attribute:rack").build())
    assert per_value(snapshot, plan.placements, "rack") == {"r1": 2, "r2": 2, None: 2}


def test_spread_on_custom_attribute_counts_existing_tasks_per_value():
    instances = [an_instance("r1-0").attr("rack", "r1").holding("service:web", 2),
                 an_instance("r2-0").attr("rack", "r2"),
                 an_instance("none-0").holding("service:web", 1)]
    snapshot = a_cluster().with_instance(*instances).build()
    plan = place(snapshot, a_request().needing(memory=128).count(3).spread("attribute:rack").build())
    assert per_value(snapshot, plan.placements, "rack") == {"r2": 2, None: 1}


# --- random -------------------------------------------------------------------------------


@pytest.mark.parametrize("strategies", [[PlacementStrategy("random")], []], ids=["random", "no-strategy"])
def test_random_reaches_every_candidate_and_is_deterministic_per_seed(strategies):
    instances = [an_instance(f"ci-{i}").type(t) for i, t in enumerate(["t3.medium", "m5.large", "c5.large",
                                                                         "r5.large"])]
    instances.append(an_instance("full").memory(100))
    request = a_request().needing(memory=256).strategies(strategies)
    chosen = {seed: placed_names(instances, request, seed) for seed in range(60)}
    assert all(placed_names(instances, request, seed) == chosen[seed] for seed in range(60))
    assert Counter(n for c in chosen.values() for n in c).keys() == {"ci-0", "ci-1", "ci-2", "ci-3"}


def test_random_batch_respects_resources():
    snapshot = a_cluster().with_instances(3, type="t3.medium").build()
    plan = place(snapshot, a_request().needing(memory=1024).count(10).random().build())
    assert Counter(names(plan.placements)) == {"ci-0": 3, "ci-1": 3, "ci-2": 3}
    assert len(plan.failures) == 1


# --- chains -------------------------------------------------------------------------------


def chain_cluster():
    return [an_instance("a-small").az("us-east-1a").type("m5.xlarge").memory(2000),
            an_instance("a-big").az("us-east-1a").type("m5.xlarge").memory(4000),
            an_instance("b-small").az("us-east-1b").type("m5.xlarge").memory(3000),
            an_instance("b-big").az("us-east-1b").type("m5.xlarge").memory(6000)]


CHAIN_CASES = [
    ("spread-az-then-binpack-memory", a_request().needing(memory=1000).count(4).spread(AZ).binpack("memory"),
     ["a-small", "b-small", "a-small", "b-small"]),
    ("binpack-memory-then-spread-az", a_request().needing(memory=1000).count(4).binpack("memory").spread(AZ),
     ["a-small", "a-small", "b-small", "b-small"]),
    ("spread-az-then-spread-instance", a_request().needing(memory=1000).count(4).spread(AZ).spread("instanceId")
     .binpack("memory"), ["a-small", "b-small", "a-big", "b-big"]),
    ("binpack-cpu-ties-then-binpack-memory", a_request().needing(memory=1000).count(2).binpack("cpu")
     .binpack("memory"), ["a-small", "a-small"]),
]


@pytest.mark.parametrize("request_builder, expected", [c[1:] for c in CHAIN_CASES], ids=[c[0] for c in CHAIN_CASES])
def test_chained_strategies_apply_in_order(request_builder, expected):
    assert placed_names(chain_cluster(), request_builder) == expected


def test_spread_az_then_binpack_packs_within_each_az():
    snapshot = a_cluster().with_instance(*chain_cluster()).build()
    plan = place(snapshot, a_request().needing(memory=500).count(6).spread(AZ).binpack("memory").build())
    assert Counter(names(plan.placements)) == {"a-small": 3, "b-small": 3}


# --- the service default, and no strategy at all ------------------------------------------


def test_default_service_strategy_is_spread_az_then_instance():
    assert DEFAULT_SERVICE_STRATEGY == (PlacementStrategy("spread", "attribute:ecs.availability-zone"),
                                        PlacementStrategy("spread", "instanceId"))


DEFAULT_CASES = [
    # id, instances, count, expected tasks per instance
    ("three-tasks-two-azs", [an_instance("a0").az("us-east-1a"), an_instance("a1").az("us-east-1a"),
                             an_instance("b0").az("us-east-1b")], 3, {"a0": 1, "a1": 1, "b0": 1}),
    ("four-tasks-two-azs", [an_instance("a0").az("us-east-1a"), an_instance("a1").az("us-east-1a"),
                            an_instance("b0").az("us-east-1b")], 4, {"a0": 1, "a1": 1, "b0": 2}),
    ("existing-tasks-count", [an_instance("a0").az("us-east-1a"), an_instance("a1").az("us-east-1a"),
                              an_instance("b0").az("us-east-1b").holding("service:web", 2)], 2,
     {"a0": 1, "a1": 1}),
    ("fewest-on-instance-within-the-az", [an_instance("a0").az("us-east-1a").holding("service:web", 1),
                                          an_instance("a1").az("us-east-1a"),
                                          an_instance("b0").az("us-east-1b").holding("service:web", 2)], 1,
     {"a1": 1}),
]


@pytest.mark.parametrize("instances, count, expected", [c[1:] for c in DEFAULT_CASES],
                         ids=[c[0] for c in DEFAULT_CASES])
def test_default_service_strategy(instances, count, expected):
    request = a_request().needing(memory=128).count(count).strategies(DEFAULT_SERVICE_STRATEGY)
    for seed in range(5):
        assert Counter(placed_names(instances, request, seed)) == expected


def test_no_strategy_places_on_instances_that_fit_only():
    instances = [an_instance("ci-0"), an_instance("ci-1").memory(100), an_instance("ci-2").ports(80)]
    request = a_request().needing(memory=256, ports=[80])
    assert {n for seed in range(30) for n in placed_names(instances, request, seed)} == {"ci-0"}
