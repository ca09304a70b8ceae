"""Properties of the placer over random clusters and requests, and a naive reference it must agree with.

The reference (`reference_best`) is ECS's pipeline written the slow, obvious
way: scan every instance, keep the eligible ones, compute the full
lexicographic key in strategy order (binpack: what is left; spread on the
instance: the group's tasks on it; spread on an attribute: the group's tasks
on every instance sharing the value), take the minimum. The placer's heaps
and caches must pick one of the reference's best instances at every step.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

from builders import AZ, copy_snapshot, name_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.model.container_instance import ACTIVE, DEFAULT_RESERVED_PORTS, DRAINING, standard_attributes
from emulator.model.instance_types import INSTANCE_TYPES, get_instance_type
from emulator.model.placement_spec import PlacementConstraint, PlacementStrategy
from emulator.placement import ClusterSnapshot, InstanceSlot, PlacementRequest, TaskNeeds, place_tasks
from emulator.placement.query import compile_expression

GROUP = "service:web"
OTHER = "service:other"
AZ_NAMES = ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")
AZ_ATTR = "ecs.availability-zone"
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BINPACK_CPU, BINPACK_MEMORY = PlacementStrategy("binpack", "cpu"), PlacementStrategy("binpack", "memory")
SPREAD_INSTANCE, SPREAD_HOST = PlacementStrategy("spread", "instanceId"), PlacementStrategy("spread", "host")
SPREAD_AZ, SPREAD_RACK = PlacementStrategy("spread", AZ), PlacementStrategy("spread", "attribute:rack")
RANDOM = PlacementStrategy("random")
PROP_ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/prop/"
NEW_INSTANCE_IDS = itertools.count()  # ARNs of added instances never repeat
DETERMINISTIC_STRATEGIES = [BINPACK_CPU, BINPACK_MEMORY, SPREAD_INSTANCE, SPREAD_HOST, SPREAD_AZ, SPREAD_RACK]
MEMBER_OF = [
    "attribute:ecs.instance-type =~ (m5|c5|r5).*",
    "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
    "attribute:rack exists",
    "not(task:group == service:other)",
    "runningTasksCount < 4",
]


# --- generators -----------------------------------------------------------------------------


TYPE_NAMES = sorted(INSTANCE_TYPES)


def instance_slot(index: int, profile: int, azs: tuple[str, ...]) -> InstanceSlot:
    """Instance `index` of a random cluster, decoded from one integer (cheap to draw; 0 is a plain empty t2).

    Any catalogue type and AZ, a custom `rack` attribute or none, sometimes draining or disconnected,
    0-2 tasks of the group and of another group, some CPU/memory/ports already in use.
    """
    if profile == 0:
        itype = get_instance_type(TYPE_NAMES[0])
        return InstanceSlot(f"{PROP_ARN}ci-{index}", cpu=itype.cpu_units, memory=itype.registered_memory_mib(),
                            ports=DEFAULT_RESERVED_PORTS, attributes=standard_attributes(itype, azs[0]),
                            ec2_instance_id=f"i-{index:017x}")
    r = random.Random(profile)
    itype = get_instance_type(r.choice(TYPE_NAMES))
    attributes = standard_attributes(itype, r.choice(azs))
    rack = r.choice(["r1", "r2", None])
    if rack:
        attributes["rack"] = rack
    status, connected = r.choice([(ACTIVE, True)] * 6 + [(DRAINING, True), (ACTIVE, False)])
    web, other = r.randint(0, 2), r.randint(0, 2)
    return InstanceSlot(
        f"{PROP_ARN}ci-{index}",
        cpu=itype.cpu_units - r.choice([0, 0, r.randint(0, itype.cpu_units), r.randint(0, itype.cpu_units // 2)]),
        memory=itype.registered_memory_mib() - r.choice([0, 0, r.randint(0, itype.registered_memory_mib())]),
        ports=DEFAULT_RESERVED_PORTS | set(r.sample([80, 443, 8080], r.randint(0, 2))),
        ports_udp=set(r.sample([53, 514], r.randint(0, 1))),
        attributes=attributes, ec2_instance_id=f"i-{index:017x}", status=status, agent_connected=connected,
        running_tasks_count=web + other, group_counts={GROUP: web, OTHER: other})


@st.composite
def clusters(draw, max_instances: int = 30) -> ClusterSnapshot:
    azs = AZ_NAMES[:draw(st.integers(1, len(AZ_NAMES)))]
    profiles = draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=max_instances))
    return ClusterSnapshot([instance_slot(i, p, azs) for i, p in enumerate(profiles)])


task_needs = st.builds(
    TaskNeeds,
    cpu=st.sampled_from([0, 128, 256, 512, 1024, 2048]),
    memory=st.sampled_from([0, 128, 256, 512, 1024, 3000]),
    ports=st.sampled_from([frozenset(), frozenset(), frozenset({80}), frozenset({8080, 9090})]),
    ports_udp=st.sampled_from([frozenset(), frozenset(), frozenset({53})]),
)


@st.composite
def requests(draw, strategy_pool=(*DETERMINISTIC_STRATEGIES, RANDOM), *, member_of: bool = True,
             max_count: int = 12) -> PlacementRequest:
    constraints = []
    if draw(st.booleans()):
        constraints.append(PlacementConstraint("distinctInstance"))
    if member_of and draw(st.booleans()):
        constraints.append(PlacementConstraint("memberOf", draw(st.sampled_from(MEMBER_OF))))
    chain = draw(st.lists(st.sampled_from(strategy_pool), max_size=3))
    return PlacementRequest(GROUP, draw(task_needs), draw(st.integers(1, max_count)), tuple(constraints),
                            tuple(chain))


# --- the reference --------------------------------------------------------------------------


def eligible(slot: InstanceSlot, request: PlacementRequest) -> bool:
    needs, group = request.needs, request.group
    return (slot.status == ACTIVE and slot.agent_connected
            and slot.cpu >= needs.cpu and slot.memory >= needs.memory
            and not (slot.ports & needs.ports) and not (slot.ports_udp & needs.ports_udp)
            and all(compile_expression(c.expression).matches(slot)
                    for c in request.constraints if c.type == "memberOf")
            and not (any(c.type == "distinctInstance" for c in request.constraints)
                     and slot.group_counts.get(group, 0) > 0))


def reference_key(snapshot: ClusterSnapshot, slot: InstanceSlot, request: PlacementRequest) -> tuple:
    group, key = request.group, []
    for strategy in request.strategies:
        if strategy.type == "binpack":
            key.append(slot.cpu if strategy.field == "cpu" else slot.memory)
        elif strategy.field in ("instanceId", "host"):
            key.append(slot.group_counts.get(group, 0))
        else:
            attribute = strategy.field.removeprefix("attribute:")
            value = slot.attributes.get(attribute)
            key.append(sum(other.group_counts.get(group, 0) for other in snapshot.slots
                           if other.attributes.get(attribute) == value))
    return tuple(key)


def reference_best(snapshot: ClusterSnapshot, request: PlacementRequest) -> list[str]:
    """ARNs of every eligible instance whose full strategy key is the minimum (empty: nothing fits)."""
    keyed = [(reference_key(snapshot, s, request), s.arn) for s in snapshot.slots if eligible(s, request)]
    if not keyed:
        return []
    best = min(k for k, _ in keyed)
    return [a for k, a in keyed if k == best]


def reference_stage(slot: InstanceSlot, request: PlacementRequest) -> tuple[int, str]:
    """How far `slot` gets through ECS's checks, and the reason it stops there ("" if it passes them all)."""
    needs = request.needs
    checks = [(slot.agent_connected, "AGENT"), (slot.status == ACTIVE, "INACTIVE"),
              (slot.cpu >= needs.cpu, "RESOURCE:CPU"), (slot.memory >= needs.memory, "RESOURCE:MEMORY"),
              (not slot.ports & needs.ports, "RESOURCE:PORTS"),
              (not slot.ports_udp & needs.ports_udp, "RESOURCE:PORTS_UDP")]
    checks += [(compile_expression(c.expression).matches(slot), "MemberOf placement constraint unsatisfied.")
               for c in request.constraints if c.type == "memberOf"]
    checks += [(slot.group_counts.get(request.group, 0) == 0, "DistinctInstance placement constraint unsatisfied.")
               for c in request.constraints if c.type == "distinctInstance"]
    for stage, (passed, reason) in enumerate(checks):
        if not passed:
            return stage, reason
    return len(checks), ""


