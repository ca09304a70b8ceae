"""Batches over one snapshot: earlier tasks count, cached batches follow give_back/touch/add/remove; from_state."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from builders import AZ, a_cluster, a_request, an_instance, arn, copy_snapshot, names, slot_named

from emulator.model.container_instance import ACTIVE, DRAINING, new_container_instance
from emulator.model.instance_types import get_instance_type
from emulator.model.task import PENDING, RUNNING, STOPPED, STOPPING, Task
from emulator.placement import ClusterSnapshot, TaskNeeds, place_tasks
from emulator.placement.constraints import DISTINCT_INSTANCE, NO_INSTANCES, RESOURCE_MEMORY, RESOURCE_PORTS


def place(snapshot, request, seed: int = 7):
    return place_tasks(snapshot, request, random.Random(seed))


GiB = a_request().needing(memory=1024)


# --- earlier tasks count ----------------------------------------------------------------


def test_a_batch_accounts_for_its_own_earlier_tasks():
    snapshot = a_cluster().with_instances(2, type="t3.medium").build()
    plan = place(snapshot, GiB.count(7).build())
    assert Counter(names(plan.placements)) == {"ci-0": 3, "ci-1": 3}
    assert [f.reason for f in plan.failures] == [RESOURCE_MEMORY]


def test_a_batch_accounts_for_earlier_batches_of_the_same_request():
    snapshot = a_cluster().with_instances(1, type="t3.medium").build()
    request = GiB.count(2).build()
    first, second = place(snapshot, request), place(snapshot, request)
    assert (len(first.placements), len(second.placements), len(second.failures)) == (2, 1, 1)


def test_a_batch_accounts_for_earlier_batches_of_other_groups():
    snapshot = a_cluster().with_instances(1, type="t3.medium").build()
    place(snapshot, a_request("service:api").needing(memory=2048).build())
    plan = place(snapshot, a_request("service:web").needing(memory=1024).count(2).build())
    assert len(plan.placements) == 1
    assert [f.reason for f in plan.failures] == [RESOURCE_MEMORY]


def test_static_ports_taken_by_another_group_block_the_next_batch():
    snapshot = a_cluster().with_instances(2).build()
    place(snapshot, a_request("service:api").needing(memory=64, ports=[80]).count(2).build())
    plan = place(snapshot, a_request("service:web").needing(memory=64, ports=[80]).build())
    assert [f.reason for f in plan.failures] == [RESOURCE_PORTS]


def test_spread_counts_tasks_of_earlier_one_task_batches():
    snapshot = a_cluster().with_instances(6, type="m5.large", azs=["us-east-1a", "us-east-1b", "us-east-1c"]).build()
    request = a_request().needing(memory=128).spread(AZ).spread("instanceId").build()
    arns = [a for seed in range(6) for a in place(snapshot, request, seed).placements]
    assert Counter(names(arns)) == {f"ci-{i}": 1 for i in range(6)}


def test_one_request_shape_is_cached_and_reused():
    snapshot = a_cluster().with_instances(2).build()
    request = a_request().needing(memory=64).build()
    place(snapshot, request)
    place(snapshot, a_request().needing(memory=64).count(3).build())  # count is not part of the shape
    assert len(snapshot.batches) == 1


# --- cached batches follow the snapshot's changes -------------------------------------------


def full_cluster(request):
    snapshot = a_cluster().with_instances(2, type="t3.medium").build()
    plan = place(snapshot, request.count(6).build())
    assert len(plan.placements) == 6
    assert place(snapshot, request.count(1).build()).failures  # full; the batch is now cached
    return snapshot


def test_give_back_frees_room_for_a_cached_batch():
    snapshot = full_cluster(a_request().needing(memory=1024))
    snapshot.give_back(1, "service:web", TaskNeeds(memory=1024))
    plan = place(snapshot, a_request().needing(memory=1024).count(2).build())
    assert names(plan.placements) == ["ci-1"] and len(plan.failures) == 1


def test_give_back_of_another_groups_task_frees_room():
    snapshot = full_cluster(a_request().needing(memory=1024))
    snapshot.take(0, "service:api", TaskNeeds())  # an unrelated change in between
    snapshot.give_back(0, "service:web", TaskNeeds(memory=1024))
    plan = place(snapshot, a_request("service:api").needing(memory=1024).build())
    assert names(plan.placements) == ["ci-0"]


def test_give_back_frees_a_distinct_instance():
    snapshot = a_cluster().with_instances(2).build()
    request = a_request().needing(memory=64).count(2).distinct().build()
    place(snapshot, request)
    assert [f.reason for f in place(snapshot, request).failures] == [DISTINCT_INSTANCE] * 2
    snapshot.give_back(snapshot.index_of(arn("ci-1")), "service:web", TaskNeeds(memory=64))
    plan = place(snapshot, request)
    assert names(plan.placements) == ["ci-1"] and [f.reason for f in plan.failures] == [DISTINCT_INSTANCE]


def test_give_back_lowers_the_spread_count_of_a_cached_batch():
    snapshot = a_cluster().with_instances(2, azs=["us-east-1a", "us-east-1b"]).build()
    request = a_request().needing(memory=64).count(4).spread(AZ).build()
    place(snapshot, request)
    for _ in range(2):
        snapshot.give_back(0, "service:web", TaskNeeds(memory=64))
    assert names(place(snapshot, replace(request, count=2)).placements) == ["ci-0", "ci-0"]


TOUCH_CASES = [
    ("draining", lambda slot: setattr(slot, "status", DRAINING), lambda slot: setattr(slot, "status", ACTIVE)),
    ("agent-disconnected", lambda slot: setattr(slot, "agent_connected", False),
     lambda slot: setattr(slot, "agent_connected", True)),
]


@pytest.mark.parametrize("disable, enable", [c[1:] for c in TOUCH_CASES], ids=[c[0] for c in TOUCH_CASES])
def test_touch_takes_an_instance_out_of_a_cached_batch_and_back(disable, enable):
    snapshot = a_cluster().with_instances(3, type="m5.large").build()
    request = a_request().needing(memory=64).count(3).spread("instanceId").build()
    place(snapshot, request)  # one task each; ci-0 would be as good as any for the next ones
    disable(snapshot.slots[0])
    snapshot.touch(0)
    assert "ci-0" not in names(place(snapshot, request).placements + place(snapshot, request).placements)
    enable(snapshot.slots[0])
    snapshot.touch(0)
    plan = place(snapshot, request)
    assert names(plan.placements) == ["ci-0"] * 3  # it holds 1 task of the group, the others 3 each


def test_draining_every_instance_fails_with_inactive():
    snapshot = a_cluster().with_instances(2).build()
    request = a_request().needing(memory=64).build()
    place(snapshot, request)
    for i, slot in enumerate(snapshot.slots):
        slot.status = DRAINING
        snapshot.touch(i)
    assert [f.reason for f in place(snapshot, request).failures] == ["INACTIVE"]


def test_add_makes_a_new_instance_available_to_a_cached_batch():
    snapshot = full_cluster(a_request().needing(memory=1024))
    snapshot.add(an_instance("new").build())
    plan = place(snapshot, a_request().needing(memory=1024).count(4).build())
    assert names(plan.placements) == ["new"] * 3 and len(plan.failures) == 1


def test_remove_takes_an_instance_out_and_indexes_stay_right():
    snapshot = a_cluster().with_instances(3, type="m5.large").build()
    request = a_request().needing(memory=64).count(3).binpack("memory").build()
    slot_named(snapshot, "ci-1").memory = 1000  # the tightest
    snapshot.touch(1)
    assert names(place(snapshot, request).placements) == ["ci-1"] * 3
    removed = snapshot.remove(arn("ci-0"))
    assert removed.arn == arn("ci-0")
    plan = place(snapshot, request)
    assert names(plan.placements) == ["ci-1"] * 3  # the index of ci-1 moved from 1 to 0
    assert slot_named(snapshot, "ci-1").memory == 1000 - 6 * 64


def test_removing_every_instance_leaves_no_container_instances():
    snapshot = a_cluster().with_instances(2).build()
    request = a_request().needing(memory=64).build()
    place(snapshot, request)
    snapshot.remove(arn("ci-0"))
    snapshot.remove(arn("ci-1"))
    plan = place(snapshot, request)
    assert [(f.arn, f.reason) for f in plan.failures] == [(None, NO_INSTANCES)]


def test_many_request_shapes_evict_old_batches_but_place_the_same():
    def cluster():  # no two instances alike, so binpack has no ties and the choice does not depend on the rng
        return a_cluster().with_instance(*[an_instance(f"ci-{i}").type("m5.4xlarge").memory(30001 + 10001 * i)
                                           for i in range(4)]).build()
    small, roomy = cluster(), cluster()
    small.MAX_CACHED_ENTRIES = 0  # keep the minimum (16) batches
    for i in range(40):
        request = a_request(f"service:s{i % 25}").needing(memory=64 + i % 25).count(1 + i % 3).binpack("memory")
        a, b = place(small, request.build(), i), place(roomy, request.build(), i)
        assert (a.placements, a.failures) == (b.placements, b.failures)
    assert len(small.batches) == 16 and len(roomy.batches) == 25


def test_a_short_change_log_restarts_the_caches_without_losing_room():
    snapshot = a_cluster().with_instances(2, type="t3.medium").build()
    snapshot.MAX_LOG = 3
    request = a_request().needing(memory=1024).build()
    placed = [a for _ in range(8) for a in place(snapshot, request).placements]
    assert Counter(names(placed)) == {"ci-0": 3, "ci-1": 3}
    assert all(s.memory >= 0 for s in snapshot.slots)


def racks_after_x_moves(request, *, warm: bool):
    """x, y, z on racks r1, r2, r3, one task each; then x moves to rack r2 (PutAttributes) and is touched.

    With `warm`, the request's batch was cached before the move; otherwise the snapshot is new.
    """
    snapshot = a_cluster().with_instance(an_instance("x").type("m5.xlarge").attr("rack", "r1").holding("service:web"),
                                         an_instance("y").type("m5.xlarge").attr("rack", "r2").holding("service:web"),
                                         an_instance("z").type("m5.xlarge").attr("rack", "r3").holding("service:web"),
                                         ).build()
    if warm:
        landed = place(snapshot, request).placements[0]  # caches the batch
        snapshot.give_back(snapshot.index_of(landed), "service:web", TaskNeeds(memory=64))  # and undoes the task
    snapshot.slots[0].attributes["rack"] = "r2"
    snapshot.touch(0)
    return snapshot if warm else copy_snapshot(snapshot)


@pytest.mark.parametrize("warm", [False, True], ids=["fresh-batch", "cached-batch"])
def test_spread_on_custom_attribute_follows_an_attribute_change(warm):
    """Regression: a cached batch used to keep counting x's task under rack r1 (placer._Batch._count)."""
    # After the move rack r2 holds 2 tasks (x, y) and r3 holds 1 (z): spread must pick z, whatever the seed.
    request = a_request().needing(memory=64).spread("attribute:rack").build()
    chosen = {n for seed in range(10) for n in names(place(racks_after_x_moves(request, warm=warm), request,
                                                           seed).placements)}
    assert chosen == {"z"}


