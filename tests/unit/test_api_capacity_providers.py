"""ECS capacity providers and PutClusterCapacityProviders through a real boto3 client against the in-process endpoint.

Auto Scaling group providers as ECS makes them: name rules, one provider
per group, managed termination protection needing scale-in protection,
association with one cluster, and AWS's answer to deleting one that a
cluster still holds. Every refused call changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.control import scaling_state
from emulator.model.scaling import parse_auto_scaling_group
from test_api_autoscaling import add_service, snapshot
from test_api_harness import CLUSTER, REGION, Endpoint, endpoint  # noqa: F401  (endpoint is a fixture)

ACCOUNT = "123456789012"


def put_group(ep: Endpoint, name: str, *, protected: bool = True, max_size: int = 10) -> str:
    """An Auto Scaling group in the store (as CreateAutoScalingGroup would leave it); its ARN."""
    asg = parse_auto_scaling_group({
        "AutoScalingGroupName": name, "LaunchTemplate": {"LaunchTemplateName": "lt", "InstanceType": "t3.medium"},
        "MinSize": 0, "MaxSize": max_size, "DesiredCapacity": 0, "AvailabilityZones": ["us-east-1a", "us-east-1b"],
        "NewInstancesProtectedFromScaleIn": protected}, REGION)
    with ep.store.transaction() as tx:
        tx.put("auto_scaling_group", name, asg)
    return asg.auto_scaling_group_arn


def provider(name: str, group: str, **managed: Any) -> dict[str, Any]:
    scaling = {"status": "ENABLED", "targetCapacity": 100, **managed.pop("scaling", {})}
    return {"name": name, "autoScalingGroupProvider": {
        "autoScalingGroupArn": group, "managedScaling": scaling, "managedTerminationProtection": "ENABLED",
        **managed}}


def cp_arn(name: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:capacity-provider/{name}"


@pytest.fixture
async def groups(endpoint):
    endpoint.asg_arn = put_group(endpoint, "ecs-asg")
    endpoint.other_arn = put_group(endpoint, "other-asg")
    endpoint.unprotected_arn = put_group(endpoint, "plain-asg", protected=False)
    return endpoint


# --- CreateCapacityProvider / DescribeCapacityProviders ---------------------------------


async def test_create_then_describe_a_capacity_provider(groups):
    created = (await groups.call("create_capacity_provider", **provider("web-cp", groups.asg_arn),
                                 tags=[{"key": "team", "value": "web"}]))["capacityProvider"]
    assert (created["capacityProviderArn"], created["name"], created["status"]) == (cp_arn("web-cp"), "web-cp",
                                                                                    "ACTIVE")
    assert created["autoScalingGroupProvider"] == {
        "autoScalingGroupArn": groups.asg_arn, "managedTerminationProtection": "ENABLED", "managedDraining": "ENABLED",
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "minimumScalingStepSize": 1,
                           "maximumScalingStepSize": 10000, "instanceWarmupPeriod": 300}}
    assert created["tags"] == [{"key": "team", "value": "web"}]
    assert created["type"] == "EC2_AUTOSCALING"
    (event,) = groups.store.events(kinds=scaling_state.CAPACITY_PROVIDER_CREATED)
    assert event.resource == cp_arn("web-cp")

    listed = await groups.call("describe_capacity_providers")
    assert [cp["name"] for cp in listed["capacityProviders"]] == ["web-cp"]
    assert "tags" not in listed["capacityProviders"][0]  # only with include=TAGS

    named = await groups.call("describe_capacity_providers", capacityProviders=[cp_arn("web-cp"), "ghost"],
                              include=["TAGS"])
    assert named["capacityProviders"][0]["tags"] == [{"key": "team", "value": "web"}]
    assert named["failures"] == [{"arn": cp_arn("ghost"), "reason": "MISSING"}]


async def test_the_group_may_be_named_instead_of_its_arn(groups):
    created = (await groups.call("create_capacity_provider", **provider("by-name", "ecs-asg")))["capacityProvider"]
    assert created["autoScalingGroupProvider"]["autoScalingGroupArn"] == groups.asg_arn


@pytest.mark.parametrize("params, code, message", [
    (provider("web-cp", "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/ghost"),
     "ClientException", "The specified Auto Scaling group was not found: arn:aws:autoscaling:us-east-1:123456789012:"
                        "autoScalingGroup:x:autoScalingGroupName/ghost. Specify a valid Auto Scaling group ARN and try "
                        "again."),
    (provider("second", "ecs-asg"), "ClientException",
     "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto "
     "Scaling group ARN and try again."),
    (provider("existing", "other-asg"), "ClientException",
     "The specified capacity provider already exists. To change the configuration of an existing capacity provider, "
     "update the capacity provider."),
    (provider("web-cp", "plain-asg"), "ClientException",
     "The managed termination protection setting for the capacity provider is invalid. To enable managed termination "
     "protection for a capacity provider, the Auto Scaling group must have instance protection from scale in "
     "enabled."),
    (provider("web-cp", "other-asg", scaling={"status": "DISABLED"}), "ClientException",
     "The managed termination protection setting for the capacity provider is invalid. To enable managed termination "
     "protection for a capacity provider, managed scaling must be enabled."),
    (provider("ecs-web", "other-asg"), "ClientException",
     "The specified capacity provider name is invalid. A capacity provider name cannot be prefixed with 'aws', 'ecs', "
     "or 'fargate'."),
    (provider("web-cp", "other-asg", scaling={"targetCapacity": 101}), "InvalidParameterException",
     "1 validation error detected: Value '101' at 'autoScalingGroupProvider.managedScaling.targetCapacity' failed to "
     "satisfy constraint: Member must have value less than or equal to 100"),
    ({"name": "web-cp"}, "InvalidParameterException",
     "1 validation error detected: Value null at 'autoScalingGroupProvider' failed to satisfy constraint: Member "
     "must not be null"),
    ({**provider("web-cp", "other-asg"), "cluster": CLUSTER}, "InvalidParameterException",
     "CreateCapacityProvider parameter 'cluster' is not supported by this emulator."),
], ids=["no-group", "group-taken", "name-taken", "group-unprotected", "protection-without-scaling",
        "reserved-prefix", "target-capacity", "no-group-provider", "managed-instances-cluster"])
async def test_refused_providers_change_nothing(groups, params, code, message):
    await groups.call("create_capacity_provider", **provider("existing", "ecs-asg"))
    before = snapshot(groups.store)
    assert await groups.error("create_capacity_provider", **params) == (code, message)
    assert snapshot(groups.store) == before


async def test_describe_capacity_providers_pages(groups):
    for i, group in enumerate(("ecs-asg", "other-asg")):
        await groups.call("create_capacity_provider", **provider(f"cp-{i}", group))
    first = await groups.call("describe_capacity_providers", maxResults=1)
    second = await groups.call("describe_capacity_providers", maxResults=1, nextToken=first["nextToken"])
    assert [cp["name"] for cp in first["capacityProviders"] + second["capacityProviders"]] == ["cp-0", "cp-1"]
    assert "nextToken" not in second

    before = snapshot(groups.store)
    assert (await groups.error("describe_capacity_providers", maxResults=11))[0] == "InvalidParameterException"
    assert (await groups.error("describe_capacity_providers", include=["STATISTICS"]))[0] == (
        "InvalidParameterException")
    assert snapshot(groups.store) == before


# --- UpdateCapacityProvider ---------------------------------------------------------------


async def test_update_changes_only_the_members_given(groups):
    await groups.call("create_capacity_provider", **provider("web-cp", "ecs-asg",
                                                             scaling={"instanceWarmupPeriod": 60}))
    updated = (await groups.call("update_capacity_provider", name=cp_arn("web-cp"), autoScalingGroupProvider={
        "managedScaling": {"targetCapacity": 80}, "managedDraining": "DISABLED"}))["capacityProvider"]
    scaling = updated["autoScalingGroupProvider"]["managedScaling"]
    assert (scaling["status"], scaling["targetCapacity"], scaling["instanceWarmupPeriod"]) == ("ENABLED", 80, 60)
    assert updated["autoScalingGroupProvider"]["managedDraining"] == "DISABLED"
    assert updated["autoScalingGroupProvider"]["managedTerminationProtection"] == "ENABLED"
    assert updated["updateStatus"] == "UPDATE_COMPLETE"
    (described,) = (await groups.call("describe_capacity_providers", capacityProviders=["web-cp"],
                                      include=["TAGS"]))["capacityProviders"]
    assert described == updated
    assert [e.kind for e in groups.store.events(kinds=scaling_state.CAPACITY_PROVIDER_UPDATED)] == [
        scaling_state.CAPACITY_PROVIDER_UPDATED]


@pytest.mark.parametrize("name, update, code, message", [
    ("ghost", {"managedDraining": "DISABLED"}, "ClientException",
     "The specified capacity provider does not exist. Specify a valid name or ARN and try again."),
    ("web-cp", {"managedScaling": {"status": "DISABLED"}}, "ClientException",
     "The managed termination protection setting for the capacity provider is invalid. To enable managed termination "
     "protection for a capacity provider, managed scaling must be enabled."),
    ("web-cp", {"managedScaling": {"maximumScalingStepSize": 20000}}, "InvalidParameterException",
     "1 validation error detected: Value '20000' at 'autoScalingGroupProvider.managedScaling.maximumScalingStepSize' "
     "failed to satisfy constraint: Member must have value less than or equal to 10000"),
    ("web-cp", {"managedDraining": "SOMETIMES"}, "InvalidParameterException",
     "Invalid value 'SOMETIMES'. Valid values: ENABLED, DISABLED."),
], ids=["unknown", "protection-needs-scaling", "step-size", "draining-value"])
async def test_refused_updates_change_nothing(groups, name, update, code, message):
    await groups.call("create_capacity_provider", **provider("web-cp", "ecs-asg"))
    before = snapshot(groups.store)
    assert await groups.error("update_capacity_provider", name=name, autoScalingGroupProvider=update) == (
        code, message)
    assert snapshot(groups.store) == before


# --- PutClusterCapacityProviders and DescribeClusters -----------------------------------------


async def test_put_cluster_capacity_providers_and_describe_the_cluster(groups):
    for name, group in (("cp-a", "ecs-asg"), ("cp-b", "other-asg")):
        await groups.call("create_capacity_provider", **provider(name, group))
    put = (await groups.call("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["cp-a", "cp-b"],
                             defaultCapacityProviderStrategy=[{"capacityProvider": "cp-a", "weight": 1, "base": 2},
                                                              {"capacityProvider": "cp-b", "weight": 3}]))["cluster"]
    strategy = [{"capacityProvider": "cp-a", "weight": 1, "base": 2}, {"capacityProvider": "cp-b", "weight": 3,
                                                                       "base": 0}]
    assert (put["capacityProviders"], put["defaultCapacityProviderStrategy"]) == (["cp-a", "cp-b"], strategy)
    (cluster,) = (await groups.call("describe_clusters", clusters=[CLUSTER]))["clusters"]
    assert (cluster["capacityProviders"], cluster["defaultCapacityProviderStrategy"]) == (["cp-a", "cp-b"], strategy)
    (event,) = groups.store.events(kinds=scaling_state.CLUSTER_CAPACITY_PROVIDERS_PUT)
    assert event.resource == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"

    # A new service with neither launch type nor strategy takes the cluster's default strategy.
    await add_service(groups, "web", desired=1)
    (service,) = (await groups.call("describe_services", cluster=CLUSTER, services=["web"]))["services"]
    assert service["capacityProviderStrategy"] == strategy

    # Dropping everything is allowed once nothing uses the providers.
    await groups.call("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["cp-a", "cp-b"],
                      defaultCapacityProviderStrategy=[])
    (cluster,) = (await groups.call("describe_clusters", clusters=[CLUSTER]))["clusters"]
    assert cluster["defaultCapacityProviderStrategy"] == []


@pytest.mark.parametrize("cluster, providers, strategy, code, message", [
    ("ghost", ["cp-a"], [], "ClusterNotFoundException", "Cluster not found."),
    (CLUSTER, ["cp-z"], [], "InvalidParameterException",
     "The specified capacity provider was not found. Specify a valid capacity provider and try again."),
    (CLUSTER, ["FARGATE"], [], "InvalidParameterException",
     "The FARGATE capacity provider is not supported: this emulator runs the EC2 launch type only."),
    (CLUSTER, ["cp-a"], [{"capacityProvider": "cp-b", "weight": 1}], "InvalidParameterException",
     "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the "
     "cluster (cp-b). Associate the capacity provider with the cluster or specify a valid capacity provider and try "
     "again."),
    (CLUSTER, ["cp-a", "cp-b"], [{"capacityProvider": "cp-a", "weight": 1, "base": 1},
                                 {"capacityProvider": "cp-b", "weight": 1, "base": 1}], "InvalidParameterException",
     "Only one capacity provider in a capacity provider strategy can have a base defined."),
    (CLUSTER, ["cp-a"], [{"capacityProvider": "cp-a", "weight": 1001}], "InvalidParameterException",
     "1 validation error detected: Value '1001' at 'defaultCapacityProviderStrategy[0].weight' failed to satisfy "
     "constraint: Member must have value less than or equal to 1000"),
    (CLUSTER, ["cp-a"], [{"capacityProvider": "cp-a", "weight": 0}], "InvalidParameterException",
     "At least one capacity provider in a capacity provider strategy must have a weight greater than 0."),
    (CLUSTER, ["cp-a", "cp-a"], [], "InvalidParameterException",
     "Capacity provider 'cp-a' appears more than once in capacityProviders."),
    (CLUSTER, ["cp-other"], [], "InvalidParameterException",
     "The capacity provider cp-other is already associated with cluster other. A capacity provider that uses an Auto "
     "Scaling group can be associated with one cluster only."),
], ids=["no-cluster", "unknown-provider", "fargate", "strategy-not-listed", "two-bases", "weight", "all-zero",
        "duplicate", "other-cluster"])
async def test_refused_associations_change_nothing(groups, cluster, providers, strategy, code, message):
    for name, group in (("cp-a", "ecs-asg"), ("cp-b", "other-asg"), ("cp-other", "plain-asg")):
        await groups.call("create_capacity_provider", **provider(name, group, managedTerminationProtection="DISABLED"))
    await groups.call("create_cluster", clusterName="other", capacityProviders=["cp-other"])
    before = snapshot(groups.store)
    assert await groups.error("put_cluster_capacity_providers", cluster=cluster, capacityProviders=providers,
                              defaultCapacityProviderStrategy=strategy) == (code, message)
    assert snapshot(groups.store) == before


async def test_a_provider_in_use_cannot_be_removed(groups):
    for name, group in (("cp-a", "ecs-asg"), ("cp-b", "other-asg")):
        await groups.call("create_capacity_provider", **provider(name, group))
    await groups.call("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["cp-a", "cp-b"],
                      defaultCapacityProviderStrategy=[])
    await add_service(groups, "web", desired=1, capacityProviderStrategy=[{"capacityProvider": "cp-b", "weight": 1}])

    before = snapshot(groups.store)
    assert await groups.error("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["cp-a"],
                              defaultCapacityProviderStrategy=[]) == (
        "ResourceInUseException", "The specified capacity provider is in use and cannot be removed.")
    assert snapshot(groups.store) == before

    # Once the service is gone (the scheduler marks it INACTIVE), the provider may go.
    await groups.call("delete_service", cluster=CLUSTER, service="web", force=True)
    with groups.store.transaction() as tx:
        (svc,) = groups.store.list("service")
        svc.status = "INACTIVE"
        tx.put("service", svc.service_arn, svc)
    cluster = (await groups.call("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["cp-a"],
                                 defaultCapacityProviderStrategy=[]))["cluster"]
    assert cluster["capacityProviders"] == ["cp-a"]


async def test_create_cluster_checks_its_capacity_providers(groups):
    await groups.call("create_capacity_provider", **provider("cp-a", "ecs-asg"))
    before = snapshot(groups.store)
    assert await groups.error("create_cluster", clusterName="staging", capacityProviders=["cp-z"]) == (
        "InvalidParameterException",
        "The specified capacity provider was not found. Specify a valid capacity provider and try again.")
    assert snapshot(groups.store) == before
    created = (await groups.call("create_cluster", clusterName="staging", capacityProviders=["cp-a"],
                                 defaultCapacityProviderStrategy=[{"capacityProvider": "cp-a", "weight": 1}]))
    assert created["cluster"]["capacityProviders"] == ["cp-a"]


# --- DeleteCapacityProvider -----------------------------------------------------------------


async def test_deleting_a_provider_a_cluster_holds_fails_as_aws_reports_it(groups):
    await groups.call("create_capacity_provider", **provider("web-cp", "ecs-asg"))
    await groups.call("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["web-cp"],
                      defaultCapacityProviderStrategy=[{"capacityProvider": "web-cp", "weight": 1}])

    refused = (await groups.call("delete_capacity_provider", capacityProvider="web-cp"))["capacityProvider"]
    assert (refused["status"], refused["updateStatus"]) == ("ACTIVE", "DELETE_FAILED")
    assert refused["updateStatusReason"] == (
        f"The capacity provider cannot be deleted because it is associated with cluster: {CLUSTER}. Remove the "
        "capacity provider from the cluster and try again.")
    (cluster,) = (await groups.call("describe_clusters", clusters=[CLUSTER]))["clusters"]
    assert cluster["capacityProviders"] == ["web-cp"]

    await groups.call("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=[],
                      defaultCapacityProviderStrategy=[])
    deleted = (await groups.call("delete_capacity_provider", capacityProvider=cp_arn("web-cp")))["capacityProvider"]
    assert (deleted["status"], deleted["updateStatus"]) == ("INACTIVE", "DELETE_COMPLETE")
    assert "updateStatusReason" not in deleted
    shown = (await groups.call("describe_capacity_providers", capacityProviders=["web-cp"]))["capacityProviders"]
    assert shown[0]["status"] == "INACTIVE"  # still discoverable for a while, as on AWS
    assert [e.kind for e in groups.store.events(kinds=(scaling_state.CAPACITY_PROVIDER_DELETE_FAILED,
                                                       scaling_state.CAPACITY_PROVIDER_DELETED))] == [
        scaling_state.CAPACITY_PROVIDER_DELETE_FAILED, scaling_state.CAPACITY_PROVIDER_DELETED]

    before = snapshot(groups.store)
    assert await groups.error("delete_capacity_provider", capacityProvider="web-cp") == (
        "ClientException", "The specified capacity provider does not exist. Specify a valid name or ARN and try again.")
    assert (await groups.error("put_cluster_capacity_providers", cluster=CLUSTER, capacityProviders=["web-cp"],
                               defaultCapacityProviderStrategy=[]))[0] == "InvalidParameterException"
    assert snapshot(groups.store) == before

    # The name and the group are free again.
    again = (await groups.call("create_capacity_provider", **provider("web-cp", "ecs-asg")))["capacityProvider"]
    assert again["status"] == "ACTIVE" and "updateStatus" not in again


async def test_providers_put_by_stack_files_are_read_back_in_full(groups):
    from emulator.model.scaling import parse_capacity_provider
    plain = parse_capacity_provider(provider("stack-cp", groups.asg_arn), REGION)
    with groups.store.transaction() as tx:
        tx.put("capacity_provider", plain.name, plain)
    deleted = (await groups.call("delete_capacity_provider", capacityProvider="stack-cp"))["capacityProvider"]
    assert (deleted["status"], deleted["type"]) == ("INACTIVE", "EC2_AUTOSCALING")