def check_against_reference(before: ClusterSnapshot, request: PlacementRequest, plan) -> int:
    """Replays `plan` on `before`, checking each pick is one of the reference's best; returns unique picks."""
    unique = 0
    for placed in plan.placements:
        best = reference_best(before, request)
        assert placed in best, f"placed on {name_of(placed)}, reference best {[name_of(a) for a in best]}"
        unique += len(best) == 1
        before.take(before.index_of(placed), request.group, request.needs)
    if plan.failures:
        assert reference_best(before, request) == [], "a task failed although an instance was eligible"
        stages = {s.arn: reference_stage(s, request) for s in before.slots}
        furthest = max(stage for stage, _ in stages.values())
        failure = plan.failures[0]
        assert stages[failure.arn] == (furthest, failure.reason), "the failure must name a closest instance"
        assert Counter(reason for _, reason in stages.values()) == failure.filtered
        headroom = {"RESOURCE:CPU": lambda s: s.cpu, "RESOURCE:MEMORY": lambda s: s.memory}.get(failure.reason)
        if headroom:  # among the furthest, the one with the most of the missing resource
            by_arn = before.by_arn()
            assert headroom(by_arn[failure.arn]) == max(headroom(by_arn[a]) for a, st_ in stages.items()
                                                        if st_[0] == furthest)
    return unique