# --- ClusterSnapshot.from_state with real model objects ------------------------------------

ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER = f"{ACCOUNT}:cluster/test"


def container_instance(name, type_name="t3.medium", az="us-east-1a", **custom):
    return new_container_instance(arn=f"{ACCOUNT}:container-instance/test/{name}", ec2_instance_id=f"i-{name}",
                                  instance_type=get_instance_type(type_name), availability_zone=az,
                                  registered_at=1_700_000_000.0, custom_attributes=custom or None)


def task(n, instance, group="service:web", status=RUNNING):
    return Task(task_arn=f"{ACCOUNT}:task/test/{n:032x}", cluster_arn=CLUSTER,
                task_definition_arn=f"{ACCOUNT}:task-definition/web:1", group=group, last_status=status,
                container_instance_arn=instance.container_instance_arn if instance else None)


def state_fixture():
    """ci-a holds a RUNNING web task (1 GiB, port 8080); ci-b held one that STOPPED; ci-c is draining."""
    a, b, c = container_instance("ci-a"), container_instance("ci-b", az="us-east-1b", rack="r9"), \
        container_instance("ci-c", az="us-east-1c")
    a.remaining_resources = a.remaining_resources.take(512, 1024, frozenset({8080}))
    a.running_tasks_count = 1
    c.status = DRAINING
    tasks = [task(1, a), task(2, b, status=STOPPED), task(3, a, group="service:api", status=PENDING),
             task(4, a, group="service:api", status=STOPPING), task(5, None, group="service:web", status=PENDING)]
    return [a, b, c], tasks


