"""Services' desired state (emulator.control.services) on an in-memory store and a fake clock."""

from __future__ import annotations

import random
import re

import pytest

from emulator.clock import FakeClock
from emulator.control.registry import ensure_cluster, register_task_definition
from emulator.control.services import (create_service, delete_service, describe_services, list_services,
                                       update_service)
from emulator.errors import (ClientException, ClusterNotFoundException, InvalidParameterException,
                             ServiceNotActiveException, ServiceNotFoundException)
from emulator.model.arn import service_arn
from emulator.model.cluster import CapacityProviderStrategyItem
from emulator.model.placement_spec import PlacementConstraint, PlacementStrategy
from emulator.model.service import ACTIVE_DEPLOYMENT, IN_PROGRESS, PRIMARY
from emulator.model.service_request import CreateServiceRequest, parse_create_service
from emulator.model.state import StateStore
from emulator.model.task_definition_validation import parse_task_definition
from emulator.placement.query import compile_expression

from test_api_harness import state, web_app

CLUSTER = "production-cluster"


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = StateStore(None, clock=self.clock)
        self.rng = random.Random(7)
        self.cluster = ensure_cluster(self.store, CLUSTER)
        self.v1 = self.register("web-app:v1")

    def register(self, image: str):
        return register_task_definition(self.store, parse_task_definition(web_app(image)), self.clock.now())

    def request(self, **overrides) -> CreateServiceRequest:
        data = {"cluster": CLUSTER, "serviceName": "web", "taskDefinition": "web-app", "desiredCount": 2,
                **overrides}
        return parse_create_service(data, check_expression=compile_expression)

    def create(self, **overrides):
        return create_service(self.store, self.clock, self.request(**overrides), rng=self.rng)

    def update(self, **kw):
        return update_service(self.store, self.clock, CLUSTER, "web", rng=self.rng, **kw)

    @property
    def svc(self):
        return self.store.get("service", service_arn(CLUSTER, "web"))


@pytest.fixture
def world() -> World:
    return World()


def test_a_new_service_has_one_primary_deployment_in_progress(world):
    world.clock.set(1_700_000_100)
    svc = world.create()

    assert (svc.status, svc.desired_count, svc.launch_type) == ("ACTIVE", 2, "EC2")
    assert svc.created_at == 1_700_000_100
    assert svc.task_definition == world.v1.task_definition_arn
    (d,) = svc.deployments
    assert re.fullmatch(r"ecs-svc/\d{19}", d.id)
    assert (d.status, d.desired_count, d.task_definition, d.rollout_state) == (
        PRIMARY, 2, world.v1.task_definition_arn, IN_PROGRESS)
    assert d.rollout_state_reason == f"ECS deployment {d.id} in progress."
    assert d.created_at == d.updated_at == 1_700_000_100
    config = svc.deployment_configuration
    assert (config.maximum_percent, config.minimum_healthy_percent) == (200, 100)
    assert world.svc is svc


def test_the_clusters_default_capacity_provider_strategy_applies_when_neither_is_given(world):
    with world.store.transaction() as tx:
        world.cluster.capacity_providers = ["cp-a"]
        world.cluster.default_capacity_provider_strategy = [CapacityProviderStrategyItem("cp-a", weight=1)]
        tx.put("cluster", world.cluster.cluster_arn, world.cluster)

    svc = world.create()

    assert svc.launch_type is None
    assert [i.capacity_provider for i in svc.capacity_provider_strategy] == ["cp-a"]
    assert svc.deployments[0].launch_type is None


def test_a_strategy_naming_a_provider_outside_the_cluster_is_refused(world):
    before = state(world.store)
    with pytest.raises(InvalidParameterException, match="not associated with the cluster"):
        world.create(capacityProviderStrategy=[{"capacityProvider": "elsewhere", "weight": 1}])
    assert state(world.store) == before


@pytest.mark.parametrize("overrides, error, message", [
    ({"cluster": "nope"}, ClusterNotFoundException, "Cluster not found."),
    ({"taskDefinition": "nope"}, InvalidParameterException, "TaskDefinition not found."),
    ({"taskDefinition": "web-app:9"}, InvalidParameterException, "TaskDefinition not found."),
], ids=["unknown-cluster", "unknown-family", "unknown-revision"])
def test_create_refusals_change_nothing(world, overrides, error, message):
    before = state(world.store)
    with pytest.raises(error, match=re.escape(message)):
        world.create(**overrides)
    assert state(world.store) == before


def test_an_inactive_task_definition_cannot_start_a_service(world):
    with world.store.transaction() as tx:
        world.v1.status = "INACTIVE"
        tx.put("task_definition", world.v1.task_definition_arn, world.v1)
    with pytest.raises(ClientException, match="inactive"):
        world.create(taskDefinition="web-app:1")


def test_a_second_service_of_the_same_name_is_not_idempotent(world):
    world.create()
    before = state(world.store)
    with pytest.raises(InvalidParameterException, match="Creation of service was not idempotent."):
        world.create(desiredCount=5)
    assert state(world.store) == before


def test_an_inactive_service_name_can_be_reused(world):
    world.create()
    with world.store.transaction() as tx:
        world.svc.status = "INACTIVE"
        tx.put("service", world.svc.service_arn, world.svc)
    assert world.create(desiredCount=1).status == "ACTIVE"