# --- (1) never over-allocate; (2) distinctInstance ------------------------------------------


@PROPERTY
@given(clusters(), requests(), st.integers(0, 2**32 - 1))
def test_never_over_allocates(snapshot, request, seed):
    before = copy_snapshot(snapshot)
    plan = place_tasks(snapshot, request, random.Random(seed))
    assert len(plan.placements) + len(plan.failures) == request.count
    landed = Counter(plan.placements)
    for old, new in zip(before.slots, snapshot.slots):
        k = landed[new.arn]
        assert new.cpu >= 0 and new.memory >= 0
        assert (new.cpu, new.memory) == (old.cpu - k * request.needs.cpu, old.memory - k * request.needs.memory)
        assert new.group_counts.get(GROUP, 0) == old.group_counts.get(GROUP, 0) + k
        if k:
            assert old.status == ACTIVE and old.agent_connected
            if request.needs.ports:  # static ports: never booked twice
                assert k == 1 and old.ports.isdisjoint(request.needs.ports)
            if request.needs.ports_udp:
                assert k == 1 and old.ports_udp.isdisjoint(request.needs.ports_udp)
            assert new.ports == old.ports | request.needs.ports
            assert new.ports_udp == old.ports_udp | request.needs.ports_udp
        for c in request.constraints:
            if c.type == "memberOf" and k and not compile_expression(c.expression).dynamic:
                assert compile_expression(c.expression).matches(old)
    if plan.failures:
        first = plan.failures[0]
        assert all(f == first for f in plan.failures)
        assert first.arn in snapshot.by_arn()
        assert sum(first.filtered.values()) == len(snapshot)


@PROPERTY
@given(clusters(), requests(), st.integers(0, 2**32 - 1))
def test_distinct_instance_never_doubles_up(snapshot, request, seed):
    request = PlacementRequest(request.group, request.needs, request.count,
                               (*request.constraints, PlacementConstraint("distinctInstance")), request.strategies)
    before = {s.arn: s.group_counts.get(GROUP, 0) for s in snapshot.slots}
    plan = place_tasks(snapshot, request, random.Random(seed))
    landed = Counter(plan.placements)
    assert all(n == 1 for n in landed.values())
    assert all(before[a] == 0 for a in landed)
    assert all(s.group_counts.get(GROUP, 0) <= max(1, before[s.arn]) for s in snapshot.slots)


# --- (3) spread on AZ never passes over a lagging AZ that had room -------------------------------


def az_counts(snapshot: ClusterSnapshot) -> Counter:
    counts: Counter = Counter()
    for s in snapshot.slots:
        counts[s.attributes.get(AZ_ATTR)] += s.group_counts.get(GROUP, 0)
    return counts


@PROPERTY
@given(clusters(), requests(strategy_pool=DETERMINISTIC_STRATEGIES), st.integers(0, 2**32 - 1))
def test_spread_on_az_always_picks_a_least_loaded_az_that_has_room(snapshot, request, seed):
    """Every pick's AZ had the fewest tasks of the group among the AZs with an eligible instance at that moment.

    Counts include the group's tasks already in the AZ (also on instances that can take no more).
    """
    request = PlacementRequest(request.group, request.needs, request.count, request.constraints,
                               (SPREAD_AZ, *request.strategies[:1]))
    replay = copy_snapshot(snapshot)
    plan = place_tasks(snapshot, request, random.Random(seed))
    for placed in plan.placements:
        counts = az_counts(replay)
        open_azs = {s.attributes[AZ_ATTR] for s in replay.slots if eligible(s, request)}
        chosen = replay.by_arn()[placed].attributes[AZ_ATTR]
        assert counts[chosen] == min(counts[az] for az in open_azs)
        replay.take(replay.index_of(placed), request.group, request.needs)