def test_from_state_copies_the_instances_facts():
    instances, tasks = state_fixture()
    snapshot = ClusterSnapshot.from_state(instances, tasks)
    by_arn = snapshot.by_arn()
    a = by_arn[instances[0].container_instance_arn]
    b = by_arn[instances[1].container_instance_arn]
    c = by_arn[instances[2].container_instance_arn]
    assert (a.cpu, a.memory) == (2048 - 512, 3584 - 1024)
    assert a.ports == {22, 2375, 2376, 51678, 51679, 51680, 8080}
    assert a.running_tasks_count == 1 and a.ec2_instance_id == "i-ci-a"
    assert a.group_counts == {"service:web": 1, "service:api": 2}  # PENDING and STOPPING hold resources
    assert b.group_counts == {}  # its task STOPPED
    assert b.attributes["rack"] == "r9" and b.attributes["ecs.instance-type"] == "t3.medium"
    assert (c.status, c.instance_id) == (DRAINING, "ci-c")
    place(snapshot, a_request().needing(cpu=10, memory=10, ports=[9000]).count(3).spread("instanceId").build())
    assert instances[1].remaining_resources == instances[2].remaining_resources  # the model is not touched
    assert 9000 not in instances[0].remaining_resources.ports


def test_from_state_snapshot_places_like_ecs():
    instances, tasks = state_fixture()
    snapshot = ClusterSnapshot.from_state(instances, tasks)
    distinct = a_request().needing(memory=1024).count(3).distinct().build()
    plan = place(snapshot, distinct)
    assert names(plan.placements) == ["ci-b"]  # ci-a holds a web task, ci-c is draining
    assert [f.reason for f in plan.failures] == [DISTINCT_INSTANCE] * 2
    port = a_request("service:api").needing(memory=64, ports=[8080]).count(2).spread("instanceId").build()
    assert names(place(snapshot, port).placements) == ["ci-b"]
    typed = a_request("family:x").needing(memory=64).member_of("attribute:rack == r9").build()
    assert names(place(snapshot, typed).placements) == ["ci-b"]