def test_placement_syntax_is_checked_even_without_the_parsers_check(world):
    req = CreateServiceRequest(service_name="web", task_definition="web-app", cluster=CLUSTER, desired_count=1,
                               placement_constraints=[PlacementConstraint("memberOf", "attribute:x ==")])
    with pytest.raises(InvalidParameterException, match="Invalid placement expression"):
        create_service(world.store, world.clock, req, rng=world.rng)


def test_desired_count_alone_changes_counts_without_a_deployment(world):
    world.create()
    world.clock.tick(60)
    svc = world.update(desired_count=5)

    assert svc.desired_count == 5
    (d,) = svc.deployments
    assert (d.desired_count, d.updated_at) == (5, world.clock.now())


def test_a_new_task_definition_starts_a_new_primary_and_the_old_one_stays_active(world):
    first = world.create().deployments[0].id
    v2 = world.register("web-app:v2")
    world.clock.tick(30)

    svc = world.update(task_definition="web-app")

    new, old = svc.deployments
    assert (new.status, new.task_definition, new.desired_count, new.rollout_state) == (
        PRIMARY, v2.task_definition_arn, 2, IN_PROGRESS)
    assert (old.id, old.status, old.updated_at) == (first, ACTIVE_DEPLOYMENT, world.clock.now())
    assert svc.task_definition == v2.task_definition_arn


@pytest.mark.parametrize("kw, redeploys", [
    ({"task_definition": "web-app:1"}, False),
    ({"force_new_deployment": True}, True),
    ({"placement_constraints": [PlacementConstraint("distinctInstance")]}, True),
    ({"placement_strategy": [PlacementStrategy("binpack", "memory")]}, True),
    ({"placement_strategy": []}, False),
    ({"health_check_grace_period_seconds": 60}, False),
    ({"deployment_configuration": {"minimumHealthyPercent": 50}}, False),
], ids=["same-task-definition", "force", "constraints", "strategy", "same-strategy", "grace", "config"])
def test_what_starts_a_deployment(world, kw, redeploys):
    world.create()
    svc = world.update(**kw)
    assert len(svc.deployments) == (2 if redeploys else 1)


def test_a_partial_deployment_configuration_keeps_the_other_values(world):
    world.create(deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50})
    svc = world.update(deployment_configuration={"minimumHealthyPercent": 75})
    config = svc.deployment_configuration
    assert (config.maximum_percent, config.minimum_healthy_percent) == (150, 75)


@pytest.mark.parametrize("kw, message", [
    ({"desired_count": -1}, "desiredCount must be 0 or greater"),
    ({"task_definition": "nope"}, "TaskDefinition not found."),
    ({"deployment_configuration": {"maximumPercent": 50}}, "maximumPercent (50) must be at least 100"),
    ({"deployment_configuration": {"minimumHealthyPercent": "x"}}, "Invalid value"),
    ({"placement_constraints": [PlacementConstraint("memberOf", "attribute:x ==")]}, "Invalid placement expression"),
    ({"desired_count": 3, "task_definition": "nope"}, "TaskDefinition not found."),
], ids=["negative", "unknown-td", "max-below-100", "bad-type", "bad-expression", "all-or-nothing"])
def test_update_refusals_change_nothing(world, kw, message):
    world.create()
    before = state(world.store)
    with pytest.raises(InvalidParameterException, match=re.escape(message)):
        world.update(**kw)
    assert state(world.store) == before


def test_updating_an_unknown_or_deleted_service(world):
    with pytest.raises(ServiceNotFoundException, match="Service not found."):
        world.update(desired_count=1)
    world.create(desiredCount=0)
    delete_service(world.store, world.clock, CLUSTER, "web")
    with pytest.raises(ServiceNotActiveException, match="Service was not ACTIVE."):
        world.update(desired_count=1)


def test_a_scaled_service_is_deleted_only_with_force(world):
    world.create()
    before = state(world.store)
    with pytest.raises(InvalidParameterException, match="cannot be stopped while it is scaled above 0"):
        delete_service(world.store, world.clock, CLUSTER, "web")
    assert state(world.store) == before

    svc = delete_service(world.store, world.clock, CLUSTER, service_arn(CLUSTER, "web"), force=True)
    assert (svc.status, svc.desired_count, svc.deployments[0].desired_count) == ("DRAINING", 0, 0)


def test_describe_and_list(world):
    world.create()
    found, failures = describe_services(world.store, CLUSTER, ["web", "ghost"])
    assert [s.service_name for s in found] == ["web"]
    assert failures == [{"arn": service_arn(CLUSTER, "ghost"), "reason": "MISSING"}]
    assert list_services(world.store, CLUSTER) == [service_arn(CLUSTER, "web")]
    assert list_services(world.store, CLUSTER, scheduling_strategy="DAEMON") == []
    with pytest.raises(ClusterNotFoundException):
        list_services(world.store, "nope")


def test_daemon_services_are_refused_until_the_scheduler_runs_them(world):
    before = state(world.store)
    req = parse_create_service({"cluster": CLUSTER, "serviceName": "agent", "taskDefinition": "web-app",
                                "schedulingStrategy": "DAEMON"}, check_expression=compile_expression)
    with pytest.raises(InvalidParameterException, match="DAEMON scheduling strategy is not supported"):
        create_service(world.store, world.clock, req, rng=world.rng)
    assert state(world.store) == before


def test_a_new_deployment_is_journalled(world):
    world.create()
    world.update(force_new_deployment=True)
    messages = [e.message for e in world.store.events(kinds="deployment-state-change")]
    assert len(messages) == 2 and all(m.endswith("created for web-app:1") for m in messages)