@st.composite
def roomy_spread_cases(draw):
    """A batch with [spread AZ, ...] on a cluster where every AZ keeps an eligible instance for the whole batch.

    Every instance has room for all the batch's tasks and no static port is asked for; with distinctInstance
    the batch is no bigger than the smallest AZ's number of instances not yet holding the group. Tasks of the
    group may already be there (`existing`), unevenly.
    """
    existing = draw(st.booleans())
    per_az = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    needs = TaskNeeds(cpu=draw(st.sampled_from([0, 64, 128])), memory=draw(st.sampled_from([0, 64, 128])))
    slots, free = [], Counter()
    for az, n in zip(AZ_NAMES, per_az):
        for _ in range(n):
            itype = get_instance_type(draw(st.sampled_from(["m5.2xlarge", "c5.2xlarge", "r5.xlarge"])))
            web = draw(st.integers(0, 2)) if existing else 0
            free[az] += web == 0
            slots.append(InstanceSlot(
                f"{PROP_ARN}ci-{len(slots)}", cpu=itype.cpu_units, memory=itype.registered_memory_mib(),
                ports=DEFAULT_RESERVED_PORTS, attributes=standard_attributes(itype, az),
                group_counts={GROUP: web, OTHER: draw(st.integers(0, 3))}))
    smallest = min(free[az] for az in AZ_NAMES[:len(per_az)])
    distinct = smallest > 0 and draw(st.booleans())
    count = draw(st.integers(1, smallest if distinct else 20))
    tail = draw(st.sampled_from([(), (SPREAD_INSTANCE,), (BINPACK_MEMORY,), (BINPACK_CPU,)]))
    constraints = (PlacementConstraint("distinctInstance"),) if distinct else ()
    return ClusterSnapshot(slots), PlacementRequest(GROUP, needs, count, constraints, (SPREAD_AZ, *tail))


@PROPERTY
@given(roomy_spread_cases(), st.integers(0, 2**32 - 1))
def test_spread_on_az_with_room_everywhere_keeps_azs_within_one(case, seed):
    snapshot, request = case
    initially = az_counts(snapshot)
    plan = place_tasks(snapshot, request, random.Random(seed))
    assert plan.failures == []
    finally_ = az_counts(snapshot)
    azs = {s.attributes[AZ_ATTR] for s in snapshot.slots}
    # An AZ that got a task of this batch was, at that moment, the least loaded: it ends at most one above any AZ.
    for az in azs:
        if finally_[az] > initially[az]:
            assert finally_[az] <= min(finally_[b] for b in azs) + 1
    if not any(initially.values()):
        assert max(finally_[az] for az in azs) - min(finally_[az] for az in azs) <= 1
    assert sum(finally_.values()) - sum(initially.values()) == request.count


# --- (4) determinism ------------------------------------------------------------------------


