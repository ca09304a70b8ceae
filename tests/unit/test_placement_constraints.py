"""Placement constraints: distinctInstance (per task group) and memberOf (cluster query language)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from builders import a_cluster, a_request, an_instance, names

from emulator.placement import place_tasks
from emulator.placement.constraints import DISTINCT_INSTANCE, MEMBER_OF


def place(snapshot, request, seed: int = 7):
    return place_tasks(snapshot, request, random.Random(seed))


# --- distinctInstance -------------------------------------------------------------------


def test_distinct_instance_puts_each_task_of_the_group_on_its_own_instance():
    snapshot = a_cluster().with_instances(3, type="m5.xlarge").build()
    plan = place(snapshot, a_request().needing(cpu=128, memory=128).count(3).distinct().binpack("memory").build())
    assert sorted(names(plan.placements)) == ["ci-0", "ci-1", "ci-2"]  # binpack alone would stack them


def test_distinct_instance_fails_the_tasks_beyond_the_instance_count():
    snapshot = a_cluster().with_instances(3, type="m5.xlarge").build()
    plan = place(snapshot, a_request().needing(cpu=128, memory=128).count(5).distinct().build())
    assert len(plan.placements) == 3
    assert [f.reason for f in plan.failures] == [DISTINCT_INSTANCE] * 2


DISTINCT_CASES = [
    # id, instances, request group, expected placements (count 2, binpack memory)
    ("avoids-instance-holding-the-group",
     [an_instance("ci-0").holding("service:web"), an_instance("ci-1"), an_instance("ci-2").type("m5.large")],
     "service:web", ["ci-1", "ci-2"]),
    ("another-group-may-share-the-instance",
     [an_instance("ci-0").holding("service:api"), an_instance("ci-1").type("m5.large")],
     "service:web", ["ci-0", "ci-1"]),
    ("group-names-are-exact",
     [an_instance("ci-0").holding("service:web-canary"), an_instance("ci-1").type("m5.large")],
     "service:web", ["ci-0", "ci-1"]),
    ("family-group-of-a-standalone-task",
     [an_instance("ci-0").holding("family:batch"), an_instance("ci-1").type("m5.large"),
      an_instance("ci-2").type("m5.xlarge")],
     "family:batch", ["ci-1", "ci-2"]),
]


@pytest.mark.parametrize("instances, group, expected", [c[1:] for c in DISTINCT_CASES],
                         ids=[c[0] for c in DISTINCT_CASES])
def test_distinct_instance_is_per_group(instances, group, expected):
    snapshot = a_cluster().with_instance(*instances).build()
    plan = place(snapshot, a_request(group).needing(memory=256).count(2).distinct().binpack("memory").build())
    assert names(plan.placements) == expected
    assert plan.failures == []


def test_two_groups_with_distinct_instance_share_instances():
    snapshot = a_cluster().with_instances(2, type="m5.xlarge").build()
    web = place(snapshot, a_request("service:web").needing(memory=256).count(2).distinct().build())
    api = place(snapshot, a_request("service:api").needing(memory=256).count(2).distinct().build())
    assert sorted(names(web.placements)) == sorted(names(api.placements)) == ["ci-0", "ci-1"]
    assert all(s.group_counts == {"service:web": 1, "service:api": 1} for s in snapshot.slots)


def test_distinct_instance_holds_across_batches_of_the_group():
    snapshot = a_cluster().with_instances(3, type="m5.xlarge").build()
    request = a_request().needing(memory=256).count(2).distinct().build()
    first, second = place(snapshot, request), place(snapshot, request)
    assert len(first.placements) == 2 and len(second.placements) == 1
    assert sorted(names(first.placements + second.placements)) == ["ci-0", "ci-1", "ci-2"]
    assert [f.reason for f in second.failures] == [DISTINCT_INSTANCE]


# --- memberOf -------------------------------------------------------------------------------


def member_of_cluster():
    return a_cluster().with_instance(
        an_instance("ci-0").type("t3.medium").az("us-east-1a").attr("rack", "r1"),
        an_instance("ci-1").type("m5.large").az("us-east-1b").attr("rack", "r2").holding("service:db"),
        an_instance("ci-2").type("m5.xlarge").az("us-east-1c"),
        an_instance("ci-3").type("c5.large").az("us-east-1d").attr("rack", "r1").holding("service:cache"),
        an_instance("ci-4").type("t3a.medium").az("us-east-1a"),
    )


MEMBER_OF_CASES = [
    # id, expression, instances that satisfy it
    ("instance-type-equals", "attribute:ecs.instance-type == t3.medium", {"ci-0"}),
    ("instance-type-regex-is-a-full-match", "attribute:ecs.instance-type =~ m5.*", {"ci-1", "ci-2"}),
    ("instance-type-regex-family", "attribute:ecs.instance-type =~ t3.*", {"ci-0", "ci-4"}),
    ("instance-type-not-regex", "attribute:ecs.instance-type !~ t3.*", {"ci-1", "ci-2", "ci-3"}),
    ("az-in-list", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", {"ci-0", "ci-1", "ci-4"}),
    ("az-not-in-list", "attribute:ecs.availability-zone not_in [us-east-1a, us-east-1b]", {"ci-2", "ci-3"}),
    ("az-not-equals", "attribute:ecs.availability-zone != us-east-1a", {"ci-1", "ci-2", "ci-3"}),
    ("custom-attribute-value", "attribute:rack == r1", {"ci-0", "ci-3"}),
    ("custom-attribute-exists", "attribute:rack exists", {"ci-0", "ci-1", "ci-3"}),
    ("custom-attribute-not-equals-needs-the-attribute", "attribute:rack != r1", {"ci-1"}),
    ("custom-attribute-missing", "attribute:rack !exists", {"ci-2", "ci-4"}),
    ("and", "attribute:ecs.instance-type =~ m5.* and attribute:ecs.availability-zone != us-east-1b", {"ci-2"}),
    ("or", "attribute:ecs.instance-type == c5.large or attribute:rack == r2", {"ci-1", "ci-3"}),
    ("not", "not(attribute:ecs.instance-type =~ t3.*)", {"ci-1", "ci-2", "ci-3"}),
    ("ec2-instance-id-in", "ec2InstanceId in [i-ci-2, i-ci-4]", {"ci-2", "ci-4"}),
    ("task-group-equals", "task:group == service:db", {"ci-1"}),
    ("task-group-not-equals", "not(task:group == service:db)", {"ci-0", "ci-2", "ci-3", "ci-4"}),
    ("task-group-regex", "task:group =~ service:.*", {"ci-1", "ci-3"}),
    ("agent-connected", "agentConnected == true", {"ci-0", "ci-1", "ci-2", "ci-3", "ci-4"}),
    ("matches-nothing", "attribute:ecs.instance-type == r5.large", set()),
]


@pytest.mark.parametrize("expression, eligible", [c[1:] for c in MEMBER_OF_CASES],
                         ids=[c[0] for c in MEMBER_OF_CASES])
def test_member_of_places_only_on_matching_instances(expression, eligible):
    # One task per instance (distinctInstance), one more than can match: every match gets one, no other does.
    snapshot = member_of_cluster().build()
    plan = place(snapshot, a_request().needing(memory=256).count(len(eligible) + 1)
                 .member_of(expression).distinct().build())
    assert set(names(plan.placements)) == eligible
    assert len(plan.placements) == len(eligible) and len(plan.failures) == 1


@pytest.mark.parametrize("expression, eligible", [c[1:] for c in MEMBER_OF_CASES],
                         ids=[c[0] for c in MEMBER_OF_CASES])
def test_member_of_alone_never_leaves_the_matching_instances(expression, eligible):
    snapshot = member_of_cluster().build()
    plan = place(snapshot, a_request().needing(memory=256).count(6).member_of(expression).build())
    assert set(names(plan.placements)) <= eligible
    assert bool(plan.placements) == bool(eligible)
    if not eligible:
        assert [f.reason for f in plan.failures] == [MEMBER_OF] * 6


COMBINED_CASES = [
    # id, request builder, expected placements as a multiset
    ("two-member-of-are-anded",
     a_request().needing(memory=256).count(3).member_of("attribute:ecs.instance-type =~ m5.*")
     .member_of("attribute:ecs.availability-zone == us-east-1c"), {"ci-2": 3}),
    ("member-of-and-distinct",
     a_request().needing(memory=256).count(3).member_of("attribute:ecs.instance-type =~ m5.*").distinct(),
     {"ci-1": 1, "ci-2": 1}),
    ("member-of-task-group-and-distinct-of-another-group",
     a_request("service:api").needing(memory=256).count(2).member_of("task:group =~ service:.*").distinct(),
     {"ci-1": 1, "ci-3": 1}),
    ("member-of-with-binpack-picks-the-tightest-match",
     a_request().needing(memory=256).count(1).member_of("attribute:ecs.instance-type =~ m5.*").binpack("memory"),
     {"ci-1": 1}),
    ("member-of-with-spread",
     a_request().needing(memory=256).count(4).member_of("attribute:ecs.instance-type =~ t3.*")
     .spread("instanceId"), {"ci-0": 2, "ci-4": 2}),
]


@pytest.mark.parametrize("request_builder, expected", [c[1:] for c in COMBINED_CASES],
                         ids=[c[0] for c in COMBINED_CASES])
def test_constraints_combined(request_builder, expected):
    snapshot = member_of_cluster().build()
    request = request_builder.build()
    plan = place(snapshot, request)
    assert Counter(names(plan.placements)) == expected
    assert len(plan.placements) + len(plan.failures) == request.count


def test_member_of_on_task_group_sees_tasks_placed_by_other_requests():
    """task:group is dynamic: a cached batch must see a group arriving on an instance later."""
    snapshot = member_of_cluster().build()
    sidecar = a_request("service:sidecar").needing(memory=64).member_of("task:group == service:db").build()
    assert names(place(snapshot, sidecar).placements) == ["ci-1"]
    place(snapshot, a_request("service:db").needing(memory=64).member_of("ec2InstanceId == i-ci-2").build())
    plans = [place(snapshot, sidecar, seed) for seed in range(30)]
    assert {n for p in plans for n in names(p.placements)} == {"ci-1", "ci-2"}


def test_member_of_not_own_group_acts_like_distinct_instance():
    snapshot = a_cluster().with_instances(3, type="m5.xlarge").build()
    plan = place(snapshot, a_request("service:web").needing(memory=64).count(4).binpack("memory")
                 .member_of("not(task:group == service:web)").build())
    assert sorted(names(plan.placements)) == ["ci-0", "ci-1", "ci-2"]
    assert [f.reason for f in plan.failures] == [MEMBER_OF]


def test_member_of_running_tasks_count_is_re_evaluated_after_each_task():
    snapshot = a_cluster().with_instances(2, type="m5.xlarge").build()
    plan = place(snapshot, a_request().needing(memory=64).count(5).binpack("memory")
                 .member_of("runningTasksCount < 2").build())
    assert Counter(names(plan.placements)) == {"ci-0": 2, "ci-1": 2}
    assert [f.reason for f in plan.failures] == [MEMBER_OF]