@PROPERTY
@given(clusters(), st.lists(requests(), min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_the_same_seed_gives_the_same_placements(snapshot, batch_requests, seed):
    twin = copy_snapshot(snapshot)
    rng_a, rng_b = random.Random(seed), random.Random(seed)
    for request in batch_requests:
        a, b = place_tasks(snapshot, request, rng_a), place_tasks(twin, request, rng_b)
        assert (a.placements, a.failures) == (b.placements, b.failures)


# --- (5) the placer agrees with the naive reference -------------------------------------------


@PROPERTY
@given(clusters(), requests(strategy_pool=DETERMINISTIC_STRATEGIES), st.integers(0, 2**32 - 1))
def test_placer_matches_the_reference(snapshot, request, seed):
    before = copy_snapshot(snapshot)
    plan = place_tasks(snapshot, request, random.Random(seed))
    check_against_reference(before, request, plan)


@st.composite
def cluster_changes(draw):
    """What happens between two batches: a task stops, an instance drains/returns, comes or goes."""
    return draw(st.lists(st.one_of(
        st.tuples(st.just("stop"), st.integers(0, 100)),
        st.tuples(st.just("toggle-status"), st.integers(0, 100)),
        st.tuples(st.just("toggle-agent"), st.integers(0, 100)),
        st.tuples(st.just("stop-other"), st.integers(0, 100)),
        st.tuples(st.just("add"), st.sampled_from(["t3.medium", "m5.large", "c5.xlarge"]),
                  st.sampled_from(AZ_NAMES[:2])),
        st.tuples(st.just("remove"), st.integers(0, 100)),
        st.tuples(st.just("move-rack"), st.integers(0, 100), st.sampled_from(["r1", "r2", "r3", None])),
        st.tuples(st.just("start-other"), st.integers(0, 100), st.sampled_from([0, 256, 1024])),
    ), max_size=4))


def apply_change(snapshot: ClusterSnapshot, change, running: list[str], request: PlacementRequest) -> None:
    kind = change[0]
    if kind == "stop" and running:
        arn = running.pop(change[1] % len(running))
        snapshot.give_back(snapshot.index_of(arn), request.group, request.needs)
    elif kind == "stop-other":
        idx = change[1] % len(snapshot)
        if snapshot.slots[idx].group_counts.get(OTHER, 0) > 0:
            snapshot.give_back(idx, OTHER, TaskNeeds())
    elif kind in ("toggle-status", "toggle-agent"):
        idx = change[1] % len(snapshot)
        slot = snapshot.slots[idx]
        if kind == "toggle-status":
            slot.status = ACTIVE if slot.status == DRAINING else DRAINING
        else:
            slot.agent_connected = not slot.agent_connected
        snapshot.touch(idx)
    elif kind == "add":
        itype = get_instance_type(change[1])
        snapshot.add(InstanceSlot(
            f"{PROP_ARN}new-{next(NEW_INSTANCE_IDS)}",
            cpu=itype.cpu_units, memory=itype.registered_memory_mib(), ports=DEFAULT_RESERVED_PORTS,
            attributes=standard_attributes(itype, change[2])))
    elif kind == "move-rack":  # PutAttributes / DeleteAttributes on a custom attribute
        idx = change[1] % len(snapshot)
        if change[2] is None:
            snapshot.slots[idx].attributes.pop("rack", None)
        else:
            snapshot.slots[idx].attributes["rack"] = change[2]
        snapshot.touch(idx)
    elif kind == "start-other":  # a task of another group lands (placed by someone else)
        idx, needs = change[1] % len(snapshot), TaskNeeds(cpu=change[2], memory=change[2])
        if snapshot.slots[idx].fits(needs):
            snapshot.take(idx, OTHER, needs)
    elif kind == "remove" and len(snapshot) > 1:
        removed = snapshot.remove(snapshot.slots[change[1] % len(snapshot)].arn)
        running[:] = [a for a in running if a != removed.arn]


@settings(PROPERTY, max_examples=100)
@given(clusters(max_instances=15), requests(strategy_pool=DETERMINISTIC_STRATEGIES, max_count=5),
       st.lists(cluster_changes(), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_a_cached_batch_matches_the_reference_after_changes(snapshot, request, changes, seed):
    """The same request placed again and again on one snapshot, with stops, drains and new instances between."""
    rng, running = random.Random(seed), []
    for between in [[], *changes]:
        for change in between:
            apply_change(snapshot, change, running, request)
        before = copy_snapshot(snapshot)
        plan = place_tasks(snapshot, request, rng)
        check_against_reference(before, request, plan)
        running += plan.placements


@st.composite
def attribute_changes(draw):
    """Between batches: instances change rack (touch()ed), tasks of the group stop."""
    return draw(st.lists(st.one_of(
        st.tuples(st.just("move-rack"), st.integers(0, 100), st.sampled_from(["r1", "r2", "r3", None])),
        st.tuples(st.just("stop"), st.integers(0, 100)),
    ), min_size=1, max_size=3))


@settings(PROPERTY, max_examples=100)
@given(clusters(max_instances=10),
       st.sampled_from([(), (SPREAD_INSTANCE,), (BINPACK_MEMORY,)]), st.integers(1, 4),
       st.lists(attribute_changes(), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_a_cached_spread_on_attribute_follows_attribute_changes(snapshot, tail, count, changes, seed):
    request = PlacementRequest(GROUP, TaskNeeds(cpu=64, memory=64), count, (), (SPREAD_RACK, *tail))
    rng, running = random.Random(seed), []
    for between in [[], *changes]:
        for change in between:
            apply_change(snapshot, change, running, request)
        before = copy_snapshot(snapshot)
        plan = place_tasks(snapshot, request, rng)
        check_against_reference(before, request, plan)
        running += plan.placements


@settings(PROPERTY, max_examples=60)
@given(clusters(max_instances=12), requests(strategy_pool=DETERMINISTIC_STRATEGIES, max_count=4),
       st.integers(0, 2**32 - 1))
def test_the_reference_is_matched_with_a_tiny_change_log(snapshot, request, seed):
    snapshot.MAX_LOG = 2  # caches restart all the time, mid-batch too
    rng, running = random.Random(seed), []
    for _ in range(3):
        before = copy_snapshot(snapshot)
        plan = place_tasks(snapshot, request, rng)
        check_against_reference(before, request, plan)
        running += plan.placements
        if running:
            snapshot.give_back(snapshot.index_of(running.pop(0)), request.group, request.needs)
